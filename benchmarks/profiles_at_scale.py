"""Profiles at population scale: 1,000 stored profiles in one store, scored through ``pluralrm serve``.

What a trainer or a product serving a population of users sees, measured in one run on one machine:

* **writes**: 1,000 profiles, each a distinct fit of the default adapter (``build_profile``, ``auto`` →
  ``map``: 16 weights over heads plus the 384-float part outside them) on its own random pair differences,
  written one ``ProfileStore.put`` (one transaction) each — the store's own write path;
* **opening the store** in a fresh process: time to open it, to read one profile, to read all 1,000, and
  the memory that reading all of them takes (the server itself reads one profile per request, never all);
* **per-user latency**: single requests, one at a time, each naming one user drawn from the 1,000
  (``POST /v1/users/{user}/get_reward`` with that user's token), against the same requests to the general
  reward (``POST /get_reward``): p50/p95, on texts the server has cached and on fresh ones;
* **many distinct users in one batch**: a burst of B concurrent requests (OpenRLHF's shape: one query per
  request, and the server's micro-batcher puts what arrives together into one forward pass) whose every
  request names a *distinct* user, against the same burst all naming *one* user and against the general
  reward, rounds interleaved; also one request carrying all B queries (one user, and general), the
  batched-request bound. Texts/s and the ratios side by side, cached and fresh texts;
* **the profile cache**: the per-user rows on cached texts again against a second server on the same
  store with ``--profile-cache-entries 0`` (the store read on every request, as before the cache),
  interleaved with the first;
* **correctness**: a sample of the rewards served in the distinct-user bursts (and the general ones) equals
  the library's ``RewardModel.rewards([(prompt, response)], user=profile)`` with the stored profile, to
  1e-5; the script exits non-zero otherwise.

The model is all-MiniLM-L6-v2 (the ``minilm`` backbone, real weights) with heads fitted on the built-in
synthetic pairs (``serve_load.build_model``: 16 PCA heads and a general head); the profiles are random, so
the rewards mean nothing, but their shapes and the serving path are the product's. The server runs as its
own process (``python -m pluralrm serve``), driven by httpx from this one; on a 2-core machine the driver
takes CPU from the server, so the throughputs are a floor, and each row says the CPU seconds of both.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/profiles_at_scale.py          # writes out/profiles_at_scale/
    python benchmarks/profiles_at_scale.py --users 200 --batches 64 --rounds 3   # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import ADMIN_TOKEN, ServerProcess, _own_cpu, build_model, fresh_texts

TOLERANCE = 1e-5
CACHED = "profile cache"  # the server as it ships
UNCACHED = "no profile cache"  # --profile-cache-entries 0: the store read per request


def make_profiles(model_dir: Path, n_users: int, n_pairs: int, seed: int) -> list:
    """``n_users`` distinct profiles of the default adapter, each fitted on its own random differences
    (scaled like real ones: the model's features of the synthetic pairs set the scale)."""
    from pluralrm.adapt.personalize import build_profile
    from pluralrm.rewards.reward_model import RewardModel

    model = RewardModel.from_pretrained(model_dir)
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(model.n_features)  # unit-norm rows on average, like normalized MiniLM features
    return [
        build_profile(model, f"user{i:04d}", rng.normal(scale=scale, size=(n_pairs, model.n_features)))
        for i in range(n_users)
    ]


def open_store_cost(path: Path, n_users: int, n_gets: int = 200) -> dict:
    """Run in a fresh process (``--open-store PATH --users N``): open the store, read profiles one by one
    (from the store, then from a filled :class:`ProfileCache`, as the server does) and all at once."""
    from pluralrm.adapt.profiles import ProfileCache, ProfileStore

    rss_before = _rss_bytes()
    start = time.perf_counter()
    store = ProfileStore(path)
    open_s = time.perf_counter() - start
    names = [f"user{i:04d}" for i in random.Random(0).sample(range(n_users), min(n_gets, n_users))]
    start = time.perf_counter()
    for name in names:
        store.get(name)
    get_ms = (time.perf_counter() - start) / len(names) * 1000
    cache = ProfileCache(store, max_entries=len(names))  # what the server reads: filled once, then timed
    for name in names:
        cache.get(name)
    start = time.perf_counter()
    for name in names:
        cache.get(name)
    cached_get_ms = (time.perf_counter() - start) / len(names) * 1000
    cache.close()
    rss_before_list = _rss_bytes()
    start = time.perf_counter()
    everyone = store.list()
    list_s = time.perf_counter() - start
    rss_list = _rss_bytes() - rss_before_list
    del everyone
    tracemalloc.start()  # a second read, traced (tracing slows allocation, so it is not the timed one)
    everyone = store.list()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "profiles": len(everyone),
        "file_bytes": path.stat().st_size + _size(path.with_name(path.name + "-wal")),
        "open_s": open_s,
        "get_ms": get_ms,
        "cached_get_ms": cached_get_ms,
        "list_s": list_s,
        "list_peak_bytes": peak,
        "rss_list_delta_bytes": rss_list,
        "rss_open_to_end_delta_bytes": _rss_bytes() - rss_before,
    }


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class Driver:
    """Requests to one server. Single requests share one client; each burst opens its own connections
    (in its timed span, alike for every case) and closes them after: a connection left idle between bursts
    races uvicorn's keep-alive timeout, which closes it under a request sent on it (httpx.ReadError)."""

    def __init__(self, url: str, tokens: dict[str, str], max_connections: int) -> None:
        self.url = url
        self.max_connections = max_connections
        self.client = httpx.AsyncClient(base_url=url, timeout=300)
        self.tokens = tokens

    async def reward(
        self, user: str | None, items: list[tuple[str, str]], client: httpx.AsyncClient | None = None
    ) -> tuple[float, list[float]]:
        """Seconds and rewards of one request: ``items`` (prompt, response) as OpenRLHF sends them (a
        ChatML-templated prompt, and the query that continues it with the response)."""
        prompts = [f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n" for p, _ in items]
        body = {
            "query": [f"{q}{r}<|im_end|>" for q, (_, r) in zip(prompts, items, strict=True)],
            "prompts": prompts,
        }
        if user is None:
            path, headers = "/get_reward", {}
        else:
            path, headers = f"/v1/users/{user}/get_reward", {"Authorization": f"Bearer {self.tokens[user]}"}
        start = time.perf_counter()
        reply = await (client or self.client).post(path, json=body, headers=headers)
        seconds = time.perf_counter() - start
        if reply.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {reply.status_code}: {reply.text[:300]}")
        data = reply.json()
        if data["extra_logs"]["pluralrm_rendered"] != [1.0] * len(items):
            raise RuntimeError(f"{path}: the server did not render every query as (prompt, response)")
        return seconds, data["rewards"]

    async def burst(self, users: list[str | None], items: list[tuple[str, str]]) -> tuple[float, list[float]]:
        """All requests at once (request i: ``users[i]``, ``items[i]``); wall seconds and their rewards."""
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.url, timeout=300, limits=limits) as client:
            start = time.perf_counter()
            replies = await asyncio.gather(
                *(self.reward(u, [it], client) for u, it in zip(users, items, strict=True))
            )
            seconds = time.perf_counter() - start
        return seconds, [rewards[0] for _, rewards in replies]


