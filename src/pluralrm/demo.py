"""The main job on built-in defaults: pairs → backbone features → general + PCA heads → report folder.

Kept out of the ``cli`` so that it is a library call (``run_demo``) with a plain result; the CLI only
prints it. On the built-in synthetic data it also says which known attribute each top head tracks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pluralrm.atomic import write_json
from pluralrm.config import (
    ADAPT,
    DEMO,
    DEMO_DECOMPOSE,
    FEATURIZE,
    AdaptConfig,
    DecomposeConfig,
    DemoConfig,
    FeaturizeConfig,
)
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.evaluate.attributes import attribute_correlations
from pluralrm.evaluate.plots import plot_explained_variance, plot_head_accuracy
from pluralrm.evaluate.runner import evaluate_model
from pluralrm.evaluate.tables import write_csv
from pluralrm.rewards.fitting import fit_pool
from pluralrm.rewards.math import pair_correctness

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo measured and where it wrote it."""

    out: Path
    rows: list[dict]
    explained_variance_ratio: np.ndarray
    attribute_rows: list[dict] = field(default_factory=list)
    n_pairs: dict = field(default_factory=dict)
    user_rows: list[dict] = field(default_factory=list)
    head_names: dict[str, str] = field(default_factory=dict)  # automatic names (pluralrm.evaluate.interpret)


def run_demo(
    out: str | Path,
    *,
    data: str | None = None,
    featurize: FeaturizeConfig = FEATURIZE,
    decompose: DecomposeConfig = DEMO_DECOMPOSE,
    adapt: AdaptConfig = ADAPT,
    demo: DemoConfig = DEMO,
    skip_invalid: bool = True,
    limit: int | None = None,
    show_progress: bool = False,
) -> DemoResult:
    """Fit and evaluate a decomposed reward model; write model, tables and plots under ``out``.

    Parameters
    ----------
    data : str, optional
        A pairs file/hub id; default: the built-in synthetic pluralistic data (with ground truth).
    featurize, decompose, adapt : config dataclasses
        The stages' settings (:mod:`pluralrm.config`); the demo keeps 16 heads (``DEMO_DECOMPOSE``).
    demo : DemoConfig
        The test share of the prompts, each simulated user's labelled pairs (built-in data only), seed.

    The heads are fitted as ``pluralrm decompose`` fits them (:func:`pluralrm.rewards.fitting.fit_pool`)
    on the pool left after ``demo.test_fraction`` of the prompts are held out for the tables; the pool's
    own held-out part (which chose the general head's penalty) also picks the best PCA head.
    """
    seed = demo.seed
    from pluralrm.backbone import build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs

    out = Path(out)
    attributes: np.ndarray | None = None  # the synthetic pairs' known attribute differences
    attribute_names = None
    if data is None:
        from pluralrm.data.synthetic import make_synthetic_preferences

        # Pairs are cheap once responses are featurized (each response is shared by many pairs), so the
        # demo labels several pairs per user and prompt: enough test pairs per user for a readable table.
        synthetic = make_synthetic_preferences(pairs_per_prompt=demo.pairs_per_prompt, seed=seed)
        pairs, source = synthetic.pairs, "synthetic"
        attribute_names = synthetic.attribute_names
        attributes = np.array([np.subtract(p["chosen_attributes"], p["rejected_attributes"]) for p in pairs])
    else:
        from pluralrm.data import load_pairs

        pairs, source = load_pairs(data, skip_invalid=skip_invalid).records, data
    if limit:
        pairs = pairs[:limit]
        attributes = attributes[:limit] if attributes is not None else None
    featurizer = build_featurizer(featurize, show_progress=show_progress)
    features = featurize_pairs(pairs, featurizer, source=source)
    backbone = featurize.backbone
    pool_idx, test_idx = group_split(features.groups, [1 - demo.test_fraction, demo.test_fraction], seed=seed)
    pool, test = features.select(pool_idx), features.select(test_idx)
    fit = fit_pool(pool, decompose, seed=seed)
    model, train, val = fit.model, pool.select(fit.train), pool.select(fit.val)
    model.save_pretrained(out / "model")
    by = "user" if any(test.users) else "subset"
    rows = evaluate_model(
        model, test, val=val, extra={"backbone": backbone, "center": decompose.center}, by=by
    )
    write_csv(rows, out / "accuracy.csv")
    heads = model.require_heads("plot")
    plot_explained_variance(heads.explained_variance_ratio_, out / "explained_variance.png")
    plot_head_accuracy(rows, out / "head_accuracy.png", title=f"Test accuracy per head ({backbone})")
    attribute_rows = []
    if attributes is not None:
        attribute_rows = head_attribute_table(model, test, attributes[test_idx], attribute_names)
        write_csv(attribute_rows, out / "head_attributes.csv")
    user_rows = []
    if attributes is not None:  # the built-in data: simulated users with known weights
        user_rows = personalization_table(
            model,
            train,
            test,
            attributes[test_idx],
            synthetic.users,
            k=demo.adapt_pairs,
            seed=seed,
            adapt=adapt,
        )
        write_csv(user_rows, out / "personalization.csv")
    n_pairs = {"train": len(train), "val": len(val), "test": len(test)}
    head_names = write_demo_report(
        out / "report.html",
        model,
        test,
        [pairs[i] for i in test_idx],
        val=val,
        source=source,
        attribute_rows=attribute_rows,
        user_rows=user_rows,
    )
    write_json(
        out / "summary.json",
        {
            "source": source,
            "backbone": backbone,
            "center": decompose.center,
            "dtype": features.namespace.get("dtype"),
            "n_pairs": n_pairs,
            "rows": rows,
            "head_attributes": attribute_rows,
            "head_names": head_names,
        },
    )
    return DemoResult(
        out=out,
        rows=rows,
        explained_variance_ratio=heads.explained_variance_ratio_,
        attribute_rows=attribute_rows,
        n_pairs=n_pairs,
        user_rows=user_rows,
        head_names=head_names,
    )


