"""``RewardModel`` = a feature recipe + a general head + PCA heads: **the one scoring path**.

Every reward a user sees — the CLI's ``score`` and ``evaluate``, k-shot curves, the demo, benchmarks,
and what later serves or ranks responses — is ``H @ reward_vector(user=…, head=…)``: because every pluralrm
reward is linear in the features, the general head, a single PCA head and a user's personal reward
``Σ_j w_j r_j`` are each one vector in feature space, and scoring a batch is one matrix-vector product.

Saved as a directory (``save_pretrained``): ``config.json`` (format, backbone name, feature namespace,
dims, each estimator's parameters, provenance, versions) and ``heads.safetensors`` (each estimator's
fitted arrays under ``general.*`` and ``pca.*``). Loading checks both files and says in one line what is
wrong; heads are refused on features of another backbone, pooling, layer or dtype.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pluralrm.atomic import atomic_path, write_json
from pluralrm.config import FEATURIZE
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.errors import RewardModelLoadError
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.protocols import Profile
from pluralrm.validation import check_matrix

if TYPE_CHECKING:
    from pluralrm.backbone.feature_cache import FeatureCache
    from pluralrm.backbone.featurizer import Featurizer
    from pluralrm.backbone.loading import Backbone
    from pluralrm.data.features import PairFeatures
    from pluralrm.data.records import Prompt

CONFIG_FILE = "config.json"
HEADS_FILE = "heads.safetensors"
FORMAT = "pluralrm-reward-model/2"
_FORMAT_V1 = "pluralrm-reward-model/1"  # flat array names; still read
_V1_ARRAYS = {
    "general": "general.coef",
    "components": "pca.components",
    "explained_variance": "pca.explained_variance",
    "explained_variance_ratio": "pca.explained_variance_ratio",
    "mean": "pca.mean",
    "head_scale": "pca.head_scale",
}


class IncompatibleBackboneError(ValueError):
    """A reward model used with features from a different backbone, pooling, layer or dtype."""


def data_fingerprint(D: np.ndarray) -> str:
    """sha256 of the fit data, to tell which pairs a model was fitted on."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(D, dtype=np.float32).tobytes()).hexdigest()


def comparable_namespace(namespace: dict) -> dict:
    """A namespace with the defaults of keys added later filled in (features saved before pluralrm
    recorded a dtype were float32)."""
    return {"dtype": "float32", **namespace}


@dataclass(frozen=True)
class RankedResponse:
    """One response of :meth:`RewardModel.rank`: its position in the input, text and reward."""

    index: int
    response: str
    reward: float