async def run_server_measurements(
    servers: dict[str, ServerProcess], args: argparse.Namespace, names: list[str]
) -> dict:
    """Latency and bursts against ``servers[CACHED]`` (the defaults), with the per-user cases repeated
    on ``servers[UNCACHED]`` (``--profile-cache-entries 0``: the store read on every request), rounds
    interleaved across both so a change in the machine's load hits both alike."""
    rng = random.Random(args.seed)
    texts = iter(range(1, 10**6))

    def new_items(n: int) -> list[tuple[str, str]]:  # texts no request has sent before
        return fresh_texts(n, next(texts) * 10**5)

    async with httpx.AsyncClient(base_url=servers[CACHED].url, timeout=60) as admin_client:
        start = time.perf_counter()
        tokens = {}
        for name in names:  # the product's way: the admin creates each user and their token
            reply = await admin_client.post(
                "/v1/users", json={"user": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            reply.raise_for_status()
            tokens[name] = reply.json()["token"]
        create_users_s = time.perf_counter() - start
    print(f"created {len(names)} users and tokens over HTTP in {create_users_s:.1f} s", flush=True)

    drivers = {key: Driver(s.url, tokens, max_connections=max(args.batches)) for key, s in servers.items()}
    samples: list[tuple[str | None, tuple[str, str], float]] = []  # (user, item, served reward)
    out: dict = {"create_users_s": create_users_s, "latency": [], "bursts": []}

    async def warm(items: list[tuple[str, str]]) -> None:  # the texts' features into every server's cache
        for driver in drivers.values():
            await driver.burst([None] * len(items), items)

    try:
        await warm(new_items(16))  # the backbones and the connections too

        # (a) single requests, one at a time: a user drawn from the population, or the general reward
        for cache in ("cached", "fresh"):
            n = args.latency_requests if cache == "cached" else args.latency_requests // 2
            cached_items = new_items(n)
            if cache == "cached":
                await warm(cached_items)
            rows = [("per-user", CACHED), ("general", CACHED)]
            rows += [("per-user", UNCACHED)] if cache == "cached" else []
            for who, key in rows:
                items = cached_items if cache == "cached" else new_items(n)
                server, driver = servers[key], drivers[key]
                cpu_server, cpu_driver = server.cpu_seconds(), _own_cpu()
                seconds = []
                for item in items:
                    user = rng.choice(names) if who == "per-user" else None
                    s, rewards = await driver.reward(user, [item])
                    seconds.append(s)
                    if len(samples) < 4 * args.check:
                        samples.append((user, item, rewards[0]))
                ms = np.array(seconds) * 1000
                row = {
                    "texts": cache,
                    "reward": who,
                    "server": key,
                    "requests": n,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p95_ms": float(np.percentile(ms, 95)),
                    "server_cpu_ms_per_request": (server.cpu_seconds() - cpu_server) / n * 1000,
                    "driver_cpu_ms_per_request": (_own_cpu() - cpu_driver) / n * 1000,
                }
                out["latency"].append(row)
                print(
                    f"latency {cache:>6} {who:<8} {key:<18} p50 {row['p50_ms']:.1f} ms  "
                    f"p95 {row['p95_ms']:.1f} ms  "
                    f"server CPU {row['server_cpu_ms_per_request']:.1f} ms/request",
                    flush=True,
                )

        # (b) bursts of B concurrent requests: distinct users, one user, general; rounds interleaved
        for size in args.batches:
            cached_items = new_items(size)
            await warm(cached_items)
            for cache in ("cached", "fresh"):
                cases: dict[str, list[float]] = {}
                cpu: dict[str, list[tuple[float, float]]] = {}
                for _ in range(args.rounds if cache == "cached" else args.fresh_rounds):
                    distinct = rng.sample(names, size)
                    one = rng.choice(names)
                    plan = [
                        ("distinct users", CACHED, distinct, False),
                        ("one user", CACHED, [one] * size, False),
                        ("general", CACHED, [None] * size, False),
                        ("one user, 1 request", CACHED, [one], True),
                        ("general, 1 request", CACHED, [None], True),
                    ]
                    if cache == "cached":
                        plan += [
                            (f"distinct users, {UNCACHED}", UNCACHED, distinct, False),
                            (f"one user, {UNCACHED}", UNCACHED, [one] * size, False),
                        ]
                    for case, key, users, whole in plan:
                        server, driver = servers[key], drivers[key]
                        items = cached_items if cache == "cached" else new_items(size)
                        cpu_server, cpu_driver = server.cpu_seconds(), _own_cpu()
                        if whole:
                            seconds, rewards = await driver.reward(users[0], items)
                            users = users * size
                        else:
                            seconds, rewards = await driver.burst(users, items)
                        cases.setdefault(case, []).append(size / seconds)
                        cpu.setdefault(case, []).append(
                            (server.cpu_seconds() - cpu_server, _own_cpu() - cpu_driver)
                        )
                        if case.startswith(("distinct users", "general")) and len(samples) < 8 * args.check:
                            for i in rng.sample(range(size), min(size, args.check // 2)):
                                samples.append((users[i], items[i], rewards[i]))
                base = float(np.median(cases["one user"]))
                general = float(np.median(cases["general"]))
                for case, rates in cases.items():
                    row = {
                        "batch": size,
                        "texts": cache,
                        "case": case,
                        "texts_per_s": float(np.median(rates)),
                        "vs_one_user": float(np.median(rates)) / base,
                        "vs_general": float(np.median(rates)) / general,
                        "server_cpu_ms_per_text": float(np.median([c[0] for c in cpu[case]])) / size * 1000,
                        "driver_cpu_ms_per_text": float(np.median([c[1] for c in cpu[case]])) / size * 1000,
                    }
                    out["bursts"].append(row)
                    print(
                        f"B={size:<4} {cache:>6} {case:<36} {row['texts_per_s']:8.1f} texts/s  "
                        f"vs one user {row['vs_one_user']:.2f}  vs general {row['vs_general']:.2f}  "
                        f"CPU ms/text server {row['server_cpu_ms_per_text']:.1f} "
                        f"driver {row['driver_cpu_ms_per_text']:.1f}",
                        flush=True,
                    )
    finally:
        for driver in drivers.values():
            await driver.client.aclose()
    out["samples"] = samples
    return out


def check_samples(model_dir: Path, store_path: Path, samples: list) -> dict:
    """Served rewards against the library's ``RewardModel.rewards`` with the stored profile."""
    from pluralrm.adapt.profiles import ProfileStore
    from pluralrm.rewards.reward_model import RewardModel

    model = RewardModel.from_pretrained(model_dir)
    store = ProfileStore(store_path)
    worst = 0.0
    n_users = 0
    for user, (prompt, response), served in samples:
        profile = None if user is None else store.get(user, head_set=model.head_set)
        n_users += user is not None
        expected = float(model.rewards([(prompt, response)], user=profile)[0])
        worst = max(worst, abs(expected - served))
    return {"samples": len(samples), "per_user_samples": n_users, "max_abs_diff": worst}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--users", type=int, default=1000, help="Profiles in the store.")
    parser.add_argument("--pairs", type=int, default=10, help="Random pair differences behind each profile.")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256], help="Requests per burst.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds of each cached burst.")
    parser.add_argument("--fresh-rounds", type=int, default=2, help="Interleaved rounds of each fresh burst.")
    parser.add_argument("--latency-requests", type=int, default=200, help="Single requests per latency row.")
    parser.add_argument("--check", type=int, default=32, help="Served rewards checked per kind of request.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/profiles_at_scale"))
    parser.add_argument("--open-store", type=Path, help=argparse.SUPPRESS)  # the fresh-process step
    args = parser.parse_args()
    if args.open_store is not None:
        print(json.dumps(open_store_cost(args.open_store, args.users)))
        return
    if args.users < max(args.batches):
        parser.error(f"--users {args.users} is fewer than the largest burst {max(args.batches)}")

    from pluralrm.adapt.profiles import ProfileStore

    work = Path(tempfile.mkdtemp(prefix="pluralrm-profiles-at-scale-"))
    os.environ.setdefault("PLURALRM_CACHE", str(work / "cache"))
    model_dir = build_model(args.backbone, work / "model")
    start = time.perf_counter()
    profiles = make_profiles(model_dir, args.users, args.pairs, args.seed)
    fit_s = time.perf_counter() - start
    store_path = work / "profiles.sqlite"
    store = ProfileStore(store_path)
    start = time.perf_counter()
    for profile in profiles:
        store.put(profile)
    write_s = time.perf_counter() - start
    print(
        f"{args.users} profiles ({profiles[0].method}, {len(profiles[0].weights)} weights + "
        f"{0 if profiles[0].full is None else len(profiles[0].full)}-float full part): "
        f"fitted in {fit_s:.1f} s, "
        f"written in {write_s:.2f} s ({write_s / args.users * 1000:.2f} ms per put)",
        flush=True,
    )
    step = [sys.executable, __file__, "--open-store", str(store_path), "--users", str(args.users)]
    fresh = subprocess.run(step, capture_output=True, text=True)
    if fresh.returncode != 0:
        raise SystemExit(f"opening the store in a fresh process failed:\n{fresh.stderr}")
    opened = json.loads(fresh.stdout)
    print(
        f"opening the store in a fresh process: open {opened['open_s'] * 1000:.1f} ms, one get "
        f"{opened['get_ms']:.2f} ms ({opened['cached_get_ms'] * 1000:.0f} µs cached), "
        f"all {opened['profiles']} in {opened['list_s'] * 1000:.0f} ms "
        f"(peak {opened['list_peak_bytes'] / 2**20:.1f} MiB traced, "
        f"RSS +{opened['rss_list_delta_bytes'] / 2**20:.1f} MiB), "
        f"file {opened['file_bytes'] / 2**20:.1f} MiB",
        flush=True,
    )

    servers: dict[str, ServerProcess] = {}
    try:
        start = time.perf_counter()
        servers[CACHED] = ServerProcess(model_dir, store_path, options=[], log=work / "server.log")
        startup_s = time.perf_counter() - start
        print(f"server up in {startup_s:.1f} s on {servers[CACHED].url}", flush=True)
        servers[UNCACHED] = ServerProcess(
            model_dir, store_path, options=["--profile-cache-entries", "0"], log=work / "server-uncached.log"
        )
        measured = asyncio.run(run_server_measurements(servers, args, [p.user for p in profiles]))
    finally:
        for server in servers.values():
            server.stop()
    checked = check_samples(model_dir, store_path, measured.pop("samples"))
    print(
        f"correctness: {checked['samples']} served rewards ({checked['per_user_samples']} per-user) vs "
        f"RewardModel.rewards: max |diff| {checked['max_abs_diff']:.2e}",
        flush=True,
    )

    summary = {
        "backbone": args.backbone,
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "users": args.users,
        "profile_method": profiles[0].method,
        "fit_s": fit_s,
        "write_s": write_s,
        "open_store": opened,
        "server_startup_s": startup_s,
        "check": checked,
        **measured,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profiles_at_scale.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "| batch | texts | case | texts/s | vs one user | vs general | CPU ms per text: server / driver |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in measured["bursts"]:
        lines.append(
            f"| {r['batch']} | {r['texts']} | {r['case']} | {r['texts_per_s']:.1f} | {r['vs_one_user']:.2f} "
            f"| {r['vs_general']:.2f} | {r['server_cpu_ms_per_text']:.1f} / "
            f"{r['driver_cpu_ms_per_text']:.1f} |"
        )
    lines += [
        "",
        "| texts | reward | server | p50 ms | p95 ms | server CPU ms/request |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in measured["latency"]:
        lines.append(
            f"| {r['texts']} | {r['reward']} | {r['server']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {r['server_cpu_ms_per_request']:.1f} |"
        )
    (args.out / "profiles_at_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if checked["max_abs_diff"] > TOLERANCE:
        raise SystemExit(
            f"served rewards differ from RewardModel.rewards by {checked['max_abs_diff']:.2e} > {TOLERANCE}"
        )


if __name__ == "__main__":
    main()
