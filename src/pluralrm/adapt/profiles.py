"""User profiles (weights over a head set) persisted in SQLite.

A profile is only meaningful for the exact heads it was fitted on, so it records the head set's
fingerprint, and the store refuses to hand a profile to a different head set. SQLite runs in WAL mode with
a busy timeout, and each write is one ``BEGIN IMMEDIATE`` transaction, so several processes can write
profiles at once without losing or tearing any.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pluralrm.paths import cache_root


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


def default_store_path() -> Path:
    """``$PLURALRM_CACHE/profiles.sqlite`` (override per call with an explicit path)."""
    return cache_root() / "profiles.sqlite"


class ProfileStore:
    """Profiles in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS profiles (user TEXT PRIMARY KEY, weights TEXT NOT NULL, "
                "head_set TEXT NOT NULL, method TEXT NOT NULL, n_pairs INTEGER NOT NULL, "
                "created_at REAL NOT NULL, updated_at REAL NOT NULL, full TEXT)"
            )
            # Schema migration: stores written before profiles had a full-feature part lack the column;
            # their rows read back with ``full=None`` (weights over heads only), exactly as before.
            columns = {row[1] for row in connection.execute("PRAGMA table_info(profiles)")}
            if "full" not in columns:
                try:
                    connection.execute("ALTER TABLE profiles ADD COLUMN full TEXT")
                except sqlite3.OperationalError as error:  # another process migrated it first
                    if "duplicate column" not in str(error):
                        raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()

    def put(self, profile: UserProfile) -> UserProfile:
        """Insert or replace ``profile`` (keeping the original ``created_at``)."""
        if not profile.user:
            raise ValueError("a profile needs a non-empty user name")
        weights = json.dumps(np.asarray(profile.weights, dtype=float).tolist())
        full = None if profile.full is None else json.dumps(np.asarray(profile.full, dtype=float).tolist())
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "SELECT created_at FROM profiles WHERE user = ?", (profile.user,)
                ).fetchone()
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
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return self.get(profile.user)

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
        with self._connect() as connection:
            deleted = connection.execute("DELETE FROM profiles WHERE user = ?", (user,)).rowcount
        if not deleted:
            raise ProfileNotFoundError(f"no profile for user {user!r} in {self.path}")


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
