"""User profiles (weights over a head set) and the labelled pairs behind them, persisted in SQLite.

A profile is only meaningful for the exact heads it was fitted on, so it records the head set's
fingerprint, and the store refuses to hand a profile to a different head set. SQLite runs in WAL mode with
a busy timeout, and each write is one ``BEGIN IMMEDIATE`` transaction, so several processes can write
profiles at once without losing or tearing any.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pluralrm.data.records import Prompt
from pluralrm.paths import cache_root
from pluralrm.sqlite_file import SQLiteFile


class ProfileMismatchError(ValueError):
    """A profile fitted on one head set used with another."""


class ProfileNotFoundError(KeyError):
    """No profile under that user name."""

    def __str__(self) -> str:  # KeyError quotes its argument; say it plainly
        return str(self.args[0])


@dataclass
class UserProfile:
    """One user's personal reward: weights over the heads of one head set, plus an optional full part.

    The reward vector in feature space is ``componentsᵀ weights + full``: adapters that fit the user's
    whole weight vector (``map``) keep its coordinates on the heads in ``weights`` and the rest — the part
    the heads cannot express — in ``full``. A profile is still tied to its head set: the two parts only add
    up to the fitted vector on the heads they were split against.

    Attributes
    ----------
    user : str
    weights : ndarray of shape (n_heads,)
    head_set : str
        :func:`pluralrm.rewards.decomposed.head_set_fingerprint` of the heads the weights apply to.
    method : str
        The adapter that produced the weights (``"hyre"``, ``"logistic"``, …).
    n_pairs : int
        Labelled pairs the weights were fitted on.
    created_at, updated_at : float
        Unix timestamps.
    full : ndarray of shape (n_features,) or None
        The part of the reward vector outside the heads' span (``None``: weights over heads only).
    """

    user: str
    weights: np.ndarray
    head_set: str
    method: str
    n_pairs: int
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    full: np.ndarray | None = None

    def check_head_set(self, head_set: str) -> None:
        if head_set != self.head_set:
            raise ProfileMismatchError(
                f"profile {self.user!r} was fitted on head set {self.head_set[:12]}…, not on this model's "
                f"{head_set[:12]}…; adapt the user again on this model"
            )


@dataclass(frozen=True)
class Comparison:
    """One labelled pair as a user gave it: ``chosen`` preferred over ``rejected`` for ``prompt``."""

    prompt: Prompt  # a string or a list of chat messages
    chosen: str
    rejected: str


@dataclass(frozen=True)
class StoredComparison(Comparison):
    """A comparison as stored: its id, the feature namespace it was featurized in, and when."""

    id: int = 0
    features: str = ""
    created_at: float = 0.0


def default_store_path() -> Path:
    """``$PLURALRM_CACHE/profiles.sqlite`` (override per call with an explicit path)."""
    return cache_root() / "profiles.sqlite"


class ProfileStore(SQLiteFile):
    """Profiles and the labelled pairs behind them in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        super().__init__(path if path is not None else default_store_path(), timeout=timeout)
        with self._connect() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS profiles (user TEXT PRIMARY KEY, weights TEXT NOT NULL, "
                "head_set TEXT NOT NULL, method TEXT NOT NULL, n_pairs INTEGER NOT NULL, "
                "created_at REAL NOT NULL, updated_at REAL NOT NULL, full TEXT)"
            )
            # The labelled pairs behind profiles fitted by the server: texts as given and the feature
            # difference they were fitted on (float32 bytes), under the feature namespace's fingerprint.
            connection.execute(
                "CREATE TABLE IF NOT EXISTS comparisons (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "user TEXT NOT NULL, features TEXT NOT NULL, prompt TEXT NOT NULL, chosen TEXT NOT NULL, "
                "rejected TEXT NOT NULL, diff BLOB NOT NULL, created_at REAL NOT NULL)"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS comparisons_by_user ON comparisons (user, id)")
            # Schema migrations: stores written before profiles had a full-feature part lack the column
            # (their rows read back with ``full=None``, weights over heads only, exactly as before); stores
            # written before labels were bridged lack ``source`` (their comparisons have none).
            _add_column(connection, "profiles", "full TEXT")
            _add_column(connection, "comparisons", "source TEXT")
            # A comparison that stands for an answer kept elsewhere (a label on the labelling page) is
            # keyed by its source, so that answer has at most one comparison per user.
            connection.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS comparisons_by_source ON comparisons (user, source) "
                "WHERE source IS NOT NULL"
            )

    def put(self, profile: UserProfile) -> UserProfile:
        """Insert or replace ``profile`` (keeping the original ``created_at``)."""
        if not profile.user:
            raise ValueError("a profile needs a non-empty user name")
        with self._transaction() as connection:
            _write_profile(connection, profile)
        return self.get(profile.user)

    # --- labelled comparisons behind a profile ------------------------------------------------------

    def add_comparisons(
        self,
        user: str,
        comparisons: Sequence[Comparison],
        diffs: np.ndarray,
        *,
        features: str,
        refit: Callable[[np.ndarray], UserProfile],
    ) -> tuple[list[int], UserProfile]:
        """Append a user's labelled pairs and refit their profile on all of them, in one transaction.

        ``diffs`` holds ``h(chosen) − h(rejected)`` of each comparison in feature namespace ``features`` (a
        fingerprint; pairs stored under another namespace are not used). ``refit`` maps the user's whole
        difference matrix to a profile. Holding the write lock from insert to profile write is what makes
        concurrent updates safe: a refit always sees every pair committed before it, so the last profile
        written includes every acknowledged pair (across threads and processes alike). Returns the new
        pairs' ids and the stored profile.
        """
        if not user:
            raise ValueError("a user name must not be empty")
        diffs = np.ascontiguousarray(diffs, dtype=np.float32)
        if diffs.ndim != 2 or len(diffs) != len(comparisons):
            raise ValueError(f"{len(comparisons)} comparisons but diffs of shape {diffs.shape}")
        now = time.time()
        with self._transaction() as connection:
            ids: list[int] = []
            for c, row in zip(comparisons, diffs, strict=True):
                cursor = connection.execute(
                    "INSERT INTO comparisons (user, features, prompt, chosen, rejected, diff, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user, features, json.dumps(c.prompt), c.chosen, c.rejected, row.tobytes(), now),
                )
                assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
                ids.append(cursor.lastrowid)
            D = _diff_matrix(connection, user, features, diffs.shape[1])
            profile = refit(D)
            if profile.user != user:
                raise ValueError(f"refit returned a profile for {profile.user!r}, not {user!r}")
            _write_profile(connection, profile)
        return ids, self.get(user)

    def set_comparison(
        self,
        user: str,
        source: str,
        comparison: Comparison | None,
        diff: np.ndarray | None,
        *,
        features: str,
        refit: Callable[[np.ndarray], UserProfile],
    ) -> UserProfile | None:
        """Make the user's comparison from ``source`` be ``comparison`` (``None``: none, e.g. a tie) and
        refit their profile, in one transaction.

        Idempotent: setting what is already there changes nothing but the profile's refit, so a label's
        bridge may be replayed (:meth:`pluralrm.serve.loop.LabelLoop.sync`). Returns the stored profile, or
        ``None`` when the user has no comparisons left (their profile is then removed: a reward learned
        from nothing would only be the prior under their name).
        """
        if not user or not source:
            raise ValueError("a user name and a source must not be empty")
        if (comparison is None) != (diff is None):
            raise ValueError("give a comparison with its feature difference, or neither")
        now = time.time()
        with self._transaction() as connection:
            connection.execute("DELETE FROM comparisons WHERE user = ? AND source = ?", (user, source))
            if comparison is not None and diff is not None:
                row = np.ascontiguousarray(diff, dtype=np.float32).reshape(-1)
                connection.execute(
                    "INSERT INTO comparisons (user, features, prompt, chosen, rejected, diff, created_at, "
                    "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user,
                        features,
                        json.dumps(comparison.prompt),
                        comparison.chosen,
                        comparison.rejected,
                        row.tobytes(),
                        now,
                        source,
                    ),
                )
            n_features = (
                len(diff.reshape(-1)) if diff is not None else _stored_width(connection, user, features)
            )
            D = _diff_matrix(connection, user, features, n_features) if n_features else np.zeros((0, 0))
            if not len(D):
                connection.execute("DELETE FROM profiles WHERE user = ?", (user,))
                return None
            profile = refit(D)
            if profile.user != user:
                raise ValueError(f"refit returned a profile for {profile.user!r}, not {user!r}")
            _write_profile(connection, profile)
        return self.get(user)

    def sourced(self, prefix: str) -> dict[tuple[str, str], tuple[str, str]]:
        """``(user, source) → (chosen, rejected)`` of every comparison whose source starts with ``prefix``."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT user, source, chosen, rejected FROM comparisons WHERE substr(source, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
        return {(u, src): (c, r) for u, src, c, r in rows}

    def comparisons(self, user: str) -> list[StoredComparison]:
        """The user's labelled pairs, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, prompt, chosen, rejected, features, created_at FROM comparisons WHERE user = ? "
                "ORDER BY id",
                (user,),
            ).fetchall()
        return [
            StoredComparison(id=i, prompt=json.loads(p), chosen=c, rejected=r, features=f, created_at=t)
            for i, p, c, r, f, t in rows
        ]

    def comparison_diffs(self, user: str, *, features: str, n_features: int) -> np.ndarray:
        """``h(chosen) − h(rejected)`` of the user's pairs stored under namespace ``features``."""
        with self._connect() as connection:
            return _diff_matrix(connection, user, features, n_features)

    def get(self, user: str, *, head_set: str | None = None) -> UserProfile:
        """The profile of ``user``; with ``head_set``, refuse one fitted on other heads."""
        with self._connect() as connection:
            row = connection.execute(f"SELECT {_COLUMNS} FROM profiles WHERE user = ?", (user,)).fetchone()
        if row is None:
            raise ProfileNotFoundError(f"no profile for user {user!r} in {self.path}")
        profile = _from_row(row)
        if head_set is not None:
            profile.check_head_set(head_set)
        return profile

    def list(self) -> list[UserProfile]:
        with self._connect() as connection:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM profiles ORDER BY user").fetchall()
        return [_from_row(row) for row in rows]

    def delete(self, user: str) -> None:
        """Forget ``user``: the profile and every labelled pair behind it."""
        with self._transaction() as connection:
            deleted = connection.execute("DELETE FROM profiles WHERE user = ?", (user,)).rowcount
            deleted += connection.execute("DELETE FROM comparisons WHERE user = ?", (user,)).rowcount
        if not deleted:
            raise ProfileNotFoundError(f"no profile for user {user!r} in {self.path}")


