"""The loop in one process (``pluralrm serve MODEL --label PROJECT``): a person signs in with the server's
token, is asked the pairs the active rule picks for their profile, and each label they give becomes their
served reward (``/v1/score``, ``/get_reward``, best-of-N) before the reply."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np
import pytest

from pluralrm.adapt.active import next_pairs
from pluralrm.adapt.personalize import build_profile
from pluralrm.config import LABEL
from pluralrm.label.store import LabelStore, PairToLabel
from pluralrm.rewards.reward_model import RewardModel
from tests.serve.conftest import admin, bearer

PROBE = {"prompt": "How do I boil an egg?", "responses": ["Boil it for 8 minutes.", "Eggs are round.", "No."]}


@pytest.fixture
def project(tmp_path, synthetic_pairs) -> LabelStore:
    """Pairs to label from the synthetic data: response a is the one the data (and the general head)
    prefer, b the other."""
    store = LabelStore.of_project(tmp_path / "project")
    store.import_pairs(
        [
            PairToLabel(f"s{i}", p["prompt"], p["chosen"], p["rejected"])
            for i, p in enumerate(synthetic_pairs[:30])
        ]
    )
    return store


def serve_with(make_client, project, **label):
    client = make_client(label=project, label_config=replace(LABEL, **label))
    tokens = {
        n: client.post("/v1/users", json={"user": n}, headers=admin()).json()["token"]
        for n in ("alice", "bob")
    }
    return client, tokens


def answer_against_the_data(shown: dict, project: LabelStore) -> str:
    """alice's rule: the response the data did *not* prefer (screen terms)."""
    pair = project.pair(shown["pair_id"])
    return "1" if shown["response_1"] == pair.response_b else "2"


def score(client, token, **extra) -> dict:
    reply = client.post("/v1/score", json={**PROBE, "user": "alice", **extra}, headers=bearer(token))
    assert reply.status_code == 200, reply.text
    return reply.json()


def wait_until_changed(read, before, deadline_s: float = 30.0):
    """Poll ``read()`` until it differs from ``before`` (a generous deadline, never a speed precondition)."""
    end = time.monotonic() + deadline_s
    while True:
        now = read()
        if not np.allclose(now, before, atol=1e-9) or time.monotonic() > end:
            return now
        time.sleep(0.05)


def test_each_label_on_the_page_becomes_the_users_served_reward(make_client, project, served_model_dir):
    client, tokens = serve_with(make_client, project, strategy="uncertainty")
    ann = bearer(tokens["alice"])
    model = RewardModel.from_pretrained(served_model_dir)
    for step in range(4):
        shown = client.get("/label/api/next", headers=ann).json()
        before = score(client, tokens["alice"])["rewards"] if step else None
        posted = client.post(
            "/label/api/labels",
            headers=ann,
            json={"pair_id": shown["pair_id"], "choice": answer_against_the_data(shown, project)},
        )
        assert posted.status_code == 200, posted.text
        if before is not None:
            after = wait_until_changed(lambda: score(client, tokens["alice"])["rewards"], before)
            assert not np.allclose(after, before), f"label {step + 1} did not change alice's served reward"
    stored = client.app.state.pluralrm.profiles.comparisons("alice")
    assert len(stored) == 4
    assert all(
        project.pair(label.pair_id).response_b in {c.chosen for c in stored} for label in project.labels()
    )

    # What is served is the library's profile on exactly those four pairs, through every route.
    featurizer = model.featurizer(device="cpu")
    H_c = featurizer.encode_conversations([c.prompt for c in stored], [c.chosen for c in stored])
    H_r = featurizer.encode_conversations([c.prompt for c in stored], [c.rejected for c in stored])
    profile = build_profile(model, "alice", (H_c - H_r).astype(np.float64))
    texts = [featurizer.format(PROBE["prompt"], r) for r in PROBE["responses"]]
    expected = model.rewards(featurizer.encode(texts), user=profile)
    served = score(client, tokens["alice"])
    np.testing.assert_allclose(served["rewards"], expected, rtol=1e-4, atol=1e-5)
    assert served["best"] == int(np.argmax(expected))  # best-of-N for alice
    reward = client.post("/get_reward", json={"query": texts, "user": "alice"}, headers=ann).json()["rewards"]
    np.testing.assert_allclose(reward, expected, rtol=1e-4, atol=1e-5)
    general = client.post("/v1/score", json=PROBE).json()["rewards"]
    assert not np.allclose(served["rewards"], general)


def test_a_relabel_replaces_the_comparison_and_a_tie_removes_it(make_client, project):
    client, tokens = serve_with(make_client, project)
    ann = bearer(tokens["alice"])
    profiles = client.app.state.pluralrm.profiles
    first, second = client.get("/label/api/pairs", params={"n": 2}, headers=ann).json()["pairs"]
    for shown in (first, second):
        assert (
            client.post(
                "/label/api/labels", headers=ann, json={"pair_id": shown["pair_id"], "choice": "1"}
            ).status_code
            == 200
        )
    assert [c.chosen for c in profiles.comparisons("alice")] == [first["response_1"], second["response_1"]]
    client.post("/label/api/labels", headers=ann, json={"pair_id": first["pair_id"], "choice": "2"})
    chosen = sorted(c.chosen for c in profiles.comparisons("alice"))
    assert chosen == sorted([first["response_2"], second["response_1"]])  # replaced, never counted twice
    assert profiles.get("alice").n_pairs == 2
    client.post("/label/api/labels", headers=ann, json={"pair_id": first["pair_id"], "choice": "tie"})
    assert [c.chosen for c in profiles.comparisons("alice")] == [second["response_1"]]
    client.post("/label/api/labels", headers=ann, json={"pair_id": second["pair_id"], "choice": "skip"})
    assert profiles.comparisons("alice") == []
    assert client.post("/v1/score", json={**PROBE, "user": "alice"}, headers=ann).status_code == 404


