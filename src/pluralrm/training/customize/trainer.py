"""TRL's ``RewardTrainer`` plus customized imitation: the one change to how a reward model trains.

Bradley–Terry training, mixed precision, gradient checkpointing, LoRA, checkpoints and multi-GPU launch
(accelerate / DeepSpeed / FSDP) are TRL's and transformers'. The subclass adds only the DSP paper's
*customized imitation* (``--lm_loss_coeff`` in its code): a language-modelling loss on the preferred
response, ``loss = BT + imitation · CE(chosen response tokens)``. It needs the LM's output embedding, which a
``ForSequenceClassification`` model no longer has; with tied embeddings (SmolLM2) that is the input
embedding matrix, otherwise the caller passes the base LM's head weight. The LM logits are computed only
at the response's positions (a 49k-token vocabulary over whole batches would cost far more memory).

The hidden states the LM head reads are the ones the reward head reads (captured on its input), so one
forward pass serves both losses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference


class PreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator that also carries each chosen example's ``response_start``."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        starts = [example["response_start"] for example in examples if "response_start" in example]
        trimmed = [
            {k: v for k, v in ex.items() if k in ("chosen_ids", "rejected_ids", "margin")} for ex in examples
        ]
        output = super().torch_call(trimmed)
        if starts:
            output["response_start"] = torch.tensor(starts, dtype=torch.long)
        return output


def reward_head(model: torch.nn.Module) -> torch.nn.Module:
    """The outermost module named ``score`` (causal LMs) or ``classifier`` (BERT): the reward head.

    The outermost one, because peft wraps the head (``ModulesToSaveWrapper``) and the wrapper's input is
    the same tensor.
    """
    for name, module in model.named_modules():
        if name.split(".")[-1] in ("score", "classifier"):
            return module
    raise ValueError(f"{type(model).__name__} has no 'score' or 'classifier' head")


@contextmanager
def captured_head_input(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of the reward head during one forward pass (a list that fills with one tensor)."""
    captured: list[torch.Tensor] = []
    handle = reward_head(model).register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
    try:
        yield captured
    finally:
        handle.remove()


def imitation_loss(
    hidden: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_start: torch.Tensor,
    lm_weight: torch.Tensor,
) -> torch.Tensor:
    """Mean next-token cross-entropy over the response tokens of each sequence.

    Position ``t`` predicts token ``t + 1``; a target counts when it is a real token at or after the
    response's first token. ``hidden`` is (batch, seq, d), ``lm_weight`` (vocab, d).
    """
    seq = input_ids.shape[1]
    positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
    target_ok = (attention_mask[:, 1:] == 1) & (positions[:, 1:] >= response_start.unsqueeze(1))
    if not bool(target_ok.any()):
        return (
            hidden.sum() * 0.0
        )  # no response token survived truncation: contributes nothing, keeps the graph
    rows, cols = target_ok.nonzero(as_tuple=True)
    logits = hidden[rows, cols].float() @ lm_weight.float().T  # only where a response token is predicted
    return torch.nn.functional.cross_entropy(logits, input_ids[rows, cols + 1])


class CustomizeTrainer(RewardTrainer):
    """``RewardTrainer`` with an optional imitation term (see the module docstring).

    Parameters
    ----------
    imitation : float
        Weight of the language-modelling loss on the chosen response; 0 trains exactly as RewardTrainer.
    lm_weight : torch.Tensor, optional
        The LM output embedding (vocab, d) when it is not tied to the input embeddings; frozen.
    """

    def __init__(
        self, *args: Any, imitation: float = 0.0, lm_weight: torch.Tensor | None = None, **kwargs: Any
    ):
        self.imitation = float(imitation)
        self._lm_weight = lm_weight
        super().__init__(*args, **kwargs)

    def _set_signature_columns_if_needed(self) -> None:
        # Keep what the collator and the length-grouped sampler read; the rest is dropped as TRL does.
        if self._signature_columns is None:
            columns = ["chosen_ids", "rejected_ids", "margin", "response_start", "length"]
            # transformers' Trainer declares the attribute only by assigning None: its type is None alone
            self._signature_columns = columns  # type: ignore[assignment]

    def _lm_head(self, model: Any) -> torch.Tensor:  # a transformers or peft model
        if self._lm_weight is None:
            return model.get_input_embeddings().weight
        weight = self._lm_weight.to(model.get_input_embeddings().weight.device)
        self._lm_weight = weight
        return weight

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        starts = inputs.pop("response_start", None)
        if self.imitation == 0.0 or starts is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with captured_head_input(model) as captured:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        n_chosen = starts.shape[0]
        lm = imitation_loss(
            captured[0][:n_chosen],
            inputs["input_ids"][:n_chosen],
            inputs["attention_mask"][:n_chosen],
            starts,
            self._lm_head(model),
        )
        mode = "train" if model.training else "eval"
        self._metrics[mode]["imitation_loss"].append(float(lm.detach()))
        loss = loss + self.imitation * lm
        return (loss, outputs) if return_outputs else loss


__all__ = ["CustomizeTrainer", "PreferenceCollator", "captured_head_input", "imitation_loss", "reward_head"]
