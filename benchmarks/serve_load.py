"""Load profile of `pluralrm serve` on loopback: req/s, responses/s and p50/p95/p99 latency.

Measured here, in one run, so the ratios compare like with like on whatever machine runs it:

* **offline featurizer** (the baseline): ``Featurizer.encode`` on fresh texts in this process, texts/s;
* **cached features**: the same texts requested again (features come from the server's memory cache),
  at concurrency 1, 8 and 32 — OpenRLHF's shape (``/get_reward``, one query per request) and
  ``/v1/score`` with 8 responses per request;
* **fresh texts**: every request carries texts the server has never seen, at concurrency 1, 8, 32, for
  the batching server (defaults) and a request-at-a-time server (``--max-batch-texts 1``).

The server runs as its own process (``python -m pluralrm serve``) and the load comes from an httpx asyncio
driver in this one; on a 2-core machine the driver takes CPU from the server, so the ratios are a floor.
Each row also says what the server itself saw — the share of requests it answered within 25 ms, by its own
latency histogram — and the CPU seconds of the server process and of the driver, so a row limited by the
driver can be told from one limited by the server.
Every run is bounded in requests and seconds and stops by itself.

Usage::

    python benchmarks/serve_load.py                       # MiniLM, writes benchmarks/results/serve_load.*
    python benchmarks/serve_load.py --requests 200 --out /tmp/serve
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ADMIN_TOKEN = "benchmark-admin-token-0123456789"
CONCURRENCY = (1, 8, 32)


def build_model(backbone: str, directory: Path) -> Path:
    """A reward model on ``backbone`` fitted on the built-in synthetic pairs (what is served does not
    change the load profile; its backbone does)."""
    from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone
    from pluralrm.data.synthetic import make_synthetic_preferences
    from pluralrm.rewards.fitting import fit_reward_model

    pairs = make_synthetic_preferences(n_prompts=24, seed=0).pairs
    features = featurize_pairs(pairs, Featurizer(load_backbone(backbone, dtype="float32")))
    return fit_reward_model(features, n_components=16).save_pretrained(directory)


def fresh_texts(n: int, start: int) -> list[tuple[str, str]]:
    """(prompt, response) pairs no run has seen: synthetic responses with a unique tag (≈ 60–90 tokens)."""
    from pluralrm.data.synthetic import make_synthetic_preferences

    responses = make_synthetic_preferences(n_prompts=12, seed=1).responses
    out = []
    for i in range(start, start + n):
        r = responses[i % len(responses)]
        out.append((r["prompt"], f"{r['text']} (reference {i}, reviewed {i * 7 % 1000})"))
    return out


def offline_texts_per_second(model_dir: Path, n: int) -> tuple[float, float]:
    """Texts/s and tokens/s of the featurizer alone on fresh texts (the serve process's own settings)."""
    from pluralrm.rewards.reward_model import RewardModel

    featurizer = RewardModel.from_pretrained(model_dir).featurizer(device="cpu")
    featurizer.encode([featurizer.format(p, r) for p, r in fresh_texts(16, 10**7)])  # warm up
    texts = [featurizer.format(p, r) for p, r in fresh_texts(n, 2 * 10**7)]
    tokens = sum(len(ids) for ids in featurizer.tokenize(texts))
    start = time.perf_counter()
    featurizer.encode(texts)
    seconds = time.perf_counter() - start
    return n / seconds, tokens / seconds


class ServerProcess:
    def __init__(self, model_dir: Path, store: Path, *, options: list[str], log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "pluralrm", "serve", str(model_dir), "--profiles", str(store)]
        command += ["--port", str(self.port), "--device", "cpu", *options]
        env = {**os.environ, "PLURALRM_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}); see {log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).json()["status"] == "ok":
                    return
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in 120 s; see {log}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


async def drive(url: str, bodies: list[tuple[str, dict]], concurrency: int, max_seconds: float) -> dict:
    """Send ``bodies`` (path, json) with ``concurrency`` workers; stop early after ``max_seconds``."""
    latencies: list[float] = []
    responses = 0
    errors = 0
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        deadline = time.perf_counter() + max_seconds

        async def worker():
            nonlocal responses, errors
            while queue and time.perf_counter() < deadline:
                path, body = queue.pop()
                start = time.perf_counter()
                reply = await client.post(path, json=body)
                latencies.append(time.perf_counter() - start)
                if reply.status_code != 200:
                    errors += 1
                    continue
                data = reply.json()
                responses += len(data.get("rewards") or [])

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": seconds,
        "req_per_s": len(latencies) / seconds,
        "responses_per_s": responses / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def measure(
    server: ServerProcess, bodies: list[tuple[str, dict]], concurrency: int, max_seconds: float
) -> dict:
    """``drive`` plus what the server saw: the share of requests it answered within 25 ms (its own latency
    histogram), and the CPU seconds the server process and this driver spent on the run."""
    route = bodies[0][0]
    before, cpu_server, cpu_driver = _fast_share(server.url, route), server.cpu_seconds(), _own_cpu()
    result = asyncio.run(drive(server.url, bodies, concurrency, max_seconds))
    after = _fast_share(server.url, route)
    fast, total = after[0] - before[0], after[1] - before[1]
    result["server_within_25ms"] = fast / total if total else float("nan")
    result["server_cpu_s"] = server.cpu_seconds() - cpu_server
    result["driver_cpu_s"] = _own_cpu() - cpu_driver
    return result


def _fast_share(url: str, route: str) -> tuple[float, float]:
    """(requests within 25 ms, all requests) of ``route`` so far, from the server's /metrics."""
    fast = total = 0.0
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if f'route="{route}"' not in line:
            continue
        if line.startswith("pluralrm_request_seconds_bucket") and 'le="0.025"' in line:
            fast = float(line.rsplit(" ", 1)[1])
        elif line.startswith("pluralrm_request_seconds_count"):
            total = float(line.rsplit(" ", 1)[1])
    return fast, total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def openrlhf_bodies(items: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    return [("/get_reward", {"query": [f"User: {p}\nAssistant: {r}"], "prompts": [p]}) for p, r in items]


def score_bodies(items: list[tuple[str, str]], per_request: int) -> list[tuple[str, dict]]:
    return [
        ("/v1/score", {"prompt": items[i][0], "responses": [r for _, r in items[i : i + per_request]]})
        for i in range(0, len(items) - per_request + 1, per_request)
    ]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--model", type=Path, help="Serve this reward model directory (default: build one).")
    parser.add_argument("--requests", type=int, default=600, help="Requests per cached-feature run.")
    parser.add_argument("--fresh", type=int, default=400, help="Fresh texts per fresh-text run.")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="Upper bound on each run.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pluralrm-serve-load-"))
    os.environ.setdefault("PLURALRM_CACHE", str(work / "cache"))
    model_dir = args.model or build_model(args.backbone, work / "model")
    offline, offline_tokens = offline_texts_per_second(model_dir, args.fresh)
    print(f"offline featurizer: {offline:.1f} texts/s ({offline_tokens:,.0f} tokens/s)", flush=True)
    rows: list[dict] = []
    next_text = 0

    def record(server: str, case: str, concurrency: int, result: dict) -> None:
        rows.append({"server": server, "case": case, "concurrency": concurrency, **result})
        print(
            f"{server:>17} {case:<28} c={concurrency:<3} {result['req_per_s']:8.1f} req/s "
            f"{result['responses_per_s']:8.1f} responses/s  p50 {result['p50_ms']:.1f} ms  "
            f"p95 {result['p95_ms']:.1f}  p99 {result['p99_ms']:.1f}  errors {result['errors']}",
            flush=True,
        )

    for server_name, options in (("batching", []), ("request-at-a-time", ["--max-batch-texts", "1"])):
        server = ServerProcess(
            model_dir, work / f"{server_name}.sqlite", options=options, log=work / f"{server_name}.log"
        )
        try:
            if server_name == "batching":  # the cache does not depend on batching: measure it once
                warm = fresh_texts(64, 10**6)
                for case, bodies in (
                    ("cached, 1 query/request", openrlhf_bodies(warm)),
                    ("cached, 8 responses/request", score_bodies(warm, 8)),
                ):
                    asyncio.run(drive(server.url, bodies, 8, args.max_seconds))  # fills the cache
                    repeated = (bodies * (args.requests // len(bodies) + 1))[: args.requests]
                    for c in CONCURRENCY:
                        record(server_name, case, c, measure(server, repeated, c, args.max_seconds))
            for c in CONCURRENCY:
                items = fresh_texts(args.fresh, next_text)
                next_text += args.fresh
                result = measure(server, openrlhf_bodies(items), c, args.max_seconds)
                result["vs_offline"] = result["responses_per_s"] / offline
                record(server_name, "fresh, 1 query/request", c, result)
        finally:
            server.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "backbone": args.backbone if args.model is None else str(args.model),
        "cpu_count": os.cpu_count(),
        "offline_texts_per_s": offline,
        "offline_tokens_per_s": offline_tokens,
        "rows": rows,
    }
    (args.out / "serve_load.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"offline featurizer: {offline:.1f} texts/s ({offline_tokens:,.0f} tokens/s), {os.cpu_count()} CPUs",
        "",
        "| server | case | concurrency | req/s | responses/s | p50 ms | p95 ms | p99 ms | vs offline "
        "| server ≤ 25 ms | CPU s server / driver |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['vs_offline']:.0%}" if "vs_offline" in r else ""
        lines.append(
            f"| {r['server']} | {r['case']} | {r['concurrency']} | {r['req_per_s']:.1f} | "
            f"{r['responses_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{ratio} | {r['server_within_25ms']:.0%} | {r['server_cpu_s']:.1f} / {r['driver_cpu_s']:.1f} |"
        )
    (args.out / "serve_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