def test_personal_assignment_asks_the_active_rules_pick_for_the_users_own_profile(
    make_client, project, served_model_dir
):
    client, tokens = serve_with(make_client, project, strategy="uncertainty")
    ann = bearer(tokens["alice"])
    for _ in range(3):
        shown = client.get("/label/api/next", headers=ann).json()
        client.post(
            "/label/api/labels",
            headers=ann,
            json={"pair_id": shown["pair_id"], "choice": answer_against_the_data(shown, project)},
        )
    # The next pair is the rule's pick among the unseen pairs, given alice's three labels.
    model = RewardModel.from_pretrained(served_model_dir)
    featurizer = model.featurizer(device="cpu")
    labelled_ids = {label.pair_id for label in project.labels()}
    unseen = [p for p in project.pairs() if p.pair_id not in labelled_ids]
    X = featurizer.encode_conversations([p.prompt for p in unseen], [p.response_a for p in unseen]) - (
        featurizer.encode_conversations([p.prompt for p in unseen], [p.response_b for p in unseen])
    )
    stored = client.app.state.pluralrm.profiles.comparisons("alice")
    D = featurizer.encode_conversations([c.prompt for c in stored], [c.chosen for c in stored]) - (
        featurizer.encode_conversations([c.prompt for c in stored], [c.rejected for c in stored])
    )
    (expected,) = next_pairs(model, X, D, strategy="uncertainty", n=1)  # no ties: the seed plays no part
    assert client.get("/label/api/next", headers=ann).json()["pair_id"] == unseen[expected].pair_id
    # A batch for a page showing several: distinct pairs, the pending one first, all now on alice's screen.
    batch = client.get("/label/api/pairs", params={"n": 4}, headers=ann).json()["pairs"]
    assert len({p["pair_id"] for p in batch}) == 4 and batch[0]["pair_id"] == unseen[expected].pair_id
    assert not labelled_ids & {p["pair_id"] for p in batch}


def test_the_page_signs_in_with_the_servers_token_and_labels_with_csrf(make_client, project):
    client, tokens = serve_with(make_client, project)
    signed = client.post("/label/signin", data={"token": tokens["alice"]}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/label/"
    assert "Path=/label" in signed.headers["set-cookie"]
    page = client.get("/label/")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    pair = re.search(r'data-pair="([^"]+)"', page.text).group(1)
    assert (
        client.post("/label/label", data={"pair_id": pair, "choice": "1"}, follow_redirects=False).status_code
        == 403
    )
    done = client.post(
        "/label/label", data={"pair_id": pair, "choice": "1", "csrf": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert client.app.state.pluralrm.profiles.get("alice").n_pairs == 1
    # The cookie is the labelling page's only: the reward API wants a bearer token.
    assert client.post("/v1/score", json={**PROBE, "user": "alice"}).status_code == 401
    # The labelling routes keep their own small body limit; the scoring routes theirs.
    big = {"pair_id": pair, "choice": "1", "tags": ["x" * (LABEL.max_body_bytes + 10)]}
    assert client.post("/label/api/labels", json=big, headers=bearer(tokens["alice"])).status_code == 413
    long = {"prompt": "p", "responses": ["x" * 30_000] * 3}
    assert client.post("/v1/score", json=long).status_code == 200


def test_labels_given_while_no_model_served_the_project_are_applied_at_start(make_client, project):
    from fastapi.testclient import TestClient

    from pluralrm.label.app import create_label_app

    token = project.add_labeller("carol")
    alone = TestClient(create_label_app(project))
    for choice in ("1", "2", "tie"):
        shown = alone.get("/api/next", headers=bearer(token)).json()
        alone.post("/api/labels", headers=bearer(token), json={"pair_id": shown["pair_id"], "choice": choice})
    client, _ = serve_with(make_client, project)
    profiles = client.app.state.pluralrm.profiles
    assert profiles.get("carol").n_pairs == 2  # the tie is no comparison
    # Syncing again changes nothing (the bridge is idempotent) ...
    assert client.portal.call(client.app.state.pluralrm.loop.sync) == 0
    # ... and forgetting carol removes her labels too, so no restart brings her profile back.
    assert client.delete("/v1/users/carol", headers=admin()).status_code == 204
    assert project.labels() == []


def test_shared_assignment_stays_selectable_and_still_updates_the_profile(make_client, project):
    client, tokens = serve_with(make_client, project, assign="shared", labels_per_pair=1)
    shown = client.get("/label/api/next", headers=bearer(tokens["alice"])).json()
    assert shown["pair_id"] == "s0"  # no AI margins: import order, as the shared rule says
    client.post("/label/api/labels", headers=bearer(tokens["alice"]), json={"pair_id": "s0", "choice": "1"})
    assert client.get("/label/api/next", headers=bearer(tokens["bob"])).json()["pair_id"] == "s1"
    assert client.get("/label/api/pairs", params={"n": 2}, headers=bearer(tokens["bob"])).status_code == 422
    assert client.app.state.pluralrm.profiles.get("alice").n_pairs == 1


def test_personal_assignment_without_a_model_is_refused_clearly(project):
    from pluralrm.label.app import create_label_app

    with pytest.raises(ValueError, match="pluralrm serve MODEL --label PROJECT"):
        create_label_app(project, replace(LABEL, assign="personal"))
