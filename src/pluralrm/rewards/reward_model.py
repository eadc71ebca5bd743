"""``RewardModel`` = a backbone's feature recipe + a general head + PCA heads, saved as a directory.

``save_pretrained(dir)`` writes ``config.json`` (backbone name and fingerprint, pooling, layer, max length,
dims, fit-data hash, versions) and ``heads.safetensors`` (components, explained variance, general head,
mean). No pickle anywhere. Loading next to a backbone with another fingerprint is refused: heads are only
meaningful on the exact features they were fitted on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.atomic import atomic_path, write_json
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead

CONFIG_FILE = "config.json"
HEADS_FILE = "heads.safetensors"
FORMAT = "pluralrm-reward-model/1"


class IncompatibleBackboneError(ValueError):
    """A reward model used with features from a different backbone, pooling or layer."""


def data_fingerprint(D: np.ndarray) -> str:
    """sha256 of the fit data, to tell which pairs a model was fitted on."""
    return hashlib.sha256(np.ascontiguousarray(D, dtype=np.float32).tobytes()).hexdigest()


@dataclass
class RewardModel:
    """Heads plus the recipe for the features they read.

    Attributes
    ----------
    namespace : dict
        The feature namespace (backbone fingerprint, pooling, layer, max length) — see
        :meth:`pluralrm.backbone.Featurizer.namespace`.
    backbone_name : str
        How to load the backbone again (``"minilm"``, a directory, a hub id).
    general : LinearRewardHead or None
    decomposed : DecomposedRewardModel or None
    metadata : dict
        Fit-data hash, sizes, anything worth keeping as provenance.
    """

    namespace: dict
    backbone_name: str
    general: LinearRewardHead | None = None
    decomposed: DecomposedRewardModel | None = None
    metadata: dict = field(default_factory=dict)
    _featurizer: Any = field(default=None, repr=False)

    # --- persistence --------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        import pluralrm

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, np.ndarray] = {}
        if self.general is not None:
            tensors["general"] = self.general.coef_.astype(np.float64)
        if self.decomposed is not None:
            tensors |= {
                "components": self.decomposed.components_,
                "explained_variance": self.decomposed.explained_variance_,
                "explained_variance_ratio": self.decomposed.explained_variance_ratio_,
                "mean": self.decomposed.mean_,
                "head_scale": self.decomposed.head_scale_,
            }
        if not tensors:
            raise ValueError("nothing to save: the model has neither a general head nor PCA heads")
        with atomic_path(directory / HEADS_FILE) as tmp:
            save_file({k: np.ascontiguousarray(v, np.float64) for k, v in tensors.items()}, tmp)
        n_features = next(iter(tensors.values())).shape[-1]
        write_json(
            directory / CONFIG_FILE,
            {
                "format": FORMAT,
                "backbone": self.backbone_name,
                "namespace": self.namespace,
                "n_features": int(n_features),
                "n_components": None if self.decomposed is None else len(self.decomposed.components_),
                "center": None if self.decomposed is None else self.decomposed.center,
                "general_alpha": None if self.general is None else self.general.alpha,
                "metadata": self.metadata,
                "versions": {"pluralrm": pluralrm.__version__, "numpy": np.__version__},
            },
        )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, namespace: dict | None = None) -> RewardModel:
        """Load a saved model; with ``namespace`` (of the features you will score), refuse a mismatch."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        for name in (CONFIG_FILE, HEADS_FILE):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory}: missing {name}; not a pluralrm reward model directory")
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("format") != FORMAT:
            raise ValueError(
                f"{directory / CONFIG_FILE}: format {config.get('format')!r}, expected {FORMAT!r}"
            )
        tensors = load_file(directory / HEADS_FILE)
        general = None
        if "general" in tensors:
            general = LinearRewardHead.from_coef(tensors["general"])
            general.alpha = config.get("general_alpha")
        decomposed = None
        if "components" in tensors:
            decomposed = DecomposedRewardModel(n_components=config["n_components"], center=config["center"])
            decomposed.components_ = tensors["components"]
            decomposed.explained_variance_ = tensors["explained_variance"]
            decomposed.explained_variance_ratio_ = tensors["explained_variance_ratio"]
            decomposed.mean_ = tensors["mean"]
            decomposed.head_scale_ = tensors["head_scale"]
            decomposed.n_features_in_ = decomposed.components_.shape[1]
        model = cls(
            namespace=config["namespace"],
            backbone_name=config["backbone"],
            general=general,
            decomposed=decomposed,
            metadata=config.get("metadata", {}),
        )
        if namespace is not None:
            model.check_namespace(namespace, what=str(directory))
        return model

    def check_namespace(self, namespace: dict, what: str = "this reward model") -> None:
        if namespace.get("backbone") != self.namespace.get("backbone"):
            raise IncompatibleBackboneError(
                f"{what} was fitted on features of backbone {self.namespace.get('backbone')!r}, but these "
                f"features come from {namespace.get('backbone')!r}; refit the heads or use that backbone"
            )
        if namespace != self.namespace:
            raise IncompatibleBackboneError(
                f"{what} was fitted on features {self.namespace}, but these are {namespace} "
                "(pooling, layer or max length differ)"
            )

    # --- scoring ------------------------------------------------------------------------------------

    def head_scores(self, H: np.ndarray) -> dict[str, np.ndarray]:
        """Rewards of feature rows ``H`` under the general head and every PCA head."""
        out: dict[str, np.ndarray] = {}
        if self.general is not None:
            out["general"] = self.general.reward(H)
        if self.decomposed is not None:
            scores = self.decomposed.scores(H)
            out |= {f"pc{j + 1}": scores[:, j] for j in range(scores.shape[1])}
        return out

    def featurizer(self, backbone: Any = None) -> Any:
        """The featurizer these heads read (loads the backbone by name on first use; torch from here)."""
        if self._featurizer is None:
            from pluralrm.backbone import FeatureSpec, Featurizer, load_backbone

            backbone = backbone or load_backbone(self.backbone_name)
            spec = FeatureSpec(**self.namespace["spec"])
            featurizer = Featurizer(backbone, spec=spec, max_length=self.namespace["max_length"])
            self.check_namespace(featurizer.namespace(spec), what=f"reward model for {self.backbone_name!r}")
            self._featurizer = featurizer
        return self._featurizer

    def score(self, prompts: Any, responses: Any, *, head: str = "general") -> np.ndarray:
        """Reward of ``responses[i]`` to ``prompts[i]`` (or of one response to one prompt)."""
        single = isinstance(responses, str)
        prompts, responses = ([prompts], [responses]) if single else (list(prompts), list(responses))
        H = self.featurizer().encode_conversations(prompts, responses)
        scores = self.head_scores(H)
        if head not in scores:
            raise KeyError(f"unknown head {head!r}; this model has {sorted(scores)}")
        return scores[head][0] if single else scores[head]
