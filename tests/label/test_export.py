"""The label export with ties and multi-turn prompts: library, CLI file and ``GET /api/export``."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from pluralrm.data.errors import DataValidationError
from pluralrm.label.app import create_label_app
from pluralrm.label.io import PairToLabel, export_rows, read_pairs, write_export
from pluralrm.label.store import LabelStore

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Plan a trip."},
    {"role": "assistant", "content": "Where to?"},
    {"role": "user", "content": "Lisbon, two days."},
]
# Per pair, what each labeller answers (in the pair's own a/b terms).
ANSWERS = {
    "p-tie": {"ann": "tie", "bo": "tie"},  # only ties: no row
    "p-split": {"ann": "a", "bo": "b"},  # split evenly: no row
    "p-a": {"ann": "a", "bo": "tie"},  # a tie is no vote: a wins
    "p-b": {"ann": "b", "bo": "b"},
    "p-multi": {"ann": "b", "bo": "skip"},  # a skip is no vote either
}


@pytest.fixture
def store(tmp_path) -> LabelStore:
    store = LabelStore.of_project(tmp_path / "project")
    pairs = []
    for pair_id in ANSWERS:
        provenance = {"stage": "test"}
        prompt = f"prompt of {pair_id}"
        if pair_id == "p-multi":
            provenance["conversation"] = CONVERSATION
            prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in CONVERSATION)
        pairs.append(
            PairToLabel(pair_id, prompt, f"A of {pair_id}", f"B of {pair_id}", None, None, provenance)
        )
    store.import_pairs(pairs)
    people = {name: store.labeller_for_token(store.add_labeller(name)) for name in ("ann", "bo")}
    store.add_labeller("boss", admin=True)
    for name, labeller in people.items():
        while True:
            shown, _ = store.next_for(labeller, labels_per_pair=2, budget=None, reserve_seconds=900)
            if shown is None:
                break
            want = ANSWERS[shown.pair_id][name]
            screen = want if want in ("tie", "skip") else ("1" if (want == "a") != shown.swapped else "2")
            store.record_label(labeller, shown.pair_id, screen, seconds=1.0)
    return store


def test_tie_only_and_split_pairs_give_no_row_and_the_rest_one_each(store):
    rows = export_rows(store)
    assert [row["id"] for row in rows] == ["p-a", "p-b", "p-multi"]  # the decisive pairs, no KeyError
    chosen = {row["id"]: row["chosen"][0]["content"] for row in rows}
    assert chosen == {"p-a": "A of p-a", "p-b": "B of p-b", "p-multi": "B of p-multi"}
    assert {row["id"]: row["labellers"] for row in rows} == {
        "p-a": ["ann"],
        "p-b": ["ann", "bo"],
        "p-multi": ["ann"],
    }
    per = export_rows(store, per_labeller=True)
    assert sorted((row["user"], row["id"]) for row in per) == [
        ("ann", "p-a"),
        ("ann", "p-b"),
        ("ann", "p-multi"),
        ("ann", "p-split"),
        ("bo", "p-b"),
        ("bo", "p-split"),
    ]


def test_a_multi_turn_prompt_is_exported_as_its_conversation(store, tmp_path):
    from pluralrm.data.loaders import load_pairs

    rows = {row["id"]: row for row in export_rows(store)}
    assert rows["p-multi"]["prompt"] == CONVERSATION
    assert rows["p-a"]["prompt"] == [{"role": "user", "content": "prompt of p-a"}]
    written = write_export(store, tmp_path / "labels.jsonl")
    assert written == {"labels.jsonl": 3}
    loaded = {r["id"]: r for r in load_pairs(tmp_path / "labels.jsonl").records}
    assert loaded["p-multi"]["prompt"] == CONVERSATION and loaded["p-multi"]["chosen"] == "B of p-multi"


def test_api_export_answers_200_with_tie_only_pairs(store):
    client = TestClient(create_label_app(store), base_url="http://testserver")
    admin = store.add_labeller("root", admin=True)
    response = client.get("/api/export", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200
    assert [json.loads(line)["id"] for line in response.text.splitlines()] == ["p-a", "p-b", "p-multi"]


def test_a_malformed_conversation_is_refused_at_import_with_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"pair_id": "x", "prompt": "p", "response_a": "a", "response_b": "b"}
    bad = {**good, "pair_id": "y", "provenance": {"conversation": [{"role": "robot", "content": "hi"}]}}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataValidationError, match=r"line 2.*provenance\.conversation\[0\].*unknown role"):
        read_pairs(path)
