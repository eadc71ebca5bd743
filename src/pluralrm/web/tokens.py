"""Who a request acts as: hashed bearer tokens, their revocation, browser sessions and sign-in attempts.

One store for every web app of pluralrm (the reward server and the labelling page): a token names a
*principal* (the admin, or one user — a labeller is a user), and the same token works for scoring, for a
user's profile and for signing in on the labelling page. Tokens are 256-bit random strings shown once when
issued; only their SHA-256 is stored (a slow password hash buys nothing at that entropy). A revoked token
keeps its row (``revoked_at``) so a request with it is told so, and every session opened with it ends at
once. Sessions are random ids, stored hashed, each with its own CSRF token and a server-side expiry: a
cookie the browser still sends after ``expires_at`` opens nothing. Sign-in attempts are counted in the same
file, so several server processes share one limit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pluralrm.sqlite_file import SQLiteFile

ADMIN = "admin"
USER = "user"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, user TEXT, "
    "created_at REAL NOT NULL, revoked_at REAL)",
    "CREATE TABLE IF NOT EXISTS web_sessions (session_hash TEXT PRIMARY KEY, token_hash TEXT NOT NULL, "
    "csrf TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS signin_attempts (key TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signin_attempts_by_key ON signin_attempts (key, at)",
)


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the admin (``user`` may name the admin, as a labelling project's admins do),
    or one user."""

    role: str
    user: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def name(self) -> str:
        """The name a principal labels and is listed under (the deployment's unnamed admin: ``admin``)."""
        return self.user or ADMIN

    def may_act_for(self, user: str) -> bool:
        return self.is_admin or self.user == user


class RevokedTokenError(LookupError):
    """A token that was revoked (``pluralrm users revoke``, ``pluralrm label users revoke``)."""


