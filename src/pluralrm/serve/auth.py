"""Bearer tokens for the reward server: who may score with, read or change which profile.

Tokens are 256-bit random strings shown once when issued; only their SHA-256 is stored (a slow password
hash buys nothing for tokens of that entropy), in a table beside the profiles in the same SQLite file.
An admin token creates users and their tokens and may act for any user; a user token acts only for its
own user.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pluralrm.sqlite_file import SQLiteFile

ADMIN = "admin"
USER = "user"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the admin, or one user."""

    role: str
    user: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def may_act_for(self, user: str) -> bool:
        return self.is_admin or self.user == user


class TokenStore(SQLiteFile):
    """Hashed tokens in SQLite (opened like the profile store, so both can share one file)."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        super().__init__(path, timeout=timeout)
        with self._connect() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, "
                "user TEXT, created_at REAL NOT NULL)"
            )

    def register(self, token: str, *, role: str, user: str | None = None) -> None:
        """Store (the hash of) a token chosen elsewhere, e.g. the admin token of a deployment."""
        if role not in (ADMIN, USER):
            raise ValueError(f"role must be {ADMIN!r} or {USER!r}, got {role!r}")
        if role == USER and not user:
            raise ValueError("a user token needs a user name")
        if len(token) < 16:
            raise ValueError("a token must have at least 16 characters")
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO tokens (token_hash, role, user, created_at) VALUES (?, ?, ?, ?)",
                (hash_token(token), role, user, time.time()),
            )

    def issue(self, *, role: str = USER, user: str | None = None) -> str:
        """A new random token for ``user`` (or an admin token); the only time it is ever returned."""
        token = secrets.token_urlsafe(32)
        self.register(token, role=role, user=user)
        return token

    def lookup(self, token: str) -> Principal | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT role, user FROM tokens WHERE token_hash = ?", (hash_token(token),)
            ).fetchone()
        return None if row is None else Principal(role=row[0], user=row[1])

    def has_user(self, user: str) -> bool:
        with self._connect() as connection:
            row = connection.execute("SELECT 1 FROM tokens WHERE user = ? LIMIT 1", (user,)).fetchone()
        return row is not None

    def users(self) -> list[str]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT DISTINCT user FROM tokens WHERE role = ? ORDER BY user", (USER,)
            ).fetchall()
        return [row[0] for row in rows]

    def revoke_user(self, user: str) -> int:
        """Remove every token of ``user``; returns how many there were."""
        with self._connect() as connection:
            return connection.execute("DELETE FROM tokens WHERE user = ?", (user,)).rowcount


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
