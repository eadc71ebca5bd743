"""fp32 vs bf16 on this machine, side by side in one process: matmul GFLOP/s and featurizer tokens/s.

Why: CPUs differ (AVX2-only machines emulate bf16 and run it several times slower; AMX machines run it
several times faster), and ``--dtype auto`` decides by a quick probe. This script records what a machine
really does, with the two precisions interleaved round by round so load from other processes hits both.

Usage::

    python benchmarks/dtype.py --backbone minilm --n-texts 400
    python benchmarks/dtype.py --backbone smollm2 --n-texts 120 --rounds 2
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pluralrm.backbone import Featurizer, load_backbone
from pluralrm.backbone.device import cpu_bf16_speedup, resolve_dtype

DTYPES = ("float32", "bfloat16")


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    best = min(_time(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return handle.read()
    except OSError:
        return ""


def cpu_name(info: str) -> str:
    for line in info.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--n-texts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved fp32/bf16 rounds (best is kept)")
    args = parser.parse_args()

    info = cpuinfo()
    features = ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in info) or "none"
    print(f"CPU: {cpu_name(info)}; bf16 features: {features}; threads {torch.get_num_threads()}")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"2048² matmul: fp32 {fp32:,.0f} GFLOP/s, bf16 {bf16:,.0f} GFLOP/s (bf16/fp32 {bf16 / fp32:.2f}×)")
    auto = resolve_dtype("auto", "cpu")
    print(f"dtype auto probe (1024² matmul): bf16 {cpu_bf16_speedup():.2f}× fp32 → auto = {auto}")

    featurizers = {d: Featurizer(load_backbone(args.backbone, dtype=d)) for d in DTYPES}
    from featurize import load_texts  # the sibling benchmark's text source (run from benchmarks/)

    texts, source = load_texts(featurizers["float32"], args.n_texts)
    tokens = sum(len(ids) for ids in featurizers["float32"].tokenize(texts))
    for featurizer in featurizers.values():
        featurizer.encode(texts[:8])  # warm-up
    best = {d: float("inf") for d in DTYPES}
    outputs = {}
    for _ in range(args.rounds):
        for dtype, featurizer in featurizers.items():
            start = time.perf_counter()
            outputs[dtype] = featurizer.encode(texts)
            best[dtype] = min(best[dtype], time.perf_counter() - start)
    a, b = outputs["float32"], outputs["bfloat16"]
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(
        f"\n{args.backbone}: {len(texts)} texts from {source}, {tokens} tokens, best of {args.rounds} rounds"
    )
    for dtype in DTYPES:
        print(f"  {dtype:9s} {best[dtype]:7.2f} s  {tokens / best[dtype]:9,.0f} tokens/s")
    print(f"  bf16 / fp32 throughput: {best['float32'] / best['bfloat16']:.2f}×")
    print(f"  feature agreement: cosine min {cosine.min():.4f}, mean {cosine.mean():.5f}")


if __name__ == "__main__":
    main()
