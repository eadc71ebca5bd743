"""The shared web layer on the labelling app: only the Bearer scheme, sessions that expire server-side,
revoked tokens refused, sign-in attempts limited, an old project's tokens migrated."""

from __future__ import annotations

import base64
import re
import sqlite3
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pluralrm.cli import app as cli
from pluralrm.config import LABEL
from pluralrm.label.app import create_label_app
from pluralrm.label.store import LabelStore, PairToLabel
from pluralrm.web.auth import COOKIE


class Clock:
    """A time source the test moves forward (the token store reads it for expiry and rate limits)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def project(tmp_path):
    store = LabelStore.of_project(tmp_path / "project")
    store.import_pairs([PairToLabel(f"p{i}", f"prompt {i}", f"A{i}", f"B{i}") for i in range(4)])
    store.tokens.clock = clock = Clock()
    tokens = {name: store.add_labeller(name) for name in ("ann", "bo")}
    return store, tokens, clock


def client_for(store, **config) -> TestClient:
    return TestClient(create_label_app(store, replace(LABEL, **config)), base_url="http://testserver")


def sign_in(client: TestClient, token: str) -> str:
    response = client.post("/signin", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Digest", "bearer-ish"])
def test_a_valid_token_under_any_scheme_but_bearer_is_refused(project, scheme):
    store, tokens, _ = project
    client = client_for(store)
    value = tokens["ann"]
    if scheme == "Basic":
        value = base64.b64encode(f"ann:{tokens['ann']}".encode()).decode()
    refused = client.get("/api/next", headers={"Authorization": f"{scheme} {value}"})
    assert refused.status_code == 401 and "must be 'Bearer <token>'" in refused.json()["detail"]
    assert "prompt" not in refused.text
    assert client.get("/api/next", headers={"Authorization": f"Bearer {tokens['ann']}"}).status_code == 200


def test_an_expired_session_is_refused(project):
    store, tokens, clock = project
    client = client_for(store, session_hours=1.0)
    csrf = sign_in(client, tokens["ann"])
    assert client.get("/api/next").status_code == 200  # the cookie alone reads
    clock.now += 3599
    assert client.get("/api/next").status_code == 200
    clock.now += 2  # past the hour: the browser still sends the cookie, the server no longer honours it
    assert COOKIE in client.cookies
    assert client.get("/api/next").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"
    posted = client.post("/api/labels", json={"pair_id": "p0", "choice": "1"}, headers={"X-CSRF-Token": csrf})
    assert posted.status_code == 401 and store.labels() == []


def test_a_revoked_token_is_refused_and_its_sessions_end(project, tmp_path):
    store, tokens, _ = project
    client = client_for(store)
    sign_in(client, tokens["ann"])
    bo = client_for(store)
    assert bo.get("/api/next", headers={"Authorization": f"Bearer {tokens['bo']}"}).status_code == 200
    result = CliRunner().invoke(cli, ["label", "users", "revoke", str(tmp_path / "project"), "ann"])
    assert result.exit_code == 0, result.output
    assert "revoked 1 token" in result.output
    bearer = client_for(store).get("/api/next", headers={"Authorization": f"Bearer {tokens['ann']}"})
    assert bearer.status_code == 401 and "revoked" in bearer.json()["detail"]
    assert client.get("/api/next").status_code == 401  # the session opened with it ended too
    again = client_for(store).post("/signin", data={"token": tokens["ann"]}, follow_redirects=False)
    assert again.status_code == 401
    assert bo.get("/api/next", headers={"Authorization": f"Bearer {tokens['bo']}"}).status_code == 200
    # Revoking twice says there was nothing left to revoke.
    result = CliRunner().invoke(cli, ["label", "users", "revoke", str(tmp_path / "project"), "ann"])
    assert result.exit_code != 0 and "no live token" in result.output


def test_sign_in_attempts_are_limited_per_address_and_per_labeller(project):
    store, tokens, clock = project
    client = client_for(store, signin_attempts=3, signin_window_seconds=600.0)
    for _ in range(3):
        assert client.post("/signin", data={"token": "wrong-token-guess-0000"}).status_code == 401
    limited = client.post("/signin", data={"token": "wrong-token-guess-0000"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "too many sign-in attempts" in limited.text
    # Past the limit even the right token is refused (the limit is checked before the token is).
    right = client.post("/signin", data={"token": tokens["ann"]}, follow_redirects=False)
    assert right.status_code == 429 and COOKIE not in right.headers.get("set-cookie", "")
    clock.now += 601
    assert client.post("/signin", data={"token": tokens["ann"]}, follow_redirects=False).status_code == 303
    # Per labeller: three sign-ins in the window, then 429 for that labeller (not for another one).
    for _ in range(2):
        assert (
            client.post("/signin", data={"token": tokens["ann"]}, follow_redirects=False).status_code == 303
        )
    assert client.post("/signin", data={"token": tokens["ann"]}, follow_redirects=False).status_code == 429
    assert client.post("/signin", data={"token": tokens["bo"]}, follow_redirects=False).status_code == 303


def test_a_project_written_before_the_shared_token_store_keeps_its_tokens(tmp_path):
    from pluralrm.web.tokens import hash_token

    path = tmp_path / "old" / "labels.sqlite"
    path.parent.mkdir()
    token = "an-old-token-of-ann-0123456789"
    with sqlite3.connect(path) as connection:  # the layout before pluralrm.web
        connection.execute(
            "CREATE TABLE labellers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, "
            "token_hash TEXT UNIQUE NOT NULL, is_admin INTEGER NOT NULL, created_at REAL NOT NULL)"
        )
        connection.execute("INSERT INTO labellers VALUES (7, 'ann', ?, 0, 1.0)", (hash_token(token),))
        connection.execute(
            "CREATE TABLE sessions (session_hash TEXT PRIMARY KEY, labeller_id INTEGER NOT NULL, "
            "csrf TEXT NOT NULL, expires_at REAL NOT NULL)"
        )
    store = LabelStore(path)
    ann = store.labeller_for_token(token)
    assert ann is not None and (ann.id, ann.name, ann.is_admin) == (7, "ann", False)
    with sqlite3.connect(path) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(labellers)")}
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "token_hash" not in columns and "sessions" not in tables
    assert LabelStore(path).labeller_for_token(token) == ann  # opening it again changes nothing
