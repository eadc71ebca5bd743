"""Selections on hand-made rewarded records: which response each export picks, and the rules they share."""

from __future__ import annotations

import pytest

from pluralrm.select import (
    SelectionError,
    best_of_n,
    best_vs_random,
    best_vs_worst,
    per_user_best_of_n,
    top_fraction,
    top_k_per_prompt,
)


def _record(rid: str, rewards: list[float], responses: list[str] | None = None, prompt="Q?") -> dict:
    responses = responses or [f"{rid}-r{i}" for i in range(len(rewards))]
    return {"id": rid, "prompt": prompt, "responses": responses, "rewards": rewards}


RECORDS = [
    _record("a", [0.1, 2.0, -1.0, 2.0]),  # tie at the top: the earlier one (index 1) wins
    _record("b", [5.0, 0.0, 1.0]),
    _record("c", [-3.0, -2.0, -2.5, -4.0]),
]


def test_best_of_n_picks_the_highest_reward_and_keeps_the_earlier_of_ties():
    rows = best_of_n(RECORDS).rows
    assert [r["messages"][-1]["content"] for r in rows] == ["a-r1", "b-r0", "c-r1"]
    assert [r["reward"] for r in rows] == [2.0, 5.0, -2.0]
    assert rows[0]["messages"][0] == {"role": "user", "content": "Q?"}
    assert rows[0]["messages"][1]["role"] == "assistant" and rows[0]["response_index"] == 2


def test_best_of_first_n_only_looks_at_the_first_n():
    rows = best_of_n(RECORDS, n=1).rows
    assert [r["messages"][-1]["content"] for r in rows] == ["a-r0", "b-r0", "c-r0"]


def test_top_k_per_prompt_is_best_first_with_ranks():
    rows = top_k_per_prompt(RECORDS, k=2).rows
    assert [(r["id"], r["messages"][-1]["content"], r["rank"]) for r in rows] == [
        ("a", "a-r1", 1),
        ("a", "a-r3", 2),
        ("b", "b-r0", 1),
        ("b", "b-r2", 2),
        ("c", "c-r1", 1),
        ("c", "c-r2", 2),
    ]


def test_top_fraction_ranks_all_samples_of_the_batch():
    # 11 samples, alpha 0.25 → ceil(2.75) = 3: 5.0 (b), 2.0 (a-r1), 2.0 (a-r3)
    selection = top_fraction(RECORDS, alpha=0.25)
    assert [r["messages"][-1]["content"] for r in selection.rows] == ["b-r0", "a-r1", "a-r3"]
    assert selection.skipped["below the global cut"] == 1  # prompt c gives nothing


def test_best_vs_worst_pairs_in_trl_conversational_format():
    rows = best_vs_worst(RECORDS).rows
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        ("a-r1", "a-r2"),
        ("b-r0", "b-r1"),
        ("c-r1", "c-r3"),
    ]
    assert rows[0]["prompt"] == [{"role": "user", "content": "Q?"}]
    assert (rows[1]["score_chosen"], rows[1]["score_rejected"]) == (5.0, 0.0)


def test_best_vs_random_draws_a_strictly_worse_response_reproducibly():
    many = [_record(f"p{i}", [1.0, 0.0, 3.0, 0.5, 3.0]) for i in range(200)]
    rows = best_vs_random(many, seed=7).rows
    rejected = [r["rejected"][0]["content"][-2:] for r in rows]
    assert all(r["chosen"][0]["content"].endswith("r2") for r in rows)
    assert set(rejected) == {"r0", "r1", "r3"}  # never the tied best r4, never the best itself
    assert rejected == [r["rejected"][0]["content"][-2:] for r in best_vs_random(many, seed=7).rows]
    assert rejected != [r["rejected"][0]["content"][-2:] for r in best_vs_random(many, seed=8).rows]


def test_ties_and_empty_responses_are_skipped_and_counted():
    records = [
        _record("tie", [1.0, 1.0, 1.0]),
        _record("empty-best", [9.0, 1.0, 0.0], responses=["", "ok", "meh"]),
        _record("all-empty", [1.0, 0.0], responses=["", " "]),
    ]
    pairs = best_vs_worst(records)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in pairs.rows] == [("ok", "meh")]
    assert pairs.skipped == {"whose rewards all tie": 1, "with only empty responses": 1}
    sft = best_of_n(records)
    assert [r["messages"][-1]["content"] for r in sft.rows] == ["tie-r0", "ok"]
    # An empty response can still be the rejected one.
    (row,) = best_vs_worst([_record("e", [1.0, -5.0], responses=["fine", ""])]).rows
    assert row["rejected"][0]["content"] == ""


def test_pairs_need_two_responses_and_say_which_record_has_one():
    with pytest.raises(
        SelectionError, match="record 'solo' has 1 response; preference pairs need at least 2"
    ):
        best_vs_worst([RECORDS[0], _record("solo", [1.0])])
    assert best_of_n([_record("solo", [1.0])]).rows[0]["messages"][-1]["content"] == "solo-r0"


def test_missing_or_bad_rewards_name_the_record():
    unrewarded = {"id": "u", "prompt": "Q", "responses": ["x", "y"]}
    with pytest.raises(SelectionError, match="record 'u' has no rewards; score the file first"):
        best_of_n([unrewarded])
    with pytest.raises(SelectionError, match="record 'n': rewards must be finite"):
        best_vs_worst([_record("n", [1.0, float("nan")])])


def test_per_user_best_of_n_follows_each_users_rewards():
    records = RECORDS[:2]
    by_user = {"alice": [[0, 0, 9, 0], [0, 1, 0]], "bob": [[9, 0, 0, 0], [0, 0, 1]]}
    rows = per_user_best_of_n(records, by_user).rows
    assert [(r["user"], r["messages"][-1]["content"]) for r in rows] == [
        ("alice", "a-r2"),
        ("alice", "b-r1"),
        ("bob", "a-r0"),
        ("bob", "b-r2"),
    ]
    with pytest.raises(SelectionError, match="user 'carol': rewards for 1 of 2 records"):
        per_user_best_of_n(records, {"carol": [[1, 2, 3, 4]]})


def test_conversation_prompts_stay_messages():
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    (row,) = best_of_n([_record("m", [0.0, 1.0], prompt=prompt)]).rows
    assert row["messages"][:2] == prompt and row["messages"][2]["content"] == "m-r1"
