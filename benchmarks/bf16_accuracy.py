"""Does featurizing in bfloat16 cost accuracy? General-head test accuracy, fp32 vs bf16 features.

Reads two feature folders per set written by ``benchmarks/real_features.py`` — ``minilm-mean-L6`` (fp32)
and ``minilm-mean-L6-bfloat16`` — and runs the issue-3 protocol on each (5 seeded 60/20/20 prompt-disjoint
splits, L2 picked on validation, accuracy on test; ``pluralrm.evaluate.experiments.within_set``), on the same
pairs and splits. The domain set is scored as the four domain users' pairs pooled (one general head).
Target (issue 7): |bf16 − fp32| ≤ 0.5 point per set.

Usage::

    python benchmarks/real_features.py --backbone minilm --out out/features
    python benchmarks/real_features.py --backbone minilm --dtype bfloat16 --out out/features
    python benchmarks/bf16_accuracy.py --features out/features
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pluralrm.data.features import PairFeatures
from pluralrm.evaluate.experiments import within_set

SETS = ("helpful", "harmless", "webgpt", "domain")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, default=Path("out/features"))
    parser.add_argument("--candidate", default="minilm-mean-L6")
    args = parser.parse_args()
    print("| set | pairs | fp32 general head | bf16 general head | bf16 − fp32 (points) |")
    print("|---|---|---|---|---|")
    deltas = []
    for name in SETS:
        fp32_dir = args.features / name / args.candidate
        bf16_dir = args.features / name / f"{args.candidate}-bfloat16"
        if not (fp32_dir.exists() and bf16_dir.exists()):
            print(f"| {name} | skipped: {fp32_dir} or {bf16_dir} is missing | | | |")
            continue
        fp32, bf16 = PairFeatures.load(fp32_dir), PairFeatures.load(bf16_dir)
        if fp32.ids != bf16.ids:
            raise SystemExit(f"{name}: the fp32 and bf16 folders hold different pairs")
        a, b = within_set(fp32)["general"], within_set(bf16)["general"]
        delta = 100 * (b["mean"] - a["mean"])
        deltas.append(delta)
        print(
            f"| {name} | {len(fp32)} | {a['mean']:.4f} ± {a['std']:.3f} | {b['mean']:.4f} ± {b['std']:.3f} | "
            f"{delta:+.2f} |"
        )
    if deltas:
        largest = max(abs(d) for d in deltas)
        print(f"\nmean |bf16 − fp32| over sets: {np.mean(np.abs(deltas)):.2f} points; largest {largest:.2f}")


if __name__ == "__main__":
    main()
