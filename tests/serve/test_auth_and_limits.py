"""Who may do what (the auth matrix), and bad requests getting the right status with a clear message."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import ADMIN_TOKEN, bearer

PAIR = {"prompt": "Say hi.", "chosen": "Hi there, friend!", "rejected": "No."}
SCORE = {"prompt": "Say hi.", "responses": ["Hi!", "No."]}

# action → (method, path, json body)
ACTIONS = {
    "score general": ("post", "/v1/score", SCORE),
    "get_reward general": ("post", "/get_reward", {"query": ["User: hi\nAssistant: hello"]}),
    "score as alice": ("post", "/v1/score", {**SCORE, "user": "alice"}),
    "get_reward as alice": (
        "post",
        "/get_reward",
        {"query": ["User: hi\nAssistant: hello"], "user": "alice"},
    ),
    "read alice": ("get", "/v1/users/alice", None),
    "read alice's pairs": ("get", "/v1/users/alice/comparisons", None),
    "label as alice": ("post", "/v1/users/alice/comparisons", {"pairs": [PAIR]}),
    "create user": ("post", "/v1/users", {"user": "carol"}),
    "new token for alice": ("post", "/v1/users/alice/tokens", None),
    "list users": ("get", "/v1/users", None),
    "delete alice": ("delete", "/v1/users/alice", None),  # last: it removes what the others use
}
OK = {200, 201, 204}
# caller → actions allowed; everything else must be refused (401 without a valid token, 403 otherwise).
ALLOWED_ON_LOOPBACK = {
    "nobody": {"score general", "get_reward general"},
    "bad token": set(),
    "alice": {
        "score general",
        "get_reward general",
        "score as alice",
        "get_reward as alice",
        "read alice",
        "read alice's pairs",
        "label as alice",
        "delete alice",
    },
    "bob": {"score general", "get_reward general"},
    "admin": set(ACTIONS),
}


def _setup(client) -> dict[str, dict]:
    admin = bearer(ADMIN_TOKEN)
    tokens = {
        name: client.post("/v1/users", json={"user": name}, headers=admin).json()["token"]
        for name in ("alice", "bob")
    }
    labelled = client.post("/v1/users/alice/comparisons", json={"pairs": [PAIR]}, headers=admin)
    assert labelled.status_code == 200, labelled.text
    return {
        "nobody": {},
        "bad token": bearer("not-a-real-token-0000000000"),
        "alice": bearer(tokens["alice"]),
        "bob": bearer(tokens["bob"]),
        "admin": admin,
    }


@pytest.mark.parametrize("require_token", [False, True])
@pytest.mark.parametrize("caller", list(ALLOWED_ON_LOOPBACK))
def test_auth_matrix(make_client, caller, require_token):
    allowed = set(ALLOWED_ON_LOOPBACK[caller])
    if require_token and caller == "nobody":
        allowed = set()
    client = make_client(require_token=require_token)
    headers = _setup(client)[caller]
    for action, (method, path, body) in ACTIONS.items():
        reply = client.request(method, path, json=body, headers=headers)
        if action in allowed:
            assert reply.status_code in OK, (caller, action, reply.status_code, reply.text)
        else:
            expected = 401 if caller in ("nobody", "bad token") else 403
            assert reply.status_code == expected, (caller, action, reply.status_code, reply.text)
            assert "detail" in reply.json() and "Traceback" not in reply.text


def test_user_tokens_are_stored_hashed(make_client, tmp_path):
    import sqlite3

    client = make_client()
    token = client.post("/v1/users", json={"user": "dana"}, headers=bearer(ADMIN_TOKEN)).json()["token"]
    with sqlite3.connect(tmp_path / "profiles.sqlite") as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM tokens")]
    assert token not in stored and len(stored) == 2  # admin + dana, hashes only
    raw = (tmp_path / "profiles.sqlite").read_bytes()
    assert token.encode() not in raw and ADMIN_TOKEN.encode() not in raw


def test_creating_a_user_twice_is_a_conflict_and_bad_names_are_refused(make_client):
    client = make_client()
    admin = bearer(ADMIN_TOKEN)
    assert client.post("/v1/users", json={"user": "erin"}, headers=admin).status_code == 201
    again = client.post("/v1/users", json={"user": "erin"}, headers=admin)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    assert client.post("/v1/users", json={"user": "../etc"}, headers=admin).status_code == 422


def _detail(reply) -> str:
    return json.dumps(reply.json()["detail"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prompt": "x"}, 422, "exactly one of 'responses' or 'pairs'"),
        ({"prompt": "x", "responses": "not a list"}, 422, "responses"),
        ({"prompt": 3, "responses": ["a"]}, 422, "prompt"),
        ({"prompt": "x", "responses": ["a"], "head": "pc99"}, 422, "unknown head 'pc99'"),
        ({"prompt": "x", "responses": ["a"] * 9}, 422, "responses: 9 items; at most 8"),
        ({"prompt": "x", "responses": ["a", "b" * 101]}, 422, "responses[1]: 101 characters; at most 100"),
        ({"prompt": "p" * 101, "responses": ["a"]}, 422, "prompt[0]: 101 characters"),
        ({"prompt": "x", "responses": ["a"], "user": "nobody-here"}, 401, "needs that user's token"),
    ],
)
def test_bad_score_requests_get_a_located_message(make_client, body, status, message):
    from pluralrm.config import SERVE, replace

    client = make_client(config=replace(SERVE, max_texts=8, max_text_chars=100))
    reply = client.post("/v1/score", json=body)
    assert reply.status_code == status, reply.text
    assert message in _detail(reply)
    assert "Traceback" not in reply.text and "input" not in reply.json()["detail"]


def test_malformed_json_and_huge_bodies(make_client):
    from pluralrm.config import SERVE, replace

    client = make_client(config=replace(SERVE, max_body_bytes=1000))
    broken = client.post(
        "/v1/score", content=b'{"prompt": "x", "responses": [', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in _detail(broken)
    huge = client.post("/v1/score", json={"prompt": "x", "responses": ["a" * 2000]})
    assert huge.status_code == 413 and "1,000 bytes" in huge.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b" " * 100

    streamed = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/v1/score", json=SCORE).status_code == 200  # the server is fine afterwards
    assert 'route="unmatched",status="413"' in client.get("/metrics").text


def test_labelling_refuses_identical_pairs_and_unknown_profiles_are_404(make_client):
    client = make_client()
    admin = bearer(ADMIN_TOKEN)
    same = {"prompt": "x", "chosen": "same", "rejected": "same"}
    reply = client.post("/v1/users/fay/comparisons", json={"pairs": [PAIR, same]}, headers=admin)
    assert reply.status_code == 422 and "pairs[1]: chosen and rejected are the same text" in _detail(reply)
    assert client.get("/v1/users/fay/comparisons", headers=admin).json() == []  # nothing half-written
    missing = client.post("/v1/score", json={**SCORE, "user": "fay"}, headers=admin)
    assert missing.status_code == 404 and "no profile yet" in missing.json()["detail"]
    assert client.post("/v1/users/fay/comparisons", json={"pairs": []}, headers=admin).status_code == 422


def test_a_reward_the_model_lacks_is_422_not_500(served_model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from pluralrm.rewards.reward_model import RewardModel
    from pluralrm.serve import create_app

    full = RewardModel.from_pretrained(served_model_dir)
    heads_only = RewardModel(
        namespace=full.namespace, backbone_name=full.backbone_name, decomposed=full.decomposed
    )
    with TestClient(create_app(heads_only, store=tmp_path / "p.sqlite", device="cpu")) as client:
        reply = client.post("/v1/score", json=SCORE)
        assert reply.status_code == 422 and "no general head" in reply.json()["detail"]
        assert client.post("/v1/score", json={**SCORE, "head": "pc1"}).status_code == 200


def test_internal_errors_are_500_without_a_stack_trace(make_client, monkeypatch):
    client = make_client()
    state = client.app.state.pluralrm

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /home/x/model.py line 3")

    monkeypatch.setattr(state.model, "rewards", broken)
    reply = client.post("/v1/score", json=SCORE)
    assert reply.status_code == 500
    assert reply.json() == {"detail": "internal error; the server log has the details"}


def test_health_and_openapi_docs(make_client):
    client = make_client()
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["heads"] == ["general", "pc1", "pc2", "pc3", "pc4"]
    assert health["require_token"] is False
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/score", "/get_reward", "/v1/users/{user}/comparisons", "/healthz", "/metrics"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_require_token_defaults_on_off_loopback(served_model_dir, tmp_path):
    from pluralrm.config import SERVE, replace
    from pluralrm.serve import create_app

    public = create_app(served_model_dir, store=tmp_path / "a.sqlite", config=replace(SERVE, host="0.0.0.0"))
    local = create_app(served_model_dir, store=tmp_path / "b.sqlite")
    assert public.state.pluralrm.require_token is True
    assert local.state.pluralrm.require_token is False


def test_serve_verb_refuses_a_bad_model_directory_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from pluralrm.cli import app

    result = CliRunner().invoke(
        app, ["serve", str(tmp_path / "nowhere"), "--profiles", str(tmp_path / "p.sqlite")]
    )
    assert result.exit_code == 2
    assert "missing config.json; not a pluralrm reward model directory" in result.output
    assert "Traceback" not in result.output