class TokenStore(SQLiteFile):
    """Tokens, sessions and sign-in attempts in SQLite (opened like the other stores, so they share a file).

    ``clock`` is the time source of expiry and rate limits (tests move it forward instead of sleeping).
    """

    def __init__(
        self, path: str | Path, *, timeout: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(path, timeout=timeout)
        self.clock = clock
        with self._connect() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)
            # Migration: token tables written before revocation lack the column (their tokens are live).
            columns = {row[1] for row in connection.execute("PRAGMA table_info(tokens)")}
            if "revoked_at" not in columns:
                try:
                    connection.execute("ALTER TABLE tokens ADD COLUMN revoked_at REAL")
                except sqlite3.OperationalError as error:  # another process migrated it first
                    if "duplicate column" not in str(error):
                        raise

    # --- tokens --------------------------------------------------------------------------------------

    def register(self, token: str, *, role: str, user: str | None = None) -> None:
        """Store (the hash of) a token chosen elsewhere, e.g. the admin token of a deployment."""
        if len(token) < 16:
            raise ValueError("a token must have at least 16 characters")
        self.register_hash(hash_token(token), role=role, user=user, created_at=self.clock())

    def register_hash(self, token_hash: str, *, role: str, user: str | None, created_at: float) -> None:
        """Store an already hashed token (a store migrated from an older layout keeps its tokens).

        Registering a token again never revives it: a revoked admin token stays revoked across restarts.
        """
        if role not in (ADMIN, USER):
            raise ValueError(f"role must be {ADMIN!r} or {USER!r}, got {role!r}")
        if role == USER and not user:
            raise ValueError("a user token needs a user name")
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO tokens (token_hash, role, user, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (token_hash) DO UPDATE SET role = excluded.role, user = excluded.user",
                (token_hash, role, user, created_at),
            )

    def issue(self, *, role: str = USER, user: str | None = None) -> str:
        """A new random token for ``user`` (or an admin token); the only time it is ever returned."""
        token = secrets.token_urlsafe(32)
        self.register(token, role=role, user=user)
        return token

    def lookup(self, token: str) -> Principal | None:
        """The principal of a live token; ``None`` for an unknown one; :class:`RevokedTokenError`."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT role, user, revoked_at FROM tokens WHERE token_hash = ?", (hash_token(token),)
            ).fetchone()
        if row is None:
            return None
        if row[2] is not None:
            raise RevokedTokenError("this token was revoked; ask an admin for a new one")
        return Principal(role=row[0], user=row[1])

    def has_user(self, user: str) -> bool:
        """Whether ``user`` holds a live token."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT 1 FROM tokens WHERE user = ? AND revoked_at IS NULL LIMIT 1", (user,)
            ).fetchone()
        return row is not None

    def users(self) -> list[str]:
        """Users holding a live user token."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT DISTINCT user FROM tokens WHERE role = ? AND revoked_at IS NULL ORDER BY user",
                (USER,),
            ).fetchall()
        return [row[0] for row in rows]

    def revoke(self, token: str) -> bool:
        """Revoke one token (and end its sessions); whether it was live."""
        return self._revoke("token_hash = ?", (hash_token(token),)) > 0

    def revoke_user(self, user: str) -> int:
        """Revoke every live token of ``user`` (and end their sessions); returns how many there were."""
        return self._revoke("user = ?", (user,))

    def _revoke(self, where: str, params: tuple) -> int:
        with self._transaction() as connection:
            hashes = [
                row[0]
                for row in connection.execute(
                    f"SELECT token_hash FROM tokens WHERE {where} AND revoked_at IS NULL", params
                )
            ]
            for token_hash in hashes:
                connection.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE token_hash = ?", (self.clock(), token_hash)
                )
                connection.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))
        return len(hashes)

    # --- browser sessions ----------------------------------------------------------------------------

    def open_session(self, token: str, *, hours: float) -> tuple[str, str]:
        """A new browser session for a live token: (session id for the cookie, CSRF token for the pages)."""
        if hours <= 0:
            raise ValueError(f"a session must last a positive time, got {hours} hours")
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self._connect() as connection:
            connection.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
            connection.execute(
                "INSERT INTO web_sessions VALUES (?, ?, ?, ?)",
                (hash_token(session), hash_token(token), csrf, now + hours * 3600.0),
            )
        return session, csrf

    def session(self, session: str) -> tuple[Principal, str] | None:
        """The principal and CSRF token of a live session (unexpired, its token live), or ``None``."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT t.role, t.user, s.csrf FROM web_sessions s JOIN tokens t ON t.token_hash = "
                "s.token_hash WHERE s.session_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
                (hash_token(session), self.clock()),
            ).fetchone()
        return None if row is None else (Principal(role=row[0], user=row[1]), row[2])

    def close_session(self, session: str) -> None:
        with self._connect() as connection:
            connection.execute("DELETE FROM web_sessions WHERE session_hash = ?", (hash_token(session),))

    # --- sign-in attempts ----------------------------------------------------------------------------

    def attempts_wait(self, key: str, *, limit: int, window_seconds: float) -> float:
        """Seconds until ``key`` may try again (0: now): ``limit`` attempts in any ``window_seconds``."""
        now = self.clock()
        with self._connect() as connection:
            connection.execute("DELETE FROM signin_attempts WHERE at <= ?", (now - window_seconds,))
            rows = connection.execute(
                "SELECT at FROM signin_attempts WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (key, now - window_seconds, limit),
            ).fetchall()
        if len(rows) < limit:
            return 0.0
        return max(rows[-1][0] + window_seconds - now, 0.0)

    def record_attempt(self, key: str) -> None:
        with self._connect() as connection:
            connection.execute("INSERT INTO signin_attempts VALUES (?, ?)", (key, self.clock()))


def admin_token(token_file: Path) -> tuple[str, str]:
    """The deployment's admin token and where it came from (for the operator), for ``create_app``.

    ``$PLURALRM_ADMIN_TOKEN`` when set; else the token in ``token_file``; else a new one written there
    (mode 0600, created atomically) so that an operator can read it once and scripts can use it.
    """
    token = os.environ.get("PLURALRM_ADMIN_TOKEN")
    if token:
        return token, "$PLURALRM_ADMIN_TOKEN"
    if token_file.exists():
        token = token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise ValueError(f"{token_file}: the admin token file is empty; delete it to make a new one")
        return token, str(token_file)
    token = secrets.token_urlsafe(32)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, str(token_file)
