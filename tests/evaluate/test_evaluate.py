import numpy as np
import pytest

from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.evaluate import accuracy_rows, attribute_correlations, bootstrap_interval, pairwise_metrics
from pluralrm.evaluate.plots import plot_explained_variance, plot_head_accuracy
from pluralrm.evaluate.runner import evaluate_model
from pluralrm.rewards.fitting import fit_reward_model


def test_pairwise_metrics_counts_ties_as_half():
    metrics = pairwise_metrics(np.array([1.0, -2.0, 0.0, 0.0]))
    assert metrics["accuracy"] == 0.5 and metrics["n_ties"] == 2 and metrics["n"] == 4
    with pytest.raises(ValueError, match="non-empty 1-D"):
        pairwise_metrics(np.array([]))


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = (rng.random(50) < 0.7).astype(float)
    large = (rng.random(5000) < 0.7).astype(float)
    lo, hi = bootstrap_interval(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_interval(large)
    assert hi2 - lo2 < (hi - lo) / 3


def test_bootstrap_interval_is_the_percentile_interval_at_the_requested_level():
    correct = (np.random.default_rng(1).random(200) < 0.6).astype(float)
    # Recompute the same resamples by hand: the interval is their (1-level)/2 and 1-(1-level)/2 percentiles.
    rng = np.random.default_rng(3)
    means = correct[rng.integers(0, 200, size=(500, 200))].mean(axis=1)
    for level in (0.5, 0.9, 0.99):
        tail = (1 - level) / 2 * 100
        expected = np.percentile(means, [tail, 100 - tail])
        got = bootstrap_interval(correct, n_resamples=500, level=level, seed=3)
        np.testing.assert_allclose(got, expected)
    widths = [np.subtract(*bootstrap_interval(correct, level=lv, seed=3)[::-1]) for lv in (0.5, 0.9, 0.99)]
    assert widths[0] < widths[1] < widths[2]


def test_rows_per_subset_and_overall():
    margins = {"general": np.array([1.0, 1.0, -1.0, 1.0])}
    rows = accuracy_rows(margins, ["a", "a", "b", "b"])
    by_subset = {r["subset"]: r["accuracy"] for r in rows}
    assert by_subset == {"all": 0.75, "a": 1.0, "b": 0.5}


def test_best_head_is_picked_on_validation_not_test():
    rng = np.random.default_rng(0)
    n, d = 900, 6
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    a[:, 3] *= 3.0  # the largest-variance direction carries no preference...
    b[:, 3] *= 3.0
    first = a[:, 0] > b[:, 0]  # ...the preference lives on feature 0
    chosen, rejected = np.where(first[:, None], a, b), np.where(first[:, None], b, a)
    feats = PairFeatures(chosen=chosen, rejected=rejected, ids=[str(i) for i in range(n)])
    train, val, test = (feats.select(i) for i in group_split(feats.groups, [0.5, 0.25, 0.25], seed=0))
    model = fit_reward_model(train, val, n_components=6, center=True)
    rows = evaluate_model(model, test, val=val)
    best = next(r for r in rows if r["head"] == "best-pc")
    picked = best["best_pc"]
    assert abs(model.decomposed.components_[int(picked[2:]) - 1][0]) > 0.9  # the head along feature 0
    general = next(r for r in rows if r["head"] == "general" and r["subset"] == "all")
    assert general["accuracy"] > 0.7


def test_group_split_keeps_prompts_together():
    groups = [f"p{i // 4}" for i in range(400)]
    train, test = group_split(groups, [0.7, 0.3], seed=1)
    assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert abs(len(train) / 400 - 0.7) < 0.05


def test_attribute_correlations_find_the_matching_column():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 3))
    S = np.stack([A[:, 2] + 0.1 * rng.normal(size=500), -A[:, 0]], axis=1)
    corr = attribute_correlations(S, A)
    assert corr.shape == (2, 3) and corr[0, 2] > 0.99 and corr[1, 0] < -0.99


def test_plots_are_written_as_png(tmp_path):
    rows = accuracy_rows({"general": np.array([1.0, -1.0]), "pc1": np.array([1.0, 1.0])})
    for path in (
        plot_head_accuracy(rows, tmp_path / "acc.png"),
        plot_explained_variance(np.array([0.5, 0.3, 0.2]), tmp_path / "ev.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
