"""Featurized preference pairs: ``H_chosen`` and ``H_rejected`` with the metadata to trust them.

This is the hand-off between the backbone (torch) and everything downstream (numpy): a directory with
``features.safetensors`` (``chosen``, ``rejected``: float32, shape (n_pairs, d)) and ``features.json``
(what produced them, and each pair's id, subset and user). Loading needs only numpy and safetensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.atomic import atomic_path, write_json

FEATURES_FILE = "features.safetensors"
META_FILE = "features.json"


def prompt_group(prompt: str | list) -> str:
    """A short stable key of a prompt (string or messages), so splits can keep a prompt on one side."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class PairFeatures:
    """Features of the chosen and rejected response of each pair.

    Attributes
    ----------
    chosen, rejected : ndarray of shape (n_pairs, n_features)
    ids, subsets, users : list of str or None, one per pair
    groups : list of str, one per pair
        Pairs with the same group share a prompt; splits keep a group on one side so that a test
        prompt is never seen in training (defaults to the ids: every pair its own group).
    namespace : dict
        Backbone fingerprint, pooling, layer, max length — what makes two feature sets comparable.
    backbone_name : str
        How the backbone was named when loaded (to load it again for scoring).
    """

    chosen: np.ndarray
    rejected: np.ndarray
    ids: list[str | None]
    subsets: list[str | None] = field(default_factory=list)
    users: list[str | None] = field(default_factory=list)
    namespace: dict = field(default_factory=dict)
    source: str = ""
    groups: list[str] = field(default_factory=list)
    backbone_name: str = ""

    def __post_init__(self) -> None:
        if self.chosen.shape != self.rejected.shape or self.chosen.ndim != 2:
            raise ValueError(
                f"chosen {self.chosen.shape} and rejected {self.rejected.shape} must be equal 2-D shapes"
            )
        n = len(self.chosen)
        self.subsets = self.subsets or [None] * n
        self.users = self.users or [None] * n
        self.groups = self.groups or [str(i if i is not None else k) for k, i in enumerate(self.ids)]
        for name in ("ids", "subsets", "users", "groups"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} pairs")

    def __len__(self) -> int:
        return len(self.chosen)

    @property
    def differences(self) -> np.ndarray:
        """``D = H_chosen − H_rejected``, shape (n_pairs, n_features)."""
        return self.chosen - self.rejected

    def select(self, indices: np.ndarray | list[int]) -> PairFeatures:
        """The pairs at ``indices`` (a train/test split, a subset, a user)."""
        idx = np.asarray(indices, dtype=int)
        per_pair: dict[str, Any] = {
            name: [getattr(self, name)[i] for i in idx] for name in ("ids", "subsets", "users", "groups")
        }
        return replace(self, chosen=self.chosen[idx], rejected=self.rejected[idx], **per_pair)

    @classmethod
    def concatenate(cls, parts: list[PairFeatures]) -> PairFeatures:
        """Pairs of several feature sets made the same way (same backbone, pooling, layer, dtype).

        Examples
        --------
        >>> a = PairFeatures(chosen=np.ones((2, 3)), rejected=np.zeros((2, 3)), ids=["a0", "a1"])
        >>> b = PairFeatures(chosen=np.ones((1, 3)), rejected=np.zeros((1, 3)), ids=["b0"])
        >>> PairFeatures.concatenate([a, b]).ids
        ['a0', 'a1', 'b0']
        """
        if not parts:
            raise ValueError("concatenate needs at least one feature set")
        first = parts[0]
        for other in parts[1:]:
            if other.namespace != first.namespace:
                raise ValueError(
                    f"cannot pool features made differently: {first.source or 'the first set'} has "
                    f"{first.namespace}, {other.source or 'another set'} has {other.namespace}"
                )
        per_pair: dict[str, Any] = {
            name: [value for part in parts for value in getattr(part, name)]
            for name in ("ids", "subsets", "users", "groups")
        }
        return replace(
            first,
            chosen=np.concatenate([p.chosen for p in parts]),
            rejected=np.concatenate([p.rejected for p in parts]),
            source=" + ".join(p.source for p in parts if p.source),
            **per_pair,
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``features.safetensors`` + ``features.json`` into ``directory`` (atomically each)."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / FEATURES_FILE) as tmp:
            save_file(
                {
                    "chosen": np.ascontiguousarray(self.chosen, np.float32),
                    "rejected": np.ascontiguousarray(self.rejected, np.float32),
                },
                tmp,
            )
        write_json(
            directory / META_FILE,
            {
                "n_pairs": len(self),
                "n_features": int(self.chosen.shape[1]),
                "namespace": self.namespace,
                "source": self.source,
                "ids": self.ids,
                "subsets": self.subsets,
                "users": self.users,
                "groups": self.groups,
                "backbone_name": self.backbone_name,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PairFeatures:
        from safetensors.numpy import load_file

        directory = Path(directory)
        for name in (FEATURES_FILE, META_FILE):
            if not (directory / name).exists():
                raise FileNotFoundError(
                    f"{directory}: missing {name}; is this a `pluralrm featurize` output?"
                )
        arrays = load_file(directory / FEATURES_FILE)
        meta = json.loads((directory / META_FILE).read_text())
        return cls(
            chosen=arrays["chosen"],
            rejected=arrays["rejected"],
            ids=meta["ids"],
            subsets=meta["subsets"],
            users=meta["users"],
            namespace=meta["namespace"],
            source=meta.get("source", ""),
            groups=meta.get("groups", []),
            backbone_name=meta.get("backbone_name", ""),
        )
