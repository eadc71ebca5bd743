"""The labelling loop in one process on real data: 10 labels on ``pluralrm serve --label``, active vs random.

For each DSP domain user (leave-one-user-out: a MiniLM DRM fitted by ``pluralrm decompose`` on the other
three domains' pairs), a scripted labeller who prefers their domain's response answers 10 pairs through the
labelling routes the page posts to (``/label/api/next``, ``/label/api/labels``; the browser itself is
driven by ``tests/serve/test_label_browser.py``), with the pairs the server's active rule picks for their
profile — then the accuracy of their *served* reward (``/v1/score``) on held-out pairs of other prompts is
printed, next to the same flow with random pairs and the ceiling of a profile fitted on every candidate pair.
Each rule has ``--draws`` labellers per user; labeller ``r`` of either rule gets the same seeded first pair
(the cold start), so the two rules' runs are paired and the last line is their mean difference with a 95 %
interval over (user, labeller). Data: ../shared/data/dsp (skips when absent).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/label_loop.py [--labels 10] [--draws 5] [--strategy bald]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DOMAINS = ("academy", "business", "entertainment", "literature")
ADMIN = "benchmark-admin-token-0123456789"


def split(pairs: list[dict], domain: str, n_pool: int, n_candidates: int, n_test: int):
    """Pool (other domains), the domain's candidate pairs and its held-out pairs, on disjoint prompts."""
    mine = [p for p in pairs if p["subset"] == domain]
    prompts = list(dict.fromkeys(p["prompt"] for p in mine))
    half = set(prompts[: len(prompts) // 2])
    candidates = [p for p in mine if p["prompt"] in half][:n_candidates]
    test = [p for p in mine if p["prompt"] not in half][:n_test]
    pool = [p for p in pairs if p["subset"] != domain and p["prompt"] not in half][:n_pool]
    return pool, candidates, test


def fit_model(pool: list[dict], root: Path, adapters: str) -> Path:
    """``pluralrm decompose`` on the pool, each pair labelled with its domain as the user, so that
    ``--adapters`` chooses the served adapter on the pool's own users (the product's default path)."""
    from typer.testing import CliRunner

    from pluralrm.cli import app

    (root / "pool.jsonl").write_text("".join(json.dumps({**p, "user": p["subset"]}) + "\n" for p in pool))
    args = ["decompose", str(root / "pool.jsonl"), "--backbone", "minilm", "--components", "8"]
    if adapters:
        args += ["--adapters", adapters]
    result = CliRunner().invoke(app, [*args, "--out", str(root / "drm")])
    if result.exit_code != 0:
        raise SystemExit(f"pluralrm decompose failed:\n{result.output}")
    return root / "drm"


def accuracy(api: httpx.Client, user: str | None, token: str, test: list[dict]) -> float:
    """Served accuracy on ``test`` for ``user`` (``None``: the general reward)."""
    right = []
    for prompt in dict.fromkeys(p["prompt"] for p in test):
        pairs = [{"chosen": p["chosen"], "rejected": p["rejected"]} for p in test if p["prompt"] == prompt]
        reply = api.post(
            "/v1/score",
            json={"prompt": prompt, "pairs": pairs, "user": user},
            headers={"Authorization": f"Bearer {token}"},
        )
        reply.raise_for_status()
        right += [m > 0 for m in reply.json()["margins"]]
    return float(np.mean(right))


def run(model_dir: Path, root: Path, candidates, test, *, strategy: str, users: list[str], n_labels: int):
    """Serve the model with the candidates as a labelling project; each user labels ``n_labels`` pairs the
    server picks; returns each user's served held-out accuracy."""
    import uvicorn

    from pluralrm.config import LABEL
    from pluralrm.label.store import LabelStore, PairToLabel
    from pluralrm.serve import create_app

    project = LabelStore.of_project(root / strategy / "project")
    project.import_pairs(
        [PairToLabel(f"c{i}", p["prompt"], p["chosen"], p["rejected"]) for i, p in enumerate(candidates)]
    )
    preferred = {p["chosen"] for p in candidates}
    app = create_app(
        model_dir,
        store=root / strategy / "profiles.sqlite",
        admin_token=ADMIN,
        device="cpu",
        label=project,
        label_config=replace(LABEL, strategy=strategy),
    )
    out = {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    with httpx.Client(base_url=url, timeout=600) as api:
        for user in users:
            made = api.post("/v1/users", json={"user": user}, headers={"Authorization": f"Bearer {ADMIN}"})
            token = made.json()["token"]
            mine = {"Authorization": f"Bearer {token}"}
            for _ in range(n_labels):
                shown = api.get("/label/api/next", headers=mine).json()
                choice = "1" if shown["response_1"] in preferred else "2"
                api.post(
                    "/label/api/labels", headers=mine, json={"pair_id": shown["pair_id"], "choice": choice}
                ).raise_for_status()
            out[user] = accuracy(api, user, token, test)
        if strategy == "random":  # the ceiling: a profile on every candidate pair
            made = api.post("/v1/users", json={"user": "all"}, headers={"Authorization": f"Bearer {ADMIN}"})
            token = made.json()["token"]
            posted = [
                {"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in candidates
            ]
            api.post(
                "/v1/users/all/comparisons",
                json={"pairs": posted},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            out["all"] = accuracy(api, "all", token, test)
            out["general"] = accuracy(api, None, ADMIN, test)
    server.should_exit = True
    thread.join(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=10, help="Labels each scripted labeller gives.")
    parser.add_argument("--strategy", help="The active rule (default: the server's, ActiveConfig.strategy).")
    parser.add_argument(
        "--adapters",
        default="map,bt",
        help="decompose --adapters: the served adapter chosen on the pool's users ('': none, so map)",
    )
    parser.add_argument("--draws", type=int, default=5, help="Labellers per rule (each with its own seed).")
    parser.add_argument("--pool", type=int, default=300, help="Pool pairs (other domains).")
    parser.add_argument("--candidates", type=int, default=120, help="Candidate pairs on the page.")
    parser.add_argument("--test", type=int, default=200, help="Held-out pairs of the user, other prompts.")
    args = parser.parse_args()
    source = SHARED / "dsp" / "domain_specific_preference.test-dev.json.gz"
    if not source.exists():
        raise SystemExit(f"{source} is absent: this benchmark needs the shared DSP data")

    from pluralrm.adapt.active import DEFAULT_STRATEGY
    from pluralrm.adapt.personalize import resolve_method
    from pluralrm.data import load_pairs
    from pluralrm.rewards.reward_model import RewardModel

    strategy = args.strategy or DEFAULT_STRATEGY

    root = Path(tempfile.mkdtemp(prefix="label-loop-"))
    os.environ.setdefault("PLURALRM_CACHE", str(root / "cache"))
    pairs = load_pairs(source, skip_invalid=True).records
    print(f"{args.labels} labels per labeller on the page; served per-user accuracy on held-out pairs")
    print(
        f"{'user':<14} {strategy + ' (mean ± sd)':>16} {'min–max':>12} {'random (mean ± sd)':>20} "
        f"{'all pairs':>10} {'general':>8}"
    )
    rows, paired = [], []
    for domain in DOMAINS:
        pool, candidates, test = split(pairs, domain, args.pool, args.candidates, args.test)
        work = root / domain
        work.mkdir()
        model_dir = fit_model(pool, work, args.adapters)
        chosen = resolve_method(RewardModel.from_pretrained(model_dir), "auto")
        # several labellers per rule: each one's first pair is its own seeded draw (ActiveConfig.cold_start)
        draws = [f"{domain}-{r}" for r in range(args.draws)]
        active = run(model_dir, work, candidates, test, strategy=strategy, users=draws, n_labels=args.labels)
        random = run(model_dir, work, candidates, test, strategy="random", users=draws, n_labels=args.labels)
        mine, theirs = np.array([active[u] for u in draws]), np.array([random[u] for u in draws])
        rows.append((mine.mean(), theirs.mean(), random["all"]))
        paired.append(mine - theirs)
        print(
            f"{domain:<14} {mine.mean():>8.3f} ± {mine.std(ddof=1):.3f} {mine.min():>6.3f}–{mine.max():.3f} "
            f"{theirs.mean():>12.3f} ± {theirs.std(ddof=1):.3f} {random['all']:>10.3f} "
            f"{random['general']:>8.3f}   "
            f"({len(candidates)} candidates, {len(test)} held out, adapter {chosen})"
        )
    mean = np.mean(rows, axis=0)
    print(f"{'mean':<14} {mean[0]:>8.3f}                      {mean[1]:>12.3f}         {mean[2]:>10.3f}")
    gain = np.concatenate(paired)
    half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
    print(
        f"{strategy} − random: {100 * gain.mean():+.1f} ± {100 * half:.1f} points "
        f"(95 % over {len(gain)} labellers)"
    )


if __name__ == "__main__":
    main()
