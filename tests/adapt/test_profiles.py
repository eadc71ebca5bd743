import multiprocessing

import numpy as np
import pytest

from pluralrm.adapt import ProfileMismatchError, ProfileNotFoundError, ProfileStore, UserProfile


def profile(user="alice", head_set="h1", n=3):
    return UserProfile(
        user=user, weights=np.arange(n, dtype=float) / 7, head_set=head_set, method="logistic", n_pairs=15
    )


def test_round_trip_keeps_weights_exactly_and_created_at(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    first = store.put(profile())
    again = store.put(profile(n=3))
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at
    np.testing.assert_array_equal(store.get("alice").weights, np.arange(3) / 7)
    assert [p.user for p in store.list()] == ["alice"]
    with store._connect() as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_profile_for_another_head_set_is_refused(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    store.put(profile(head_set="aaaa"))
    assert store.get("alice", head_set="aaaa").user == "alice"
    with pytest.raises(ProfileMismatchError, match="adapt the user again"):
        store.get("alice", head_set="bbbb")


def test_missing_and_delete(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    with pytest.raises(ProfileNotFoundError, match="no profile for user 'bob'"):
        store.get("bob")
    store.put(profile("bob"))
    store.delete("bob")
    with pytest.raises(ProfileNotFoundError):
        store.delete("bob")


def _writer(path: str, worker: int) -> None:
    store = ProfileStore(path)
    for i in range(25):
        store.put(profile(user=f"w{worker}-u{i}", n=4))


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "p.sqlite")
    ProfileStore(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    profiles = ProfileStore(path).list()
    assert len(profiles) == 100 and all(len(p.weights) == 4 for p in profiles)


def test_a_failed_put_rolls_back_and_keeps_the_stored_profile(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    store.put(profile("carol"))
    broken = UserProfile(user="carol", weights=np.ones(3), head_set="h2", method="hyre", n_pairs="many")
    with pytest.raises(ValueError, match="invalid literal"):  # int("many") fails inside the transaction
        store.put(broken)
    kept = store.get("carol")  # the transaction was rolled back, the store is still usable
    assert (kept.head_set, kept.method) == ("h1", "logistic")
    store.put(profile("dave"))
    with pytest.raises(ValueError, match="a profile needs a non-empty user name"):
        store.put(profile(""))
    with pytest.raises(ProfileNotFoundError, match=r"no profile for user 'erin' in .*p\.sqlite"):
        store.delete("erin")
