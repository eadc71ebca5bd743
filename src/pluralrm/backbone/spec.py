"""Which vector a featurizer takes from a backbone (pooling, layer, normalization): part of every feature
namespace, so cached features, heads and profiles agree on what they read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pooling = Literal["last", "mean", "pooler"]
_POOLING_NAMES: dict[str, Pooling] = {"last": "last", "mean": "mean", "pooler": "pooler"}
POOLINGS = tuple(_POOLING_NAMES)


def as_pooling(name: str) -> Pooling:
    """A setting read as a plain string (config, command line) as a pooling, or a ValueError naming the
    choices.

    Examples
    --------
    >>> as_pooling("mean")
    'mean'
    """
    try:
        return _POOLING_NAMES[name]
    except KeyError:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {name!r}") from None


@dataclass(frozen=True)
class FeatureSpec:
    """Which vector to take from the backbone.

    Attributes
    ----------
    pooling : {"last", "mean", "pooler"}
        ``"last"``: hidden state of the last real token (causal LMs); ``"mean"``: mean over real tokens
        (encoders); ``"pooler"``: the encoder's own pooler output (BERT's dense + tanh over ``[CLS]``),
        which is what a BERT-style ``ForSequenceClassification`` head reads — so a fine-tuned reward model
        of that kind is a linear head on these features (:mod:`pluralrm.rewards.sequence_classifier`).
        Only at the final layer.
    layer : int
        Index into the hidden states: 0 is the embedding output, ``num_layers`` (or -1) the final layer.
    normalize : bool
        L2-normalize each vector (what sentence-transformers' MiniLM pipeline does).
    """

    pooling: Pooling = "last"
    layer: int = -1
    normalize: bool = False

    def __post_init__(self) -> None:
        as_pooling(self.pooling)


def default_spec(kind: str) -> FeatureSpec:
    """Last-token pooling for causal LMs, mean pooling for encoders (final layer)."""
    return FeatureSpec(pooling="last" if kind == "causal" else "mean", layer=-1)
