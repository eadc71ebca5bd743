"""The labelling project's store: pairs to label, labellers with hashed tokens, and their labels, in SQLite.

One file per project (``PROJECT_DIR/labels.sqlite``), opened like every pluralrm store
(:class:`pluralrm.sqlite_file.SQLiteFile`: WAL, busy timeout, one ``BEGIN IMMEDIATE`` transaction per
write), so several server workers and the CLI may use it at once.

A pair shown to a labeller is one row of ``shown`` keyed by (labeller, pair): it remembers the order the
two responses were shown in (random per row, so position bias averages out and a reload shows the same
screen), reserves the pair while it is on screen, and holds the labeller's answer once given. A label is
therefore an update of that row: re-posting changes it and can never count twice, a labeller can only
label a pair that was shown to *them*, and every read of labels is filtered by labeller.

Who a labeller is comes from the one token store of pluralrm's web apps (:class:`pluralrm.web.TokenStore`):
a project served alone keeps it in its own file (``label users add`` issues tokens there); mounted on the
reward server (``pluralrm serve --label``), the server's store is used and a labeller is the server's user
of that name. The ``labellers`` table only names who labelled (the rows ``shown`` refers to); it is filled
on a labeller's first request.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.label.assign import PairState, budget_left, next_pair, remaining_for
from pluralrm.sqlite_file import SQLiteFile
from pluralrm.web.tokens import ADMIN, USER, Principal, RevokedTokenError, TokenStore

CHOICES = ("1", "2", "tie", "skip")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pairs (pair_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, prompt TEXT NOT NULL, "
    "response_a TEXT NOT NULL, response_b TEXT NOT NULL, ai_label TEXT, ai_margin REAL, provenance TEXT NOT "
    "NULL)",
    "CREATE TABLE IF NOT EXISTS labellers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, "
    "is_admin INTEGER NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shown (labeller_id INTEGER NOT NULL, pair_id TEXT NOT NULL, swapped INTEGER "
    "NOT NULL, shown_at REAL NOT NULL, choice TEXT, tags TEXT, seconds REAL, labelled_at REAL, revisions "
    "INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (labeller_id, pair_id))",
    "CREATE INDEX IF NOT EXISTS shown_by_pair ON shown (pair_id)",
    "CREATE TABLE IF NOT EXISTS project (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


@dataclass(frozen=True)
class PairToLabel:
    """One line of the pairs-to-label file (the filtering stage's output handed to people)."""

    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    ai_label: str | None = None
    ai_margin: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


class LabelError(ValueError):
    """A label the store refuses (unknown pair, a pair never shown to this labeller, a bad choice)."""


@dataclass(frozen=True)
class Labeller:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class Shown:
    """A pair as one labeller sees it: responses in their remembered order, and their answer so far."""

    pair_id: str
    prompt: str
    response_1: str
    response_2: str
    swapped: bool
    choice: str | None  # in screen terms: "1", "2", "tie", "skip", or None before answering
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Label:
    """A stored label, in terms of the pair's own responses (``a``, ``b``, ``tie``, ``skip``)."""

    labeller: str
    pair_id: str
    choice: str
    tags: tuple[str, ...]
    seconds: float | None
    labelled_at: float
    revisions: int


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def _migrate_labellers(connection: sqlite3.Connection) -> None:
    """Projects written before the shared token store kept token hashes in ``labellers`` and their own
    ``sessions``: the hashes move to ``tokens`` (every token keeps working), the table is rebuilt without
    them, and the old sessions are dropped (a browser signs in once more)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(labellers)")}
    if "token_hash" not in columns:
        return
    connection.execute(
        "INSERT OR IGNORE INTO tokens (token_hash, role, user, created_at) SELECT token_hash, "
        "CASE WHEN is_admin THEN 'admin' ELSE 'user' END, name, created_at FROM labellers"
    )
    connection.execute(
        "CREATE TABLE labellers_new (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, "
        "is_admin INTEGER NOT NULL, created_at REAL NOT NULL)"
    )
    connection.execute("INSERT INTO labellers_new SELECT id, name, is_admin, created_at FROM labellers")
    connection.execute("DROP TABLE labellers")
    connection.execute("ALTER TABLE labellers_new RENAME TO labellers")
    connection.execute("DROP TABLE IF EXISTS sessions")


def _screen_to_pair(choice: str, swapped: bool) -> str:
    if choice == "1":
        return "b" if swapped else "a"
    if choice == "2":
        return "a" if swapped else "b"
    return choice


def _pair_to_screen(choice: str | None, swapped: bool) -> str | None:
    if choice == "a":
        return "2" if swapped else "1"
    if choice == "b":
        return "1" if swapped else "2"
    return choice


class LabelStore(SQLiteFile):
    """Pairs, labellers, what each was shown and answered, and (:attr:`tokens`) the project's own tokens and
    sessions when it is served alone, in one SQLite file."""

    FILENAME = "labels.sqlite"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        super().__init__(path, timeout=timeout)
        self.tokens = TokenStore(self.path, timeout=timeout)
        with self._transaction() as connection:
            _migrate_labellers(connection)
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute("INSERT OR IGNORE INTO project VALUES ('id', ?)", (secrets.token_hex(8),))
            self.project_id: str = connection.execute(
                "SELECT value FROM project WHERE key = 'id'"
            ).fetchone()[0]

    @classmethod
    def of_project(cls, project_dir: str | Path) -> LabelStore:
        """The store of a labelling project directory (created on first use)."""
        return cls(Path(project_dir) / cls.FILENAME)

    # --- pairs ---------------------------------------------------------------------------------------

    def import_pairs(self, pairs: Sequence[PairToLabel], *, source: str = "pairs") -> tuple[int, int]:
        """Add new pairs (all or none); returns (added, already present).

        A pair id already in the store must come with the same texts: labels given on one text must not
        silently attach to another, so a changed pair is refused, naming its position in ``source``.
        """
        added = 0
        with self._transaction() as connection:
            seq = connection.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM pairs").fetchone()[0]
            for index, pair in enumerate(pairs):
                row = connection.execute(
                    "SELECT prompt, response_a, response_b FROM pairs WHERE pair_id = ?", (pair.pair_id,)
                ).fetchone()
                if row is not None:
                    if tuple(row) != (pair.prompt, pair.response_a, pair.response_b):
                        raise DataValidationError(
                            RecordLocation(source, row=index),
                            f"pair {pair.pair_id!r} is already in the project with other texts",
                            "pair_id",
                        )
                    continue
                connection.execute(
                    "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        pair.pair_id,
                        seq + added,
                        pair.prompt,
                        pair.response_a,
                        pair.response_b,
                        pair.ai_label,
                        pair.ai_margin,
                        json.dumps(pair.provenance, ensure_ascii=False),
                    ),
                )
                added += 1
        return added, len(pairs) - added

    def pair(self, pair_id: str) -> PairToLabel | None:
        with self._connect() as connection:
            r = connection.execute("SELECT * FROM pairs WHERE pair_id = ?", (pair_id,)).fetchone()
        return None if r is None else PairToLabel(r[0], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]))

    def pairs(self) -> list[PairToLabel]:
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM pairs ORDER BY seq").fetchall()
        return [PairToLabel(r[0], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]

    # --- labellers ------------------------------------------------------------------------------

    def add_labeller(self, name: str, *, admin: bool = False) -> str:
        """Create a labeller (or an admin) and return their token — the only time it is ever shown."""
        if not _NAME.match(name):
            raise ValueError(
                f"labeller name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (it names export files)"
            )
        if name in {labeller.name for labeller in self.labellers()} or self.tokens.has_user(name):
            raise ValueError(f"a labeller named {name!r} already exists in {self.path}")
        self.labeller(Principal(ADMIN if admin else USER, name))
        return self.tokens.issue(role=ADMIN if admin else USER, user=name)

    def labeller(self, principal: Principal) -> Labeller:
        """The labeller a principal labels as (created on their first request)."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO labellers (name, is_admin, created_at) VALUES (?, ?, ?)",
                (principal.name, int(principal.is_admin), time.time()),
            )
            row = connection.execute(
                "SELECT id, name FROM labellers WHERE name = ?", (principal.name,)
            ).fetchone()
        return Labeller(row[0], row[1], principal.is_admin)

    def labeller_for_token(self, token: str) -> Labeller | None:
        """The labeller of a live token of this project's own token store (``None``: unknown or revoked)."""
        try:
            principal = self.tokens.lookup(token)
        except RevokedTokenError:
            return None
        return None if principal is None else self.labeller(principal)

    def labellers(self) -> list[Labeller]:
        with self._connect() as connection:
            rows = connection.execute("SELECT id, name, is_admin FROM labellers ORDER BY name").fetchall()
        return [Labeller(r[0], r[1], bool(r[2])) for r in rows]

    def forget(self, name: str) -> int:
        """Remove a labeller and everything they were shown and answered; returns how many labels went."""
        with self._transaction() as connection:
            row = connection.execute("SELECT id FROM labellers WHERE name = ?", (name,)).fetchone()
            if row is None:
                return 0
            gone = connection.execute(
                "DELETE FROM shown WHERE labeller_id = ? AND choice IS NOT NULL", (row[0],)
            ).rowcount
            connection.execute("DELETE FROM shown WHERE labeller_id = ?", (row[0],))
            connection.execute("DELETE FROM labellers WHERE id = ?", (row[0],))
        return gone

    # --- showing pairs and labelling them ------------------------------------------------------------

    def next_for(
        self, labeller: Labeller, *, labels_per_pair: int, budget: int | None, reserve_seconds: float
    ) -> tuple[Shown | None, Progress]:
        """The pair this labeller should answer now (their unanswered one first), and their progress."""
        now = time.time()
        live_after = now - reserve_seconds
        with self._transaction() as connection:
            pending = connection.execute(
                "SELECT pair_id, shown_at FROM shown WHERE labeller_id = ? AND choice IS NULL "
                "ORDER BY shown_at",
                (labeller.id,),
            ).fetchone()
            if pending is not None and pending[1] <= live_after:
                # The reservation lapsed, so others may have filled the pair (or the budget) meanwhile: keep
                # it only while there is still room, else take it back and hand out another.
                states, used = self._states(connection, labeller, live_after)
                filled = next(state.filled for state in states if state.pair_id == pending[0])
                left = budget_left(budget, used)
                if filled >= labels_per_pair or (left is not None and left <= 0):
                    connection.execute(
                        "DELETE FROM shown WHERE labeller_id = ? AND pair_id = ?", (labeller.id, pending[0])
                    )
                    pending = None
            if pending is None:
                states, used = self._states(connection, labeller, live_after)
                chosen = next_pair(
                    states, labels_per_pair=labels_per_pair, budget_left=budget_left(budget, used)
                )
                if chosen is not None:
                    connection.execute(
                        "INSERT INTO shown (labeller_id, pair_id, swapped, shown_at) VALUES (?, ?, ?, ?)",
                        (labeller.id, chosen, secrets.randbelow(2), now),
                    )
            else:
                chosen = pending[0]
                # Still on their screen: keep the reservation alive.
                connection.execute(
                    "UPDATE shown SET shown_at = ? WHERE labeller_id = ? AND pair_id = ?",
                    (now, labeller.id, chosen),
                )
            states, used = self._states(connection, labeller, live_after)
            rest = remaining_for(
                states, labels_per_pair=labels_per_pair, budget_left=budget_left(budget, used)
            )
            done = connection.execute(
                "SELECT COUNT(*) FROM shown WHERE labeller_id = ? AND choice IS NOT NULL", (labeller.id,)
            ).fetchone()[0]
        shown = None if chosen is None else self.shown(labeller, chosen)
        return shown, Progress(done=done, total=done + rest + (shown is not None))

    # --- personal assignment: which pair is the caller's business (the active rule on their profile) ---

    def pending(self, labeller: Labeller) -> list[str]:
        """Pairs on this labeller's screen, shown and not answered yet, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT pair_id FROM shown WHERE labeller_id = ? AND choice IS NULL "
                "ORDER BY shown_at, pair_id",
                (labeller.id,),
            ).fetchall()
        return [row[0] for row in rows]

    def unseen(self, labeller: Labeller) -> list[PairToLabel]:
        """Pairs never shown to this labeller, in import order (the candidates of a personal pick)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM shown s WHERE s.pair_id = p.pair_id "
                "AND s.labeller_id = ?) ORDER BY seq",
                (labeller.id,),
            ).fetchall()
        return [PairToLabel(r[0], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]

    def show(self, labeller: Labeller, pair_id: str) -> Shown:
        """Put a pair on this labeller's screen (a new row gets a random response order; a shown one keeps
        its order and answer) and return it as they see it."""
        with self._connect() as connection:
            if connection.execute("SELECT 1 FROM pairs WHERE pair_id = ?", (pair_id,)).fetchone() is None:
                raise LabelError(f"no pair {pair_id!r} in the project")
            connection.execute(
                "INSERT INTO shown (labeller_id, pair_id, swapped, shown_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (labeller_id, pair_id) DO UPDATE SET shown_at = excluded.shown_at",
                (labeller.id, pair_id, secrets.randbelow(2), time.time()),
            )
        shown = self.shown(labeller, pair_id)
        assert shown is not None  # inserted above
        return shown

    def personal_progress(self, labeller: Labeller) -> Progress:
        """Answered pairs, out of every pair of the project (each labeller may answer all of them)."""
        with self._connect() as connection:
            done = connection.execute(
                "SELECT COUNT(*) FROM shown WHERE labeller_id = ? AND choice IS NOT NULL", (labeller.id,)
            ).fetchone()[0]
            total = connection.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        return Progress(done=done, total=total)

    @staticmethod
    def _states(
        connection: sqlite3.Connection, labeller: Labeller, live_after: float
    ) -> tuple[list[PairState], int]:
        """Every pair's state for ``labeller``, and the labels + live reservations that use the budget."""
        rows = connection.execute(
            "SELECT p.pair_id, p.seq, p.ai_margin, "
            "COALESCE(SUM((s.choice IS NOT NULL AND s.choice != 'skip') OR (s.choice IS NULL AND "
            "s.shown_at > ? AND s.labeller_id != ?)), 0), COALESCE(MAX(s.labeller_id = ?), 0) "
            "FROM pairs p LEFT JOIN shown s ON s.pair_id = p.pair_id GROUP BY p.pair_id",
            (live_after, labeller.id, labeller.id),
        ).fetchall()
        used = connection.execute(
            "SELECT COUNT(*) FROM shown WHERE (choice IS NOT NULL AND choice != 'skip') OR "
            "(choice IS NULL AND shown_at > ?)",
            (live_after,),
        ).fetchone()[0]
        states = [PairState(r[0], r[1], int(r[3]), r[2], bool(r[4])) for r in rows]
        return states, used

    def shown(self, labeller: Labeller, pair_id: str) -> Shown | None:
        """A pair as shown to this labeller, or ``None`` if it never was (other labellers' are invisible)."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT p.prompt, p.response_a, p.response_b, s.swapped, s.choice, s.tags FROM shown s "
                "JOIN pairs p ON p.pair_id = s.pair_id WHERE s.labeller_id = ? AND s.pair_id = ?",
                (labeller.id, pair_id),
            ).fetchone()
        if row is None:
            return None
        prompt, a, b, swapped, choice, tags = row
        first, second = (b, a) if swapped else (a, b)
        screen = _pair_to_screen(choice, bool(swapped))
        return Shown(pair_id, prompt, first, second, bool(swapped), screen, tuple(json.loads(tags or "[]")))

    def record_label(
        self,
        labeller: Labeller,
        pair_id: str,
        choice: str,
        *,
        tags: Iterable[str] = (),
        seconds: float | None,
    ) -> Label:
        """Set (or change) this labeller's answer on a pair shown to them; ``choice`` in screen terms."""
        if choice not in CHOICES:
            raise LabelError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}")
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise LabelError(f"seconds must be a finite number ≥ 0, got {seconds!r}")
        tags = tuple(dict.fromkeys(tags))
        now = time.time()
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT swapped FROM shown WHERE labeller_id = ? AND pair_id = ?", (labeller.id, pair_id)
            ).fetchone()
            if row is None:
                raise LabelError(f"pair {pair_id!r} was not shown to {labeller.name}; ask for the next pair")
            connection.execute(
                "UPDATE shown SET choice = ?, tags = ?, seconds = ?, labelled_at = ?, revisions = revisions "
                "+ (choice IS NOT NULL) WHERE labeller_id = ? AND pair_id = ?",
                (_screen_to_pair(choice, bool(row[0])), json.dumps(tags), seconds, now, labeller.id, pair_id),
            )
        return next(label for label in self.labels(labeller) if label.pair_id == pair_id)

    def labels(self, labeller: Labeller | None = None) -> list[Label]:
        """Labels of one labeller (what a labeller may read), or of everyone (``None``: admin views only)."""
        query = (
            "SELECT l.name, s.pair_id, s.choice, s.tags, s.seconds, s.labelled_at, s.revisions FROM shown s "
            "JOIN labellers l ON l.id = s.labeller_id WHERE s.choice IS NOT NULL"
        )
        params: tuple = ()
        if labeller is not None:
            query, params = query + " AND s.labeller_id = ?", (labeller.id,)
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY s.labelled_at, l.name", params).fetchall()
        return [Label(r[0], r[1], r[2], tuple(json.loads(r[3] or "[]")), r[4], r[5], r[6]) for r in rows]
