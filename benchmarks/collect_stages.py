"""The collection pipeline on real data (issue 12, part 4): per-stage tables, DSP domain users labelling
through the labelling server's HTTP API and adapted with ``pluralrm adapt``, and the paper's question —
how accurate is a reward trained on each stage's output, and how many human labels does AI filtering save.

Parts
-----
* **stages** — HH-harmless prompts (``../shared/data``) → SmolLM2 responses (an earlier ``pluralrm generate``
  file, ``--generated``) → filtering with a MiniLM helpfulness reward as the AI judge (``--judge``).
* **dsp-users** — DSP queries split 50/50 by query (seeded). Collection half: prompts → the DSP responses
  (academy, business, entertainment, literature, normal) → filtering → four simulated labellers, the domain
  users (hidden preference: their domain's response beats any other; other pairs: tie), each answering
  every pair over HTTP (``GET /api/next``, ``POST /api/labels``) → ``pluralrm label export --per-labeller``
  → ``pluralrm adapt`` on the judge's PCA heads. Test half (never labelled): domain response vs each other
  response; agreement of each labeller's new reward vs the general head.
* **synthetic-users** — the same loop for the seven synthetic users of :mod:`pluralrm.data.synthetic`
  (hidden preference: weights · known response attributes) on 32 synthetic prompts × 5 responses; test: every
  pair of 24 other prompts' responses.
* **by-stage** — on each project: the "human" is an oracle reward (``--oracle``, MiniLM heads fitted on
  WebGPT human comparisons), the AI judge is ``--judge``. Prompts are split 50/50; a general head (Bradley–
  Terry, MiniLM features) is trained on k human labels from (1) unfiltered pairs, (2) filtered pairs (both
  random draws, mean of ``--seeds``),
  (3) k human labels on the filtered pairs the AI judge is least sure of (AI filtering as the choice of
  pairs), (4) the AI-labelled pairs plus those k human labels; accuracy against the
  oracle on every pair of the test prompts. "Labels needed": smallest k reaching a target accuracy.

Usage (the judge, oracle and SmolLM2 file come from ``pluralrm featurize``/``decompose`` on the DSP
helpful and WebGPT sets and ``pluralrm generate`` on 50 HH-harmless prompts, n=8, ≤128 tokens)::

    pluralrm featurize ../shared/data/dsp/helpful.test-dev.json.gz --skip-invalid --out out/helpful-minilm
    pluralrm decompose out/helpful-minilm --out models/helpful-minilm      # and the same for webgpt
    pluralrm generate ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --skip-invalid --limit 50 --n 8 \
        --max-new-tokens 128 --out out/generated.jsonl
    python benchmarks/collect_stages.py --generated out/generated.jsonl --judge models/helpful-minilm \
        --oracle models/webgpt-minilm --out out/collect
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from typer.testing import CliRunner

import pluralrm.collect.filters as F
from pluralrm.backbone import FeatureCache
from pluralrm.cli import app
from pluralrm.collect.pipeline import (
    AI_LABELLED,
    RESPONSES,
    TO_LABEL,
    run_filter,
    run_prompts,
    run_responses,
    stage_table,
)
from pluralrm.collect.provenance import read_records
from pluralrm.config import COLLECT, LABEL, replace
from pluralrm.data import DSP_BASELINE, DSP_DOMAINS
from pluralrm.label.app import create_label_app
from pluralrm.label.io import read_pairs
from pluralrm.label.store import LabelStore
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
KS = (8, 16, 32, 64, 128, 256)
runner = CliRunner()


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- part 1: stage tables -----------------------------------------------------------------------------


def stages(out: Path, generated: Path, judge: RewardModel, judge_name: str, config) -> Path:
    project = out / "hh-smollm2"
    run_prompts(
        project,
        [SHARED / "hh-rlhf-harmless" / "test-dev.jsonl.gz"],
        limit=50,
        skip_invalid=True,
        featurizer=judge.featurizer(cache=FeatureCache.default()),
        force=True,
    )
    run_responses(project, from_wide=[generated], force=True)
    run_filter(project, judge=F.RewardJudge(judge, name=judge_name), config=config, force=True)
    return project


# --- part 2: DSP domain users over HTTP ---------------------------------------------------------------


def dsp_queries(seed: int) -> tuple[list[dict], list[dict]]:
    with gzip.open(SHARED / "dsp" / "domain_specific_preference.test-dev.json.gz", "rt") as handle:
        records = [
            r for r in json.load(handle) if all(r["responses"].get(d) for d in (*DSP_DOMAINS, DSP_BASELINE))
        ]
    order = np.random.default_rng(seed).permutation(len(records))
    half = len(records) // 2
    return [records[i] for i in order[:half]], [records[i] for i in order[half:]]


def dsp_project(out: Path, queries: list[dict], judge: RewardModel, judge_name: str, config) -> Path:
    project = out / "dsp"
    project.mkdir(parents=True, exist_ok=True)
    wide = project / "dsp-wide.jsonl"
    names = (*DSP_DOMAINS, DSP_BASELINE)
    with open(wide, "w", encoding="utf-8") as handle:
        for i, r in enumerate(queries):
            row = {"id": str(i), "prompt": r["query"]}
            for j, name in enumerate(names, start=1):
                row[f"response_{j}"] = r["responses"][name]
                row[f"response_{j}_model"] = name
            handle.write(json.dumps(row) + "\n")
    prompts = project / "dsp-queries.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": str(i), "prompt": r["query"]}) + "\n" for i, r in enumerate(queries))
    )
    run_prompts(project, [prompts], featurizer=judge.featurizer(cache=FeatureCache.default()), force=True)
    run_responses(project, from_wide=[wide], force=True)
    run_filter(project, judge=F.RewardJudge(judge, name=judge_name), config=config, force=True)
    return project


def serve(store: LabelStore, labels_per_pair: int):
    config = replace(LABEL, labels_per_pair=labels_per_pair)
    server = uvicorn.Server(
        uvicorn.Config(create_label_app(store, config), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def label_over_http(url: str, token: str, prefer) -> dict[str, int]:
    """One simulated labeller until 204; ``prefer(text_1, text_2)`` → "1", "2" or "tie"."""
    counts = {"1": 0, "2": 0, "tie": 0}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while (shown := client.get("/api/next")).status_code == 200:
            pair = shown.json()
            choice = prefer(pair["response_1"], pair["response_2"])
            body = {"pair_id": pair["pair_id"], "choice": choice, "tags": [], "seconds": 1.0}
            client.post("/api/labels", json=body).raise_for_status()
            counts[choice] += 1
    return counts


def label_and_adapt(out: Path, project: Path, labellers: dict, judge_dir: Path) -> tuple[dict, Path, float]:
    """Each simulated labeller answers every pair over HTTP; ``pluralrm label export --per-labeller``;
    ``pluralrm adapt`` per labeller. Returns (answers per labeller, profile store, HTTP seconds)."""
    store = LabelStore.of_project(project / "labels")
    store.import_pairs(read_pairs(project / TO_LABEL))
    tokens = {name: store.add_labeller(name) for name in labellers}
    server, thread, url = serve(store, len(labellers))
    start = time.perf_counter()
    try:
        posted = {name: label_over_http(url, tokens[name], prefer) for name, prefer in labellers.items()}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    http_seconds = time.perf_counter() - start
    exported = project / "per-labeller"
    result = runner.invoke(app, ["label", "export", str(project / "labels"), str(exported), "--per-labeller"])
    assert result.exit_code == 0, result.output
    profiles = out / f"{project.name}-profiles.sqlite"
    for name in labellers:
        args = ["adapt", str(judge_dir), "--user", name, "--pairs", str(exported / f"{name}.jsonl")]
        result = runner.invoke(app, [*args, "--store", str(profiles)])
        assert result.exit_code == 0, result.output
    return posted, profiles, http_seconds


def user_row(name: str, posted: dict, personal: np.ndarray, general: np.ndarray, truth: np.ndarray) -> dict:
    """Agreement of a labeller's own reward and of the general head with their hidden preference."""
    decided = truth != 0
    return {
        "labeller": name,
        "labels (1/2/tie)": f"{posted['1']}/{posted['2']}/{posted['tie']}",
        "test pairs": int(decided.sum()),
        "own reward": float(np.mean(np.sign(personal[decided]) == np.sign(truth[decided]))),
        "general head": float(np.mean(np.sign(general[decided]) == np.sign(truth[decided]))),
    }


