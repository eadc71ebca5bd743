"""Featurize preference-pair records into :class:`~pluralrm.data.features.PairFeatures`."""

from __future__ import annotations

from collections.abc import Sequence

from pluralrm.backbone.featurizer import Featurizer
from pluralrm.data.features import PairFeatures


def featurize_pairs(pairs: Sequence[dict], featurizer: Featurizer, *, source: str = "") -> PairFeatures:
    """Encode the chosen and rejected response of every pair in one deduplicated pass.

    Both sides go through one :meth:`Featurizer.encode` call, so a response shared by several pairs
    (DSP domain data repeats each response 4-7 times) is computed once.
    """
    chosen_texts = [featurizer.format(p["prompt"], p["chosen"]) for p in pairs]
    rejected_texts = [featurizer.format(p["prompt"], p["rejected"]) for p in pairs]
    features = featurizer.encode(chosen_texts + rejected_texts)
    n = len(pairs)
    return PairFeatures(
        chosen=features[:n],
        rejected=features[n:],
        ids=[p.get("id") for p in pairs],
        subsets=[p.get("subset") for p in pairs],
        users=[p.get("user") for p in pairs],
        namespace=featurizer.namespace(featurizer.spec),
        source=source,
    )
