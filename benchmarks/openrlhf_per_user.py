"""A user's reward through OpenRLHF's own client code, against ``pluralrm score --user``, on real data.

Fits a MiniLM DRM on DSP domain pairs of three domains, a profile for "alice" from academy pairs
(``pluralrm adapt``), scores held-out academy pairs with ``pluralrm score --user alice`` and without
``--user``, then asks OpenRLHF's ``SingleTurnAgentExecutor`` (``openrlhf/utils/agent.py`` of an OpenRLHF
checkout, loaded unchanged and never copied here) for the same rewards, one sample per request as in PPO,
with ChatML-templated prompts: over HTTP at ``http://alice:TOKEN@HOST/v1/users/alice/get_reward`` and at
``/get_reward``, and through ``--reward.remote_url`` = pluralrm's reward file. Needs aiohttp.

Usage::

    git clone https://github.com/OpenRLHF/OpenRLHF /tmp/OpenRLHF && pip install aiohttp
    python benchmarks/openrlhf_per_user.py --openrlhf /tmp/OpenRLHF [--dtype float32]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def openrlhf_agent(checkout: Path):
    """``openrlhf/utils/agent.py`` as OpenRLHF ships it, without ``openrlhf/utils/__init__.py``'s imports."""
    utils = checkout / "openrlhf" / "utils"
    for name in ("openrlhf", "openrlhf.utils"):
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules[name] = package
    for name in ("logging_utils", "agent"):
        spec = importlib.util.spec_from_file_location(f"openrlhf.utils.{name}", utils / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"openrlhf.utils.{name}"] = module
        spec.loader.exec_module(module)
    return sys.modules["openrlhf.utils.agent"]


def cli(*args) -> None:
    from typer.testing import CliRunner

    from pluralrm.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"pluralrm {' '.join(map(str, args))} failed:\n{result.output}")


def scores(path: Path) -> np.ndarray:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return np.array([v for row in rows for v in (row["chosen_reward"], row["rejected_reward"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--openrlhf", type=Path, required=True, help="An OpenRLHF checkout (holds openrlhf/)."
    )
    parser.add_argument("--dtype", default="float32", help="Backbone dtype of the DRM (float32 or bfloat16).")
    parser.add_argument("--test", type=int, default=20, help="Held-out academy pairs.")
    args = parser.parse_args()

    import uvicorn

    from pluralrm.data import load_pairs
    from pluralrm.serve import create_app
    from pluralrm.web.tokens import TokenStore

    agent = openrlhf_agent(args.openrlhf)
    root = Path(tempfile.mkdtemp(prefix="openrlhf-per-user-"))
    os.environ["PLURALRM_CACHE"] = str(root / "cache")
    source = SHARED / "dsp" / "domain_specific_preference.test-dev.json.gz"
    pairs = load_pairs(source, skip_invalid=True).records
    academy = [p for p in pairs if p["subset"] == "academy"]
    files = {
        "pool": [p for p in pairs if p["subset"] != "academy"][:300],
        "alice": academy[:30],
        "test": academy[100 : 100 + args.test],
    }
    for name, rows in files.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = root / "profiles.sqlite"
    drm = root / "drm"
    cli(
        "decompose",
        root / "pool.jsonl",
        "--backbone",
        "minilm",
        "--components",
        8,
        "--dtype",
        args.dtype,
        "--out",
        drm,
    )
    cli("adapt", drm, "--user", "alice", "--pairs", root / "alice.jsonl", "--store", store)
    cli(
        "score",
        drm,
        root / "test.jsonl",
        "--user",
        "alice",
        "--store",
        store,
        "--out",
        root / "alice.scores.jsonl",
    )
    cli("score", drm, root / "test.jsonl", "--out", root / "general.scores.jsonl")
    alice, general = scores(root / "alice.scores.jsonl"), scores(root / "general.scores.jsonl")

    def chatml(prompt: str) -> str:
        return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"

    samples = [(chatml(p["prompt"]), p[side]) for p in files["test"] for side in ("chosen", "rejected")]
    token = TokenStore(store).issue(user="alice")
    server = uvicorn.Server(
        uvicorn.Config(create_app(drm, store=store, device="cpu"), port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    host = f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    def ask(executor, how: str) -> np.ndarray:
        fetch = executor._fetch_rewards_via_http if how == "http" else executor._fetch_rewards_via_func
        out = []
        for prompt, response in samples:  # one sample per request, the query ending in the policy's EOS
            (info,) = asyncio.run(fetch([prompt + response + "<|im_end|>"], [prompt], [""]))
            out.append(float(info["scores"][0]))
        return np.array(out)

    per_user = ask(
        agent.SingleTurnAgentExecutor([f"http://alice:{token}@{host}/v1/users/alice/get_reward"]), "http"
    )
    plain = ask(agent.SingleTurnAgentExecutor([f"http://{host}/get_reward"]), "http")
    server.should_exit = True
    thread.join(timeout=10)
    import pluralrm.serve.openrlhf_reward_func as reward_file

    os.environ.update(PLURALRM_MODEL=str(drm), PLURALRM_USER="alice", PLURALRM_PROFILES=str(store))
    os.environ["PLURALRM_DEVICE"] = "cpu"
    from_file = ask(agent.SingleTurnAgentExecutor(reward_file.__file__), "func")

    flips = int((np.sign(alice[0::2] - alice[1::2]) != np.sign(general[0::2] - general[1::2])).sum())
    print(f"MiniLM DRM ({args.dtype}), {len(samples)} held-out responses, ChatML-templated OpenRLHF queries:")
    print(
        f"  HTTP {host}/v1/users/alice/get_reward: max |OpenRLHF - pluralrm score --user alice| = "
        f"{np.abs(per_user - alice).max():.2e}"
    )
    print(f"  HTTP /get_reward: max |OpenRLHF - pluralrm score| = {np.abs(plain - general).max():.2e}")
    print(
        f"  --reward.remote_url reward file: max |OpenRLHF - pluralrm score --user alice| = "
        f"{np.abs(from_file - alice).max():.2e}"
    )
    print(f"  alice's reward and the general one order {flips} of {len(samples) // 2} pairs differently")


if __name__ == "__main__":
    main()
