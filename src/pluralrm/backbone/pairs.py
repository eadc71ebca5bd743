"""Featurize preference-pair records into :class:`~pluralrm.data.features.PairFeatures`."""

from __future__ import annotations

from collections.abc import Sequence

from pluralrm.backbone.featurizer import Featurizer
from pluralrm.backbone.spec import FeatureSpec
from pluralrm.data.features import PairFeatures, prompt_group


def featurize_pairs(pairs: Sequence[dict], featurizer: Featurizer, *, source: str = "") -> PairFeatures:
    """Encode the chosen and rejected response of every pair in one deduplicated pass.

    Both sides go through one :meth:`Featurizer.encode` call, so a response shared by several pairs
    (DSP domain data repeats each response 4-7 times) is computed once.
    """
    return featurize_pairs_specs(pairs, featurizer, [featurizer.spec], source=source)[featurizer.spec]


def featurize_pairs_specs(
    pairs: Sequence[dict], featurizer: Featurizer, specs: Sequence[FeatureSpec], *, source: str = ""
) -> dict[FeatureSpec, PairFeatures]:
    """Like :func:`featurize_pairs` for several (pooling, layer) candidates from one forward pass."""
    chosen_texts = [featurizer.format(p["prompt"], p["chosen"]) for p in pairs]
    rejected_texts = [featurizer.format(p["prompt"], p["rejected"]) for p in pairs]
    by_spec = featurizer.encode_specs(chosen_texts + rejected_texts, specs)
    n = len(pairs)
    return {
        spec: PairFeatures(
            chosen=features[:n],
            rejected=features[n:],
            ids=[p.get("id") for p in pairs],
            subsets=[p.get("subset") for p in pairs],
            users=[p.get("user") for p in pairs],
            namespace=featurizer.namespace(spec),
            source=source,
            groups=[prompt_group(p["prompt"]) for p in pairs],
            backbone_name=featurizer.backbone.name,
        )
        for spec, features in by_spec.items()
    }