def dsp_users(out: Path, project: Path, test: list[dict], judge_dir: Path, judge: RewardModel) -> list[dict]:
    """Domain users: their domain's response beats any other; pairs without it are ties."""
    from pluralrm.adapt import ProfileStore

    domain_of = {r["text"]: r["model"] for r in read_records(project / RESPONSES)}
    labellers = {
        d: lambda t1, t2, d=d: "1" if domain_of[t1] == d else "2" if domain_of[t2] == d else "tie"
        for d in DSP_DOMAINS
    }
    posted, profiles, seconds = label_and_adapt(out, project, labellers, judge_dir)
    names = (*DSP_DOMAINS, DSP_BASELINE)
    H = judge.featurizer(cache=FeatureCache.default()).encode_conversations(
        [r["query"] for r in test for _ in names], [r["responses"][n] for r in test for n in names]
    )
    rows = []
    for j, domain in enumerate(DSP_DOMAINS):
        others = [k for k in range(len(names)) if k != j]
        # (n_test, 5) rewards → each query's domain response minus each of its four others
        personal = judge.rewards(H, user=ProfileStore(profiles).get(domain)).reshape(len(test), len(names))
        general = judge.rewards(H).reshape(len(test), len(names))
        diff = lambda R, j=j, o=others: (R[:, [j]] - R[:, o]).ravel()  # noqa: E731
        rows.append(user_row(domain, posted[domain], diff(personal), diff(general), np.ones(4 * len(test))))
    rows.append(
        {
            "labeller": f"({sum(sum(c.values()) for c in posted.values())} labels over HTTP, s)",
            "labels (1/2/tie)": f"{seconds:.1f}",
            "test pairs": "",
            "own reward": "",
            "general head": "",
        }
    )
    return rows


