"""A fine-tuned ``ForSequenceClassification`` reward model read as a pluralrm :class:`RewardModel`.

``pluralrm customize`` saves standard Hugging Face reward models (one scalar ``score``/``classifier`` head,
what TRL and OpenRLHF load). Their reward is linear in one vector the backbone computes — the last real
token's final hidden state for causal LMs, the pooler output for BERT-style encoders — so it is a general
head over pluralrm features of that backbone, and every verb that takes a reward (``score``, ``evaluate``,
``rank``, ``serve``) scores it through the one scoring path, ``H @ w``.

One difference from transformers' logits: a BERT classifier's bias is left out (it is recorded in the
metadata as ``score_bias``). A constant added to every reward changes no comparison, ranking or selection.

This module reads the head with numpy (safetensors), so loading a reward model imports no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pluralrm.rewards.errors import RewardModelLoadError

METADATA_FILE = "pluralrm_customize.json"
FORMAT = "pluralrm-customized-reward-model/1"
# The reward head's weight (and bias) inside a ForSequenceClassification checkpoint, by architecture family.
HEAD_WEIGHTS = ("score.weight", "classifier.weight")
HEAD_BIASES = ("score.bias", "classifier.bias")


def is_customized_reward_model(directory: str | Path) -> bool:
    """Whether ``directory`` holds a reward model written by ``pluralrm customize``."""
    return (Path(directory) / METADATA_FILE).is_file()


def read_head(directory: str | Path) -> tuple[np.ndarray, float]:
    """The reward head's weight vector and bias (0.0 when it has none) from the checkpoint's safetensors."""
    from safetensors import safe_open

    directory = Path(directory)
    index = directory / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = {
            name: directory / weight_map[name] for name in (*HEAD_WEIGHTS, *HEAD_BIASES) if name in weight_map
        }
    else:
        files = dict.fromkeys((*HEAD_WEIGHTS, *HEAD_BIASES), directory / "model.safetensors")
    found: dict[str, np.ndarray] = {}
    for name, path in files.items():
        if not path.exists():
            raise FileNotFoundError(f"{directory}: missing {path.name}; not a saved reward model")
        with safe_open(str(path), framework="np") as handle:
            if name in handle.keys():  # noqa: SIM118 (safe_open handles are not containers)
                found[name] = handle.get_tensor(name)
    weights = [found[n] for n in HEAD_WEIGHTS if n in found]
    if not weights:
        raise ValueError(f"{directory}: no reward head ({' or '.join(HEAD_WEIGHTS)}) in the checkpoint")
    weight = np.asarray(weights[0], dtype=np.float64)
    if weight.ndim != 2 or weight.shape[0] != 1:
        raise ValueError(
            f"{directory}: the reward head has shape {weight.shape}; a reward model has one output"
        )
    biases = [found[n] for n in HEAD_BIASES if n in found]
    return weight[0], float(np.asarray(biases[0]).reshape(-1)[0]) if biases else 0.0


def read_classifier(directory: str | Path) -> tuple[dict, np.ndarray, float]:
    """What a ``pluralrm customize`` output directory holds for scoring: its metadata (with the
    ``namespace`` of the features the head reads), the reward head's coefficients and its bias.

    :meth:`pluralrm.rewards.RewardModel.from_pretrained` builds the reward model from them.
    """
    directory = Path(directory)
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RewardModelLoadError(f"{directory / METADATA_FILE}: not readable JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or "namespace" not in metadata:
        raise RewardModelLoadError(
            f"{directory / METADATA_FILE}: expected format {FORMAT!r} with a 'namespace'; not written by "
            "pluralrm customize"
        )
    try:
        coef, bias = read_head(directory)
    except ValueError as error:
        raise RewardModelLoadError(str(error)) from None
    return metadata, coef, bias


__all__ = [
    "FORMAT",
    "METADATA_FILE",
    "is_customized_reward_model",
    "read_classifier",
    "read_head",
]
