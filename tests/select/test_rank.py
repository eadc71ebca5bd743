"""`pluralrm rank` / `pluralrm select`: rewards equal the one scoring path's, exports load in datasets."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from pluralrm.atomic import write_jsonl
from pluralrm.cli import app
from pluralrm.data import load_ranked
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.select import featurize_ranked, rewards_from_features
from tests.conftest import wide_rows

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_rewards_equal_scoring_each_response_alone(causal_model_dir):
    model = RewardModel.from_pretrained(causal_model_dir)
    records = [
        {"id": r["id"], "prompt": r["prompt"], "responses": [r[f"response_{i}"] for i in range(1, 5)]}
        for r in wide_rows()
    ]
    features = featurize_ranked(records, model.featurizer(), chunk_prompts=2)
    got = rewards_from_features(features, model, head="pc2")
    for record, rewards in zip(records, got, strict=True):
        alone = [model.rewards([(record["prompt"], text)], head="pc2")[0] for text in record["responses"]]
        np.testing.assert_allclose(rewards, alone, atol=1e-4)
    assert np.ptp(np.concatenate(got)) > 0  # the responses really get different rewards


def test_rank_cli_writes_rewards_the_library_computes(tmp_path, causal_model_dir):
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    out = tmp_path / "rewarded.jsonl"
    result = _invoke("rank", wide, "--out", out, "--model", causal_model_dir, "--no-cache", "--device", "cpu")
    assert result.exit_code == 0, result.output
    rewarded = load_ranked(out).records
    model = RewardModel.from_pretrained(causal_model_dir)
    first = rewarded[0]
    expected = model.rewards([(first["prompt"], text) for text in first["responses"]])
    np.testing.assert_allclose(first["rewards"], expected, atol=1e-4)
    assert first["models"] == ["gen1", "gen0", "gen1", "gen0"]  # other columns survive
    assert json.loads(out.read_text().splitlines()[0])["reward_source"].endswith(":head=general")


def test_rank_errors_are_one_line(tmp_path, causal_model_dir):
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    out = tmp_path / "o.jsonl"
    result = _invoke("rank", wide, "--out", out)
    assert result.exit_code == 2 and "record 'q0' has no rewards; pass --model" in result.output
    result = _invoke("rank", wide, "--out", out, "--model", causal_model_dir, "--head", "pc99")
    assert result.exit_code == 2 and "unknown head 'pc99'" in result.output
    result = _invoke("rank", wide, "--out", out, "--model", causal_model_dir, "--user", "nobody")
    assert result.exit_code == 2 and "nobody" in result.output
    assert not out.exists()


def test_select_cli_writes_each_export(tmp_path, causal_model_dir):
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    rewarded = tmp_path / "rewarded.jsonl"
    assert _invoke("rank", wide, "--out", rewarded, "--model", causal_model_dir, "--no-cache").exit_code == 0
    records = load_ranked(rewarded).records
    for method, expected_rows in [
        ("best-of-n", 5),
        ("top-k", 10),
        ("top-fraction", 5),
        ("best-vs-worst", 5),
        ("best-vs-random", 5),
    ]:
        out = tmp_path / f"{method}.jsonl"
        result = _invoke("select", rewarded, "--out", out, "--method", method, "--k", "2")
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == expected_rows, method
    best = [json.loads(line) for line in (tmp_path / "best-of-n.jsonl").read_text().splitlines()]
    for row, record in zip(best, records, strict=True):
        assert row["messages"][-1]["content"] == record["responses"][int(np.argmax(record["rewards"]))]
    result = _invoke("select", rewarded, "--out", tmp_path / "x.jsonl", "--method", "worst")
    assert result.exit_code == 2 and "unknown method 'worst'" in result.output


def test_select_per_user_follows_each_profile(tmp_path, causal_model_dir):
    from pluralrm.adapt import ProfileStore, UserProfile

    model = RewardModel.from_pretrained(causal_model_dir)
    store = tmp_path / "profiles.sqlite"
    n_heads = len(model.decomposed.components_)
    for name, sign in (("pos", 1.0), ("neg", -1.0)):
        weights = np.zeros(n_heads)
        weights[0] = sign
        ProfileStore(store).put(
            UserProfile(user=name, weights=weights, head_set=model.head_set, method="manual", n_pairs=0)
        )
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    out = tmp_path / "per_user.jsonl"
    result = _invoke(
        "select", wide, "--out", out, "--method", "per-user", "--model", causal_model_dir,
        "--store", store, "--no-cache",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    records = load_ranked(wide).records
    for user, sign in (("pos", 1.0), ("neg", -1.0)):
        picks = [r["messages"][-1]["content"] for r in rows if r["user"] == user]
        for record, pick in zip(records, picks, strict=True):
            scores = sign * model.rewards([(record["prompt"], t) for t in record["responses"]], head="pc1")
            assert pick == record["responses"][int(np.argmax(scores))]


def test_per_user_needs_the_model(tmp_path):
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    result = _invoke("select", wide, "--out", tmp_path / "o.jsonl", "--method", "per-user")
    assert result.exit_code == 2 and "per-user needs --model" in result.output
