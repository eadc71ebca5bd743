"""A dataset directory as the Hugging Face hub lays it out (``data/train-*.parquet``), read as one source."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pluralrm.atomic import write_jsonl
from pluralrm.data import DataValidationError, load_pairs, load_ranked


def _wide(p: int) -> dict:
    return {
        "id": f"q{p}",
        "prompt": f"Prompt {p}",
        "response_1": "a",
        "response_2": "b",
        "reward_1": 1.0,
        "reward_2": float(p),
    }


def _hub_layout(root, shards: dict[str, list[list[dict]]]):
    """``root/README.md`` and ``root/data/<split>-0000i-of-0000n.parquet`` (what ``push_to_hub`` writes)."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nconfigs: []\n---\n# a dataset\n")
    for split, parts in shards.items():
        for i, rows in enumerate(parts):
            pq.write_table(
                pa.Table.from_pylist(rows), root / "data" / f"{split}-{i:05d}-of-{len(parts):05d}.parquet"
            )
    return root


def test_a_hub_layout_directory_reads_its_one_split_in_shard_order(tmp_path):
    root = _hub_layout(tmp_path / "seed", {"train": [[_wide(0), _wide(1)], [_wide(2)]]})
    (root / ".cache").mkdir()
    write_jsonl(root / ".cache" / "junk.jsonl", [{"not": "data"}])  # hidden folders are not data
    loaded = load_ranked(root)
    assert [r["id"] for r in loaded.records] == ["q0", "q1", "q2"]
    assert [r["rewards"] for r in loaded.records] == [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]
    assert loaded.report.summary() == "3 records from 3 read (wide)"
    assert [r["id"] for r in load_ranked(f"{root}:train").records] == ["q0", "q1", "q2"]


def test_several_splits_need_one_named(tmp_path):
    root = _hub_layout(tmp_path / "seed", {"train": [[_wide(0)]], "test": [[_wide(5), _wide(6)]]})
    with pytest.raises(
        DataValidationError, match=r"has splits \['test', 'train'\]; pass one, e\.g\. '.*seed:test'"
    ):
        load_ranked(root)
    assert [r["id"] for r in load_ranked(f"{root}:test").records] == ["q5", "q6"]
    with pytest.raises(DataValidationError, match=r"no split 'dev'; it has \['test', 'train'\]"):
        load_ranked(f"{root}:dev")


def test_a_directory_of_pairs_and_one_without_data(tmp_path):
    root = tmp_path / "pairs"
    root.mkdir()
    write_jsonl(root / "train.jsonl", [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go."}])
    assert load_pairs(root).records[0]["chosen"] == "Hello!"
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    (empty / "README.md").write_text("nothing")
    with pytest.raises(DataValidationError, match="without data files"):
        load_pairs(empty)


def test_a_save_to_disk_directory(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go."}]).save_to_disk(
        str(tmp_path / "saved")
    )
    assert load_pairs(tmp_path / "saved").records[0]["rejected"] == "Go."
