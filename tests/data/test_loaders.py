import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pluralrm.data import DataValidationError, detect_format, load_pairs, load_ranked

PAIR = {"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5."}


def write_jsonl(path, records, gz=False):
    payload = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet"])
def test_trl_pairs_load_from_every_file_type(tmp_path, suffix):
    records = [
        {**PAIR, "subset": None, "margin": None},
        {**PAIR, "chosen": "Four.", "subset": "math", "margin": 2},
    ]
    path = tmp_path / f"pairs{suffix}"
    if suffix.startswith(".jsonl"):
        write_jsonl(path, records, gz=suffix.endswith(".gz"))
    elif suffix.startswith(".json"):
        payload = json.dumps(records).encode()
        path.write_bytes(gzip.compress(payload) if suffix.endswith(".gz") else payload)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    result = load_pairs(path)
    assert result.report.format == "trl"
    assert [r["chosen"] for r in result] == ["4.", "Four."]
    assert result.records[1]["subset"] == "math" and result.records[1]["margin"] == 2.0
    assert result.records[0]["id"].startswith(path.name)


def test_datasets_object_and_to_dataset_round_trip():
    import datasets

    dataset = datasets.Dataset.from_list([PAIR, PAIR])
    result = load_pairs(dataset)
    assert len(result) == 2
    assert result.to_dataset().column_names[:3] == ["prompt", "chosen", "rejected"]


def test_conversational_explicit_and_implicit_prompt(tmp_path):
    explicit = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    implicit = {
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
    }
    records = load_pairs(write_jsonl(tmp_path / "c.jsonl", [explicit, implicit])).records
    for record in records:
        assert record["prompt"] == [{"role": "user", "content": "Hi"}]
        assert (record["chosen"], record["rejected"]) == ("Hello!", "Go away.")


def test_hh_transcripts_split_into_prompt_and_final_replies(tmp_path):
    shared = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell me a secret"
    record = {"chosen": shared + "\n\nAssistant: I can't.", "rejected": shared + "\n\nAssistant: Sure: ..."}
    result = load_pairs(write_jsonl(tmp_path / "hh.jsonl", [record]))
    assert result.report.format == "hh"
    pair = result.records[0]
    assert [m["content"] for m in pair["prompt"]] == ["Hi", "Hello", "Tell me a secret"]
    assert (pair["chosen"], pair["rejected"]) == ("I can't.", "Sure: ...")


def test_hh_pair_with_different_prefixes_names_its_line(tmp_path):
    good = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    bad = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: OTHER\n\nAssistant: c"}
    path = write_jsonl(tmp_path / "hh.jsonl", [good, good, bad])
    with pytest.raises(DataValidationError, match=r"hh.jsonl, line 3.*differ before the final reply"):
        load_pairs(path)
    result = load_pairs(path, skip_invalid=True)
    assert len(result) == 2 and result.report.n_skipped == 1 and result.report.skipped[0].location.line == 3


def test_dsp_general_orders_by_score_and_counts_ties(tmp_path):
    a = "\n\nHuman: q\n\nAssistant: good"
    b = "\n\nHuman: q\n\nAssistant: bad"
    records = [
        {"text": [a, b], "score": [1.0, 0.0]},
        {"text": [b, a], "score": [0.5, 1.5]},
        {"text": [a, b], "score": [1.0, 1.0]},
    ]
    path = tmp_path / "dsp.json"
    path.write_text(json.dumps(records))
    result = load_pairs(path)
    assert result.report.format == "dsp" and result.report.n_ties == 1
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in result] == [("good", "bad", 1.0)] * 2


def _domain_record(query="q", **overrides):
    responses = {d: f"{d} answer" for d in ("academy", "business", "entertainment", "literature", "normal")}
    responses.update(overrides)
    return {"query": query, "responses": responses}


def test_dsp_domain_expands_to_per_domain_pairs_and_ranked(tmp_path):
    path = tmp_path / "domain.json"
    path.write_text(json.dumps([_domain_record("q1"), _domain_record("q2")]))
    pairs = load_pairs(path).records
    assert len(pairs) == 2 * 4 * 4  # 4 domain users, each prefers theirs over 4 other responses
    academy = [p for p in pairs if p["subset"] == "academy" and p["prompt"] == "q1"]
    assert {p["chosen"] for p in academy} == {"academy answer"}
    assert {p["rejected"] for p in academy} == {
        "business answer",
        "entertainment answer",
        "literature answer",
        "normal answer",
    }
    ranked = load_ranked(path).records
    assert ranked[0]["models"] == ["academy", "business", "entertainment", "literature", "normal"]
    assert len(ranked[0]["responses"]) == 5


@pytest.mark.parametrize("n", [3, 100])
def test_wide_format_infers_n(tmp_path, n):
    record = {"prompt": "p", "subset": "chat", "rewardbench_chosen": "x", "rewardbench_rejected": "y"}
    for i in range(1, n + 1):
        record |= {f"response_{i}": f"r{i}", f"reward_{i}": float(i), f"response_{i}_model": f"m{i % 7}"}
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.Table.from_pylist([record]), path)
    ranked = load_ranked(path)
    assert ranked.report.format == "wide"
    out = ranked.records[0]
    assert len(out["responses"]) == n and out["rewards"][-1] == float(n) and out["models"][0] == "m1"
    assert out["subset"] == "chat" and out["rewardbench_chosen"] == "x"


