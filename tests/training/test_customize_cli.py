"""`pluralrm customize` end to end, and every verb that takes a reward reading its output."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.rewards.reward_model import RewardModel
from tests.training.conftest import rule_pairs

runner = CliRunner()


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_customize_then_score_evaluate_featurize_and_decompose_on_its_backbone(tiny_model_dirs, tmp_path):
    data = write_jsonl(
        tmp_path / "pairs.jsonl", rule_pairs(10, subset="academy") + rule_pairs(4, subset="other")
    )
    out = tmp_path / "rm"
    args = [
        "customize",
        str(data),
        "--base",
        str(tiny_model_dirs["llama"]),
        "--out",
        str(out),
        "--subset",
        "academy",
    ]
    args += [
        "--epochs",
        "2",
        "--learning-rate",
        "5e-3",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "trained 27 pairs" in result.output  # 30 academy pairs less one held-out prompt's 3
    assert "wrote" in result.output
    assert "loads as pluralrm scores it in transformers' AutoModelForSequenceClassification" in result.output
    assert "OpenRLHF's reward model" in result.output and "; not in" not in result.output  # a causal export

    held_out = write_jsonl(
        tmp_path / "test.jsonl", [{**p, "prompt": "New " + p["prompt"]} for p in rule_pairs(3)]
    )
    scored = runner.invoke(
        app, ["score", str(out), str(held_out), "--out", str(tmp_path / "s.jsonl"), "--no-cache"]
    )
    assert scored.exit_code == 0, scored.output
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    evaluated = runner.invoke(app, ["evaluate", str(out), str(held_out), "--no-cache"])
    assert evaluated.exit_code == 0, evaluated.output

    # The fine-tuned backbone as a feature extractor: DRM heads on a customized reward model.
    features = tmp_path / "features"
    featurized = runner.invoke(app, ["featurize", str(data), "--backbone", str(out), "--out", str(features)])
    assert featurized.exit_code == 0, featurized.output
    heads = tmp_path / "heads"
    decomposed = runner.invoke(app, ["decompose", str(features), "--out", str(heads), "--components", "4"])
    assert decomposed.exit_code == 0, decomposed.output
    drm = RewardModel.from_pretrained(heads)
    assert drm.backbone_name == str(out)
    reward = RewardModel.from_pretrained(out)
    assert drm.namespace["backbone"] == reward.namespace["backbone"]  # the same fine-tuned weights
    assert np.isfinite(drm.rewards([("Q?", "Paris.")])).all()


def test_customize_names_a_missing_subset(tiny_model_dirs, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", rule_pairs(2, subset="academy"))
    args = ["customize", str(data), "--base", str(tiny_model_dirs["bert"]), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--subset", "business", "--no-progress"])
    assert result.exit_code == 2
    assert "no pairs with subset 'business'" in result.output and "academy" in result.output


def test_customize_progress_bar_reports_loss_and_validation_accuracy(tiny_model_dirs, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", rule_pairs(10))
    args = ["customize", str(data), "--base", str(tiny_model_dirs["bert"]), "--out", str(tmp_path / "rm")]
    result = runner.invoke(app, [*args, "--device", "cpu", "--dtype", "float32", "--stage", "general"])
    assert result.exit_code == 0, result.output
    assert "general  loss" in result.output and "val acc" in result.output
    assert "validation accuracy" in result.output
