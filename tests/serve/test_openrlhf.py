"""Per-user rewards for OpenRLHF: the HTTP route its stock client can be pointed at, the ``--reward.remote_url
file.py`` route, templated queries scored as pluralrm renders them, unknown query parameters refused.

The request is the one OpenRLHF's client makes — checked against OpenRLHF commit 3c3be62 (2026-08-13),
``openrlhf/utils/agent.py::SingleTurnAgentExecutor._fetch_rewards_via_http``: ``POST url`` with JSON
``{"query": [prompt + response], "prompts": [prompt], "labels": [label]}``, no headers of its own, through
aiohttp, which sends credentials written in the URL as HTTP Basic; it reads ``scores`` (else ``rewards``).
The prompt is what ``openrlhf/datasets/prompts_dataset.py::preprocess_data`` gives with
``--data.apply_chat_template``: the policy's template with its generation prompt. Where OpenRLHF's own code
and aiohttp are importable (``PLURALRM_OPENRLHF_SRC``: a checkout; never part of this repository), the
last tests run its executor itself against the server and the reward file.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.rewards.reward_model import RewardModel
from tests.serve.conftest import ADMIN_TOKEN, admin, bearer
from tests.servers import served_in_thread

CHATML = "<|im_start|>{role}\n{content}<|im_end|>\n"
PAIRS = [
    {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "I will not."},
    {"prompt": "How do I boil an egg?", "chosen": "Boil it for 8 minutes.", "rejected": "Eggs are round."},
    {
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "chosen": "Paris.",
        "rejected": "London, probably.",
    },
]


def templated(prompt) -> str:
    """A prompt as an OpenRLHF policy with a ChatML template sends it (with the generation prompt)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return "".join(CHATML.format(**m) for m in messages) + "<|im_start|>assistant\n"


def openrlhf_payloads(pairs) -> list[dict]:
    """One request per response, as OpenRLHF sends them: the decoded query ends in the policy's EOS."""
    out = []
    for pair in pairs:
        for side in ("chosen", "rejected"):
            prompt = templated(pair["prompt"])
            out.append({"query": [prompt + pair[side] + "<|im_end|>"], "prompts": [prompt], "labels": [""]})
    return out


def basic(user: str, token: str) -> dict:
    """The header aiohttp makes of ``http://USER:TOKEN@host/...`` (``BasicAuth.from_url``)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture
def with_alice(make_client, synthetic_pairs):
    """A server with users alice and bob; alice's profile is fitted on 40 synthetic pairs, each reversed."""
    client = make_client()
    tokens = {
        n: client.post("/v1/users", json={"user": n}, headers=admin()).json()["token"]
        for n in ("alice", "bob")
    }
    posted = [
        {"prompt": p["prompt"], "chosen": p["rejected"], "rejected": p["chosen"]}  # she prefers the other one
        for p in synthetic_pairs[:40]
    ]
    reply = client.post(
        "/v1/users/alice/comparisons", json={"pairs": posted}, headers=bearer(tokens["alice"])
    )
    assert reply.status_code == 200, reply.text
    return client, tokens


def _route_rewards(client, path, headers=None) -> list[float]:
    rewards = []
    for payload in openrlhf_payloads(PAIRS):
        reply = client.post(path, json=payload, headers=headers or {})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["scores"] == body["rewards"] and body["extra_logs"] == {"pluralrm_rendered": [1.0]}
        rewards += body["scores"]
    return rewards