class ProfileCache:
    """Profiles read from a store once and kept in memory until anything is committed to its file.

    Why: a server scores the same users again and again, and each read of a profile is a SQLite
    connection, a query and a JSON decode of every weight (about 1 ms for a ``map`` profile of 400 floats
    on 2 cores; ``benchmarks/profiles_at_scale.py``). One connection is kept open to ask SQLite's
    ``PRAGMA data_version``, whose value changes whenever *any other* connection — another thread of this
    process, another server, ``pluralrm adapt`` — has committed to the file since it was last asked; then
    the whole cache is dropped. So a profile handed out is never older than the last commit made before
    the call (writes are rare next to reads: any write, a token or a labelled pair included, empties it).
    Cached arrays are read-only, because every caller shares them.

    Parameters
    ----------
    store : ProfileStore
    max_entries : int
        Most profiles kept (least recently used dropped first); ``0`` reads the store every time.
    """

    def __init__(self, store: ProfileStore, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.store = store
        self.max_entries = max_entries
        self._profiles: OrderedDict[str, UserProfile] = OrderedDict()
        self._lock = threading.Lock()  # routes call from the event loop and from worker threads
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None

    def __len__(self) -> int:
        return len(self._profiles)

    def get(self, user: str, *, head_set: str | None = None) -> UserProfile:
        """:meth:`ProfileStore.get`, from memory while the store's file is unchanged."""
        if self.max_entries == 0:
            return self.store.get(user, head_set=head_set)
        with self._lock:
            version = self._data_version()
            if version != self._version:
                self._profiles.clear()
                self._version = version
            profile = self._profiles.get(user)
            if profile is None:
                profile = self.store.get(user)
                for array in (profile.weights, profile.full):
                    if array is not None:
                        array.flags.writeable = False
                self._profiles[user] = profile
                while len(self._profiles) > self.max_entries:
                    self._profiles.popitem(last=False)
            else:
                self._profiles.move_to_end(user)
        if head_set is not None:
            profile.check_head_set(head_set)
        return profile

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._profiles.clear()
            self._version = None

    def _data_version(self) -> int:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.store.path, timeout=self.store.timeout, isolation_level=None, check_same_thread=False
            )
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])


