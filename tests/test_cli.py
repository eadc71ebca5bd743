import json

import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.data.features import PairFeatures

runner = CliRunner()


@pytest.mark.parametrize("verb", ["inspect", "featurize", "backbones", "decompose", "evaluate", "demo"])
def test_every_verb_has_help_with_an_example(verb):
    result = runner.invoke(app, [verb, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_featurize_writes_features_for_every_pair(tmp_path, tiny_model_dirs):
    data = tmp_path / "pairs.jsonl"
    records = [
        {"prompt": f"q{i}", "chosen": f"good answer {i}", "rejected": f"bad {i}", "subset": "s"}
        for i in range(5)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "features"
    result = runner.invoke(
        app,
        [
            "featurize",
            str(data),
            "--backbone",
            str(tiny_model_dirs["llama"]),
            "--out",
            str(out),
            "--layer",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    features = PairFeatures.load(out)
    assert features.chosen.shape == (5, 32) and features.subsets == ["s"] * 5
    assert features.namespace["spec"]["layer"] == 2 and features.namespace["spec"]["pooling"] == "last"


def test_featurize_bad_data_exits_2_naming_the_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a"}\n')
    result = runner.invoke(app, ["featurize", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.jsonl, line 2" in result.output and "'rejected'" in result.output
    assert not (tmp_path / "o").exists()


def test_inspect_synthetic_and_skip_invalid(tmp_path):
    assert runner.invoke(app, ["inspect", "synthetic"]).exit_code == 0
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": ""}\n')
    assert runner.invoke(app, ["inspect", str(data)]).exit_code == 2
    result = runner.invoke(app, ["inspect", str(data), "--skip-invalid"])
    assert result.exit_code == 0 and "1 invalid skipped" in result.output


def test_decompose_then_evaluate_from_features(tmp_path, tiny_model_dirs):
    data = tmp_path / "pairs.jsonl"
    records = [
        {
            "prompt": f"q{i}",
            "chosen": f"a long helpful answer number {i}",
            "rejected": f"no {i}",
            "subset": "ab"[i % 2],
        }
        for i in range(40)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    backbone = str(tiny_model_dirs["gpt2"])
    assert (
        runner.invoke(
            app, ["featurize", str(data), "--backbone", backbone, "--out", str(tmp_path / "f")]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["decompose", str(tmp_path / "f"), "--components", "4", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "heads.safetensors").exists()
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "m"), str(tmp_path / "f"), "--out", str(tmp_path / "e.csv")]
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert lines[0].startswith("head,subset,accuracy") and len(lines) == 1 + 5 * 3  # 5 heads × (all, a, b)
    # Raw data is featurized with the model's own backbone, giving the same table.
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "m"), str(data), "--out", str(tmp_path / "e2.csv")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e2.csv").read_text() == (tmp_path / "e.csv").read_text()


def test_evaluate_refuses_features_of_another_backbone(tmp_path, tiny_model_dirs):
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": f"no {i}"}) + "\n"
            for i in range(20)
        )
    )
    for kind in ("gpt2", "llama"):
        runner.invoke(
            app,
            ["featurize", str(data), "--backbone", str(tiny_model_dirs[kind]), "--out", str(tmp_path / kind)],
        )
    runner.invoke(
        app, ["decompose", str(tmp_path / "gpt2"), "--components", "2", "--out", str(tmp_path / "m")]
    )
    result = runner.invoke(app, ["evaluate", str(tmp_path / "m"), str(tmp_path / "llama")])
    assert result.exit_code == 2 and "fitted on features of backbone" in result.output
