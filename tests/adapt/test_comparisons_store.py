"""Labelled pairs behind a profile: appended and refitted in one transaction, read back by namespace."""

import multiprocessing as mp

import numpy as np
import pytest

from pluralrm.adapt import Comparison, ProfileStore, UserProfile


def _profile_from(user: str):
    def refit(D: np.ndarray) -> UserProfile:
        return UserProfile(user, D.sum(axis=0), "hs", "sum", len(D))

    return refit


def test_pairs_are_appended_and_the_refit_sees_all_of_them(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    first = [Comparison("p1", "good", "bad"), Comparison([{"role": "user", "content": "p2"}], "yes", "no")]
    ids, profile = store.add_comparisons(
        "ann", first, np.array([[1, 0], [0, 2]]), features="ns", refit=_profile_from("ann")
    )
    assert profile.n_pairs == 2 and profile.weights.tolist() == [1.0, 2.0]
    ids2, profile = store.add_comparisons(
        "ann", [Comparison("p3", "a", "b")], np.array([[5, 5]]), features="ns", refit=_profile_from("ann")
    )
    assert ids2[0] > ids[-1] and profile.n_pairs == 3 and profile.weights.tolist() == [6.0, 7.0]
    stored = store.comparisons("ann")
    assert [c.id for c in stored] == ids + ids2
    assert stored[1].prompt == [{"role": "user", "content": "p2"}] and stored[0].chosen == "good"
    np.testing.assert_array_equal(
        store.comparison_diffs("ann", features="ns", n_features=2), [[1, 0], [0, 2], [5, 5]]
    )
    # pairs featurized in another namespace are kept but not used
    store.add_comparisons(
        "ann", [Comparison("p", "x", "y")], np.array([[9, 9]]), features="other", refit=_profile_from("ann")
    )
    assert store.comparison_diffs("ann", features="ns", n_features=2).shape == (3, 2)
    assert len(store.comparisons("ann")) == 4 and store.comparisons("bob") == []
    with pytest.raises(ValueError, match="stored comparison of user 'ann' has 2 features, expected 3"):
        store.comparison_diffs("ann", features="ns", n_features=3)


def test_a_failing_refit_stores_nothing(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")

    def broken(D):
        raise RuntimeError("refit failed")

    with pytest.raises(RuntimeError, match="refit failed"):
        store.add_comparisons(
            "ann", [Comparison("p", "a", "b")], np.ones((1, 2)), features="ns", refit=broken
        )
    assert store.comparisons("ann") == [] and store.list() == []
    with pytest.raises(ValueError, match="not 'ann'"):
        store.add_comparisons(
            "ann", [Comparison("p", "a", "b")], np.ones((1, 2)), features="ns", refit=_profile_from("bob")
        )
    with pytest.raises(ValueError, match=r"1 comparisons but diffs of shape \(2, 2\)"):
        store.add_comparisons(
            "ann", [Comparison("p", "a", "b")], np.ones((2, 2)), features="ns", refit=_profile_from("ann")
        )
    with pytest.raises(ValueError, match="must not be empty"):
        store.add_comparisons("", [], np.ones((0, 2)), features="ns", refit=_profile_from(""))


def test_delete_forgets_pairs_too(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    store.add_comparisons(
        "ann", [Comparison("p", "a", "b")], np.ones((1, 2)), features="ns", refit=_profile_from("ann")
    )
    store.delete("ann")
    assert store.comparisons("ann") == [] and store.list() == []


def _writer(path: str, user: str, count: int) -> None:
    store = ProfileStore(path)
    for i in range(count):
        store.add_comparisons(
            user,
            [Comparison(f"p{i}", "a", "b")],
            np.ones((1, 2)) * i,
            features="ns",
            refit=_profile_from(user),
        )


def test_processes_writing_at_once_lose_no_pair_and_each_profile_counts_all(tmp_path):
    path = str(tmp_path / "p.sqlite")
    ProfileStore(path)
    context = mp.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, user, 15)) for user in ("a", "b", "a", "c")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    store = ProfileStore(path)
    assert {p.user: p.n_pairs for p in store.list()} == {"a": 30, "b": 15, "c": 15}
    assert len(store.comparisons("a")) == 30
