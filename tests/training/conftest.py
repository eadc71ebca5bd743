"""Small preference data with a learnable rule, for training tiny reward models in seconds."""

from __future__ import annotations

import pytest

GOOD = ["Paris is the capital of France.", "Hello world, the answer is Paris.", "The capital is Paris."]
BAD = ["no", "what", "capital capital"]


def rule_pairs(n_prompts: int = 12, *, subset: str | None = None) -> list[dict]:
    """Pairs whose chosen response is always a long sentence and the rejected one a short fragment."""
    pairs = []
    for i in range(n_prompts):
        for j, (good, bad) in enumerate(zip(GOOD, BAD, strict=True)):
            pair = {
                "prompt": f"Question {i}: what is the capital of France?",
                "chosen": good,
                "rejected": bad,
            }
            pair["id"] = f"{i}/{j}"
            if subset:
                pair["subset"] = subset
            pairs.append(pair)
    return pairs


@pytest.fixture
def pairs() -> list[dict]:
    return rule_pairs()