def synthetic_project(out: Path, judge: RewardModel, judge_name: str, config) -> tuple[Path, dict, object]:
    """Synthetic prompts and responses (known attributes) through the pipeline."""
    from pluralrm.data.synthetic import make_synthetic_preferences

    data = make_synthetic_preferences(n_prompts=32, responses_per_prompt=5, seed=0)
    project = out / "synthetic"
    project.mkdir(parents=True, exist_ok=True)
    by_prompt: dict[str, list[str]] = {}
    for r in data.responses:
        by_prompt.setdefault(r["prompt"], []).append(r["text"])
    wide = project / "synthetic-wide.jsonl"
    wide.write_text(
        "".join(
            json.dumps({"id": str(i), "prompt": p} | {f"response_{j}": t for j, t in enumerate(texts, 1)})
            + "\n"
            for i, (p, texts) in enumerate(by_prompt.items())
        )
    )
    run_prompts(project, [wide], featurizer=judge.featurizer(cache=FeatureCache.default()), force=True)
    run_responses(project, from_wide=[wide], force=True)
    run_filter(project, judge=F.RewardJudge(judge, name=judge_name), config=config, force=True)
    return project, {r["text"]: np.asarray(r["attributes"]) for r in data.responses}, data.users


def synthetic_users(
    out: Path, project: Path, attributes: dict, users: dict, judge_dir: Path, judge
) -> list[dict]:
    """Synthetic users: utility = their weights · the response's attributes; held-out prompts' pairs."""
    from pluralrm.adapt import ProfileStore
    from pluralrm.data.synthetic import make_synthetic_preferences

    def prefer(t1: str, t2: str, w) -> str:
        u1, u2 = float(w @ attributes[t1]), float(w @ attributes[t2])
        return "1" if u1 > u2 else "2" if u2 > u1 else "tie"

    labellers = {name: lambda t1, t2, w=w: prefer(t1, t2, w) for name, w in users.items()}
    posted, profiles, seconds = label_and_adapt(out, project, labellers, judge_dir)
    held = make_synthetic_preferences(n_prompts=24, responses_per_prompt=4, seed=9)
    by_prompt: dict[str, list[dict]] = {}
    for r in held.responses:
        by_prompt.setdefault(r["prompt"], []).append(r)
    pairs = [(a, b) for group in by_prompt.values() for a, b in itertools.combinations(group, 2)]
    H = judge.featurizer(cache=FeatureCache.default()).encode_conversations(
        [a["prompt"] for a, _ in pairs] * 2, [a["text"] for a, _ in pairs] + [b["text"] for _, b in pairs]
    )
    D = H[: len(pairs)] - H[len(pairs) :]
    rows = []
    for name, w in users.items():
        truth = np.array([w @ (np.asarray(a["attributes"]) - np.asarray(b["attributes"])) for a, b in pairs])
        personal = judge.rewards(D, user=ProfileStore(profiles).get(name))
        rows.append(user_row(name, posted[name], personal, judge.rewards(D), truth))
    rows.append(
        {
            "labeller": f"({sum(sum(c.values()) for c in posted.values())} labels over HTTP, s)",
            "labels (1/2/tie)": f"{seconds:.1f}",
            "test pairs": "",
            "own reward": "",
            "general head": "",
        }
    )
    return rows


