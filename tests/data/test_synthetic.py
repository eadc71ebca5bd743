import numpy as np

from pluralrm.data.synthetic import ATTRIBUTES, default_users, make_synthetic_preferences


def test_generation_is_deterministic_and_seed_dependent():
    a = make_synthetic_preferences(n_prompts=6, seed=3)
    b = make_synthetic_preferences(n_prompts=6, seed=3)
    c = make_synthetic_preferences(n_prompts=6, seed=4)
    assert a.pairs == b.pairs
    assert a.pairs != c.pairs


def test_surface_form_follows_the_recorded_attributes():
    data = make_synthetic_preferences(n_prompts=24, seed=0)
    index = {name: i for i, name in enumerate(ATTRIBUTES)}
    for response in data.responses:
        text, attrs = response["text"], response["attributes"]
        assert ("\n1. " in text) == bool(attrs[index["list_structure"]])
        assert (("sorry" in text.lower()) or ("nah" in text.lower())) == bool(attrs[index["refusal"]])
        assert ("Bonus tip" in text or "Fun fact" in text or "Warning:" in text) == bool(
            attrs[index["humour"]]
        )


def test_labels_follow_each_users_weights():
    data = make_synthetic_preferences(n_prompts=48, beta=8.0, seed=0)
    for user, weights in data.users.items():
        pairs = [p for p in data.pairs if p["user"] == user]
        delta = (
            np.array([np.subtract(p["chosen_attributes"], p["rejected_attributes"]) for p in pairs]) @ weights
        )
        decided = delta[np.abs(delta) > 0.25]
        # With beta=8 a utility gap of 0.25 is labelled correctly with p >= 0.88; allow sampling noise.
        assert (decided > 0).mean() > 0.8, user


def test_users_disagree():
    users = default_users()
    weights = np.stack(list(users.values()))
    cosine = weights @ weights.T / np.outer(np.linalg.norm(weights, axis=1), np.linalg.norm(weights, axis=1))
    assert (cosine < 0).sum() >= 4  # several pairs of users pull in opposite directions