def _write_profile(connection: sqlite3.Connection, profile: UserProfile) -> None:
    weights = json.dumps(np.asarray(profile.weights, dtype=float).tolist())
    full = None if profile.full is None else json.dumps(np.asarray(profile.full, dtype=float).tolist())
    row = connection.execute("SELECT created_at FROM profiles WHERE user = ?", (profile.user,)).fetchone()
    created = row[0] if row else profile.created_at
    connection.execute(
        "INSERT OR REPLACE INTO profiles (user, weights, head_set, method, n_pairs, created_at, "
        "updated_at, full) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            profile.user,
            weights,
            profile.head_set,
            profile.method,
            int(profile.n_pairs),
            created,
            time.time(),
            full,
        ),
    )


def _add_column(connection: sqlite3.Connection, table: str, column: str) -> None:
    if column.split()[0] in {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    except sqlite3.OperationalError as error:  # another process migrated it first
        if "duplicate column" not in str(error):
            raise


def _stored_width(connection: sqlite3.Connection, user: str, features: str) -> int:
    """The feature count of the user's stored comparisons in namespace ``features`` (0: none stored)."""
    row = connection.execute(
        "SELECT length(diff) FROM comparisons WHERE user = ? AND features = ? LIMIT 1", (user, features)
    ).fetchone()
    return 0 if row is None else row[0] // 4  # float32


def _diff_matrix(connection: sqlite3.Connection, user: str, features: str, n_features: int) -> np.ndarray:
    rows = connection.execute(
        "SELECT diff FROM comparisons WHERE user = ? AND features = ? ORDER BY id", (user, features)
    ).fetchall()
    D = np.zeros((len(rows), n_features), dtype=np.float32)
    for i, (blob,) in enumerate(rows):
        vector = np.frombuffer(blob, dtype=np.float32)
        if len(vector) != n_features:
            raise ValueError(
                f"stored comparison of user {user!r} has {len(vector)} features, expected {n_features}"
            )
        D[i] = vector
    return D


_COLUMNS = "user, weights, head_set, method, n_pairs, created_at, updated_at, full"


def _from_row(row: tuple) -> UserProfile:
    user, weights, head_set, method, n_pairs, created, updated, full = row
    return UserProfile(
        user=user,
        weights=np.array(json.loads(weights)),
        head_set=head_set,
        method=method,
        n_pairs=n_pairs,
        created_at=created,
        updated_at=updated,
        full=None if full is None else np.array(json.loads(full)),
    )
