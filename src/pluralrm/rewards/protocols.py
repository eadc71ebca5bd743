"""What the reward layer and the layers above it need of the objects they are handed, as Protocols.

A featurizer and a user profile are made in other packages (:class:`pluralrm.backbone.Featurizer`,
:class:`pluralrm.adapt.UserProfile`), but scoring, ranking, collection and serving only use a few of their
members. Naming those members here — in the lowest package that consumes them — lets a type checker hold
every caller to them without an import upward, and lets tests hand in small fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from pluralrm.backbone.spec import FeatureSpec
    from pluralrm.data.records import Prompt


class Profile(Protocol):
    """What the scoring path needs of a user profile (:class:`pluralrm.adapt.UserProfile`).

    ``weights`` are over the PCA heads of the head set named by ``head_set``; ``full`` is the part of the
    reward vector outside the heads' span, or None.
    """

    @property
    def user(self) -> str: ...
    @property
    def weights(self) -> np.ndarray: ...
    @property
    def head_set(self) -> str: ...
    @property
    def full(self) -> np.ndarray | None: ...

    def check_head_set(self, head_set: str) -> None: ...


class ConversationEncoder(Protocol):
    """Features of responses given their prompts: all that scoring texts needs of a featurizer."""

    def encode_conversations(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> np.ndarray:
        """``(len(responses), n_features)`` float32 features of ``responses[i]`` given ``prompts[i]``."""
        ...


class FeatureEncoder(ConversationEncoder, Protocol):
    """What the layers above ``backbone`` use of :class:`pluralrm.backbone.Featurizer`: its feature recipe
    (``spec``, ``namespace``) and its encoders of formatted texts and of (prompt, response) pairs."""

    @property
    def spec(self) -> FeatureSpec: ...

    def namespace(self, spec: FeatureSpec) -> dict:
        """What identifies features of ``spec`` (backbone fingerprint, pooling, layer, length, dtype)."""
        ...

    def format(self, prompt: Prompt, response: str) -> str:
        """The text the backbone reads for one (prompt, response)."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), n_features)`` features of already formatted texts."""
        ...
