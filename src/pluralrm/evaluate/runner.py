"""Evaluate a reward model on featurized pairs: general head, every PCA head, the validation-picked head."""

from __future__ import annotations

from pluralrm.data.features import PairFeatures
from pluralrm.evaluate.tables import accuracy_rows, best_head
from pluralrm.rewards.reward_model import RewardModel


def evaluate_model(
    model: RewardModel,
    test: PairFeatures,
    *,
    val: PairFeatures | None = None,
    extra: dict | None = None,
    n_resamples: int = 1000,
    by: str = "subset",
) -> list[dict]:
    """Tidy accuracy rows on ``test``; with ``val``, add ``best-pc`` (the PCA head picked on ``val``).

    ``by`` groups rows by ``"subset"`` (domain, category) or ``"user"`` as well as over ``all`` pairs.

    Raises if the features do not come from the backbone, pooling and layer the model was fitted on.
    """
    model.check_namespace(test.namespace, what="the reward model")
    margins = model.head_scores(test.differences)
    if val is not None and model.decomposed is not None:
        name, _ = best_head(model, val.differences)
        margins = {"best-pc": margins[name], **margins}
        extra = {**(extra or {}), "best_pc": name}
    if by not in ("subset", "user"):
        raise ValueError(f"by must be 'subset' or 'user', got {by!r}")
    groups = test.subsets if by == "subset" else test.users
    return accuracy_rows(margins, groups, extra=extra, n_resamples=n_resamples)
