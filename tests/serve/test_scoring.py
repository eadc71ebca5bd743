"""Served rewards equal the library's scoring path: general head, a head, pairs, users, OpenRLHF's shape."""

from __future__ import annotations

import numpy as np
import pytest

from pluralrm.adapt import build_profile
from pluralrm.rewards.reward_model import RewardModel
from tests.serve.conftest import admin, bearer

PROMPT = "How do I keep basil alive indoors?"
RESPONSES = [
    "Put it in a sunny window and water when the soil is dry.",
    "I cannot help with that.",
    "Basil likes six hours of sun, warmth, and regular pinching of the tips, honestly!",
]


def _library_rewards(model_dir, prompt, responses, **kwargs) -> np.ndarray:
    model = RewardModel.from_pretrained(model_dir)
    return model.rewards([(prompt, r) for r in responses], **kwargs)


def test_score_returns_the_library_rewards_for_the_general_head_and_one_head(make_client, served_model_dir):
    client = make_client()
    reply = client.post("/v1/score", json={"prompt": PROMPT, "responses": RESPONSES})
    assert reply.status_code == 200, reply.text
    assert reply.json()["reward"] == "general"
    expected = _library_rewards(served_model_dir, PROMPT, RESPONSES)
    np.testing.assert_allclose(reply.json()["rewards"], expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(expected) > 0  # the responses really get different rewards

    pc2 = client.post("/v1/score", json={"prompt": PROMPT, "responses": RESPONSES, "head": "pc2"}).json()
    np.testing.assert_allclose(
        pc2["rewards"],
        _library_rewards(served_model_dir, PROMPT, RESPONSES, head="pc2"),
        rtol=1e-5,
        atol=1e-6,
    )
    assert not np.allclose(pc2["rewards"], expected)


def test_pairs_give_margins_and_return_heads_gives_every_head(make_client, served_model_dir):
    client = make_client()
    pairs = [
        {"chosen": RESPONSES[0], "rejected": RESPONSES[1]},
        {"chosen": RESPONSES[2], "rejected": RESPONSES[0]},
    ]
    body = client.post("/v1/score", json={"prompt": PROMPT, "pairs": pairs, "return_heads": True}).json()
    chosen = _library_rewards(served_model_dir, PROMPT, [p["chosen"] for p in pairs])
    rejected = _library_rewards(served_model_dir, PROMPT, [p["rejected"] for p in pairs])
    np.testing.assert_allclose(body["margins"], chosen - rejected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(body["chosen_rewards"], chosen, rtol=1e-5, atol=1e-6)
    assert set(body["head_scores"]) == {"general", "pc1", "pc2", "pc3", "pc4"}
    np.testing.assert_allclose(body["head_scores"]["general"][:2], chosen, rtol=1e-5, atol=1e-6)


def test_conversational_prompt_is_scored_as_the_library_scores_it(make_client, served_model_dir):
    client = make_client()
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    body = client.post("/v1/score", json={"prompt": prompt, "responses": RESPONSES[:2]}).json()
    np.testing.assert_allclose(
        body["rewards"], _library_rewards(served_model_dir, prompt, RESPONSES[:2]), rtol=1e-5, atol=1e-6
    )


def test_openrlhf_request_is_answered_with_rewards_of_the_conversations(make_client, served_model_dir):
    """The body OpenRLHF's remote-RM client posts (openrlhf/utils/agent.py, _fetch_rewards_via_http):
    templated query texts plus the prompts they start with, and labels; it reads ``scores`` (else
    ``rewards``). With the prompt sent, each pair is scored as pluralrm renders it; without, as sent."""
    client = make_client()
    prompts = ["<|user|>Hi<|end|>\n<|assistant|>", "<|user|>Name a colour.<|end|>\n<|assistant|>"]
    queries = [prompts[0] + "Hello! How can I help?<|end|>", prompts[1] + "Blue.<|end|>"]
    payload = {"query": queries, "prompts": prompts, "labels": [None, "blue"]}
    reply = client.post("/get_reward", json=payload)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    model = RewardModel.from_pretrained(served_model_dir)
    expected = model.rewards([("Hi", "Hello! How can I help?"), ("Name a colour.", "Blue.")])
    np.testing.assert_allclose(body["rewards"], expected, rtol=1e-5, atol=1e-6)
    assert body["scores"] == body["rewards"] and body["extra_logs"] == {"pluralrm_rendered": [1.0, 1.0]}
    assert len(set(body["rewards"])) == 2

    as_sent = client.post("/get_reward", json={"query": queries}).json()
    np.testing.assert_allclose(
        as_sent["rewards"], model.featurizer().encode(queries) @ model.reward_vector(), rtol=1e-5, atol=1e-6
    )
    assert as_sent["extra_logs"] == {"pluralrm_rendered": [0.0, 0.0]}
    assert not np.allclose(as_sent["rewards"], body["rewards"], atol=1e-3)  # the rendering matters


def test_a_users_labelled_pairs_become_their_served_reward(make_client, served_model_dir, synthetic_pairs):
    client = make_client()
    token = client.post("/v1/users", json={"user": "alice"}, headers=admin()).json()["token"]
    mine = [p for p in synthetic_pairs if p["user"] == synthetic_pairs[0]["user"]][:12]
    posted = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in mine]
    first = client.post("/v1/users/alice/comparisons", json={"pairs": posted[:5]}, headers=bearer(token))
    assert first.status_code == 200, first.text
    second = client.post(
        "/v1/users/alice/comparisons", json={"pairs": posted[5:]}, headers=bearer(token)
    ).json()
    assert second["profile"]["n_pairs"] == 12 and len(second["ids"]) == 7
    assert second["ids"][0] > first.json()["ids"][-1]

    # The same profile fitted in the library on all 12 pairs scores exactly as the server does.
    model = RewardModel.from_pretrained(served_model_dir)
    featurizer = model.featurizer()
    H_c = featurizer.encode_conversations([p["prompt"] for p in mine], [p["chosen"] for p in mine])
    H_r = featurizer.encode_conversations([p["prompt"] for p in mine], [p["rejected"] for p in mine])
    profile = build_profile(model, "alice", (H_c - H_r).astype(np.float64))
    np.testing.assert_allclose(second["profile"]["weights"], profile.weights, rtol=1e-4, atol=1e-6)
    served = client.post(
        "/v1/score", json={"prompt": PROMPT, "responses": RESPONSES, "user": "alice"}, headers=bearer(token)
    ).json()
    assert served["reward"] == "user:alice"
    expected = _library_rewards(served_model_dir, PROMPT, RESPONSES, user=profile)
    np.testing.assert_allclose(served["rewards"], expected, rtol=1e-4, atol=1e-5)
    general = client.post("/v1/score", json={"prompt": PROMPT, "responses": RESPONSES}).json()["rewards"]
    assert not np.allclose(served["rewards"], general)

    stored = client.get("/v1/users/alice/comparisons", headers=bearer(token)).json()
    assert [c["chosen"] for c in stored] == [p["chosen"] for p in posted]
    assert client.delete("/v1/users/alice", headers=admin()).status_code == 204
    assert client.get("/v1/users/alice", headers=admin()).status_code == 404
    assert client.get("/v1/users/alice", headers=bearer(token)).status_code == 401  # token revoked too


def test_features_of_texts_seen_before_come_from_the_cache(make_client):
    client = make_client()
    body = {"prompt": PROMPT, "responses": RESPONSES}
    first = client.post("/v1/score", json=body).json()["rewards"]
    second = client.post("/v1/score", json=body).json()["rewards"]
    assert first == second
    metrics = client.get("/metrics").text
    assert "pluralrm_feature_cache_hits_total 3.0" in metrics
    assert "pluralrm_feature_cache_misses_total 3.0" in metrics
    assert 'pluralrm_requests_total{route="/v1/score",status="200"} 2.0' in metrics
    assert "pluralrm_batch_texts_count 1.0" in metrics  # one forward batch: the second request hit


@pytest.mark.parametrize("cache_entries", [0, 2])
def test_a_small_or_absent_cache_still_gives_the_same_rewards(make_client, cache_entries):
    from pluralrm.config import SERVE, replace

    client = make_client(config=replace(SERVE, cache_entries=cache_entries))
    body = {"prompt": PROMPT, "responses": RESPONSES}
    first = client.post("/v1/score", json=body).json()["rewards"]
    assert client.post("/v1/score", json=body).json()["rewards"] == pytest.approx(first, rel=1e-6)
