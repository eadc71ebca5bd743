import json

import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.data.features import PairFeatures

runner = CliRunner()


@pytest.mark.parametrize("verb", ["inspect", "featurize", "backbones"])
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
