"""One RAFT round, small and honest (issue 10): generate → rank → best-of-N → LoRA SFT → generate again.

1. Two rewards, both MiniLM features + a Bradley–Terry general head: the **optimized** one fitted on HH
   helpful pairs whose prompts are not used below, and a **held-out** one fitted on WebGPT pairs (other
   people's labels on other prompts), never used for selection.
2. ``--train-prompts`` HH helpful prompts: SmolLM2-135M-Instruct samples ``--n`` responses each; the
   optimized reward ranks them; the best response per prompt becomes SFT data (``pluralrm select
   best-of-n``); LoRA SFT with TRL (``pluralrm sft``).
3. ``--eval-prompts`` *other* prompts: the base model and the fine-tuned one each sample ``--eval-n``
   responses with the same seeds; both rewards score them. Reported: mean reward per prompt before and
   after, the paired difference with a 95 % bootstrap interval over prompts, for each reward.

Usage::

    python benchmarks/raft_round.py --out out/raft
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pluralrm.atomic import write_json, write_jsonl
from pluralrm.backbone import FeatureCache, Featurizer, featurize_pairs, load_backbone
from pluralrm.config import FINETUNE, GENERATE
from pluralrm.data import load_pairs, load_ranked
from pluralrm.data.features import prompt_group
from pluralrm.evaluate.metrics import bootstrap_interval
from pluralrm.generate import generate, load_prompts
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.select import best_of_n, featurize_ranked, rewards_from_features
from pluralrm.training.policy import finetune_sft

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HELPFUL = SHARED / "dsp/helpful.test-dev.json.gz"
WEBGPT = SHARED / "dsp/webgpt.test-dev.json.gz"


def fit_reward(pairs: list[dict], featurizer: Featurizer) -> RewardModel:
    features = featurize_pairs(pairs, featurizer)
    return fit_reward_model(features, n_components=8, backbone_name=featurizer.backbone.name)


def prompt_means(records: list[dict], model: RewardModel) -> np.ndarray:
    """Mean reward of each prompt's responses under ``model`` (the one scoring path)."""
    rewards = rewards_from_features(featurize_ranked(records, model.featurizer()), model)
    return np.array([r.mean() for r in rewards])


def paired_interval(before: np.ndarray, after: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``after − before`` over prompts and its 95 % percentile bootstrap interval."""
    diff = after - before
    low, high = bootstrap_interval(diff, n_resamples=2000, seed=seed)
    return float(diff.mean()), low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-prompts", type=int, default=32)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--eval-n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in (HELPFUL, WEBGPT):
        if not path.exists():
            raise SystemExit(f"real data not available: {path} is absent")
    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        print(f"{name}: {timings[name]} s", flush=True)
        return time.perf_counter()

    # Prompts: single-turn HH helpful prompts, split into train / eval, none of them in the reward's data.
    prompts = [p for p in load_prompts(HELPFUL, skip_invalid=True) if isinstance(p.prompt, list)]
    prompts = [p for p in prompts if len(p.prompt) == 1 and len(p.prompt[0]["content"]) < 400]
    order = np.random.default_rng(args.seed).permutation(len(prompts))
    train = [prompts[i] for i in order[: args.train_prompts]]
    held = [prompts[i] for i in order[args.train_prompts : args.train_prompts + args.eval_prompts]]
    used = {prompt_group(p.prompt) for p in train + held}
    for name, chosen in (("train_prompts", train), ("eval_prompts", held)):
        write_jsonl(out / f"{name}.jsonl", ({"id": p.id, "prompt": p.prompt} for p in chosen))

    t = time.perf_counter()
    featurizer = Featurizer(load_backbone("minilm", dtype="float32"), cache=FeatureCache.default())
    helpful = [
        p for p in load_pairs(HELPFUL, skip_invalid=True).records if prompt_group(p["prompt"]) not in used
    ]
    optimized = fit_reward(helpful, featurizer)
    held_out = fit_reward(load_pairs(WEBGPT, skip_invalid=True).records, featurizer)
    for model in (optimized, held_out):  # score with the backbone already loaded, through the cache
        model.featurizer(backbone=featurizer.backbone, cache=featurizer.cache)
    t = lap("fit the two rewards", t)

    sampling = replace(GENERATE, n=args.n, max_new_tokens=args.max_new_tokens, seed=args.seed)
    generate(out / "train_prompts.jsonl", out / "train_generated.jsonl", config=sampling)
    t = lap(f"generate {args.train_prompts}×{args.n} (base)", t)

    records = load_ranked(out / "train_generated.jsonl").records
    rewards = rewards_from_features(featurize_ranked(records, optimized.featurizer()), optimized)
    rewarded = [dict(r, rewards=v.tolist()) for r, v in zip(records, rewards, strict=True)]
    selection = best_of_n(rewarded)
    write_jsonl(out / "best_of_n.jsonl", selection.rows)
    train_mean = float(np.mean([v.mean() for v in rewards]))
    train_best = float(np.mean([v.max() for v in rewards]))
    t = lap("rank + best-of-N", t)

    result = finetune_sft(
        out / "best_of_n.jsonl",
        model="smollm2",
        out_dir=out / "sft",
        config=replace(FINETUNE, epochs=args.epochs, seed=args.seed),
    )
    t = lap("LoRA SFT", t)

    eval_sampling = replace(sampling, n=args.eval_n)
    generate(out / "eval_prompts.jsonl", out / "eval_base.jsonl", config=eval_sampling)
    generate(
        out / "eval_prompts.jsonl",
        out / "eval_tuned.jsonl",
        config=replace(eval_sampling, model=str(result.merged_dir)),
    )
    t = lap(f"generate {args.eval_prompts}×{args.eval_n} twice (base, tuned)", t)

    before = load_ranked(out / "eval_base.jsonl").records
    after = load_ranked(out / "eval_tuned.jsonl").records
    table = {}
    for name, model in (("optimized (HH helpful)", optimized), ("held-out (WebGPT)", held_out)):
        b, a = prompt_means(before, model), prompt_means(after, model)
        diff, low, high = paired_interval(b, a, seed=args.seed)
        table[name] = {"before": float(b.mean()), "after": float(a.mean()), "diff": diff, "ci": [low, high]}
    lengths = {
        name: float(np.mean([len(r) for rec in recs for r in rec["responses"]]))
        for name, recs in (("before", before), ("after", after))
    }
    lap("score eval responses", t)

    print(f"\ntrain prompts: mean reward {train_mean:+.3f}, of the best-of-{args.n} {train_best:+.3f}")
    print(f"SFT: {result.n_records} records, loss {result.first_loss:.3f} → {result.last_loss:.3f}")
    print("\n| reward | before | after | after − before (95% CI over prompts) |\n|---|---|---|---|")
    for name, row in table.items():
        print(
            f"| {name} | {row['before']:+.3f} | {row['after']:+.3f} | {row['diff']:+.3f} "
            f"({row['ci'][0]:+.3f} … {row['ci'][1]:+.3f}) |"
        )
    print(f"mean response length (chars): before {lengths['before']:.0f}, after {lengths['after']:.0f}")
    write_json(
        out / "summary.json",
        {
            "rewards": table,
            "train": {"mean_reward": train_mean, "best_of_n_reward": train_best, "n": args.n},
            "sft": {
                "records": result.n_records,
                "first_loss": result.first_loss,
                "last_loss": result.last_loss,
            },
            "lengths": lengths,
            "timings_s": timings,
            "args": {k: str(v) for k, v in vars(args).items()},
            "seconds": round(time.perf_counter() - start, 1),
        },
    )


if __name__ == "__main__":
    main()
