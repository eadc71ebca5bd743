"""Customized reward models by fine-tuning the backbone itself (the three-stage scheme of Cheng et al. 2023).

Everything else in pluralrm keeps the backbone frozen; this package is where it is trained. The result is a
standard ``ForSequenceClassification`` reward model directory that every pluralrm verb also reads
(:mod:`pluralrm.rewards.sequence_classifier`). torch, transformers, TRL and peft load only when training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CustomizeResult", "customize_reward_model"]


def __getattr__(name: str) -> Any:  # lazy: importing pluralrm.training.customize costs nothing
    if name in __all__:
        from pluralrm.training.customize import train

        return getattr(train, name)
    raise AttributeError(name)
