"""Featurize the real general-preference and domain sets once, for every candidate feature, into a folder.

Writes ``<out>/<set>/<backbone>-<pooling>-L<layer>/`` (PairFeatures directories) for the sets in
../shared/data, reusing the feature cache, so every evaluation script reads vectors instead of running a
backbone. Candidates: for ``smollm2`` last-token and mean pooling at the final layer and at layers 20, 15,
10; for ``minilm`` mean pooling at every layer (1–6).

Usage::

    python benchmarks/real_features.py --backbone minilm --out out/features
    python benchmarks/real_features.py --backbone smollm2 --limit 300 --out out/features
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, load_backbone
from pluralrm.backbone.pairs import featurize_pairs_specs
from pluralrm.data import load_pairs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {
    "helpful": "dsp/helpful.test-dev.json.gz",
    "harmless": "dsp/harmless.test-dev.json.gz",
    "webgpt": "dsp/webgpt.test-dev.json.gz",
    "domain": "dsp/domain_specific_preference.test-dev.json.gz",
}
CANDIDATES = {
    "smollm2": [
        FeatureSpec("last", -1),
        FeatureSpec("mean", -1),
        FeatureSpec("last", 20),
        FeatureSpec("mean", 20),
        FeatureSpec("last", 15),
        FeatureSpec("mean", 15),
        FeatureSpec("last", 10),
    ],
    # every layer: the one a new user is learned best in is chosen from the pool (adapt/choice.py)
    "minilm": [FeatureSpec("mean", layer) for layer in (-1, 1, 2, 3, 4, 5)],
}


def spec_name(backbone: str, spec: FeatureSpec, n_layers: int, dtype: str = "float32") -> str:
    suffix = "" if dtype == "float32" else f"-{dtype}"  # fp32 names stay as before
    return f"{backbone}-{spec.pooling}-L{spec.layer % (n_layers + 1)}{suffix}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm", choices=sorted(CANDIDATES))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="pairs per set: a seeded random subset (domain: queries), for slow backbones",
    )
    parser.add_argument("--out", type=Path, default=Path("out/features"))
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or auto (part of the features)")
    parser.add_argument(
        "--layers", help="comma-separated layers to keep of the backbone's candidates (fewer: earlier exit)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    backbone = load_backbone(args.backbone, dtype=args.dtype)
    featurizer = Featurizer(backbone, cache=FeatureCache.default(), show_progress=True)
    for name in args.sets:
        path = SHARED / SETS[name]
        if not path.exists():
            print(f"skip {name}: {path} is absent")
            continue
        pairs = load_pairs(path, skip_invalid=True).records
        if args.limit and name == "domain":
            queries = sorted({p["prompt"] for p in pairs})
            keep = set(np.random.default_rng(0).permutation(queries)[: args.limit].tolist())
            pairs = [p for p in pairs if p["prompt"] in keep]
        elif args.limit and len(pairs) > args.limit:
            pairs = [pairs[i] for i in sorted(np.random.default_rng(0).permutation(len(pairs))[: args.limit])]
        start = time.perf_counter()
        specs = CANDIDATES[args.backbone]
        if args.layers:
            keep = {int(x) for x in args.layers.split(",")}
            specs = [spec for spec in specs if spec.layer % (backbone.num_layers + 1) in keep]
        by_spec = featurize_pairs_specs(pairs, featurizer, specs, source=str(path))
        seconds = time.perf_counter() - start
        for spec, features in by_spec.items():
            name_of_spec = spec_name(args.backbone, spec, backbone.num_layers, backbone.dtype)
            features.save(args.out / name / name_of_spec)
        print(f"{name}: {len(pairs)} pairs, {len(by_spec)} candidates in {seconds:.0f} s")


if __name__ == "__main__":
    main()
