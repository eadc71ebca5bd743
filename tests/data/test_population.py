"""The many-user population on real responses: users are weights over labelled signals, never features."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pluralrm.config import POPULATION
from pluralrm.data import DataValidationError, load_pairs
from pluralrm.data.features import prompt_group
from pluralrm.data.population import (
    make_population,
    preference_probability,
    queries_from_ranked,
)

STYLES = ("academy", "business", "entertainment", "literature", "normal")


def ranked_queries(n: int = 60) -> list[dict]:
    """``n`` queries with one response per style (the DSP domain set's shape), texts unique per query."""
    return [
        {
            "prompt": f"question {q}?",
            "responses": [f"a {style} answer to question {q}" for style in STYLES],
            "models": list(STYLES),
            "id": f"q{q}",
        }
        for q in range(n)
    ]


SMALL = replace(POPULATION, seen_users=40, unseen_users=10, seen_pairs=20, adapt_pairs=10, test_pairs=20)


def test_parts_are_prompt_disjoint_and_sized_as_asked():
    made = make_population(queries_from_ranked(ranked_queries()), SMALL)
    prompts = {part: {prompt_group(r["prompt"]) for r in made.pairs[part]} for part in made.pairs}
    assert not prompts["seen"] & prompts["unseen-adapt"]
    assert not prompts["seen"] & prompts["unseen-test"]
    assert not prompts["unseen-adapt"] & prompts["unseen-test"]
    assert len(made.pairs["seen"]) == 40 * 20
    assert len(made.pairs["unseen-adapt"]) == 10 * 10 and len(made.pairs["unseen-test"]) == 10 * 20
    assert {r["user"] for r in made.pairs["seen"]} == set(made.seen_users)
    assert {r["user"] for r in made.pairs["unseen-test"]} == set(made.unseen_users)
    assert not set(made.seen_users) & set(made.unseen_users)


def test_a_label_follows_the_users_weights_with_the_stated_temperature():
    """Drawn labels agree with P = σ((w_a − w_b)/T): the chosen response's recorded probability matches
    the weights, and over many labels the chosen side wins as often as the probabilities say."""
    config = replace(SMALL, seen_users=200, seen_pairs=40, temperature=0.2)
    made = make_population(queries_from_ranked(ranked_queries()), config)
    signal = {f"a {s} answer": i for i, s in enumerate(STYLES)}

    def style(text: str) -> int:
        return signal[text.rsplit(" to ", 1)[0]]

    records, p = made.pairs["seen"], made.p_chosen["seen"]
    for record, p_i in zip(records[:50], p[:50], strict=True):
        w = made.weights[record["user"]]
        expected = 1 / (1 + np.exp(-(w[style(record["chosen"])] - w[style(record["rejected"])]) / 0.2))
        assert p_i == pytest.approx(expected, rel=1e-9)
    # Under the model, P(chosen) is above 1/2 for labels that follow the utility: their share is the mean
    # of max(p, 1-p); a generator that drew labels at random would put it near 1/2.
    agrees = (p > 0.5).mean()
    ceiling = np.maximum(p, 1 - p).mean()
    assert abs(agrees - ceiling) < 0.03
    assert ceiling > 0.6


def test_bayes_ceiling_is_the_mean_of_max_p_per_user():
    made = make_population(queries_from_ranked(ranked_queries()), SMALL)
    ceiling = made.bayes_ceiling()
    users = np.array([r["user"] for r in made.pairs["unseen-test"]])
    p = made.p_chosen["unseen-test"]
    for user in made.unseen_users:
        assert ceiling[user] == pytest.approx(np.maximum(p[users == user], 1 - p[users == user]).mean())
    # A colder temperature makes labels less noisy, so the ceiling rises.
    colder = make_population(queries_from_ranked(ranked_queries()), replace(SMALL, temperature=0.02))
    assert np.mean(list(colder.bayes_ceiling().values())) > np.mean(list(ceiling.values())) + 0.05


def test_alpha_sets_how_concentrated_tastes_are():
    queries = queries_from_ranked(ranked_queries())
    top = {
        alpha: np.mean(
            [w.max() for w in make_population(queries, replace(SMALL, alpha=alpha)).weights.values()]
        )
        for alpha in (0.1, 1.0)
    }
    assert top[0.1] > 0.65 and top[1.0] < 0.55  # E[max] of Dirichlet(0.1) over 5 is about 0.76, of (1) 0.46


def test_seeded_and_saved_as_the_products_pairs_files(tmp_path: Path):
    queries = queries_from_ranked(ranked_queries())
    first, second = make_population(queries, SMALL), make_population(queries, SMALL)
    assert first.pairs == second.pairs
    assert make_population(queries, replace(SMALL, seed=1)).pairs != first.pairs
    paths = first.save(tmp_path)
    loaded = load_pairs(paths["seen"])
    assert len(loaded.records) == len(first.pairs["seen"])
    assert {r["user"] for r in loaded.records} == set(first.seen_users)
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["signals"] == sorted(STYLES)
    assert manifest["bayes_ceiling"]["per_user"] == pytest.approx(first.bayes_ceiling())
    assert np.sum(manifest["weights"]["seen-00"]) == pytest.approx(1.0, abs=1e-5)


def test_records_without_signals_are_refused_by_name():
    records = ranked_queries(3)
    del records[2]["models"]
    with pytest.raises(DataValidationError, match=r"x\.jsonl, record 2.*'models'"):
        queries_from_ranked(records, "x.jsonl")
    with pytest.raises(ValueError, match="distinct pairs"):
        make_population(queries_from_ranked(ranked_queries(10)), replace(SMALL, test_pairs=500))


def test_probability_is_symmetric_and_sharpens_with_temperature():
    w = np.array([0.7, 0.2, 0.1])
    assert preference_probability(w, 0, 1, 0.1) == pytest.approx(1 - preference_probability(w, 1, 0, 0.1))
    assert preference_probability(w, 0, 1, 0.05) > preference_probability(w, 0, 1, 0.5) > 0.5
    with pytest.raises(ValueError, match="temperature"):
        preference_probability(w, 0, 1, 0.0)


def test_the_generator_never_touches_a_backbone_or_features():
    """A user is weights over labels, never a direction in a backbone's space: building a population
    imports no backbone, no torch and no reward fitting (run in a fresh interpreter)."""
    code = (
        "import sys\n"
        "from tests.data.test_population import ranked_queries, SMALL\n"
        "from pluralrm.data.population import make_population, queries_from_ranked\n"
        "make_population(queries_from_ranked(ranked_queries()), SMALL)\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('pluralrm.backbone', "
        "'pluralrm.rewards', 'pluralrm.adapt', 'transformers'))]\n"
        "print(bad)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
