"""Held-out accuracy of general and PCA heads on the real sets, for every featurized candidate.

Reads the PairFeatures folders written by ``benchmarks/real_features.py`` (``<features>/<set>/<candidate>``)
and prints markdown tables (also saved as JSON):

1. within each set: mean test accuracy over 5 seeded 60/20/20 prompt-disjoint splits of the general head,
   the best PCA head (picked on validation) centred and uncentred, and the first head;
2. across sets: fit on helpful, test on harmless, and the reverse;
3. MiniLM on exactly the pairs of the SmolLM2 subsets, so backbones are compared on the same pairs.

Usage::

    python benchmarks/real_features.py --backbone minilm --out out/features
    python benchmarks/real_features.py --backbone smollm2 --limit 300 --sets helpful harmless webgpt
    python benchmarks/evaluate_real.py --features out/features --out out/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralrm.data.features import PairFeatures
from pluralrm.evaluate.experiments import METHODS, cross_set, within_set

GENERAL_SETS = ("helpful", "harmless", "webgpt")


def fmt(cell: dict) -> str:
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}" if cell["std"] else f"{cell['mean']:.3f}"


def table(title: str, results: dict[tuple[str, str], dict]) -> str:
    lines = [
        f"### {title}",
        "",
        "| set | features | n test | " + " | ".join(METHODS) + " | picked heads |",
        "|---|---|---|" + "---|" * (len(METHODS) + 1),
    ]
    for (name, candidate), result in results.items():
        cells = " | ".join(fmt(result[m]) for m in METHODS)
        picked = ", ".join(result["picked_heads"][:5])
        lines.append(f"| {name} | {candidate} | {result['general']['n_test']} | {cells} | {picked} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, default=Path("out/features"))
    parser.add_argument("--out", type=Path, default=Path("out/results.json"))
    parser.add_argument("--components", type=int, default=32)
    args = parser.parse_args()

    within, cross, same_subset = {}, {}, {}
    for name in GENERAL_SETS:
        for folder in sorted((args.features / name).glob("*")):
            within[(name, folder.name)] = within_set(PairFeatures.load(folder), n_components=args.components)
            print(f"{name} {folder.name}: general {fmt(within[(name, folder.name)]['general'])}", flush=True)
        minilm, smol = args.features / name / "minilm-mean-L6", args.features / name / "smollm2-last-L30"
        if minilm.exists() and smol.exists():
            full, subset_ids = PairFeatures.load(minilm), set(PairFeatures.load(smol).ids)
            subset = full.select([i for i, pid in enumerate(full.ids) if pid in subset_ids])
            same_subset[(name, f"minilm-mean-L6 on the {len(subset)} smollm2 pairs")] = within_set(
                subset, n_components=args.components
            )
    for a, b in (("helpful", "harmless"), ("harmless", "helpful")):
        for folder in sorted((args.features / a).glob("*")):
            if (args.features / b / folder.name).exists():
                cross[(f"{a} → {b}", folder.name)] = cross_set(
                    PairFeatures.load(folder),
                    PairFeatures.load(args.features / b / folder.name),
                    n_components=args.components,
                )

    report = (
        table("Within each set (5 seeded prompt-disjoint splits, mean ± sd over seeds)", within)
        + "\n"
        + table("MiniLM on the same pairs as SmolLM2", same_subset)
        + "\n"
        + table("Across sets (fit on one, test on all pairs of the other)", cross)
    )
    print("\n" + report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "within": {" | ".join(k): v for k, v in within.items()},
                "same_subset": {" | ".join(k): v for k, v in same_subset.items()},
                "cross": {" | ".join(k): v for k, v in cross.items()},
                "markdown": report,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
