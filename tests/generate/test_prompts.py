"""Prompts from every input format: unique, first-seen order, stable ids, located errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pluralrm.data import DataValidationError
from pluralrm.generate import load_prompts
from tests.conftest import shared_file

HH_PROMPT = "\n\nHuman: Hi there\n\nAssistant: Hello\n\nHuman: Tell me a joke"


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_pairs_give_unique_prompts_in_first_seen_order_with_the_first_id(tmp_path):
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "b?", "chosen": "x", "rejected": "y", "id": "p1"},
            {"prompt": "a?", "chosen": "x", "rejected": "y", "id": "p2"},
            {"prompt": "b?", "chosen": "z", "rejected": "y", "id": "p3"},
            {"prompt": "c?", "chosen": "x", "rejected": "y"},
        ],
    )
    prompts = load_prompts(path)
    assert [(p.id, p.prompt) for p in prompts] == [("p1", "b?"), ("p2", "a?"), ("pairs.jsonl:4", "c?")]
    assert load_prompts(path) == prompts  # the same file gives the same ids: resume keys on them
    assert [p.id for p in load_prompts(path, limit=2)] == ["p1", "p2"]


def test_hh_transcripts_give_message_prompts(tmp_path):
    path = _jsonl(
        tmp_path / "hh.jsonl",
        [
            {
                "chosen": f"{HH_PROMPT}\n\nAssistant: No.",
                "rejected": f"{HH_PROMPT}\n\nAssistant: Ok!",
            }
        ],
    )
    [prompt] = load_prompts(path)
    assert prompt.prompt == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert prompt.id == "hh.jsonl:1"


def test_real_dsp_file_with_skip_invalid():
    path = shared_file("dsp/helpful.test-dev.json.gz")
    prompts = load_prompts(path, limit=20, skip_invalid=True)
    assert len(prompts) == 20
    assert len({p.id for p in prompts}) == 20
    assert prompts[0].prompt[-1]["role"] == "user"
    assert prompts[0].id == "helpful.test-dev.json.gz:0"


def test_dsp_domain_gives_one_prompt_per_query(tmp_path):
    responses = {d: f"{d} answer" for d in ("academy", "business", "entertainment", "literature", "normal")}
    path = _jsonl(
        tmp_path / "domain.jsonl",
        [{"query": "q1", "responses": responses, "id": "a"}, {"query": "q2", "responses": responses}],
    )
    # load_ranked's dsp-domain records do not carry the file's id, so the loaders' file:line id is used.
    assert [(p.id, p.prompt) for p in load_prompts(path)] == [
        ("domain.jsonl:1", "q1"),
        ("domain.jsonl:2", "q2"),
    ]


def test_plain_prompt_files_jsonl_parquet_and_txt(tmp_path):
    jsonl = _jsonl(
        tmp_path / "p.jsonl",
        [{"prompt": "one", "id": 7, "subset": "s"}, {"prompt": [{"role": "user", "content": "two"}]}],
    )
    prompts = load_prompts(jsonl)
    assert [(p.id, p.prompt, p.subset) for p in prompts] == [
        ("7", "one", "s"),
        ("p.jsonl:2", [{"role": "user", "content": "two"}], None),
    ]
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["x", "y", "x"]}), parquet)
    assert [(p.id, p.prompt) for p in load_prompts(parquet)] == [("p.parquet:0", "x"), ("p.parquet:1", "y")]
    txt = tmp_path / "p.txt"
    txt.write_text("first\n\n  second  \n")
    assert [(p.id, p.prompt) for p in load_prompts(txt)] == [("p.txt:1", "first"), ("p.txt:3", "second")]


def test_duplicate_ids_are_a_located_error(tmp_path):
    path = _jsonl(
        tmp_path / "p.jsonl", [{"prompt": "a", "id": "x"}, {"prompt": "b"}, {"prompt": "c", "id": "x"}]
    )
    with pytest.raises(
        DataValidationError, match=r"p\.jsonl, line 3, field 'id'.*'x' names two different"
    ) as info:
        load_prompts(path)
    assert "line 1" in str(info.value)


def test_duplicate_ids_in_a_pairs_file_point_at_the_raw_lines(tmp_path):
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "a", "chosen": "x", "rejected": "y", "id": "same"},
            {"prompt": "b", "chosen": "x", "rejected": "y", "id": "other"},
            {"prompt": "c", "chosen": "x", "rejected": "y", "id": "same"},
        ],
    )
    with pytest.raises(DataValidationError, match=r"pairs\.jsonl, line 3, field 'id'.*first at .*line 1\)"):
        load_prompts(path)


def test_bad_prompt_records_are_located(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": ""}])
    with pytest.raises(DataValidationError, match=r"p\.jsonl, line 2, field 'prompt': empty text"):
        load_prompts(path)
    assert [p.prompt for p in load_prompts(path, skip_invalid=True)] == ["a"]
    with pytest.raises(DataValidationError, match="file not found"):
        load_prompts(tmp_path / "missing.txt")
