"""Pool operations as library calls: a pool's inputs → features → the one fitting recipe, with the layer
and the adapter chosen from the pool's own labelled users.

A *pool* is what a product has before it meets a new user: pairs files, ``pluralrm featurize`` output
directories, and ``NAME=PATH`` inputs whose every pair is user NAME's. ``pluralrm decompose`` is
:func:`decompose`; the other verbs read their pairs with :func:`features_for`. Where the work runs is an
engine (:func:`pluralrm.scale.make_engine`: this process or a Ray cluster), never a branch here.

Errors are the library's own (``DataValidationError`` naming the file and line, ``FileNotFoundError``,
``BackboneNotFoundError``, ``ValueError``); the command line turns them into one located message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pluralrm.adapt.choice import choose_features
from pluralrm.adapt.kshot import PoolChoice, choose_adapter, choose_heads
from pluralrm.config import DECOMPOSE, FEATURIZE, DecomposeConfig, FeaturizeConfig
from pluralrm.data import load_pairs
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.scale.engine import Engine, LocalEngine, PoolPart, load_part

if TYPE_CHECKING:
    from pluralrm.backbone import FeatureCache

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"  # a DATA argument naming the built-in synthetic pluralistic data

# Told each loaded file's one-line summary (records read, invalid skipped); the CLI prints it.
OnData = Callable[[str], None]


def load_pair_records(data: str, format: str = "auto", skip_invalid: bool = False) -> tuple[list[dict], str]:
    """Records from a file/hub id, or the built-in synthetic data when ``data`` is ``'synthetic'`` (and
    no such file exists), with a one-line summary of what was read."""
    if data == SYNTHETIC and not Path(data).exists():
        from pluralrm.data.synthetic import make_synthetic_preferences

        return make_synthetic_preferences().pairs, "built-in synthetic pluralistic data"
    result = load_pairs(data, format=format, skip_invalid=skip_invalid)
    return result.records, result.report.summary()


def named_input(item: str) -> tuple[str | None, str]:
    """``NAME=PATH`` → (NAME, PATH): every pair of PATH is user NAME's; a path that exists is taken whole.

    Examples
    --------
    >>> named_input("alice=a.jsonl"), named_input("pool.jsonl")
    (('alice', 'a.jsonl'), (None, 'pool.jsonl'))
    """
    name, sep, path = item.partition("=")
    if not sep or not name or Path(item).exists():
        return None, item
    return name, path


def labelled(features: PairFeatures, name: str | None) -> PairFeatures:
    """``features`` with every pair labelled as user ``name`` (unchanged for ``None``)."""
    return features if name is None else replace(features, users=[name] * len(features))


def features_for(
    source: str | Path,
    using: FeaturizeConfig | RewardModel = FEATURIZE,
    *,
    device: str = FEATURIZE.device,
    cache: FeatureCache | None = None,
    engine: Engine | None = None,
    skip_invalid: bool = False,
    on_data: OnData | None = None,
) -> PairFeatures:
    """The pairs of ``source`` as features: a ``featurize`` output directory is loaded; a pairs file is
    featurized by ``engine`` (default: this process) with the backbone ``using`` names, or — ``using`` a
    reward model — with that model's own featurizer on ``device`` (so its heads read what they were
    fitted on)."""
    path = Path(source)
    if path.is_dir():
        return PairFeatures.load(path)
    records = _records(str(source), skip_invalid, on_data)
    engine = engine or LocalEngine()
    if isinstance(using, FeaturizeConfig):
        featurize, model = using, None
    else:
        featurize, model = replace(FEATURIZE, device=device), using
    features, where = engine.featurize_pairs(
        records, featurize=featurize, model=model, cache=cache, source=str(source), show_progress=True
    )
    logger.info("featurized %d pairs of %s on %s", len(features), source, where)
    return features


def features_for_layers(
    source: str | Path,
    layers: Sequence[int],
    *,
    featurize: FeaturizeConfig = FEATURIZE,
    cache: FeatureCache | None = None,
    skip_invalid: bool = False,
    on_data: OnData | None = None,
) -> dict[int, PairFeatures]:
    """One pairs file featurized at several layers in one forward pass per batch (``featurize``'s
    pooling), keyed by the layer as given. A features directory holds one layer and is refused."""
    from pluralrm.backbone import FeatureSpec, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs_specs

    if Path(source).is_dir():
        raise ValueError(
            f"{source}: a features directory holds one layer; candidate layers need the pairs file"
        )
    records = _records(str(source), skip_invalid, on_data)
    featurizer = build_featurizer(featurize, cache=cache, show_progress=True)
    specs = {layer: FeatureSpec(pooling=featurizer.spec.pooling, layer=layer) for layer in layers}
    distinct = list(dict.fromkeys(specs.values()))
    by_spec = featurize_pairs_specs(records, featurizer, distinct, source=str(source))
    return {layer: by_spec[spec] for layer, spec in specs.items()}


def _records(data: str, skip_invalid: bool, on_data: OnData | None) -> list[dict]:
    records, summary = load_pair_records(data, "auto", skip_invalid)
    (on_data or logger.info)(summary)
    return records


@dataclass
class Decomposition:
    """What :func:`decompose` fitted, on how many pairs, and what it chose from the pool's users.

    ``model.metadata`` records the choices too (``features``; ``adapter``, which ``adapt --method auto``
    reads), so a saved model says what it was chosen on.
    """

    model: RewardModel
    n_train: int
    n_val: int
    layer_choice: PoolChoice | None = None
    adapter_choice: PoolChoice | None = None
    heads_choice: PoolChoice | None = None


def decompose(
    inputs: Sequence[str],
    config: DecomposeConfig = DECOMPOSE,
    *,
    featurize: FeaturizeConfig = FEATURIZE,
    engine: Engine | None = None,
    layers: Sequence[int] = (),
    adapters: Sequence[str] = (),
    cache: FeatureCache | None = None,
    skip_invalid: bool = False,
    on_data: OnData | None = None,
) -> Decomposition:
    """Fit the general head and the PCA heads on the pooled ``inputs`` by the one recipe
    (:func:`pluralrm.rewards.fitting.fit_pool`), on ``engine`` (default: this process).

    Parameters
    ----------
    inputs : sequence of str
        Pairs files, ``featurize`` output directories, ``NAME=PATH`` (every pair of PATH is user NAME's);
        pooled in order. Raw pairs are featurized with ``featurize``.
    config : DecomposeConfig
        Heads, centring, the held-out share and penalties, the seed, ``choice_k`` / ``choice_draws``.
    layers : sequence of int
        Candidate layers (pairs files only): the heads are fitted in the one where the pool's labelled
        users are learned best from ``config.choice_k`` pairs each
        (:func:`pluralrm.adapt.choice.choose_features`).
    adapters : sequence of str
        Candidate adapters (e.g. ``("map", "bt")``): the one that learns the pool's labelled users best as
        new users (:func:`pluralrm.adapt.kshot.choose_adapter`) is recorded for ``adapt --method auto``.
    """
    engine = engine or LocalEngine()
    named = [named_input(item) for item in inputs]
    # Choices, and heads from the users' own heads, need the whole pool in this process.
    engine.check_pool([path for _, path in named], choices=bool(layers or adapters) or config.heads != "pca")
    layer_choice = adapter_choice = None
    parts: list[PoolPart]
    if layers:
        candidates = _by_layer(named, layers, featurize, cache, skip_invalid, on_data)
        layer_choice = choose_features(
            candidates,
            k=config.choice_k,
            n_draws=config.choice_draws,
            seed=config.seed,
            at_most=config.choice_users,
        )
        parts = [candidates[layer_choice.name]]
    else:
        # A featurize output stays a path: the engine reads it (Ray's shards read only their rows).
        parts = [
            path
            if name is None and Path(path).is_dir()
            else labelled(
                features_for(path, featurize, cache=cache, skip_invalid=skip_invalid, on_data=on_data), name
            )
            for name, path in named
        ]
    heads_choice = None
    if config.heads == "auto":
        pooled = PairFeatures.concatenate([load_part(part) for part in parts])
        parts = [pooled]
        heads_choice = choose_heads(
            pooled, k=config.choice_k, n_draws=config.choice_draws, seed=config.seed, decompose=config
        )
        config = replace(config, heads=heads_choice.name)
    if adapters:
        pooled = PairFeatures.concatenate([load_part(part) for part in parts])
        parts = [pooled]
        adapter_choice = choose_adapter(
            pooled,
            methods=tuple(adapters),
            k=config.choice_k,
            n_draws=config.choice_draws,
            seed=config.seed,
            decompose=config,
        )
    fit = engine.fit_pool(parts, config)
    choices = {"features": layer_choice, "heads": heads_choice, "adapter": adapter_choice}
    fit.model.metadata = {
        **fit.model.metadata,
        **{key: choice_record(choice, config) for key, choice in choices.items() if choice is not None},
    }
    return Decomposition(fit.model, len(fit.train), len(fit.val), layer_choice, adapter_choice, heads_choice)


def labelled_features(
    path: str,
    name: str | None,
    layers: Sequence[int] = (),
    *,
    featurize: FeaturizeConfig = FEATURIZE,
    cache: FeatureCache | None = None,
    skip_invalid: bool = False,
    on_data: OnData | None = None,
) -> dict[int | None, PairFeatures]:
    """One input's pairs labelled as user ``name`` (see :func:`labelled`), in every candidate layer
    (``{None: features}`` with ``featurize``'s own layer when ``layers`` is empty)."""
    if not layers:
        features = features_for(path, featurize, cache=cache, skip_invalid=skip_invalid, on_data=on_data)
        return {None: labelled(features, name)}
    by_layer = features_for_layers(
        path, layers, featurize=featurize, cache=cache, skip_invalid=skip_invalid, on_data=on_data
    )
    return {layer: labelled(f, name) for layer, f in by_layer.items()}


def _by_layer(named, layers, featurize, cache, skip_invalid, on_data) -> dict[str, PairFeatures]:
    """The pooled inputs featurized in every candidate layer, keyed ``"layer L"``."""
    parts = [
        labelled_features(
            path, name, layers, featurize=featurize, cache=cache, skip_invalid=skip_invalid, on_data=on_data
        )
        for name, path in named
    ]
    return {f"layer {layer}": PairFeatures.concatenate([p[layer] for p in parts]) for layer in layers}


def choice_record(choice: PoolChoice, config: DecomposeConfig) -> dict:
    """What a model keeps of a choice: the winner, every candidate's score, the users, ``k``."""
    return {"chosen": choice.name, "scores": choice.scores, "users": list(choice.users), "k": config.choice_k}
