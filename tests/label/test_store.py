"""The labelling store, pair assignment, pairs file, export and agreement statistics (no HTTP)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pluralrm.data.errors import DataValidationError
from pluralrm.label.agreement import (
    ai_agreement,
    choice_counts,
    cohen_kappa,
    majority,
    pairwise_kappa,
    time_per_label,
)
from pluralrm.label.assign import PairState, next_pair, open_pairs, remaining_for
from pluralrm.label.io import export_rows, read_pairs, write_export
from pluralrm.label.store import Label, LabelError, LabelStore, PairToLabel


def _pairs(n: int, *, margins=None) -> list[PairToLabel]:
    margins = margins or [None] * n
    return [
        PairToLabel(
            f"p{i}", f"prompt {i}", f"answer A{i}", f"answer B{i}", "a", margins[i], {"stage": "test"}
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path) -> LabelStore:
    return LabelStore.of_project(tmp_path / "project")


def _label_all(store, labeller, choose, *, budget=None, per_pair=2):
    """Answer every pair offered, ``choose(shown) -> screen choice``; returns pair ids in order."""
    seen = []
    while True:
        shown, _ = store.next_for(labeller, labels_per_pair=per_pair, budget=budget, reserve_seconds=900)
        if shown is None:
            return seen
        seen.append(shown.pair_id)
        store.record_label(labeller, shown.pair_id, choose(shown), seconds=2.0)


def test_store_is_wal_and_tokens_are_stored_hashed(store):
    token = store.add_labeller("alice")
    with store._connect() as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        hashes = [row[0] for row in connection.execute("SELECT token_hash FROM tokens")]
    assert token not in hashes and len(hashes[0]) == 64
    assert store.labeller_for_token(token).name == "alice"
    assert store.labeller_for_token(token + "x") is None
    with pytest.raises(ValueError, match="already exists"):
        store.add_labeller("alice")
    with pytest.raises(ValueError, match="letters, digits"):
        store.add_labeller("../evil")


def test_response_order_is_random_per_labeller_remembered_and_undone_in_the_label(store):
    store.import_pairs(_pairs(40))
    alice = store.labeller_for_token(store.add_labeller("alice"))
    # Always pick the response whose text is "answer A…": the stored label must be "a" whatever the order.
    swaps = []
    for pair_id in _label_all(store, alice, lambda s: "1" if s.response_1.startswith("answer A") else "2"):
        again = store.shown(alice, pair_id)
        swaps.append(again.swapped)
        assert again.choice == ("2" if again.swapped else "1")  # the screen answer is remembered as given
    assert {label.choice for label in store.labels(alice)} == {"a"}
    assert 5 < sum(swaps) < 35  # both orders occur (P(fail) < 1e-5 for a fair coin)


def test_each_pair_goes_to_two_labellers_never_twice_to_one(store):
    store.import_pairs(_pairs(6))
    names = ["a1", "a2", "a3"]
    labellers = [store.labeller_for_token(store.add_labeller(n)) for n in names]
    got = {n: _label_all(store, who, lambda s: "1") for n, who in zip(names, labellers, strict=True)}
    for pair_ids in got.values():
        assert len(pair_ids) == len(set(pair_ids))
    per_pair = {}
    for label in store.labels():
        per_pair[label.pair_id] = per_pair.get(label.pair_id, 0) + 1
    assert per_pair == {f"p{i}": 2 for i in range(6)}
    assert len(got["a1"]) == 6 and len(got["a2"]) == 6 and got["a3"] == []


def test_budget_finishes_pairs_before_starting_new_ones(store):
    store.import_pairs(_pairs(10))
    a, b = (store.labeller_for_token(store.add_labeller(n)) for n in ("a", "b"))
    # Interleave two labellers under a budget of 6 labels: 3 pairs with 2 labels each, not 6 with one.
    for _ in range(10):
        for who in (a, b):
            shown, _ = store.next_for(who, labels_per_pair=2, budget=6, reserve_seconds=900)
            if shown is not None:
                store.record_label(who, shown.pair_id, "2", seconds=1.0)
    counts = {}
    for label in store.labels():
        counts[label.pair_id] = counts.get(label.pair_id, 0) + 1
    assert sorted(counts.values()) == [2, 2, 2]


def test_skip_is_not_a_judgment_and_a_skipped_pair_is_not_offered_again(store):
    store.import_pairs(_pairs(1))
    a, b, c = (store.labeller_for_token(store.add_labeller(n)) for n in ("a", "b", "c"))
    assert _label_all(store, a, lambda s: "skip") == ["p0"]
    assert _label_all(store, a, lambda s: "1") == []
    assert _label_all(store, b, lambda s: "1") == ["p0"]
    assert _label_all(store, c, lambda s: "tie") == ["p0"]  # a's skip left a place free
    assert [label.choice for label in store.labels(c)] == ["tie"]


def test_reservation_spreads_concurrent_labellers_and_expires(store):
    store.import_pairs(_pairs(2))
    a, b, c = (store.labeller_for_token(store.add_labeller(n)) for n in ("a", "b", "c"))
    first, _ = store.next_for(a, labels_per_pair=1, budget=None, reserve_seconds=900)
    second, _ = store.next_for(b, labels_per_pair=1, budget=None, reserve_seconds=900)
    assert {first.pair_id, second.pair_id} == {"p0", "p1"}
    assert store.next_for(c, labels_per_pair=1, budget=None, reserve_seconds=900)[0] is None
    # Reservations older than reserve_seconds no longer hold a place.
    assert store.next_for(c, labels_per_pair=1, budget=None, reserve_seconds=-1)[0] is not None


def test_a_lapsed_reservation_of_a_pair_filled_meanwhile_is_taken_back(store):
    store.import_pairs(_pairs(2))
    a, b = (store.labeller_for_token(store.add_labeller(n)) for n in ("a", "b"))
    first, _ = store.next_for(a, labels_per_pair=1, budget=None, reserve_seconds=900)
    # a's reservation has lapsed (reserve_seconds=-1): b gets the same pair and labels it.
    again, _ = store.next_for(b, labels_per_pair=1, budget=None, reserve_seconds=-1)
    assert again.pair_id == first.pair_id
    store.record_label(b, again.pair_id, "1", seconds=1.0)
    # a comes back: the full pair is taken back and the other one handed out instead.
    later, _ = store.next_for(a, labels_per_pair=1, budget=None, reserve_seconds=-1)
    assert later.pair_id != first.pair_id
    with pytest.raises(LabelError, match="was not shown to a"):
        store.record_label(a, first.pair_id, "2", seconds=1.0)
    # A lapsed reservation of a pair with room left is kept (same pair, same order).
    assert store.next_for(a, labels_per_pair=1, budget=None, reserve_seconds=-1)[0] == later


def test_relabelling_changes_the_label_and_never_counts_twice(store):
    store.import_pairs(_pairs(1))
    a = store.labeller_for_token(store.add_labeller("a"))
    shown, progress = store.next_for(a, labels_per_pair=2, budget=None, reserve_seconds=900)
    assert (progress.done, progress.total) == (0, 1)
    store.record_label(a, "p0", "1", tags=["clear"], seconds=3.0)
    store.record_label(a, "p0", "2", tags=["safe", "safe"], seconds=4.0)
    (label,) = store.labels(a)
    assert label.choice == ("a" if shown.swapped else "b")
    assert (label.tags, label.seconds, label.revisions) == (("safe",), 4.0, 1)
    assert store.next_for(a, labels_per_pair=2, budget=None, reserve_seconds=900)[1].done == 1


def test_a_labeller_sees_and_changes_only_their_own_labels(store):
    store.import_pairs(_pairs(2))
    a, b = (store.labeller_for_token(store.add_labeller(n)) for n in ("a", "b"))
    shown, _ = store.next_for(a, labels_per_pair=1, budget=None, reserve_seconds=900)
    store.record_label(a, shown.pair_id, "1", seconds=1.0)
    assert store.shown(b, shown.pair_id) is None
    with pytest.raises(LabelError, match="was not shown to b"):
        store.record_label(b, shown.pair_id, "2", seconds=1.0)
    assert store.labels(b) == []
    assert [label.labeller for label in store.labels(a)] == ["a"]
    with pytest.raises(LabelError, match="choice must be"):
        store.record_label(a, shown.pair_id, "3", seconds=1.0)


def test_import_is_idempotent_and_refuses_a_changed_pair(store):
    assert store.import_pairs(_pairs(3)) == (3, 0)
    assert store.import_pairs(_pairs(4)) == (1, 3)
    changed = [PairToLabel("p1", "prompt 1", "other text", "answer B1")]
    with pytest.raises(DataValidationError, match="'p1' is already in the project with other texts"):
        store.import_pairs(changed, source="new.jsonl")
    assert [p.pair_id for p in store.pairs()] == ["p0", "p1", "p2", "p3"]
    assert store.pairs()[1].response_a == "answer A1"


def test_read_pairs_names_file_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {
        "pair_id": "x",
        "prompt": "p",
        "response_a": "a",
        "response_b": "b",
        "ai_label": "b",
        "ai_margin": 2,
    }
    path.write_text(
        json.dumps(good) + "\n\n" + json.dumps(good | {"pair_id": "y", "provenance": {"s": 1}}) + "\n"
    )
    pairs = read_pairs(path)
    assert [(p.pair_id, p.ai_label, p.ai_margin, p.provenance) for p in pairs] == [
        ("x", "b", 2.0, {}),
        ("y", "b", 2.0, {"s": 1}),
    ]
    for bad, field in [
        ({"ai_label": "c"}, "ai_label"),
        ({"ai_margin": "high"}, "ai_margin"),
        ({"response_b": None}, "response_b"),
        ({"pair_id": ""}, "pair_id"),
        ({"provenance": []}, "provenance"),
    ]:
        path.write_text(json.dumps(good | {"pair_id": "ok"}) + "\n" + json.dumps(good | bad) + "\n")
        with pytest.raises(DataValidationError) as error:
            read_pairs(path)
        assert (error.value.location.line, error.value.field) == (2, field)
        assert f"pairs.jsonl, line 2, field '{field}'" in str(error.value)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataValidationError, match="duplicate pair_id \\(first on line 1\\)"):
        read_pairs(path)
    path.write_text("{not json\n")
    with pytest.raises(DataValidationError, match="line 1: not valid JSON"):
        read_pairs(path)


def test_export_majority_and_per_labeller_in_trl_format(store, tmp_path):
    from pluralrm.data.loaders import load_pairs

    store.import_pairs(_pairs(3))
    people = {n: store.labeller_for_token(store.add_labeller(n)) for n in ("ann", "bo", "cy")}
    wants = {"ann": {"p0": "a", "p1": "b", "p2": "tie"}, "bo": {"p0": "a", "p1": "a", "p2": "b"}}
    wants["cy"] = {"p1": "b"}

    def choose_for(name):
        def choose(shown):
            want = wants[name].get(shown.pair_id, "skip")
            if want in ("tie", "skip"):
                return want
            return "1" if (want == "a") != shown.swapped else "2"

        return choose

    for name in ("ann", "bo", "cy"):
        _label_all(store, people[name], choose_for(name), per_pair=3)
    overall = {row["id"]: row for row in export_rows(store)}
    # p0: a, a → A chosen; p1: b, a, b → B chosen; p2: tie, b → B chosen (a tie is no vote).
    assert {k: row["chosen"][0]["content"] for k, row in overall.items()} == {
        "p0": "answer A0",
        "p1": "answer B1",
        "p2": "answer B2",
    }
    assert overall["p1"]["labellers"] == ["ann", "bo", "cy"]
    assert overall["p0"]["prompt"] == [{"role": "user", "content": "prompt 0"}]
    assert overall["p0"]["rejected"] == [{"role": "assistant", "content": "answer B0"}]
    written = write_export(store, tmp_path / "per", per_labeller=True)
    assert written == {"ann.jsonl": 2, "bo.jsonl": 3, "cy.jsonl": 1}
    ann = [json.loads(line) for line in (tmp_path / "per" / "ann.jsonl").read_text().splitlines()]
    assert [(r["id"], r["user"], r["chosen"][0]["content"]) for r in ann] == [
        ("p0", "ann", "answer A0"),
        ("p1", "ann", "answer B1"),
    ]
    loaded = load_pairs(str(tmp_path / "per" / "bo.jsonl"))  # pluralrm's own loader reads it back
    assert [(r["user"], r["chosen"]) for r in loaded.records] == [
        ("bo", "answer A0"),
        ("bo", "answer A1"),
        ("bo", "answer B2"),
    ]


def test_assignment_order_is_depth_first_then_least_certain():
    states = [
        PairState("sure", 0, filled=0, ai_margin=5.0),
        PairState("unsure", 1, filled=0, ai_margin=-0.2),
        PairState("no-ai", 2, filled=0, ai_margin=None),
        PairState("started", 3, filled=1, ai_margin=9.0),
        PairState("full", 4, filled=2),
        PairState("mine", 5, filled=0, seen=True),
    ]
    order = [s.pair_id for s in open_pairs(states, labels_per_pair=2)]
    assert order == ["started", "no-ai", "unsure", "sure"]
    assert next_pair(states, labels_per_pair=2, budget_left=1) == "started"
    assert next_pair(states, labels_per_pair=2, budget_left=0) is None
    assert remaining_for(states, labels_per_pair=2, budget_left=None) == 4
    assert remaining_for(states, labels_per_pair=3, budget_left=2) == 2
    with pytest.raises(ValueError, match="labels_per_pair"):
        open_pairs(states, labels_per_pair=0)


def _labels(table: dict[str, dict[str, str]], seconds=1.0) -> list[Label]:
    return [
        Label(who, pair, choice, (), seconds, 0.0, 0)
        for who, answers in table.items()
        for pair, choice in answers.items()
    ]


def test_kappa_matches_sklearn_on_random_answers():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 60))
        first = rng.choice(["a", "b", "tie"], size=n, p=[0.45, 0.45, 0.1])
        # The second labeller copies the first with probability 0.6, else answers at random.
        copy = rng.random(n) < 0.6
        second = np.where(copy, first, rng.choice(["a", "b", "tie"], size=n))
        expected = cohen_kappa_score(first, second)
        assert cohen_kappa(list(first), list(second)) == pytest.approx(expected, abs=1e-12), trial


def test_pairwise_kappa_uses_only_common_judged_pairs():
    table = {
        "x": {"p1": "a", "p2": "a", "p3": "b", "p4": "b", "p5": "skip", "p6": "a"},
        "y": {"p1": "a", "p2": "b", "p3": "b", "p4": "b", "p5": "a"},
        "z": {"p6": "a"},
    }
    rows = {(r.labeller_1, r.labeller_2): r for r in pairwise_kappa(_labels(table))}
    assert set(rows) == {("x", "y"), ("x", "z")}
    xy = rows[("x", "y")]
    assert xy.n_common == 4 and xy.observed == 0.75
    assert xy.kappa == pytest.approx(cohen_kappa_score(["a", "a", "b", "b"], ["a", "b", "b", "b"]))
    assert math.isnan(rows[("x", "z")].kappa)  # one pair, both "a": chance agreement is certain


def test_majority_ai_agreement_times_and_counts():
    table = {
        "x": {"p1": "a", "p2": "b", "p3": "tie", "p4": "a"},
        "y": {"p1": "a", "p2": "a", "p3": "b", "p4": "skip"},
    }
    labels = _labels(table)
    assert majority(labels) == {"p1": "a", "p2": None, "p3": "b", "p4": "a"}
    rows = {r.labeller: r for r in ai_agreement(labels, {"p1": "a", "p2": "a", "p3": "a", "p4": None})}
    assert (rows["x"].n, rows["x"].agreement) == (2, 0.5)  # p1 agrees, p2 does not; p3 tie, p4 no AI
    assert (rows["y"].n, rows["y"].agreement) == (3, 2 / 3)
    assert (rows["(majority)"].n, rows["(majority)"].agreement) == (2, 0.5)  # p1 a = a, p3 b ≠ a
    assert (rows["(all labels)"].n, rows["(all labels)"].agreement) == (5, 0.6)
    timed = [Label("x", f"p{i}", "a", (), s, 0.0, 0) for i, s in enumerate([1.0, 2.0, 9.0, None])]
    (row,) = time_per_label(timed)
    assert (row.n, row.median_s, row.mean_s) == (3, 2.0, 4.0)
    assert choice_counts(labels)["y"] == {"a": 2, "b": 1, "skip": 1}
