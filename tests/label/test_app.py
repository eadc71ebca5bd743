"""The labelling app over HTTP (FastAPI's TestClient): tokens, sessions, CSRF, limits, pages, export."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from pluralrm.config import LABEL
from pluralrm.label.app import COOKIE, create_label_app
from pluralrm.label.io import export_rows
from pluralrm.label.store import LabelStore, PairToLabel

SECRET_TEXT = "the-secret-prompt-text"


@pytest.fixture
def project(tmp_path):
    store = LabelStore.of_project(tmp_path / "project")
    store.import_pairs(
        [
            PairToLabel(
                f"p{i}", f"{SECRET_TEXT} {i} <script>alert(1)</script>", f"A{i}", f"B{i}", "a", 0.1 * i
            )
            for i in range(4)
        ]
    )
    tokens = {name: store.add_labeller(name) for name in ("ann", "bo")}
    tokens["boss"] = store.add_labeller("boss", admin=True)
    return store, tokens


@pytest.fixture
def client(project):
    return TestClient(create_label_app(project[0]), base_url="http://testserver")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    response = client.post("/signin", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/next"), ("get", "/api/labels"), ("get", "/api/export"), ("post", "/api/labels")],
)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"}]
)
def test_a_missing_or_wrong_token_gets_401_and_no_data(client, method, path, headers):
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert SECRET_TEXT not in response.text and "A0" not in response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_label_flow_over_the_api(client, project):
    store, tokens = project
    first = client.get("/api/next", headers=bearer(tokens["ann"]))
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"pair_id", "prompt", "response_1", "response_2", "progress"}
    assert body["progress"] == {"done": 0, "total": 4}
    # Asking again before answering shows the same pair in the same order.
    assert client.get("/api/next", headers=bearer(tokens["ann"])).json() == body
    pair = body["pair_id"]
    posted = {"pair_id": pair, "choice": "1", "tags": ["clear"], "seconds": 2.5}
    assert client.post("/api/labels", headers=bearer(tokens["ann"]), json=posted).json() == {"ok": True}
    # Changing the answer replaces it.
    posted |= {"choice": "2", "tags": []}
    assert client.post("/api/labels", headers=bearer(tokens["ann"]), json=posted).status_code == 200
    (label,) = store.labels()
    chosen_text = body["response_2"]
    assert label.choice == ("a" if chosen_text.startswith("A") else "b") and label.tags == ()
    mine = client.get("/api/labels", headers=bearer(tokens["ann"])).json()
    assert mine == [{"pair_id": pair, "choice": "2", "tags": [], "seconds": 2.5}]
    assert client.get("/api/labels", headers=bearer(tokens["bo"])).json() == []
    second = client.get("/api/next", headers=bearer(tokens["ann"])).json()
    assert second["pair_id"] != pair and second["progress"] == {"done": 1, "total": 4}
    for _ in range(3):
        shown = client.get("/api/next", headers=bearer(tokens["ann"])).json()
        client.post(
            "/api/labels", headers=bearer(tokens["ann"]), json={"pair_id": shown["pair_id"], "choice": "tie"}
        )
    assert client.get("/api/next", headers=bearer(tokens["ann"])).status_code == 204
    assert len(store.labels()) == 4


def test_labels_are_refused_when_not_shown_malformed_or_tagged_unknown(client, project):
    _, tokens = project
    ann = bearer(tokens["ann"])
    shown = client.get("/api/next", headers=ann).json()
    other = "p3" if shown["pair_id"] != "p3" else "p2"
    assert client.post("/api/labels", headers=ann, json={"pair_id": other, "choice": "1"}).status_code == 409
    bad = client.post("/api/labels", headers=ann, json={"pair_id": shown["pair_id"], "choice": "3"})
    assert bad.status_code == 422 and "choice" in bad.json()["detail"]
    bad = client.post(
        "/api/labels", headers=ann, json={"pair_id": shown["pair_id"], "choice": "1", "tags": ["x"]}
    )
    assert bad.status_code == 422 and "unknown tags ['x']" in bad.json()["detail"]
    assert client.post("/api/labels", headers=ann, content=b"{not json").status_code == 422


def test_bodies_over_the_limit_get_413(project):
    store, tokens = project
    client = TestClient(create_label_app(store, replace(LABEL, max_body_bytes=1000)))
    big = {"pair_id": "p0", "choice": "1", "tags": ["x" * 2000]}
    assert client.post("/api/labels", headers=bearer(tokens["ann"]), json=big).status_code == 413

    def chunks():  # no Content-Length: the limit must hold while reading the stream
        for _ in range(10):
            yield b"x" * 200

    assert client.post("/api/labels", headers=bearer(tokens["ann"]), content=chunks()).status_code == 413
    assert client.post("/signin", content=b"token=" + b"x" * 2000).status_code == 413


def test_admin_endpoints_need_an_admin_token(client, project):
    _, tokens = project
    assert client.get("/api/export", headers=bearer(tokens["ann"])).status_code == 403
    assert client.get("/api/stats", headers=bearer(tokens["ann"])).status_code == 403
    assert client.get("/api/export", headers=bearer(tokens["boss"])).status_code == 200


def test_browser_session_cookie_and_csrf(client, project):
    store, tokens = project
    response = client.post("/signin", data={"token": tokens["ann"]}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert tokens["ann"] not in cookie  # the cookie is a session id, not the token
    page = client.get("/")
    assert page.status_code == 200
    assert (
        "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    )
    assert "script-src 'self'" in page.headers["content-security-policy"]
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    pair = re.search(r'data-pair="([^"]+)"', page.text).group(1)
    label = {"pair_id": pair, "choice": "1"}
    assert client.post("/api/labels", json=label).status_code == 403  # cookie alone is not enough
    assert client.post("/api/labels", json=label, headers={"X-CSRF-Token": "forged"}).status_code == 403
    cross = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert client.post("/api/labels", json=label, headers=cross).status_code == 403
    assert store.labels() == []
    same = {"X-CSRF-Token": csrf, "Origin": "http://testserver"}
    assert client.post("/api/labels", json=label, headers=same).status_code == 200
    # The page's own form (no JavaScript) posts the token as a field.
    page = client.get("/")
    pair = re.search(r'data-pair="([^"]+)"', page.text).group(1)
    form = {"pair_id": pair, "choice": "skip", "tags": ["clear", "safe"]}
    assert client.post("/label", data=form, follow_redirects=False).status_code == 403
    done = client.post("/label", data=form | {"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert [(lb.pair_id, lb.choice, lb.tags) for lb in store.labels()][-1] == (
        pair,
        "skip",
        ("clear", "safe"),
    )
    # Sign out ends the session server-side.
    assert client.post("/signout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_wrong_sign_in_token_sees_nothing(client):
    response = client.post("/signin", data={"token": "not-a-token"}, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "That token is not known here." in response.text and SECRET_TEXT not in response.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_revisiting_shows_only_own_pairs(project):
    store, tokens = project
    client = TestClient(create_label_app(store, replace(LABEL, labels_per_pair=1)))
    ann_pair = client.get("/api/next", headers=bearer(tokens["ann"])).json()["pair_id"]
    client.post("/api/labels", headers=bearer(tokens["ann"]), json={"pair_id": ann_pair, "choice": "2"})
    sign_in(client, tokens["bo"])
    page = client.get("/", params={"pair": ann_pair})
    assert page.status_code == 404 and SECRET_TEXT not in page.text
    client.cookies.clear()
    sign_in(client, tokens["ann"])
    page = client.get("/", params={"pair": ann_pair})
    assert page.status_code == 200 and f'data-pair="{ann_pair}"' in page.text
    assert 'Your current answer: <strong id="current">2</strong>' in page.text


def test_admin_page_and_export(client, project):
    store, tokens = project
    for name, choice in (("ann", "1"), ("bo", "1")):
        for _ in range(4):
            shown = client.get("/api/next", headers=bearer(tokens[name])).json()
            posted = {"pair_id": shown["pair_id"], "choice": choice, "seconds": 3.0}
            client.post("/api/labels", headers=bearer(tokens[name]), json=posted)
    stats = client.get("/api/stats", headers=bearer(tokens["boss"])).json()
    assert (stats["pairs"], stats["pairs_labelled"], stats["labels"]) == (4, 4, 8)
    (kappa,) = stats["kappa"]
    labels = store.labels()
    same = sum(
        a.choice == b.choice
        for a in labels
        for b in labels
        if a.pair_id == b.pair_id and a.labeller < b.labeller
    )
    assert kappa["n_common"] == 4 and kappa["observed"] == same / 4
    sign_in(client, tokens["ann"])
    assert client.get("/admin").status_code == 403
    client.cookies.clear()
    sign_in(client, tokens["boss"])
    page = client.get("/admin")
    assert page.status_code == 200
    assert re.search(r"<strong>4</strong> pairs, <strong>4</strong> judged", page.text)
    assert '<th scope="row">ann · bo</th><td>4</td>' in page.text
    exported = client.get("/api/export")
    assert exported.headers["content-disposition"] == 'attachment; filename="labels.jsonl"'
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows == export_rows(store)
    per = client.get("/api/export", params={"per_labeller": "true"}).text.splitlines()
    assert sorted(json.loads(line)["user"] for line in per) == ["ann"] * 4 + ["bo"] * 4


def test_static_script_is_served(client):
    response = client.get("/static/label.js")
    assert response.status_code == 200 and "X-CSRF-Token" in response.text
    assert response.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../label_store.py").status_code == 404


def test_routes_mount_under_a_prefix(project):
    from fastapi import FastAPI

    from pluralrm.label.app import mount_labelling
    from pluralrm.web.auth import install_tokens

    store, tokens = project
    app = FastAPI()
    install_tokens(app, store.tokens)
    mount_labelling(app, store, prefix="/label")
    client = TestClient(app)
    signed = client.post("/label/signin", data={"token": tokens["ann"]}, follow_redirects=False)
    assert signed.headers["location"] == "/label/" and "Path=/label" in signed.headers["set-cookie"]
    page = client.get("/label/")
    assert 'src="/label/static/label.js"' in page.text and 'action="/label/label"' in page.text
    assert client.get("/label/static/label.js").status_code == 200
    assert client.get("/label/api/next", headers=bearer(tokens["ann"])).status_code == 200
    assert client.get("/api/next", headers=bearer(tokens["ann"])).status_code == 404
