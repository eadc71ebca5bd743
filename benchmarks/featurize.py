"""Featurizer throughput against the usual alternatives, on the same texts, in one process.

Compares pluralrm's :class:`Featurizer` (length-sorted batches, inference mode) with
(a) a naive per-text transformers loop at batch size 1, as research scripts do, and
(b) sentence-transformers ``encode`` (MiniLM only),
and relates achieved GFLOP/s to this machine's measured fp32 matmul peak.

Targets (issue 2): ≥ 3× the naive loop, ≥ 1.2× sentence-transformers, ≥ 60 % of matmul peak.

Usage::

    python benchmarks/featurize.py --backbone minilm --n-texts 400
    python benchmarks/featurize.py --backbone smollm2 --n-texts 120

Texts are the chosen responses (in context) of ../shared/data/hh-rlhf-harmless when present, else the
built-in synthetic data. No feature cache is used, so every method computes. fp32 vs bf16 side by side:
``benchmarks/dtype.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pluralrm.backbone import Featurizer, load_backbone, pool_hidden
from pluralrm.backbone.loading import Backbone

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless" / "test-dev.jsonl.gz"


def load_texts(featurizer: Featurizer, n: int) -> tuple[list[str], str]:
    if HH.exists():
        from pluralrm.data import load_pairs

        pairs = load_pairs(HH, skip_invalid=True).records[:n]
        return [featurizer.format(p["prompt"], p["chosen"]) for p in pairs], str(HH)
    from pluralrm.data.synthetic import make_synthetic_preferences

    responses = make_synthetic_preferences(n_prompts=max(8, n // 6)).responses[:n]
    return [featurizer.format(r["prompt"], r["text"]) for r in responses], "built-in synthetic data"


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of an n×n matmul: the ceiling any dense forward pass could reach here."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def forward_flops(backbone: Backbone, lengths: list[int]) -> float:
    """Useful FLOPs of a forward pass over sequences of these (unpadded) lengths.

    2 FLOPs per multiply-add for every non-embedding weight and token, plus the two attention
    products (QKᵀ and AV), 2·2·L²·d per layer.
    """
    params = sum(p.numel() for name, p in backbone.model.named_parameters() if "embed" not in name)
    d, layers = backbone.hidden_size, backbone.num_layers
    return float(sum(2 * params * n + 4 * layers * n * n * d for n in lengths))


def naive_loop(
    backbone: Backbone, texts: list[str], max_length: int, pooling: str, layer: int = -1
) -> np.ndarray:
    """One text at a time, as research scripts featurize; the same pooling and truncation."""
    tokenizer, out = backbone.tokenizer, []
    tokenizer.truncation_side = "left"
    templated = backbone.kind == "causal" and bool(tokenizer.chat_template)
    for text in texts:
        encoded = tokenizer(
            text,
            return_tensors="pt",
            truncation=True,
            max_length=max_length,
            add_special_tokens=not templated,
        )
        with torch.no_grad():
            output = backbone.model(**encoded, output_hidden_states=layer != -1)
            hidden = output.last_hidden_state if layer == -1 else output.hidden_states[layer]
        out.append(pool_hidden(hidden, encoded["attention_mask"], pooling)[0].numpy())
    return np.stack(out)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--n-texts", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", default="float32", help="float32 (the fp32 peak's dtype) or bfloat16")
    parser.add_argument("--layer", type=int, default=-1, help="hidden-state layer (middle layers stop early)")
    parser.add_argument(
        "--max-length",
        type=int,
        default=256,
        help="256 matches sentence-transformers' MiniLM limit, so token counts are equal",
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    backbone = load_backbone(args.backbone, dtype=args.dtype)
    from pluralrm.backbone import FeatureSpec, default_spec

    spec = FeatureSpec(pooling=default_spec(backbone.kind).pooling, layer=args.layer)
    featurizer = Featurizer(backbone, spec=spec, max_length=args.max_length, batch_size=args.batch_size)
    st_batch = 32  # sentence-transformers' own default
    texts, source = load_texts(featurizer, args.n_texts)
    lengths = [len(ids) for ids in featurizer.tokenize(texts)]
    tokens = sum(lengths)
    peak = matmul_peak_gflops()
    flops = forward_flops(backbone, lengths)
    if args.layer != -1:  # only the first `layer` blocks run (early exit); scale the useful work accordingly
        flops *= (args.layer % (backbone.num_layers + 1)) / backbone.num_layers
    print(
        f"backbone {args.backbone} ({backbone.kind}, d={backbone.hidden_size}); {len(texts)} texts from "
        f"{source}; {tokens} tokens (mean {tokens / len(texts):.0f}, max {max(lengths)}); "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"measured fp32 matmul peak: {peak:.1f} GFLOP/s")

    featurizer.encode(texts[:8])  # warm-up
    ours, t_ours = timed(lambda: featurizer.encode(texts))
    rows = [("pluralrm Featurizer", t_ours, None)]

    naive_texts = texts[: max(1, len(texts) // 2)]  # half the texts: the slow path would dominate the run
    naive, t_naive_half = timed(
        lambda: naive_loop(backbone, naive_texts, featurizer.max_length, featurizer.spec.pooling, args.layer)
    )
    naive_tokens = sum(lengths[: len(naive_texts)])
    t_naive = t_naive_half * tokens / naive_tokens  # same tokens/s, scaled to the full text set
    np.testing.assert_allclose(naive, ours[: len(naive_texts)], atol=1e-4)
    rows.append(("naive loop, batch 1 (scaled from half)", t_naive, None))

    if args.backbone == "minilm":
        try:
            from sentence_transformers import SentenceTransformer

            from pluralrm.backbone.loading import minilm_directory

            model = SentenceTransformer(str(minilm_directory()), device="cpu")
            model.max_seq_length = args.max_length
            st_lengths = [min(len(ids), args.max_length) for ids in model.tokenizer(texts)["input_ids"]]
            model.encode(texts[:8], batch_size=st_batch)
            _, t_st = timed(lambda: model.encode(texts, batch_size=st_batch))
            rows.append(("sentence-transformers encode", t_st, sum(st_lengths)))
        except ImportError:
            print("sentence-transformers not installed: skipping that comparison (pip install -e '.[dev]')")

    print(f"\n{'method':42s} {'seconds':>8s} {'tokens/s':>9s} {'ours is':>8s}")
    for name, seconds, own_tokens in rows:
        rate = (own_tokens or tokens) / seconds
        print(f"{name:42s} {seconds:8.2f} {rate:9.0f} {rate and (tokens / t_ours) / rate:7.2f}×")
    achieved = flops / t_ours / 1e9
    print(f"\npluralrm achieved {achieved:.1f} GFLOP/s of useful work = {achieved / peak:.0%} of matmul peak")

    speedup_naive = t_naive / t_ours
    checks = [("≥ 3× the naive loop", speedup_naive >= 3, f"{speedup_naive:.2f}×")]
    for name, seconds, own_tokens in rows:
        if name.startswith("sentence"):
            ratio = (tokens / t_ours) / (own_tokens / seconds)
            checks.append(("≥ 1.2× sentence-transformers", ratio >= 1.2, f"{ratio:.2f}×"))
    checks.append(("≥ 60% of matmul peak", achieved / peak >= 0.6, f"{achieved / peak:.0%}"))
    print("\ntargets:")
    for name, met, value in checks:
        print(f"  {'MET   ' if met else 'MISSED'} {name}: {value}")


if __name__ == "__main__":
    main()
