"""`pluralrm inspect` on the wide format: a short hint instead of a list of 300 keys, no traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from pluralrm.atomic import write_jsonl
from pluralrm.cli import app

runner = CliRunner()


def _wide_file(path, n_responses: int = 100):
    row = {
        "id": "q1",
        "prompt": "Say hi.",
        "subset": "chat",
        "rewardbench_chosen": 1,
        "rewardbench_rejected": 2,
    }
    for i in range(1, n_responses + 1):
        row |= {f"response_{i}": f"answer {i}", f"reward_{i}": float(i), f"response_{i}_model": f"m{i % 2}"}
    write_jsonl(path, [row, {**row, "id": "q2"}])
    return path


def test_inspect_of_a_wide_file_without_ranked_says_use_ranked(tmp_path):
    result = runner.invoke(app, ["inspect", str(_wide_file(tmp_path / "wide.jsonl"))])
    assert result.exit_code == 2
    assert "'wide' format of ranked responses" in result.output and "--ranked" in result.output
    assert "response_57" not in result.output and len(result.output) < 400
    assert "Traceback" not in result.output


def test_inspect_format_wide_reads_it_as_ranked_and_a_bad_format_is_one_line(tmp_path):
    wide = _wide_file(tmp_path / "wide.jsonl")
    for args in (["--format", "wide"], ["--ranked"]):
        result = runner.invoke(app, ["inspect", str(wide), *args])
        assert result.exit_code == 0, result.output
        assert "2 records from 2 read (wide)" in result.output and "chat" in result.output
    result = runner.invoke(app, ["inspect", str(wide), "--format", "bogus"])
    assert result.exit_code == 2 and "unknown preference-pair format 'bogus'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unknown_record_lists_a_few_keys_only(tmp_path):
    path = tmp_path / "odd.jsonl"
    write_jsonl(path, [{f"col_{i:03d}": i for i in range(300)}])
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2 and "col_000, col_001" in result.output and "(292 more)" in result.output
    assert "col_299" not in result.output
