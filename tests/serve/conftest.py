"""A tiny reward model (random BERT backbone, heads fitted on synthetic pairs) and a server around it."""

from __future__ import annotations

from pathlib import Path

import pytest

ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture(scope="session")
def synthetic_pairs() -> list[dict]:
    from pluralrm.data.synthetic import make_synthetic_preferences

    return make_synthetic_preferences(n_prompts=16, seed=3).pairs


@pytest.fixture(scope="session")
def served_model_dir(tmp_path_factory, tiny_model_dirs, synthetic_pairs) -> Path:
    from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone
    from pluralrm.rewards.fitting import fit_reward_model

    backbone = load_backbone(str(tiny_model_dirs["bert"]), dtype="float32")
    features = featurize_pairs(synthetic_pairs, Featurizer(backbone))
    model = fit_reward_model(features, n_components=4)
    return model.save_pretrained(tmp_path_factory.mktemp("served") / "model")


@pytest.fixture
def make_client(served_model_dir, tmp_path):
    """``make_client(**create_app kwargs)`` → a started TestClient (lifespan run) on a fresh store."""
    from fastapi.testclient import TestClient

    from pluralrm.serve import create_app

    clients = []

    def make(**kwargs) -> TestClient:
        kwargs.setdefault("store", tmp_path / "profiles.sqlite")
        kwargs.setdefault("admin_token", ADMIN_TOKEN)
        kwargs.setdefault("device", "cpu")
        client = TestClient(create_app(served_model_dir, **kwargs), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def admin() -> dict:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