def test_wide_format_with_a_gap_names_the_missing_column(tmp_path):
    path = write_jsonl(tmp_path / "w.jsonl", [{"prompt": "p", "response_1": "a", "response_3": "c"}])
    with pytest.raises(DataValidationError, match="'response_2'"):
        load_ranked(path)


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (b'{"prompt": "p", "chosen": "a", "rejected": ', None, "malformed JSON"),
        (b'{"prompt": "p", "chosen": "a"}', "rejected", "missing required field"),
        (b'{"prompt": "p", "chosen": 3, "rejected": "b"}', "chosen", "expected a string"),
        (b'{"prompt": "p", "chosen": "  ", "rejected": "b"}', "chosen", "empty text"),
        (b'{"prompt": "p", "chosen": "\xff\xfe", "rejected": "b"}', None, "not valid UTF-8"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, line, field, message):
    good = json.dumps(PAIR).encode()
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + b"\n" + good + b"\n" + line + b"\n" + good + b"\n")
    with pytest.raises(DataValidationError) as info:
        load_pairs(path)
    error = info.value
    assert error.location.line == 3 and error.field == field and message in str(error)
    assert "bad.jsonl, line 3" in str(error)
    result = load_pairs(path, skip_invalid=True)
    assert len(result) == 3 and result.report.n_skipped == 1


def test_json_file_error_reports_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"prompt": "p", "chosen": "a", "rejected": "b"},\n{"prompt": }\n]')
    with pytest.raises(DataValidationError, match=r"broken.json, line 3: malformed JSON"):
        load_pairs(path)


def test_unsupported_suffix_missing_file_and_undetectable_format(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        load_pairs(tmp_path / "x.csv")
    with pytest.raises(DataValidationError, match="file not found"):
        load_pairs(tmp_path / "missing.jsonl")
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q"}])
    with pytest.raises(DataValidationError, match="cannot tell the preference-pair format"):
        load_pairs(path)


def test_all_invalid_with_skip_is_still_an_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "chosen": "", "rejected": "b"}])
    with pytest.raises(DataValidationError, match="no valid preference-pair records"):
        load_pairs(path, skip_invalid=True)


def test_detect_format():
    assert detect_format({"text": [], "score": []}) == "dsp"
    assert detect_format({"chosen": "\n\nHuman: x\n\nAssistant: y", "rejected": "..."}) == "hh"
    assert detect_format(PAIR) == "trl"
    assert detect_format({"query": "q", "responses": {}}) == "dsp-domain"
    assert detect_format({"prompt": "p", "response_1": "a"}) == "wide"


texts = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
pair_records = st.fixed_dictionaries(
    {"prompt": texts, "chosen": texts, "rejected": texts},
    optional={
        "subset": st.text(max_size=10),
        "user": st.text(max_size=10),
        "margin": st.floats(allow_nan=False, allow_infinity=False, width=32),
    },
).filter(lambda r: r["chosen"] != r["rejected"])  # identical pairs are skipped by design (tested above)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(st.lists(pair_records, min_size=1, max_size=8))
def test_any_valid_trl_records_round_trip_through_jsonl(tmp_path, records):
    path = write_jsonl(tmp_path / "round.jsonl", records)
    loaded = load_pairs(path).records
    for original, got in zip(records, loaded, strict=True):
        for key, value in original.items():
            assert got[key] == (float(value) if key == "margin" else value)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=0, max_value=19),
    st.sampled_from(["prompt", "chosen", "rejected"]),
)
def test_the_reported_line_is_the_corrupted_one(tmp_path, n, bad_index, field):
    bad_index %= n
    records = [dict(PAIR) for _ in range(n)]
    records[bad_index][field] = ""
    path = write_jsonl(tmp_path / "corrupt.jsonl", records)
    with pytest.raises(DataValidationError) as info:
        load_pairs(path)
    assert info.value.location.line == bad_index + 1 and info.value.field == field


def test_identical_chosen_and_rejected_are_counted_and_skipped(tmp_path):
    records = [
        {"prompt": "q1", "chosen": "same", "rejected": "same"},
        {"prompt": "q2", "chosen": "good", "rejected": "bad"},
        {"prompt": "q3", "chosen": "x", "rejected": "x"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = load_pairs(path)
    assert [r["prompt"] for r in result] == ["q2"]
    assert result.report.n_identical == 2 and result.report.n_read == 3
    assert "2 pairs with identical chosen and rejected skipped" in result.report.summary()


def test_domain_responses_that_coincide_give_no_pair(tmp_path):
    path = tmp_path / "domain.json"
    path.write_text(json.dumps([_domain_record(business="academy answer")]))
    result = load_pairs(path)
    assert all(r["chosen"] != r["rejected"] for r in result)
    assert result.report.n_identical == 2  # academy>business and business>academy are both "no preference"