# --- part 3: accuracy by stage -------------------------------------------------------------------------


def by_stage(project: Path, judge: RewardModel, oracle: RewardModel, seeds: int, alpha: float) -> list[dict]:
    responses = read_records(project / RESPONSES)
    featurizer = judge.featurizer(cache=FeatureCache.default())
    H = featurizer.encode_conversations([r["prompt"] for r in responses], [r["text"] for r in responses])
    index = {r["response_id"]: i for i, r in enumerate(responses)}
    truth = oracle.rewards(H)
    prompt_ids = sorted({r["prompt_id"] for r in responses})
    rng = np.random.default_rng(0)
    test_prompts = set(rng.permutation(prompt_ids)[: len(prompt_ids) // 2].tolist())
    unfiltered = [(p["a_id"], p["b_id"], p["prompt_id"]) for p in F.candidate_pairs(responses)]

    def ids(path: Path) -> list[tuple[str, str, str, str | None]]:
        records = sorted(read_records(path), key=lambda p: abs(p["ai_margin"]))  # most uncertain first
        return [(*p["provenance"]["parents"], p["provenance"]["source"], p["ai_label"]) for p in records]

    people, ai = ids(project / TO_LABEL), ids(project / AI_LABELLED)
    train_all = [p for p in unfiltered if p[2] not in test_prompts]
    train_filtered = [p[:3] for p in people + ai if p[2] not in test_prompts]
    train_people = [p[:3] for p in people if p[2] not in test_prompts]  # already most-uncertain first
    train_ai = [p for p in ai if p[2] not in test_prompts]
    test = [p for p in unfiltered if p[2] in test_prompts]
    Dt = np.array([H[index[a]] - H[index[b]] for a, b, _ in test])
    yt = np.sign([truth[index[a]] - truth[index[b]] for a, b, _ in test])

    def oracle_rows(pairs) -> list[np.ndarray]:
        return [np.sign(truth[index[a]] - truth[index[b]]) * (H[index[a]] - H[index[b]]) for a, b, _ in pairs]

    ai_rows = [(1 if label == "a" else -1) * (H[index[a]] - H[index[b]]) for a, b, _, label in train_ai]
    ai_agree = (
        float(np.mean([(label == "a") == (truth[index[a]] > truth[index[b]]) for a, b, _, label in train_ai]))
        if train_ai
        else float("nan")
    )

    def accuracy(rows: list[np.ndarray]) -> float:
        rows = [r for r in rows if np.any(r)]
        if not rows:
            return 0.5
        head = LinearRewardHead(alpha=alpha).fit(np.array(rows))
        return float(np.mean(np.sign(Dt @ head.coef_)[yt != 0] == yt[yt != 0]))

    out = []
    for k in (*KS, None):
        row: dict = {"human labels": "all" if k is None else k}
        for name, pool in (("unfiltered", train_all), ("filtered", train_filtered)):
            n = len(pool) if k is None else min(k, len(pool))
            draws = [rng.choice(len(pool), size=n, replace=False) for _ in range(seeds if k else 1)]
            row[name] = float(np.mean([accuracy(oracle_rows([pool[i] for i in d])) for d in draws]))
        n = len(train_people) if k is None else min(k, len(train_people))
        row["uncertain first (no AI labels)"] = accuracy(oracle_rows(train_people[:n]))
        row["filtered + AI labels + human"] = accuracy(ai_rows + oracle_rows(train_people[:n]))
        out.append(row)
    meta = {
        "train pairs (unfiltered)": len(train_all),
        "train pairs (filtered)": len(train_filtered),
        "AI-labelled train pairs": len(train_ai),
        "AI label = oracle": ai_agree,
        "test pairs": len(test),
        "AI labels alone": accuracy(ai_rows),
    }
    return out, meta


def labels_needed(rows: list[dict], column: str, target: float) -> str:
    for row in rows:
        if row[column] >= target:
            return str(row["human labels"])
    return f"> {rows[-2]['human labels']}"


def print_report(report: dict) -> None:
    stage_columns = ["stage", "rule", "in", "out", "seconds"]
    for key, title in (("hh", "HH-harmless + SmolLM2"), ("dsp", "DSP"), ("synthetic", "synthetic")):
        if f"{key}_stage_table" in report:
            print(f"\n## stages, {title}\n" + markdown(report[f"{key}_stage_table"], stage_columns))
    for key in ("dsp_users", "synthetic_users"):
        if key in report:
            print(f"\n## {key}\n" + markdown(report[key], list(report[key][0])))
    for name in ("hh", "dsp"):
        if f"{name}_by_stage" not in report:
            continue
        rows = report[f"{name}_by_stage"]
        print(f"\n## accuracy by stage ({name})\n" + markdown(rows, list(rows[0])))
        print(json.dumps(report[f"{name}_by_stage_meta"]))
        best = max(r["unfiltered"] for r in rows)
        for target in (0.9 * best, 0.95 * best):
            needed = {c: labels_needed(rows, c, target) for c in list(rows[0])[1:]}
            print(f"labels needed for accuracy {target:.3f}: {needed}")
    print(f"\ntotal {report['seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", type=Path, required=True, help="Wide SmolLM2 file of HH prompts.")
    parser.add_argument(
        "--judge", type=Path, required=True, help="AI judge reward model (MiniLM, PCA heads)."
    )
    parser.add_argument("--oracle", type=Path, required=True, help="The simulated humans' reward model.")
    parser.add_argument("--dsp-queries", type=int, default=120, help="DSP queries used from each half.")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--parts", default="hh,dsp,synthetic", help="Which data sets to run.")
    parser.add_argument("--skip-rule", action="append", default=[], help="A response rule not to apply.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not (SHARED / "dsp").exists():
        raise SystemExit(f"real data not available: {SHARED} is absent")
    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    judge, oracle = RewardModel.from_pretrained(args.judge), RewardModel.from_pretrained(args.oracle)
    config = replace(COLLECT, pairs_per_prompt=100, ai_fraction=0.5, skip_rules=tuple(args.skip_rule))
    report: dict = {}
    start = time.perf_counter()
    projects = {}
    if "hh" in parts:
        projects["hh"] = stages(args.out, args.generated, judge, args.judge.name, config)
        report["hh_stage_table"] = stage_table(projects["hh"])
    if "dsp" in parts:
        train, test = dsp_queries(seed=0)
        projects["dsp"] = dsp_project(args.out, train[: args.dsp_queries], judge, args.judge.name, config)
        report["dsp_stage_table"] = stage_table(projects["dsp"])
        report["dsp_users"] = dsp_users(
            args.out, projects["dsp"], test[: args.dsp_queries], args.judge, judge
        )
    if "synthetic" in parts:
        synthetic, attributes, users = synthetic_project(args.out, judge, args.judge.name, config)
        report["synthetic_stage_table"] = stage_table(synthetic)
        report["synthetic_users"] = synthetic_users(args.out, synthetic, attributes, users, args.judge, judge)
    for name, project in projects.items():
        rows, meta = by_stage(project, judge, oracle, args.seeds, alpha=1e-2)
        report[f"{name}_by_stage"], report[f"{name}_by_stage_meta"] = rows, meta
    report["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print_report(report)


if __name__ == "__main__":
    main()
