"""A decomposed reward model in one file: pairs → features → heads → a new user from a few pairs → scores.

Run from the repository root after ``bash scripts/setup.sh`` (about a minute on a CPU; MiniLM comes with
pluralrm's dependencies, nothing is downloaded)::

    .venv/bin/python examples/decomposed_reward.py
    .venv/bin/python examples/decomposed_reward.py --user playful --pairs 10

What it does, step by step (each step is one library call):

1. built-in synthetic pluralistic data: seven simulated users whose tastes conflict on purpose
   (:mod:`pluralrm.data.synthetic`); one of them, ``--user``, is kept out of the pool entirely: nobody
   in the pool has seen them;
2. features: every response featurized once by the default backbone (``FeaturizeConfig``: MiniLM, the
   backbone ``pluralrm demo`` uses);
3. the pool's reward model: a general Bradley–Terry head and PCA heads fitted on the other users' pairs,
   with the general head's L2 penalty picked on prompts held out of the fit;
4. each head's accuracy on those held-out prompts: the heads are directions the pool disagrees along,
   not rewards the pool agrees on;
5. the new user gives ``--pairs`` labelled pairs; ``build_profile`` turns them into their personal reward
   (the default adapter); it is scored on prompts the user never labelled for adaptation;
6. the same responses ranked by the general reward and by the user's: texts in, rewards out.

The library never prints; this example does, because that is what it is for.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pluralrm.adapt import build_profile
from pluralrm.backbone import build_featurizer
from pluralrm.backbone.pairs import featurize_pairs
from pluralrm.config import DEMO_DECOMPOSE, FEATURIZE
from pluralrm.data.splits import group_split
from pluralrm.data.synthetic import default_users, make_synthetic_preferences
from pluralrm.rewards import fit_pool
from pluralrm.rewards.math import pair_correctness


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the walk-through; return what it printed as numbers (the test reads them)."""
    args = _parser().parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # 1. Pairs with ground truth: each simulated user labels pairs of the same responses differently.
    data = make_synthetic_preferences(n_prompts=args.prompts, pairs_per_prompt=8, seed=args.seed)
    print(f"{len(data.pairs)} pairs from {len(data.users)} simulated users; new user: {args.user}")

    # 2. Features: one forward pass per distinct response (pairs share responses).
    featurizer = build_featurizer(replace(FEATURIZE, backbone=args.backbone))
    features = featurize_pairs(data.pairs, featurizer, source="synthetic")
    is_new = np.array([user == args.user for user in features.users])
    pool, mine = features.select(np.flatnonzero(~is_new)), features.select(np.flatnonzero(is_new))
    print(f"features: {features.chosen.shape[1]} dimensions per response ({args.backbone})")

    # 3. The pool's model, by the one recipe `pluralrm decompose` uses: a share of the prompts held out to
    #    choose the general head's L2 penalty, the heads fitted on the rest.
    fit = fit_pool(pool, DEMO_DECOMPOSE, seed=args.seed)
    model, val = fit.model, pool.select(fit.val)

    # 4. Accuracy of the general head and the top heads on the pool's held-out prompts.
    heads = ["general", *model.head_names[1 : args.show_heads + 1]]
    head_accuracy = {h: float(pair_correctness(model.margins(val, head=h)).mean()) for h in heads}
    ratio = model.decomposed.explained_variance_ratio_
    print("pool, held-out prompts: " + ", ".join(f"{h} {a:.3f}" for h, a in head_accuracy.items()))
    print("explained variance of the top heads: " + ", ".join(f"{r:.2f}" for r in ratio[: args.show_heads]))

    # 5. A new user: k labelled pairs on some prompts, tested on pairs of their other prompts.
    adapt_idx, test_idx = group_split(mine.groups, [0.5, 0.5], seed=args.seed)
    picked = rng.choice(adapt_idx, size=min(args.pairs, len(adapt_idx)), replace=False)
    profile = build_profile(model, args.user, mine.differences[picked])
    test = mine.select(test_idx)
    general = float(pair_correctness(model.margins(test)).mean())
    personal = float(pair_correctness(model.margins(test, user=profile)).mean())
    print(
        f"{args.user} on {len(test)} test pairs: general head {general:.3f}, "
        f"personalized from {len(picked)} pairs ({profile.method}) {personal:.3f}"
    )

    # 6. Scores: the responses to one of the user's test prompts, best first for each reward.
    prompt = [pair for pair in data.pairs if pair["user"] == args.user][test_idx[0]]["prompt"]
    responses = sorted({r["text"] for r in data.responses if r["prompt"] == prompt})
    by_general = model.rank(prompt, responses, k=1)[0]
    by_user = model.rank(prompt, responses, user=profile, k=1)[0]
    print(f"prompt: {prompt!r}")
    print(f"  the general reward's pick: {_short(by_general.response)}")
    print(f"  {args.user}'s pick: {_short(by_user.response)}")
    return {
        "head_accuracy": head_accuracy,
        "general_accuracy": general,
        "personal_accuracy": personal,
        "adapter": profile.method,
        "n_adapt_pairs": len(picked),
        "n_test_pairs": len(test),
    }


def _short(text: str, width: int = 96) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="cautious", choices=sorted(default_users()), help="The new user.")
    parser.add_argument("--pairs", type=int, default=20, help="Labelled pairs the new user gives.")
    parser.add_argument("--prompts", type=int, default=48, help="Synthetic prompts (6 responses each).")
    parser.add_argument("--backbone", default=FEATURIZE.backbone, help="Named backbone or model directory.")
    parser.add_argument("--show-heads", type=int, default=4, help="PCA heads whose accuracy is printed.")
    parser.add_argument("--seed", type=int, default=0)
    return parser


if __name__ == "__main__":
    main()
