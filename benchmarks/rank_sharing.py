"""Many responses per prompt: responses/s without and with sharing the prompt's KV cache, side by side.

Ranking N responses to one prompt re-encodes the prompt N times on the plain path; with
``Featurizer(share_prompts=True)`` (the default) a causal backbone runs the prompt once and each response
on its KV cache. This script featurizes the same texts both ways in one process, alternating the two
within each round so load from other processes hits both, and scores them with a fixed random linear
head through :meth:`pluralrm.rewards.RewardModel.rewards` (the one scoring path), so the scores' largest
difference shows that sharing changes speed, not rewards.

The default backbone has SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 key/value heads,
MLP 1536, vocabulary 49,152) with random weights and SmolLM2's tokenizer and chat template; ``--real``
uses the real SmolLM2-135M-Instruct. Texts are random words: a prompt of about ``--prompt-tokens`` tokens
and responses of ``--response-tokens MIN MAX`` tokens.

Usage::

    python benchmarks/rank_sharing.py                      # about 4 minutes on 2 cores
    python benchmarks/rank_sharing.py --real --ns 16 64 --dtypes float32
    python benchmarks/rank_sharing.py --prompt-tokens 512 --response-tokens 32 128
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pluralrm.backbone import Backbone, Featurizer, load_backbone
from pluralrm.backbone.device import resolve_dtype, torch_dtype
from pluralrm.data.synthetic import make_synthetic_preferences
from pluralrm.rewards import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel


def smollm2_shaped(dtype: str, seed: int) -> Backbone:
    """A random-weight Llama of SmolLM2-135M's shape, with the real SmolLM2 tokenizer and template."""
    from transformers import LlamaConfig, LlamaModel

    tokenizer = load_backbone("smollm2", device="cpu", dtype="float32").tokenizer
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaModel(config).to(torch_dtype(dtype)).eval()
    name = f"random SmolLM2-135M shape (seed {seed})"
    return Backbone(name=name, model=model, tokenizer=tokenizer, kind="causal", fingerprint=name, dtype=dtype)


def random_text(tokenizer, words: list[str], n_tokens: int, rng: np.random.Generator) -> str:
    """Random words cut to ``n_tokens`` tokens (re-tokenizing the decoded text may move it by one or two)."""
    text = " ".join(rng.choice(words, size=n_tokens))  # a word is at least one token
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids).strip()


def make_conversations(tokenizer, n_prompts: int, n: int, args, rng) -> tuple[list[str], list[str]]:
    words = sorted(
        {w for r in make_synthetic_preferences(n_prompts=12, seed=0).responses for w in r["text"].split()}
    )
    low, high = args.response_tokens
    prompts, responses = [], []
    for _ in range(n_prompts):
        prompt = random_text(tokenizer, words, args.prompt_tokens, rng)
        for _ in range(n):
            prompts.append(prompt)
            responses.append(random_text(tokenizer, words, int(rng.integers(low, high + 1)), rng))
    return prompts, responses


def measure(backbone: Backbone, n: int, args, rng) -> dict:
    """Best-of-rounds seconds of both paths on the same texts, and the scores' largest difference."""
    n_prompts = max(1, args.texts // n)
    prompts, responses = make_conversations(backbone.tokenizer, n_prompts, n, args, rng)
    kwargs = {"max_length": args.max_length}
    featurizers = {
        "plain": Featurizer(backbone, share_prompts=False, **kwargs),
        "shared": Featurizer(backbone, share_prompts=True, **kwargs),
    }
    plain = featurizers["plain"]
    ids = plain.tokenize([plain.format(p, r) for p, r in zip(prompts, responses, strict=True)])
    head = LinearRewardHead.from_coef(np.random.default_rng(args.seed).standard_normal(backbone.hidden_size))
    model = RewardModel(namespace=plain.namespace(plain.spec), backbone_name=backbone.name, general=head)
    best = {name: float("inf") for name in featurizers}
    scores = {}
    for round_ in range(args.rounds):
        order = list(featurizers) if round_ % 2 == 0 else list(reversed(featurizers))
        for name in order:
            start = time.perf_counter()
            features = featurizers[name].encode_conversations(prompts, responses)
            best[name] = min(best[name], time.perf_counter() - start)
            scores[name] = model.rewards(features)
    return {
        "n": n,
        "prompts": n_prompts,
        "texts": len(prompts),
        "tokens": float(np.mean([len(x) for x in ids])),
        "plain": len(prompts) / best["plain"],
        "shared": len(prompts) / best["shared"],
        "diff": float(np.abs(scores["shared"] - scores["plain"]).max()),
        "score_std": float(np.std(scores["plain"])),
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ns", type=int, nargs="+", default=[4, 16, 64], help="responses per prompt")
    parser.add_argument("--texts", type=int, default=16, help="texts per N at least (prompts = texts // N)")
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--response-tokens", type=int, nargs=2, default=[64, 256], metavar=("MIN", "MAX"))
    parser.add_argument("--max-length", type=int, default=1024, help="large enough that nothing is cut")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "auto"])
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (best is kept)")
    parser.add_argument("--real", action="store_true", help="the real SmolLM2-135M-Instruct weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"CPU: {cpu_name()}; torch threads {torch.get_num_threads()}; cuda {torch.cuda.is_available()}")
    rows = []
    for requested in args.dtypes:
        dtype = resolve_dtype(requested, "cpu")
        if args.real:
            backbone = load_backbone("smollm2", device="cpu", dtype=dtype)
        else:
            backbone = smollm2_shaped(dtype, args.seed)
        rng = np.random.default_rng(args.seed)
        warm = make_conversations(backbone.tokenizer, 1, 2, args, np.random.default_rng(args.seed + 1))
        for share in (False, True):  # first calls of a shape pay one-off kernel set-up
            Featurizer(backbone, share_prompts=share, max_length=args.max_length).encode_conversations(*warm)
        for n in args.ns:
            row = measure(backbone, n, args, rng) | {"dtype": f"{requested} ({dtype})"}
            rows.append(row)
            print(
                f"  {row['dtype']} N={n}: plain {row['plain']:.2f}, shared {row['shared']:.2f} responses/s",
                flush=True,
            )
    weights = "real SmolLM2-135M-Instruct" if args.real else "random weights, SmolLM2-135M shape"
    low, high = args.response_tokens
    print(
        f"\n{weights}; prompt ≈{args.prompt_tokens} tokens, responses {low}–{high} tokens; "
        f"best of {args.rounds} round(s)\n"
    )
    header = ["dtype", "N", "prompts × N", "tokens/text", "plain resp/s", "shared resp/s", "shared/plain"]
    print("| " + " | ".join([*header, "max abs Δscore", "score sd"]) + " |")
    print("|---" * (len(header) + 2) + "|")
    for r in rows:
        cells = [r["dtype"], r["n"], f"{r['prompts']} × {r['n']}", f"{r['tokens']:.0f}", f"{r['plain']:.2f}"]
        cells += [f"{r['shared']:.2f}", f"{r['shared'] / r['plain']:.2f}×", f"{r['diff']:.1e}"]
        print("| " + " | ".join(str(c) for c in [*cells, f"{r['score_std']:.2f}"]) + " |")


if __name__ == "__main__":
    main()
