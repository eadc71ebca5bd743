"""Featurization throughput on Ray (1 and 2 workers) against the single-process featurizer, side by side.

On one small machine Ray cannot be faster — the same cores do the same forward passes — so this measures
what Ray costs: starting the actors (each loads the backbone), moving rows and vectors through the object
store, and splitting the cores among actors. It also checks that the vectors are the same.

Usage::

    python benchmarks/ray_throughput.py --n-pairs 500 --rounds 2

Texts are the chosen and rejected responses (in context) of ../shared/data/hh-rlhf-harmless when present,
else the built-in synthetic data; the backbone is MiniLM (fp32, CPU). No feature cache is used, so every
run computes every text. Each configuration runs ``--rounds`` times, interleaved, and the fastest run of
each is reported (the machine is shared; the minimum is the least disturbed). The Ray figures include
starting the actors (the single-process figures include loading the backbone); the start-up alone is
measured as a run on 4 pairs.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pluralrm.backbone import build_featurizer, featurize_pairs
from pluralrm.config import ENGINE, FEATURIZE
from pluralrm.scale import FeaturizerRecipe, ray_featurize_pairs

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless" / "test-dev.jsonl.gz"


def load_pairs(n: int) -> tuple[list[dict], str]:
    if HH.exists():
        from pluralrm.data import load_pairs as load

        return load(HH, skip_invalid=True).records[:n], str(HH)
    from pluralrm.data.synthetic import make_synthetic_preferences

    return make_synthetic_preferences(n_prompts=max(8, n // 10)).pairs[:n], "built-in synthetic data"


def torch_threads(num_cpus: float) -> int:
    """torch's thread count inside a FeaturizeWorker-like actor that reserved ``num_cpus``."""
    import ray

    from pluralrm.scale.ray_featurize import _use_reserved_cpus

    class Probe:
        def __init__(self) -> None:
            _use_reserved_cpus()

        def threads(self) -> int:
            import torch

            return torch.get_num_threads()

    probe = ray.remote(num_cpus=num_cpus)(Probe).remote()
    try:
        return ray.get(probe.threads.remote())
    finally:
        ray.kill(probe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pairs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ray
    import torch

    pairs, source = load_pairs(args.n_pairs)
    config = replace(FEATURIZE, backbone="minilm", device="cpu", dtype="float32")
    recipe = FeaturizerRecipe(config=config, cache_root=None)
    featurizer = build_featurizer(config)
    n_texts = len({(str(p["prompt"]), p[s]) for p in pairs for s in ("chosen", "rejected")})
    n_tokens = sum(
        len(ids)
        for ids in featurizer.tokenize(
            [featurizer.format(p["prompt"], p[s]) for p in pairs for s in ("chosen", "rejected")]
        )
    )
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    init_s = time.perf_counter() - start
    cores = int(ray.cluster_resources()["CPU"])
    engines = {
        "Ray, 1 worker": replace(ENGINE, engine="ray", num_workers=1, cpus_per_worker=cores),
        "Ray, 2 workers": replace(ENGINE, engine="ray", num_workers=2, cpus_per_worker=cores / 2),
    }
    print(f"{len(pairs)} pairs ({n_texts} distinct texts, {n_tokens} tokens) of {source}")
    print(f"MiniLM fp32 on {cores} cores; ray.init {init_s:.1f} s (once per process)")
    print(f"torch threads: single process {torch.get_num_threads()}, ", end="")
    print(", ".join(f"{name}: {torch_threads(e.cpus_per_worker)} per worker" for name, e in engines.items()))

    best: dict[str, float] = {}
    features: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        start = time.perf_counter()
        local = featurize_pairs(pairs, build_featurizer(config))
        best["single process"] = min(best.get("single process", np.inf), time.perf_counter() - start)
        features["single process"] = np.concatenate([local.chosen, local.rejected])
        for name, engine in engines.items():
            start = time.perf_counter()
            remote, _ = ray_featurize_pairs(pairs, recipe, engine=engine)
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
            features[name] = np.concatenate([remote.chosen, remote.rejected])
    start = time.perf_counter()
    featurize_pairs(pairs[:4], build_featurizer(config))
    startup = {"single process": time.perf_counter() - start}
    for name, engine in engines.items():
        start = time.perf_counter()
        ray_featurize_pairs(pairs[:4], recipe, engine=engine)
        startup[name] = time.perf_counter() - start
    ray.shutdown()

    reference = best["single process"]
    print()
    header = (
        "| run | wall s (incl. backbone load) | texts/s | vs single process | startup s (4 pairs) | max |Δ| |"
    )
    print(header)
    print("|---|---|---|---|---|---|")
    for name, seconds in best.items():
        diff = np.abs(features[name] - features["single process"]).max()
        print(
            f"| {name} | {seconds:.1f} | {n_texts / seconds:.0f} | {reference / seconds:.2f}× | "
            f"{startup[name]:.1f} | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
