"""Linear-probe initialization of the reward head before fine-tuning (LP-FT).

Fine-tuning starts from whatever head the starting model has: a random one on a base LM, the general RM's
on stage 3. When the domain user disagrees with the general preference (DSP's entertainment user: the
stage-2 head ranks their preferred answers *below* the rejected ones), the first steps spend the budget
turning the head around, and the backbone's features are distorted while the head is still wrong
(Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution").
LP-FT fits the head first — a Bradley–Terry head on the starting model's *frozen* features of the
training pairs, exactly what ``decompose``'s general head or ``user-bt`` would be — and then fine-tunes
everything from there, so training starts at the linear probe's accuracy instead of below chance.

The features are the reward head's own input (captured on it during a forward pass), so the fitted head
scores the model's pooled vector exactly as the trained model will.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pluralrm.backbone.featurizer import pool_hidden
from pluralrm.config import DECOMPOSE
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.training.customize.trainer import PreferenceCollator, captured_head_input, reward_head

logger = logging.getLogger(__name__)


def _pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The vector the head scores: BERT's classifier reads one vector per text (the pooler output); a causal
    ``score`` reads every position and the model keeps the last real token's — the featurizer's "last"."""
    if hidden.dim() == 2:
        return hidden.float()
    return pool_hidden(hidden, attention_mask, "last")


@torch.no_grad()
def pair_differences(
    model: torch.nn.Module,
    examples: Sequence[dict],
    pad_token_id: int,
    *,
    batch_size: int,
    device: str,
    dtype: str,
) -> np.ndarray:
    """``h(chosen) − h(rejected)`` for tokenized examples (``chosen_ids``, ``rejected_ids``), float64."""
    collate = PreferenceCollator(pad_token_id=pad_token_id)
    was_training = model.training
    model.eval().to(device)
    autocast = torch.autocast(
        device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16"
    )
    rows: list[np.ndarray] = []
    try:
        for start in range(0, len(examples), batch_size):
            chunk = [
                {k: ex[k] for k in ("chosen_ids", "rejected_ids")}
                for ex in examples[start : start + batch_size]
            ]
            batch = collate(chunk)
            input_ids = batch["input_ids"].to(device)
            attention_mask = batch["attention_mask"].to(device)
            with captured_head_input(model) as captured, autocast:
                model(input_ids=input_ids, attention_mask=attention_mask)
            pooled = _pooled(captured[0], attention_mask)
            chosen, rejected = pooled.chunk(2)
            rows.append((chosen - rejected).cpu().double().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(rows)


def initialize_head_by_probe(
    model: torch.nn.Module,
    train: Sequence[dict],
    validation: Sequence[dict],
    pad_token_id: int,
    *,
    batch_size: int,
    device: str,
    dtype: str,
) -> dict[str, Any]:
    """Fit a Bradley–Terry head on the frozen features of ``train`` and write it into the reward head.

    Its L2 penalty is chosen on the validation pairs (held-out prompts) when there are any, else it is
    ``decompose``'s default. The head's bias, where it has one, is set to 0 (it cancels in every pair).
    Returns what is recorded in the model's metadata: the penalty and the probe's accuracies.
    """

    def differences(examples: Sequence[dict]) -> np.ndarray:
        return pair_differences(
            model, examples, pad_token_id, batch_size=batch_size, device=device, dtype=dtype
        )

    D_train = differences(train)
    if validation:
        D_val = differences(validation)
        head, by_alpha = fit_general_head(D_train, D_val)
        validation_accuracy: float | None = by_alpha[head.alpha]
    else:
        head = LinearRewardHead(alpha=DECOMPOSE.alpha).fit(D_train)
        validation_accuracy = None
    module = reward_head(model)
    weight = module.get_parameter("weight")  # typed, unlike module.weight (Tensor | Module to torch)
    with torch.no_grad():
        weight.copy_(torch.as_tensor(head.coef_, dtype=weight.dtype).reshape(weight.shape))
        if getattr(module, "bias", None) is not None:
            module.get_parameter("bias").zero_()
    record = {
        "kind": "probe",
        "alpha": head.alpha,
        "train_accuracy": float(head.score(D_train)),
        "validation_accuracy": validation_accuracy,
    }
    logger.info(
        "head initialized by a linear probe on %d pairs: train accuracy %.3f, validation %s (alpha %g)",
        len(train),
        record["train_accuracy"],
        "–" if validation_accuracy is None else f"{validation_accuracy:.3f}",
        head.alpha,
    )
    return record


__all__ = ["initialize_head_by_probe", "pair_differences"]
