"""Why a server's batches featurize slower than a file: padding and batch composition, measured in-process.

The offline featurizer sorts a whole file by length; a server batch holds whatever arrived during the
previous forward pass, in arrival order. This script featurizes the same kind of texts (fresh ones each
time, so nothing is cached) four ways, side by side on one machine:

* one call over all texts (the offline path), and the same one text per forward pass (no batching);
* chunks of ``--chunk`` texts in arrival order with the offline token budget (2,048 padded tokens/pass);
* the same chunks with the server's budget (``ServeConfig.max_batch_tokens``), which splits them by length;
* the same chunks pre-sorted by length (the padding-free bound for chunks of that size).

Usage::

    python benchmarks/serve_batches.py                   # MiniLM, 405 texts, chunks of 15
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pluralrm.config import FEATURIZE, SERVE
from serve_load import build_model, fresh_texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--n-texts", type=int, default=405)
    parser.add_argument(
        "--chunk", type=int, default=15, help="Texts per server batch (what arrived in one pass)."
    )
    args = parser.parse_args()

    from pluralrm.rewards.reward_model import RewardModel

    work = Path(tempfile.mkdtemp(prefix="pluralrm-serve-batches-"))
    os.environ.setdefault("PLURALRM_CACHE", str(work / "cache"))
    featurizer = RewardModel.from_pretrained(build_model(args.backbone, work / "model")).featurizer(
        device="cpu"
    )
    seed = iter(range(1, 100))

    def texts() -> list[str]:
        return [featurizer.format(p, r) for p, r in fresh_texts(args.n_texts, next(seed) * 10**7)]

    featurizer.encode(texts()[:16])  # warm up
    lengths = [len(ids) for ids in featurizer.tokenize(texts())]
    print(
        f"{args.backbone}: {args.n_texts} texts, tokens min/mean/max {min(lengths)}/"
        f"{sum(lengths) / len(lengths):.0f}/{max(lengths)}, chunks of {args.chunk}"
    )

    def rate(chunks: list[list[str]]) -> float:
        start = time.perf_counter()
        for chunk in chunks:
            featurizer.encode(chunk)
        return sum(map(len, chunks)) / (time.perf_counter() - start)

    def chunked(items: list[str]) -> list[list[str]]:
        return [items[i : i + args.chunk] for i in range(0, len(items), args.chunk)]

    featurizer.max_batch_tokens = FEATURIZE.max_batch_tokens
    rows = [("one call over all texts (offline)", FEATURIZE.max_batch_tokens, rate([texts()]))]
    featurizer.batch_size = 1
    rows.append(("one text per pass (no batching)", FEATURIZE.max_batch_tokens, rate([texts()])))
    featurizer.batch_size = FEATURIZE.batch_size
    rows.append(("chunks in arrival order", FEATURIZE.max_batch_tokens, rate(chunked(texts()))))
    featurizer.max_batch_tokens = SERVE.max_batch_tokens
    rows.append(("chunks in arrival order", SERVE.max_batch_tokens, rate(chunked(texts()))))
    featurizer.max_batch_tokens = FEATURIZE.max_batch_tokens
    rows.append(
        ("chunks sorted by length", FEATURIZE.max_batch_tokens, rate(chunked(sorted(texts(), key=len))))
    )
    print("| how | tokens per pass | texts/s |\n|---|---:|---:|")
    for how, budget, value in rows:
        print(f"| {how} | {budget:,} | {value:.1f} |")


if __name__ == "__main__":
    main()
