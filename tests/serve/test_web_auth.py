"""The shared web layer on the reward server: only the Bearer scheme (OpenRLHF's Basic on its two routes
alone), revoked tokens refused everywhere, and ``/get_reward`` with a user answering with that user's
reward — one opposed to the general head, so returning the general reward instead cannot pass."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app as cli
from pluralrm.rewards.reward_model import RewardModel
from tests.serve.conftest import admin, bearer

QUERY = {"query": ["User: hi\nAssistant: hello"]}


def basic(user: str, token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture
def opposed(make_client, synthetic_pairs):
    """alice labelled 40 synthetic pairs the other way round from the data the general head was fitted on."""
    client = make_client()
    token = client.post("/v1/users", json={"user": "alice"}, headers=admin()).json()["token"]
    posted = [
        {"prompt": p["prompt"], "chosen": p["rejected"], "rejected": p["chosen"]}
        for p in synthetic_pairs[:40]
    ]
    reply = client.post("/v1/users/alice/comparisons", json={"pairs": posted}, headers=bearer(token))
    assert reply.status_code == 200, reply.text
    return client, token


@pytest.mark.parametrize("scheme", ["Token", "Basic", "Digest", "JWT"])
def test_a_valid_token_under_another_scheme_is_refused_off_the_openrlhf_routes(opposed, scheme):
    client, token = opposed
    value = base64.b64encode(f"alice:{token}".encode()).decode() if scheme == "Basic" else token
    headers = {"Authorization": f"{scheme} {value}"}
    for method, path, body in [
        ("get", "/v1/users/alice", None),
        ("post", "/v1/score", {"prompt": "Hi", "responses": ["a", "b"], "user": "alice"}),
        ("post", "/v1/users/alice/comparisons", {"pairs": [{"prompt": "p", "chosen": "x", "rejected": "y"}]}),
        ("post", "/v1/score", {"prompt": "Hi", "responses": ["a", "b"]}),  # even the open general reward
    ]:
        reply = client.request(method, path, json=body, headers=headers)
        assert reply.status_code == 401, (scheme, path, reply.text)
        assert reply.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/users/alice", headers=bearer(token)).status_code == 200
    if scheme != "Basic":  # OpenRLHF's routes take Basic (its client's only way), and nothing else
        for path in ("/get_reward", "/v1/users/alice/get_reward"):
            assert client.post(path, json=QUERY, headers=headers).status_code == 401


def test_a_revoked_token_is_refused_on_every_route(opposed, tmp_path):
    client, token = opposed
    second = client.post("/v1/users/alice/tokens", headers=admin()).json()["token"]
    assert (
        client.post("/v1/users/alice/get_reward", json=QUERY, headers=basic("alice", token)).status_code
        == 200
    )
    store = tmp_path / "profiles.sqlite"  # make_client's store
    result = CliRunner().invoke(cli, ["users", "revoke", "alice", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "revoked 2 token(s)" in result.output
    for headers in (bearer(token), bearer(second)):
        reply = client.get("/v1/users/alice", headers=headers)
        assert reply.status_code == 401 and "revoked" in reply.json()["detail"]
    openrlhf = client.post("/v1/users/alice/get_reward", json=QUERY, headers=basic("alice", token))
    assert openrlhf.status_code == 401 and "revoked" in openrlhf.json()["detail"]
    assert (
        client.post("/get_reward", json={**QUERY, "user": "alice"}, headers=bearer(token)).status_code == 401
    )
    # The admin issues a new one and it works; the profile was kept.
    fresh = CliRunner().invoke(cli, ["users", "token", "alice", "--store", str(store)])
    assert fresh.exit_code == 0, fresh.output
    new = fresh.stdout.strip().splitlines()[-1]
    assert client.get("/v1/users/alice", headers=bearer(new)).json()["n_pairs"] == 40


def test_get_reward_with_a_user_is_that_users_reward_not_the_general_one(opposed, served_model_dir):
    client, token = opposed
    model = RewardModel.from_pretrained(served_model_dir)
    profile = client.app.state.pluralrm.profiles.get("alice", head_set=model.head_set)
    pairs = [
        ("Name a colour.", "Blue.", "I will not."),
        ("How do I boil an egg?", "Boil it for 8 minutes.", "Eggs are round."),
        ("Say hi.", "Hi there, friend!", "No."),
        ("Capital of France?", "Paris.", "London, probably."),
    ]
    featurizer = model.featurizer(device="cpu")
    queries = [featurizer.format(p, r) for p, c, rej in pairs for r in (c, rej)]
    general = model.rewards(featurizer.encode(queries))
    alice = model.rewards(featurizer.encode(queries), user=profile)
    general_margin, alice_margin = general[0::2] - general[1::2], alice[0::2] - alice[1::2]
    disagree = np.sign(general_margin) != np.sign(alice_margin)
    assert disagree.any(), "the fixture must give alice a preference opposed to the general head's"

    def served(path: str, headers: dict, **extra) -> np.ndarray:
        reply = client.post(path, json={"query": queries, **extra}, headers=headers)
        assert reply.status_code == 200, reply.text
        return np.array(reply.json()["rewards"])

    by_body = served("/get_reward", bearer(token), user="alice")
    by_path = served("/v1/users/alice/get_reward", basic("alice", token))
    plain = served("/get_reward", {})
    np.testing.assert_allclose(by_body, alice, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_path, alice, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain, general, rtol=1e-5, atol=1e-6)
    served_margin = by_body[0::2] - by_body[1::2]
    assert (np.sign(served_margin[disagree]) == np.sign(alice_margin[disagree])).all()
    assert (np.sign(served_margin[disagree]) != np.sign(general_margin[disagree])).all()
    # The user's reward needs their token: without it the route refuses rather than answering generally.
    assert client.post("/get_reward", json={"query": queries, "user": "alice"}).status_code == 401
