"""Leave-one-user-out k-shot protocol: the pool never holds the target's pairs or test prompts."""

import pytest

from pluralrm.adapt import kshot
from pluralrm.adapt.kshot import run_kshot
from tests.conftest import low_rank_users


def test_pool_loses_the_target_and_its_test_prompts(monkeypatch):
    pool, per_user = low_rank_users()
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
    pool, per_user = low_rank_users()
    adapt, _ = per_user["u0"]
    with pytest.raises(ValueError, match="both adaptation and test"):
        run_kshot(pool, {"u0": (adapt, adapt)}, ks=(1,), n_draws=1, methods=("user-bt",))