def test_a_per_user_reward_through_openrlhfs_request_equals_pluralrm_score_user(
    with_alice, served_model_dir, tmp_path
):
    client, tokens = with_alice
    served = _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", tokens["alice"]))
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    out = tmp_path / "scores.jsonl"
    store = tmp_path / "profiles.sqlite"  # the server's store (make_client's default)
    args = ["score", str(served_model_dir), str(pairs_file), "--user", "alice", "--store", str(store)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--no-cache", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    cli = [r[key] for r in rows for key in ("chosen_reward", "rejected_reward")]
    np.testing.assert_allclose(served, cli, rtol=1e-5, atol=1e-6)
    # The bearer token and an admin's Basic credentials reach the same reward.
    np.testing.assert_allclose(
        _route_rewards(client, "/v1/users/alice/get_reward", bearer(tokens["alice"])), served, atol=1e-7
    )
    np.testing.assert_allclose(
        _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", ADMIN_TOKEN)), served, atol=1e-7
    )


def test_the_users_reward_differs_from_the_general_one_where_they_disagree(with_alice, served_model_dir):
    client, tokens = with_alice
    model = RewardModel.from_pretrained(served_model_dir)
    profile = client.app.state.pluralrm.profiles.get("alice", head_set=model.head_set)
    chosen = [(p["prompt"], p["chosen"]) for p in PAIRS]
    rejected = [(p["prompt"], p["rejected"]) for p in PAIRS]
    general_margin = model.rewards(chosen) - model.rewards(rejected)
    alice_margin = model.rewards(chosen, user=profile) - model.rewards(rejected, user=profile)
    served_alice = np.array(
        _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", tokens["alice"]))
    )
    served_general = np.array(_route_rewards(client, "/get_reward"))
    np.testing.assert_allclose(served_alice[0::2] - served_alice[1::2], alice_margin, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        served_general[0::2] - served_general[1::2], general_margin, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(served_alice, served_general, atol=1e-3)
    # The body's "user" on /get_reward is the same reward as the path.
    payload = openrlhf_payloads(PAIRS[:1])[0]
    reply = client.post("/get_reward", json={**payload, "user": "alice"}, headers=bearer(tokens["alice"]))
    np.testing.assert_allclose(reply.json()["rewards"], served_alice[:1], atol=1e-7)


def test_per_user_route_auth(with_alice):
    client, tokens = with_alice
    payload = openrlhf_payloads(PAIRS[:1])[0]
    path = "/v1/users/alice/get_reward"
    assert client.post(path, json=payload).status_code == 401  # the stock client without credentials
    assert (
        client.post(path, json=payload, headers=basic("alice", "wrong-token-000000000000")).status_code == 401
    )
    assert client.post(path, json=payload, headers=basic("bob", tokens["alice"])).status_code == 401
    assert client.post(path, json=payload, headers=basic("bob", tokens["bob"])).status_code == 403
    assert client.post(path, json=payload, headers={"Authorization": "Basic !!!"}).status_code == 401
    wrong_user = client.post(path, json={**payload, "user": "bob"}, headers=basic("alice", tokens["alice"]))
    assert wrong_user.status_code == 422 and "'bob' in the body, 'alice' in the path" in wrong_user.text
    # Basic credentials are for OpenRLHF's routes only.
    assert client.get("/v1/users/alice", headers=basic("alice", tokens["alice"])).status_code == 401


@pytest.mark.parametrize(
    ("path", "parameter"), [("/get_reward", "user"), ("/get_reward", "token"), ("/v1/score", "user")]
)
def test_unknown_query_parameters_are_refused_not_ignored(make_client, path, parameter):
    client = make_client()
    body = (
        {"query": ["User: Hi\nAssistant: Hello"]}
        if path == "/get_reward"
        else {"prompt": "Hi", "responses": ["Hello"]}
    )
    reply = client.post(f"{path}?{parameter}=alice", json=body)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert f"unknown query parameter '{parameter}' for POST {path}; it takes none" in detail
    if path == "/get_reward" and parameter == "user":
        assert "/v1/users/NAME/get_reward" in detail and "http://NAME:TOKEN@HOST:PORT" in detail
    assert client.get("/healthz?verbose=1").status_code == 422
    assert client.post(path, json=body).status_code == 200  # without it, fine


def test_queries_scored_as_sent_without_a_prompt_and_as_rendered_with_one(make_client, served_model_dir):
    client = make_client()
    model = RewardModel.from_pretrained(served_model_dir)
    prompt = templated("Name a colour.")
    query = prompt + "Blue.<|im_end|>"
    with_prompt = client.post("/get_reward", json={"query": [query], "prompts": [prompt]}).json()
    np.testing.assert_allclose(
        with_prompt["rewards"], model.rewards([("Name a colour.", "Blue.")]), atol=1e-6
    )
    mismatched = client.post("/get_reward", json={"query": [query], "prompts": ["another prompt"]}).json()
    np.testing.assert_allclose(
        mismatched["rewards"], model.featurizer().encode([query]) @ model.reward_vector(), atol=1e-6
    )
    assert mismatched["extra_logs"] == {"pluralrm_rendered": [0.0]}
    ragged = client.post("/get_reward", json={"query": [query, query], "prompts": [prompt]})
    assert ragged.status_code == 422 and "prompts: 1 items for 2 queries" in ragged.text


def test_the_reward_file_route_equals_the_server(with_alice, served_model_dir, tmp_path, monkeypatch):
    from pluralrm.serve import openrlhf_reward_func

    client, tokens = with_alice
    monkeypatch.setenv("PLURALRM_MODEL", str(served_model_dir))
    monkeypatch.setenv("PLURALRM_USER", "alice")
    monkeypatch.setenv("PLURALRM_PROFILES", str(tmp_path / "profiles.sqlite"))
    monkeypatch.setenv("PLURALRM_DEVICE", "cpu")
    monkeypatch.setattr(openrlhf_reward_func, "_scorer", None)
    served = _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", tokens["alice"]))
    from_file = []
    for payload in openrlhf_payloads(PAIRS):
        out = openrlhf_reward_func.reward_func(payload["query"], payload["prompts"], payload["labels"])
        assert out["rewards"].shape == (1,) and out["extra_logs"]["pluralrm_rendered"].tolist() == [1.0]
        from_file += out["scores"].tolist()
    np.testing.assert_allclose(from_file, served, rtol=1e-5, atol=1e-6)


# --- OpenRLHF's own client code, where it is available (never vendored) ---------------------------------


def _openrlhf_agent(monkeypatch):
    """``openrlhf/utils/agent.py`` loaded from an OpenRLHF checkout, unchanged, without running
    ``openrlhf/utils/__init__.py`` (which imports training helpers and their heavy dependencies)."""
    pytest.importorskip("aiohttp", reason="OpenRLHF's client needs aiohttp (pip install aiohttp)")
    source = os.environ.get("PLURALRM_OPENRLHF_SRC")
    if not source:
        spec = importlib.util.find_spec("openrlhf")
        source = str(Path(spec.origin).parent.parent) if spec and spec.origin else None
    if not source or not (Path(source) / "openrlhf" / "utils" / "agent.py").exists():
        pytest.skip(
            "OpenRLHF's source is not available: set PLURALRM_OPENRLHF_SRC to a checkout of "
            "https://github.com/OpenRLHF/OpenRLHF (the directory holding openrlhf/)"
        )
    utils = Path(source) / "openrlhf" / "utils"
    for name in ("openrlhf", "openrlhf.utils"):
        package = types.ModuleType(name)
        package.__path__ = []  # a package, so that submodules can be registered under it
        monkeypatch.setitem(sys.modules, name, package)
    for name in ("logging_utils", "agent"):
        spec = importlib.util.spec_from_file_location(f"openrlhf.utils.{name}", utils / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, f"openrlhf.utils.{name}", module)
        spec.loader.exec_module(module)
    return sys.modules["openrlhf.utils.agent"]


def test_openrlhfs_own_http_client_gets_alices_reward(with_alice, served_model_dir, monkeypatch):
    agent = _openrlhf_agent(monkeypatch)
    client, tokens = with_alice
    expected = _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", tokens["alice"]))
    with served_in_thread(client.app, "the reward server") as url:
        host = url.removeprefix("http://")
        executor = agent.SingleTurnAgentExecutor(
            remote_rm_url=[f"http://alice:{tokens['alice']}@{host}/v1/users/alice/get_reward"]
        )
        got = []
        for payload in openrlhf_payloads(PAIRS):
            (info,) = asyncio.run(
                executor._fetch_rewards_via_http(payload["query"], payload["prompts"], payload["labels"])
            )
            got += info["scores"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_openrlhfs_own_executor_loads_and_calls_the_reward_file(
    with_alice, served_model_dir, tmp_path, monkeypatch
):
    from pluralrm.serve import openrlhf_reward_func

    agent = _openrlhf_agent(monkeypatch)
    client, tokens = with_alice
    expected = _route_rewards(client, "/v1/users/alice/get_reward", basic("alice", tokens["alice"]))
    for key, value in {
        "PLURALRM_MODEL": str(served_model_dir),
        "PLURALRM_USER": "alice",
        "PLURALRM_PROFILES": str(tmp_path / "profiles.sqlite"),
        "PLURALRM_DEVICE": "cpu",
    }.items():
        monkeypatch.setenv(key, value)
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=openrlhf_reward_func.__file__)
    got = []
    for payload in openrlhf_payloads(PAIRS):
        (info,) = asyncio.run(
            executor._fetch_rewards_via_func(payload["query"], payload["prompts"], payload["labels"])
        )
        got += info["scores"].tolist()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
