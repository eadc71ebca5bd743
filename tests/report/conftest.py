"""Report inputs of every kind, small and built without a backbone: features that are a known linear image
of the synthetic data's attributes, and the folders the other verbs write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pluralrm.data.features import PairFeatures, prompt_group
from pluralrm.data.synthetic import make_synthetic_preferences

# The phrases of pluralrm.evaluate.interpret that name each of the synthetic data's known attributes
# (more of it, less of it): a name "names the known attribute" when it holds the phrase of the right sign.
KNOWN_PHRASES = {
    "length": ("longer", "shorter"),
    "refusal": ("refuses", "complies"),
    "list_structure": ("more structured", "less structured"),
    "formality": ("more formal", "more casual"),
    "empathy": ("more empathetic", "less empathetic"),
    "humour": ("funnier", "less joking"),
}


def names_known_attribute(name: str, attribute: str, correlation: float) -> bool:
    """Whether an automatic name says the known attribute the head tracks, with its sign."""
    return KNOWN_PHRASES[attribute][0 if correlation > 0 else 1] in name.split(", ")


def known_attribute_rows(model, features, records, top: int) -> list[tuple[str, float]]:
    """(attribute, correlation) the top heads' margins track most among the known attribute gaps."""
    from pluralrm.data.synthetic import ATTRIBUTES
    from pluralrm.evaluate.attributes import attribute_correlations

    gaps = np.array([np.subtract(r["chosen_attributes"], r["rejected_attributes"]) for r in records])
    corr = attribute_correlations(model.decomposed.scores(features.differences)[:, :top], gaps)
    return [(ATTRIBUTES[int(np.abs(row).argmax())], float(row[np.abs(row).argmax()])) for row in corr]


SCRIPT = "<script>window.__pwned = 1; console.error('pwned')</script>"


def attribute_features(
    pairs: list[dict], *, dim: int = 16, noise: float = 0.05, seed: int = 0
) -> PairFeatures:
    """Each response's feature vector is a fixed random linear image of its known attributes plus noise,
    so PCA heads of the differences are mixtures of attribute gaps (what a real backbone gives, idealized)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((6, dim))
    chosen = np.array([p["chosen_attributes"] for p in pairs]) @ basis
    rejected = np.array([p["rejected_attributes"] for p in pairs]) @ basis
    chosen += noise * rng.standard_normal(chosen.shape)
    rejected += noise * rng.standard_normal(rejected.shape)
    return PairFeatures(
        chosen=chosen.astype(np.float32),
        rejected=rejected.astype(np.float32),
        ids=[p["id"] for p in pairs],
        subsets=[p["subset"] for p in pairs],
        users=[p["user"] for p in pairs],
        namespace={
            "backbone": "attributes:test",
            "spec": {"pooling": "mean", "layer": -1},
            "dtype": "float32",
        },
        groups=[prompt_group(p["prompt"]) for p in pairs],
    )


@pytest.fixture(scope="session")
def fitted():
    """(model, features, records) of a pool fitted on attribute features; one chosen text holds a script."""
    from pluralrm.config import DECOMPOSE, replace
    from pluralrm.rewards.fitting import fit_pool

    data = make_synthetic_preferences(n_prompts=24, pairs_per_prompt=2, seed=2)
    records = [dict(p) for p in data.pairs]
    records[0]["chosen"] = f"Sure. {SCRIPT} Here you go."
    features = attribute_features(records)
    model = fit_pool(features, replace(DECOMPOSE, n_components=6), seed=0).model
    return model, features, records


def kshot_folder(root: Path) -> Path:
    from pluralrm.evaluate.tables import write_csv

    rows = [
        {
            "user": user,
            "method": method,
            "k": k,
            "mean": 0.5 + 0.01 * k + (0.05 if method == "map" else 0),
            "ci_low": 0.45 + 0.01 * k,
            "ci_high": 0.6 + 0.01 * k,
            "n_draws": 5,
            "n_test": 20,
            "n_pool": 100,
            "features": "layer 3",
            "adapter": "map" if method == "auto" else "",
        }
        for user in ("alice", "bob")
        for method in ("map", "user-bt", "auto")
        for k in (0, 5, 10)
    ]
    write_csv(rows, root / "kshot" / "kshot.csv")
    return root / "kshot"


def analyze_folder(root: Path) -> Path:
    from pluralrm.evaluate.many.report import analyze_ranked

    rng = np.random.default_rng(0)
    records = [
        {
            "id": f"r{i}",
            "prompt": f"prompt {i}",
            "responses": [f"answer {j} " * (j + 1) for j in range(4)],
            "rewards": rng.standard_normal(4).tolist(),
        }
        for i in range(12)
    ]
    analyze_ranked(
        records,
        root / "analysis",
        against=[dict(r, rewards=rng.standard_normal(4).tolist()) for r in records],
    )
    return root / "analysis"


def label_project(root: Path, prompt: str = "Which is better?") -> Path:
    from pluralrm.label.store import LabelStore, PairToLabel

    store = LabelStore.of_project(root / "project")
    store.import_pairs(
        [PairToLabel(f"q{i}", f"{prompt} {i}", "yes", "no", "a" if i % 2 else "b", 1.0) for i in range(6)]
    )
    for name, pick in (("ann", lambda i: "1"), ("bo", lambda i: "1" if i < 4 else "2")):
        store.add_labeller(name)
        who = next(labeller for labeller in store.labellers() if labeller.name == name)
        for i in range(6):
            shown, _ = store.next_for(who, labels_per_pair=2, budget=None, reserve_seconds=900)
            answer = pick(i)
            # Screen order may be swapped: answer in terms of the pair's own responses (a = "yes").
            if shown.swapped:
                answer = {"1": "2", "2": "1"}[answer]
            store.record_label(who, shown.pair_id, answer, seconds=2.0 + i)
    return root / "project"


def customized_folder(root: Path) -> Path:
    from pluralrm.atomic import write_json

    stage = {
        "stage": "general",
        "started_from": "minilm",
        "data": "general.jsonl",
        "n_train": 16,
        "n_validation": 4,
        "validation_accuracy": 0.75,
        "first_loss": 0.69,
        "last_loss": 0.41,
        "steps": 4,
        "device": "cpu",
        "dtype": "float32",
        "train_sha256": "ab" * 32,
        "validation_sha256": "cd" * 32,
        "loss_history": [{"step": s, "value": 0.7 - 0.07 * s} for s in range(1, 5)],
        "eval_history": [{"step": 4, "value": 0.75}],
    }
    write_json(root / "rm" / "pluralrm_customize.json", {"format": "x", "stages": [stage]})
    return root / "rm"
