"""`pluralrm rank` writes back every column of the file it rewards, known to pluralrm or not."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from pluralrm.atomic import write_jsonl
from pluralrm.cli import app
from pluralrm.rewards.reward_model import RewardModel
from tests.conftest import wide_rows


def test_rank_keeps_every_other_column_of_each_row(tmp_path, causal_model_dir):
    rows = wide_rows(n_prompts=3, n=3)
    for p, row in enumerate(rows):
        row |= {"category": f"c{p}", "prompt_id": p, "rewardbench_chosen": 1, "rewardbench_rejected": 3}
        row |= {f"response_{i}_tokens": 10 * i for i in range(1, 4)}
        row |= {f"reward_{i}": -1.0 for i in range(1, 4)}  # the old rewards, replaced
        row["generation"] = {"temperature": 0.7}
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, rows)
    out = tmp_path / "rewarded.jsonl"
    result = CliRunner().invoke(
        app, ["rank", str(wide), "--out", str(out), "--model", str(causal_model_dir), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    model = RewardModel.from_pretrained(causal_model_dir)
    for before, after in zip(rows, written, strict=True):
        new_rewards = [after.pop(f"reward_{i}") for i in range(1, 4)]
        expected = model.rewards([(before["prompt"], before[f"response_{i}"]) for i in range(1, 4)])
        np.testing.assert_allclose(new_rewards, expected, atol=1e-4)
        assert after.pop("reward_source").endswith(":head=general")
        assert after.pop("source") == "wide.jsonl"  # the loader names where a record came from
        assert after == {k: v for k, v in before.items() if not k.startswith("reward_")}