def write_demo_report(
    path: Path,
    model,
    test: PairFeatures,
    test_records: list[dict],
    *,
    val: PairFeatures,
    source: str,
    attribute_rows: list[dict],
    user_rows: list[dict],
) -> dict[str, str]:
    """``report.html`` of the demo: the model read on its test pairs (as ``pluralrm report`` reads one),
    plus the built-in data's ground truth; returns each described head's automatic name."""
    from pluralrm.report import model_section, write_report
    from pluralrm.report.sections import Table, cell

    section, meanings = model_section(
        model,
        title="demo model",
        source=f"{path.parent / 'model'} on the test pairs of {source}",
        features=test,
        records=test_records,
        val=val,
    )
    if attribute_rows:
        section.blocks.insert(  # beside the automatic names it checks
            2,
            Table(
                "Built-in data: the known attribute each head tracks (ground truth, for checking the names)",
                ["head", "automatic name", "known attribute", "correlation"],
                [
                    [r["head"], m.name, r["attribute"], f"{r['correlation']:+.2f}"]
                    for r, m in zip(attribute_rows, meanings, strict=False)
                ],
            ),
        )
    if user_rows:
        section.blocks.append(
            Table(
                f"Built-in data: simulated users adapted from {user_rows[0]['adapt_pairs']} training pairs "
                "each",
                [
                    "user",
                    "general accuracy",
                    "adapted accuracy",
                    "cos(general, true w)",
                    "cos(adapted, true w)",
                ],
                [
                    [
                        r["user"],
                        cell(r["general_accuracy"]),
                        cell(r["adapted_accuracy"]),
                        f"{r['general_cosine_to_true_weights']:+.2f}",
                        f"{r['adapted_cosine_to_true_weights']:+.2f}",
                    ]
                    for r in user_rows
                ],
            )
        )
    write_report([section], path, title="pluralrm demo report")
    return {m.head: m.name for m in meanings}


def head_attribute_table(
    model, test: PairFeatures, attribute_diffs: np.ndarray, names, top: int = 8
) -> list[dict]:
    """For each top head: the attribute its pair margins correlate with most, and how strongly."""
    margins = model.decomposed.scores(test.differences)[:, :top]
    corr = attribute_correlations(margins, attribute_diffs)
    rows = []
    for j, row in enumerate(corr):
        best = int(np.abs(row).argmax())
        rows.append(
            {
                "head": f"pc{j + 1}",
                "explained_variance_ratio": float(model.decomposed.explained_variance_ratio_[j]),
                "attribute": names[best],
                "correlation": float(row[best]),
                **{f"corr_{n}": float(c) for n, c in zip(names, row, strict=True)},
            }
        )
    return rows


def personalization_table(
    model,
    train: PairFeatures,
    test: PairFeatures,
    test_attribute_diffs: np.ndarray,
    true_weights: dict[str, np.ndarray],
    *,
    k: int,
    seed: int,
    adapt: AdaptConfig = ADAPT,
) -> list[dict]:
    """Per simulated user: general-head vs adapted accuracy on their test pairs, and how close the
    adapted reward's implied attribute weights are to the user's true weights (cosine)."""
    from pluralrm.adapt.personalize import build_profile

    rng = np.random.default_rng(seed)
    rows = []
    for user, truth in true_weights.items():
        pool = [i for i, u in enumerate(train.users) if u == user]
        held = np.array([i for i, u in enumerate(test.users) if u == user])
        idx = rng.choice(pool, size=min(k, len(pool)), replace=False)
        profile = build_profile(model, user, train.differences[idx], config=adapt)
        user_test = test.select(held)
        personal = model.margins(user_test, user=profile)
        general = model.margins(user_test)
        # Attribute weights the personal reward implies: least squares of its margins on attribute gaps.
        implied, *_ = np.linalg.lstsq(test_attribute_diffs[held], personal, rcond=None)
        implied_general, *_ = np.linalg.lstsq(test_attribute_diffs[held], general, rcond=None)
        cosine = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))  # noqa: E731
        rows.append(
            {
                "user": user,
                "adapt_pairs": len(idx),
                "test_pairs": len(held),
                "general_accuracy": float(pair_correctness(general).mean()),
                "adapted_accuracy": float(pair_correctness(personal).mean()),
                "general_cosine_to_true_weights": cosine(implied_general, truth),
                "adapted_cosine_to_true_weights": cosine(implied, truth),
            }
        )
    return rows
