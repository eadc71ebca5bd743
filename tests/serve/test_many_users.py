"""Many distinct users in one backbone batch: every request gets its own user's reward.

The server featurizes concurrent requests together (one forward pass for texts of many users) and applies
each request's profile afterwards, so a batch mixing users must never hand one user's reward to another.
``benchmarks/profiles_at_scale.py`` measures the same path with 1,000 stored profiles.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import httpx
import numpy as np

from pluralrm.adapt.profiles import ProfileStore, UserProfile
from pluralrm.config import SERVE
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.serve import create_app
from tests.serve.conftest import ADMIN_TOKEN, admin, bearer

SHARED = "Keep basil in a sunny window and pinch the tips."


def _chatml(prompt: str, response: str) -> dict:
    rendered = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    return {"query": rendered + response + "<|im_end|>", "prompt": rendered}


def test_a_batch_of_many_distinct_users_scores_each_with_its_own_profile(served_model_dir, tmp_path):
    model = RewardModel.from_pretrained(served_model_dir)
    rng = np.random.default_rng(0)
    store = ProfileStore(tmp_path / "profiles.sqlite")
    names = [f"user{i:02d}" for i in range(10)]
    for name in names:  # distinct profiles, half of them with a part outside the heads' span
        full = rng.normal(size=model.n_features) if name[-1] in "02468" else None
        store.put(
            UserProfile(
                user=name,
                weights=rng.normal(size=len(model.decomposed.components_)),
                head_set=model.head_set,
                method="map" if full is not None else "logistic",
                n_pairs=5,
                full=full,
            )
        )
    # Each request carries one text every request shares and one of its own; the batcher waits until
    # all of them are queued (max_batch_texts = every text sent), so they go through one forward pass.
    requests: list[tuple[str | None, list[tuple[str, str]]]] = [
        (name, [("How do I keep basil alive?", SHARED), (f"Question {i}?", f"Answer number {i}.")])
        for i, name in enumerate([*names, None, None])
    ]
    n_texts = sum(len(items) for _, items in requests)
    config = replace(SERVE, max_batch_texts=n_texts, max_wait_ms=600_000)
    app = create_app(served_model_dir, store=store, config=config, admin_token=ADMIN_TOKEN, device="cpu")

    async def serve() -> tuple[list[list[float]], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                tokens = {}
                for name in names:
                    reply = await client.post("/v1/users", json={"user": name}, headers=admin())
                    tokens[name] = reply.json()["token"]

                async def reward(user: str | None, items: list[tuple[str, str]]) -> list[float]:
                    bodies = [_chatml(p, r) for p, r in items]
                    body = {"query": [b["query"] for b in bodies], "prompts": [b["prompt"] for b in bodies]}
                    if user is None:
                        reply = await client.post("/get_reward", json=body)
                    else:
                        path = f"/v1/users/{user}/get_reward"
                        reply = await client.post(path, json=body, headers=bearer(tokens[user]))
                    assert reply.status_code == 200, reply.text
                    return reply.json()["rewards"]

                served = await asyncio.gather(*(reward(user, items) for user, items in requests))
                return list(served), (await client.get("/metrics")).text

    served, metrics = asyncio.run(serve())

    # One forward pass, over the distinct texts only (the shared one once).
    assert _metric(metrics, "pluralrm_batch_texts_count") == 1
    assert _metric(metrics, "pluralrm_batch_texts_sum") == 1 + len(requests)
    for (user, items), rewards in zip(requests, served, strict=True):
        profile = None if user is None else store.get(user)
        np.testing.assert_allclose(rewards, model.rewards(items, user=profile), rtol=1e-5, atol=1e-5)
    # The shared text really gets a different reward for each user, so a mix-up would have been caught.
    shared = [rewards[0] for rewards in served[: len(names)]]
    assert len({round(value, 4) for value in shared}) == len(names)
    assert served[-1][0] == served[-2][0]  # the two general requests agree on the shared text


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


def test_a_profile_rewritten_outside_the_server_is_served_at_once(make_client, served_model_dir, tmp_path):
    """The server keeps profiles in memory (ProfileCache); a profile written by another writer of the same
    file (``pluralrm adapt``, another server) after a request has cached it is what the next request
    gets. Labelling through the server itself is covered in test_scoring."""
    model = RewardModel.from_pretrained(served_model_dir)
    writer = ProfileStore(tmp_path / "profiles.sqlite")  # make_client's store, through its own connection
    n_heads = len(model.decomposed.components_)
    before = UserProfile(
        user="carol", weights=np.ones(n_heads), head_set=model.head_set, method="hyre", n_pairs=3
    )
    writer.put(before)
    client = make_client()
    token = client.post("/v1/users", json={"user": "carol"}, headers=admin()).json()["token"]
    body = {"query": ["Water it when the soil is dry."]}

    def served() -> list[float]:
        reply = client.post("/v1/users/carol/get_reward", json=body, headers=bearer(token))
        assert reply.status_code == 200, reply.text
        return reply.json()["rewards"]

    H = model.featurizer().encode(body["query"])
    np.testing.assert_allclose(served(), model.rewards(H, user=before), rtol=1e-5, atol=1e-6)
    after = UserProfile(
        user="carol", weights=-3 * np.arange(n_heads), head_set=model.head_set, method="hyre", n_pairs=4
    )
    writer.put(after)
    np.testing.assert_allclose(served(), model.rewards(H, user=after), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.rewards(H, user=before), model.rewards(H, user=after))
    writer.delete("carol")
    assert client.post("/v1/users/carol/get_reward", json=body, headers=bearer(token)).status_code == 404
