"""The wide rewarded format: every bad row is a located error naming the wide column; good rows round-trip."""

from __future__ import annotations

import json
import math

import pytest

from pluralrm.atomic import write_jsonl
from pluralrm.data import DataValidationError, load_ranked
from pluralrm.data.wide import wide_from_ranked


def _wide(n: int, **extra) -> dict:
    row = {"id": "q1", "prompt": "Say hi."}
    for i in range(1, n + 1):
        row |= {f"response_{i}": f"answer {i}", f"reward_{i}": float(i), f"response_{i}_model": f"m{i % 2}"}
    return row | extra


def _load(tmp_path, rows):
    path = tmp_path / "wide.jsonl"
    write_jsonl(path, rows)
    return load_ranked(path)


def test_round_trip_keeps_every_column(tmp_path):
    row = _wide(3, subset="chat", response_1_finish="stop", response_2_finish="length")
    row |= {"response_3_finish": "stop", "generation": {"model": "x", "seed": 1}}
    record = _load(tmp_path, [row]).records[0]
    assert record["rewards"] == [1.0, 2.0, 3.0] and record["models"] == ["m1", "m0", "m1"]
    assert record["finish_reasons"] == ["stop", "length", "stop"]
    assert wide_from_ranked(record) == {**row, "source": "wide.jsonl"}


def test_ragged_rewards_name_the_missing_reward(tmp_path):
    row = _wide(3)
    del row["reward_2"]
    with pytest.raises(DataValidationError, match=r"line 1.*'reward_2'.*rewards given for 2 of 3"):
        _load(tmp_path, [row])


def test_a_reward_without_a_response_is_an_error(tmp_path):
    with pytest.raises(DataValidationError, match=r"'reward_4'.*without a response"):
        _load(tmp_path, [_wide(3, reward_4=1.0)])


def test_ragged_responses_name_the_gap(tmp_path):
    row = _wide(3)
    del row["response_2"]
    with pytest.raises(DataValidationError, match="'response_2'"):
        _load(tmp_path, [row])


@pytest.mark.parametrize("bad", [math.nan, math.inf, "high"])
def test_non_finite_or_text_rewards_are_located(tmp_path, bad):
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps(_wide(2)) + "\n" + json.dumps(_wide(2, reward_2=bad)) + "\n")
    with pytest.raises(DataValidationError, match=r"wide.jsonl, line 2.*'reward_2'.*finite number"):
        load_ranked(path)


def test_missing_rewards_everywhere_is_an_unrewarded_file(tmp_path):
    rows = [{k: v for k, v in _wide(2).items() if not k.startswith("reward")}]
    rows.append(_wide(2) | {"reward_1": None, "reward_2": None})
    records = _load(tmp_path, rows).records
    assert all("rewards" not in r for r in records)


def test_n_equals_one_loads(tmp_path):
    (record,) = _load(tmp_path, [_wide(1)]).records
    assert record["responses"] == ["answer 1"] and record["rewards"] == [1.0]


def test_empty_responses_are_kept_and_counted(tmp_path):
    result = _load(tmp_path, [_wide(3, response_2=""), _wide(2, response_1="  ")])
    assert result.records[0]["responses"][1] == ""
    assert result.report.n_empty_responses == 2
    assert "2 empty responses kept" in result.report.summary()


def test_a_response_that_is_not_text_is_located(tmp_path):
    with pytest.raises(DataValidationError, match=r"'response_2'.*expected a string"):
        _load(tmp_path, [_wide(2, response_2=5)])
