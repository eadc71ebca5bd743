"""Leave-one-user-out k-shot protocol: the pool never holds the target's pairs or test prompts."""

import numpy as np
import pytest

from pluralrm.adapt import kshot
from pluralrm.adapt.kshot import run_kshot
from pluralrm.data.features import PairFeatures


def users(d=16, n=120, seed=0):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 2)))[0]
    out, parts = {}, []
    for u in range(4):
        w = 3 * basis @ rng.normal(size=2)
        D = rng.normal(size=(n, d))
        D = np.where((D @ w > 0)[:, None], D, -D)
        f = PairFeatures(
            chosen=D, rejected=np.zeros_like(D), ids=[f"{u}-{i}" for i in range(n)], users=[f"u{u}"] * n
        )
        out[f"u{u}"] = (f.select(range(n // 2)), f.select(range(n // 2, n)))
        parts.append(f)  # the whole user, test pairs included: run_kshot must drop them
    return PairFeatures.concatenate(parts), out


def test_pool_loses_the_target_and_its_test_prompts(monkeypatch):
    pool, per_user = users()
    seen = {}
    fit = kshot.fit_pool

    def spy(p, decompose, *, seed):
        seen[len(seen)] = set(p.users), set(p.groups)
        return fit(p, decompose, seed=seed)

    monkeypatch.setattr(kshot, "fit_pool", spy)
    rows = run_kshot(pool, per_user, ks=(0, 5), n_draws=2, methods=("general", "drm-map", "user-bt"))
    for i, (name, (_, test)) in enumerate(per_user.items()):
        labels, groups = seen[i]
        assert name not in labels and not groups & set(test.groups)
    assert {r["method"] for r in rows} == {"general", "drm-map", "user-bt"}
    assert all(0 <= r["ci_low"] <= r["mean"] <= r["ci_high"] <= 1 for r in rows)


def test_adaptation_and_test_must_not_share_prompts():
    pool, per_user = users()
    adapt, _ = per_user["u0"]
    with pytest.raises(ValueError, match="both adaptation and test"):
        run_kshot(pool, {"u0": (adapt, adapt)}, ks=(1,), n_draws=1, methods=("user-bt",))
