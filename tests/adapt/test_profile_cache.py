"""ProfileCache: profiles from memory while the store's file is unchanged, and never a stale one after a
commit from another connection, thread or process."""

import subprocess
import sys

import numpy as np
import pytest

from pluralrm.adapt import (
    Comparison,
    ProfileCache,
    ProfileMismatchError,
    ProfileNotFoundError,
    ProfileStore,
    UserProfile,
)


def profile(user="alice", scale=1.0, head_set="h1"):
    return UserProfile(
        user=user,
        weights=np.array([1.0, -2.0, 0.5]) * scale,
        head_set=head_set,
        method="map",
        n_pairs=5,
        full=np.array([0.25, 0.0, -0.75, 1.5]) * scale,
    )


class CountingStore(ProfileStore):
    """A store that counts its reads, to tell a cached answer from a fresh one."""

    reads = 0

    def get(self, user, *, head_set=None):
        self.reads += 1
        return super().get(user, head_set=head_set)


def test_a_cached_profile_is_the_stored_one_and_is_read_once(tmp_path):
    store = CountingStore(tmp_path / "p.sqlite")
    store.put(profile())
    store.reads = 0
    cache = ProfileCache(store, max_entries=10)
    first, second = cache.get("alice"), cache.get("alice", head_set="h1")
    assert second is first and store.reads == 1
    np.testing.assert_array_equal(first.weights, [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(first.full, [0.25, 0.0, -0.75, 1.5])
    with pytest.raises(ValueError, match="read-only"):
        first.weights[0] = 9.0  # shared by every caller, so nobody may change it in place
    with pytest.raises(ProfileMismatchError, match="adapt the user again"):
        cache.get("alice", head_set="other")
    with pytest.raises(ProfileNotFoundError, match="no profile for user 'bob'"):
        cache.get("bob")
    cache.close()


def test_a_write_through_another_connection_is_seen_at_once(tmp_path):
    store = ProfileStore(tmp_path / "p.sqlite")
    store.put(profile())
    cache = ProfileCache(store, max_entries=10)
    assert cache.get("alice").weights[0] == 1.0
    ProfileStore(tmp_path / "p.sqlite").put(profile(scale=3.0))  # another store object, its own connection
    np.testing.assert_array_equal(cache.get("alice").weights, [3.0, -6.0, 1.5])
    store.add_comparisons(  # a refit in one transaction, through the cached store itself
        "alice",
        [Comparison("p", "a", "b")],
        np.ones((1, 4)),
        features="f",
        refit=lambda D: profile(scale=float(len(D)) * 5),
    )
    np.testing.assert_array_equal(cache.get("alice").weights, [5.0, -10.0, 2.5])
    store.delete("alice")
    with pytest.raises(ProfileNotFoundError):
        cache.get("alice")
    cache.close()


def test_a_write_from_another_process_is_seen(tmp_path):
    path = tmp_path / "p.sqlite"
    store = ProfileStore(path)
    store.put(profile())
    cache = ProfileCache(store, max_entries=10)
    assert cache.get("alice").weights[1] == -2.0
    script = (
        "import sys, numpy as np; from pluralrm.adapt import ProfileStore, UserProfile; "
        "ProfileStore(sys.argv[1]).put(UserProfile(user='alice', weights=np.array([7.0, 8.0, 9.0]), "
        "head_set='h1', method='hyre', n_pairs=9))"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    fresh = cache.get("alice")
    np.testing.assert_array_equal(fresh.weights, [7.0, 8.0, 9.0])
    assert fresh.full is None and fresh.method == "hyre"
    cache.close()


def test_the_least_recently_used_profile_goes_first_and_zero_entries_reads_every_time(tmp_path):
    store = CountingStore(tmp_path / "p.sqlite")
    for name in ("a", "b", "c"):
        store.put(profile(name))
    cache = ProfileCache(store, max_entries=2)
    cache.get("a"), cache.get("b"), cache.get("a"), cache.get("c")  # "b" is the least recently used
    assert len(cache) == 2
    store.reads = 0
    cache.get("a"), cache.get("c")
    assert store.reads == 0
    cache.get("b")
    assert store.reads == 1

    uncached = ProfileCache(store, max_entries=0)
    store.reads = 0
    uncached.get("a"), uncached.get("a")
    assert store.reads == 2 and len(uncached) == 0
    with pytest.raises(ValueError, match="max_entries must be >= 0"):
        ProfileCache(store, max_entries=-1)