@dataclass
class RewardModel:
    """Heads plus the recipe for the features they read.

    Attributes
    ----------
    namespace : dict
        The feature namespace (backbone fingerprint, pooling, layer, max length, dtype) — see
        :meth:`pluralrm.backbone.Featurizer.namespace`.
    backbone_name : str
        How to load the backbone again (``"minilm"``, a directory, a hub id); recorded when the features
        were made, never parsed back out of a fingerprint.
    general : LinearRewardHead or None
    decomposed : DecomposedRewardModel or None
    metadata : dict
        Fit-data hash, sizes, anything worth keeping as provenance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> general = LinearRewardHead.from_coef(np.array([1.0, 0.0, 0.0]))
    >>> model = RewardModel(namespace={}, backbone_name="", general=general)
    >>> model.rewards(np.array([[2.0, 5.0, 1.0], [-1.0, 0.0, 0.0]]))
    array([ 2., -1.])
    """

    namespace: dict
    backbone_name: str
    general: LinearRewardHead | None = None
    decomposed: DecomposedRewardModel | None = None
    metadata: dict = field(default_factory=dict)
    _featurizer: Featurizer | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- what the model holds -----------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        head = self.general if self.general is not None else self.decomposed
        if head is None:
            raise ValueError("the reward model has neither a general head nor PCA heads")
        return int(head.n_features_in_)

    @property
    def head_names(self) -> list[str]:
        """``general`` (when present) and ``pc1`` … ``pcK``: the names ``head=`` accepts."""
        names = ["general"] if self.general is not None else []
        if self.decomposed is not None:
            names += [f"pc{j + 1}" for j in range(len(self.decomposed.components_))]
        return names

    @property
    def head_set(self) -> str:
        """Fingerprint of the PCA heads that user profiles' weights refer to."""
        return self.require_heads("personalize").fingerprint()

    def require_heads(self, purpose: str = "use") -> DecomposedRewardModel:
        """The PCA heads, or a clear error saying how to get some."""
        if self.decomposed is None:
            raise ValueError(
                f"this reward model has no PCA heads to {purpose}; fit it with `pluralrm decompose`"
            )
        return self.decomposed

    # --- the one scoring path -----------------------------------------------------------------------

    def reward_vector(self, *, user: Profile | None = None, head: str | None = None) -> np.ndarray:
        """The reward as one vector ``w`` in feature space, so that ``reward = h · w``.

        ``user``: the personal reward ``Σ_j w_j r_j = h · (Cᵀ w)`` of a profile fitted on these heads, plus
        the profile's full-feature part when it has one (``h · (Cᵀ w + full)``);
        ``head``: ``"general"`` or ``"pcJ"``; neither: the general head.
        """
        if user is not None and head is not None:
            raise ValueError("pass either user= or head=, not both")
        if user is not None:
            pca = self.require_heads("personalize")
            user.check_head_set(pca.fingerprint())
            vector = pca.components_.T @ np.asarray(user.weights, dtype=np.float64)
            return vector if user.full is None else vector + np.asarray(user.full, dtype=np.float64)
        head = head or "general"
        if head == "general":
            if self.general is None:
                raise ValueError("this reward model has no general head; pass head='pcJ' or user=")
            return self.general.coef_
        if head.startswith("pc") and head[2:].isdigit() and self.decomposed is not None:
            j = int(head[2:]) - 1
            if 0 <= j < len(self.decomposed.components_):
                return self.decomposed.components_[j]
        raise KeyError(f"unknown head {head!r}; this model has {self.head_names}")

    def rewards(
        self,
        inputs: np.ndarray | Sequence[tuple[Prompt, str]],
        *,
        user: Profile | None = None,
        head: str | None = None,
    ) -> np.ndarray:
        """Reward of each input under the general head, one head, or a user's profile.

        Parameters
        ----------
        inputs : ndarray of shape (n, n_features), or a sequence of (prompt, response) tuples
            Feature rows (responses, or pair differences for margins), or texts to featurize with the
            model's backbone.
        user : UserProfile, optional
        head : str, optional
            ``"general"`` or ``"pcJ"``.

        Returns
        -------
        ndarray of shape (n,)
        """
        w = self.reward_vector(user=user, head=head)
        return self._features(inputs) @ w

    def margins(
        self, pairs: PairFeatures, *, user: Profile | None = None, head: str | None = None
    ) -> np.ndarray:
        """``r(chosen) − r(rejected)`` of featurized pairs (:class:`PairFeatures`), after checking that
        they were made the way this model's features were.

        Each side is scored as ``pluralrm score`` scores it, so the two give bit-identical margins.
        """
        self.check_namespace(pairs.namespace, what="the reward model")
        return self.rewards(pairs.chosen, user=user, head=head) - self.rewards(
            pairs.rejected, user=user, head=head
        )

    def head_scores(self, inputs: np.ndarray | Sequence[tuple[Prompt, str]]) -> dict[str, np.ndarray]:
        """Rewards of the inputs under the general head and every PCA head, by head name."""
        H = self._features(inputs)
        names = self.head_names
        W = np.stack([self.reward_vector(head=name) for name in names], axis=1)  # (d, n_heads)
        scores = H @ W
        return {name: scores[:, j] for j, name in enumerate(names)}

    def rank(
        self,
        prompt: Prompt,
        responses: Sequence[str],
        *,
        user: Profile | None = None,
        head: str | None = None,
        k: int | None = None,
    ) -> list[RankedResponse]:
        """Responses to one prompt, best first (ties keep input order); ``k`` keeps the top k."""
        if not responses:
            raise ValueError("rank needs at least one response")
        scores = self.rewards([(prompt, r) for r in responses], user=user, head=head)
        order = np.argsort(-scores, kind="stable")[: k if k is not None else len(responses)]
        return [RankedResponse(int(i), responses[i], float(scores[i])) for i in order]

    def _features(self, inputs: np.ndarray | Sequence[tuple[Prompt, str]]) -> np.ndarray:
        if isinstance(inputs, np.ndarray):
            return check_matrix(inputs, "features", n_features=self.n_features)
        items = list(inputs)
        if not all(isinstance(item, tuple) and len(item) == 2 for item in items):
            raise TypeError("inputs must be a feature matrix or a sequence of (prompt, response) tuples")
        prompts = [p for p, _ in items]
        responses = [r for _, r in items]
        return self.featurizer().encode_conversations(prompts, responses)

    # --- texts → features ---------------------------------------------------------------------------

    def featurizer(
        self,
        *,
        device: str = FEATURIZE.device,
        cache: FeatureCache | None = None,
        backbone: Backbone | None = None,
    ) -> Featurizer:
        """The featurizer these heads read, built once (loads the backbone by name; torch from here).

        The dtype is the one the heads were fitted on (``namespace["dtype"]``), whatever the machine
        would pick, so that scores on another machine read the same kind of features.
        """
        with self._lock:
            if self._featurizer is None:
                from pluralrm.backbone import FeatureSpec, Featurizer, load_backbone

                if not self.backbone_name and backbone is None:
                    raise ValueError(
                        "this reward model does not record which backbone made its features; "
                        "pass backbone= to score texts"
                    )
                dtype = comparable_namespace(self.namespace)["dtype"]
                backbone = backbone or load_backbone(self.backbone_name, device=device, dtype=dtype)
                spec = FeatureSpec(**self.namespace["spec"])
                featurizer = Featurizer(
                    backbone, spec=spec, max_length=self.namespace["max_length"], cache=cache
                )
                self.check_namespace(
                    featurizer.namespace(spec), what=f"reward model for {self.backbone_name!r}"
                )
                self._featurizer = featurizer
            return self._featurizer

    def check_namespace(self, namespace: dict, what: str = "this reward model") -> None:
        ours, theirs = comparable_namespace(self.namespace), comparable_namespace(namespace)
        if theirs.get("backbone") != ours.get("backbone"):
            raise IncompatibleBackboneError(
                f"{what} was fitted on features of backbone {ours.get('backbone')!r}, but these "
                f"features come from {theirs.get('backbone')!r}; refit the heads or use that backbone"
            )
        if theirs != ours:
            differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
            raise IncompatibleBackboneError(
                f"{what} was fitted on features {ours}, but these are {theirs} ({', '.join(differ)} differ)"
            )

    # --- persistence --------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``heads.safetensors`` into ``directory`` (each atomically)."""
        from safetensors.numpy import save_file

        import pluralrm

        directory = Path(directory)
        tensors: dict[str, np.ndarray] = {}
        if self.general is not None:
            tensors |= {f"general.{k}": v for k, v in self.general.to_arrays().items()}
        if self.decomposed is not None:
            tensors |= {f"pca.{k}": v for k, v in self.decomposed.to_arrays().items()}
        if not tensors:
            raise ValueError("nothing to save: the model has neither a general head nor PCA heads")
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / HEADS_FILE) as tmp:
            save_file({k: np.ascontiguousarray(v, np.float64) for k, v in tensors.items()}, tmp)
        write_json(
            directory / CONFIG_FILE,
            {
                "format": FORMAT,
                "backbone": self.backbone_name,
                "namespace": self.namespace,
                "n_features": self.n_features,
                "general": None if self.general is None else self.general.get_params(),
                "decomposed": None if self.decomposed is None else self.decomposed.get_params(),
                "metadata": self.metadata,
                "versions": {"pluralrm": pluralrm.__version__, "numpy": np.__version__},
            },
        )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, namespace: dict | None = None) -> RewardModel:
        """Load a saved model; with ``namespace`` (of the features you will score), refuse a mismatch.

        A reward model fine-tuned by ``pluralrm customize`` (a transformers directory) loads too, as its
        reward head over the features it reads (:mod:`pluralrm.rewards.sequence_classifier`).

        Raises
        ------
        FileNotFoundError
            A file is missing.
        RewardModelLoadError
            A file is damaged or the two files disagree; the message names the file and the problem.
        """
        directory = Path(directory)
        from pluralrm.rewards.sequence_classifier import is_customized_reward_model, read_classifier

        if is_customized_reward_model(directory):  # a fine-tuned ForSequenceClassification directory
            metadata, coef, bias = read_classifier(directory)
            model = cls(
                namespace=metadata["namespace"],
                backbone_name=str(directory),
                general=LinearRewardHead.from_coef(coef),
                metadata={"customize": metadata, "score_bias": bias},
            )
            if namespace is not None:
                model.check_namespace(namespace, what=str(directory))
            return model
        for name in (CONFIG_FILE, HEADS_FILE):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory}: missing {name}; not a pluralrm reward model directory")
        config = _read_config(directory / CONFIG_FILE)
        tensors = _read_tensors(directory / HEADS_FILE, config["format"])
        general = decomposed = None
        try:
            if "general.coef" in tensors:
                general = LinearRewardHead.from_arrays(
                    _prefixed(tensors, "general."), **(config.get("general") or {})
                )
            if any(k.startswith("pca.") for k in tensors):
                decomposed = DecomposedRewardModel.from_arrays(
                    _prefixed(tensors, "pca."), **(config.get("decomposed") or {})
                )
        except (TypeError, ValueError) as error:
            raise RewardModelLoadError(f"{directory / HEADS_FILE}: {error}") from None
        if general is None and decomposed is None:
            raise RewardModelLoadError(
                f"{directory / HEADS_FILE}: holds neither a general head nor PCA heads"
            )
        for what, head in (("general head", general), ("PCA heads", decomposed)):
            if head is not None and head.n_features_in_ != config["n_features"]:
                raise RewardModelLoadError(
                    f"{directory / CONFIG_FILE}: n_features is {config['n_features']}, but the {what} in "
                    f"{HEADS_FILE} have {head.n_features_in_} features; the two files do not belong together"
                )
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


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RewardModelLoadError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise RewardModelLoadError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if config.get("format") not in (FORMAT, _FORMAT_V1):
        raise RewardModelLoadError(f"{path}: format {config.get('format')!r}, expected {FORMAT!r}")
    for key in ("backbone", "namespace", "n_features"):
        if key not in config:
            raise RewardModelLoadError(f"{path}: missing field {key!r}")
    if not isinstance(config["n_features"], int) or config["n_features"] < 1:
        raise RewardModelLoadError(
            f"{path}: n_features must be a positive integer, got {config['n_features']!r}"
        )
    if config["format"] == _FORMAT_V1:  # parameters were flat fields
        config["general"] = {"alpha": config.get("general_alpha")} if config.get("general_alpha") else {}
        config["decomposed"] = {"n_components": config.get("n_components"), "center": config.get("center")}
    return config


def _read_tensors(path: Path, format: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(path)
    except Exception as error:  # safetensors raises its own error types for damaged files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RewardModelLoadError(
            f"{path}: not a readable safetensors file ({reason}); it is damaged or incomplete — "
            "save the model again"
        ) from None
    if format == _FORMAT_V1:
        tensors = {_V1_ARRAYS.get(k, k): v for k, v in tensors.items()}
    return tensors


def _prefixed(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
