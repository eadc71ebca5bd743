"""`--engine ray` on featurize, decompose, score and rank: the same files as the single-process verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from safetensors.numpy import load_file  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from pluralrm.atomic import write_jsonl  # noqa: E402
from pluralrm.cli import app  # noqa: E402
from pluralrm.data import load_ranked  # noqa: E402
from pluralrm.data.synthetic import make_synthetic_preferences  # noqa: E402
from tests.conftest import wide_rows  # noqa: E402

runner = CliRunner()
RAY = ("--engine", "ray", "--num-workers", "2")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_ray_verbs_write_what_one_process_writes(tmp_path, tiny_model_dirs):
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, make_synthetic_preferences(n_prompts=10, seed=5).pairs[:60])
    backbone = ("--backbone", tiny_model_dirs["llama"], "--device", "cpu", "--dtype", "float32")

    # featurize: one process without a cache, then Ray, which computes every text (and fills the cache).
    _invoke("featurize", pairs, *backbone, "--no-cache", "--out", tmp_path / "local")
    output = _invoke("featurize", pairs, *backbone, *RAY, "--out", tmp_path / "ray")
    local, remote = (load_file(tmp_path / d / "features.safetensors") for d in ("local", "ray"))
    assert np.abs(local["chosen"] - remote["chosen"]).max() <= 1e-5
    assert np.abs(local["rejected"] - remote["rejected"]).max() <= 1e-5
    meta = [json.loads((tmp_path / d / "features.json").read_text()) for d in ("local", "ray")]
    assert meta[0]["namespace"] == meta[1]["namespace"] and meta[0]["groups"] == meta[1]["groups"]
    assert "rest cached" in output

    # decompose: per-shard sums on Ray give the heads of one process.
    _invoke("decompose", tmp_path / "local", "--components", "4", "--out", tmp_path / "m-local")
    _invoke("decompose", tmp_path / "local", "--components", "4", *RAY, "--out", tmp_path / "m-ray")
    heads = [load_file(tmp_path / m / "heads.safetensors") for m in ("m-local", "m-ray")]
    names = [name for name in heads[0] if name.startswith("pca.")]
    assert names
    for name in names:
        np.testing.assert_allclose(heads[1][name], heads[0][name], rtol=1e-7, atol=1e-9, err_msg=name)
    general = [name for name in heads[0] if name.startswith("general.")]
    np.testing.assert_allclose(heads[1][general[0]], heads[0][general[0]], rtol=1e-4, atol=1e-6)

    # score: features of the pairs file made on Ray (all from the cache now) score as the saved ones do.
    model = tmp_path / "m-local"
    _invoke("score", model, tmp_path / "local", "--out", tmp_path / "s-local.jsonl")
    _invoke("score", model, pairs, *RAY, "--out", tmp_path / "s-ray.jsonl")
    rows = [
        [json.loads(line) for line in (tmp_path / f).read_text().splitlines()]
        for f in ("s-local.jsonl", "s-ray.jsonl")
    ]
    assert [r["id"] for r in rows[0]] == [r["id"] for r in rows[1]]
    for side in ("chosen_reward", "rejected_reward"):
        np.testing.assert_allclose([r[side] for r in rows[1]], [r[side] for r in rows[0]], atol=1e-4)

    # rank: new texts, computed by Ray workers that share each prompt's pass, as one process does.
    wide = tmp_path / "wide.jsonl"
    write_jsonl(wide, wide_rows())
    _invoke(
        "rank", wide, "--model", model, "--no-cache", "--device", "cpu", "--out", tmp_path / "r-local.jsonl"
    )
    _invoke("rank", wide, "--model", model, "--device", "cpu", *RAY, "--out", tmp_path / "r-ray.jsonl")
    ranked = [load_ranked(tmp_path / f).records for f in ("r-local.jsonl", "r-ray.jsonl")]
    for a, b in zip(ranked[0], ranked[1], strict=True):
        np.testing.assert_allclose(b["rewards"], a["rewards"], atol=1e-4)
    assert np.ptp([r for record in ranked[1] for r in record["rewards"]]) > 0


def test_bad_engine_is_one_clear_error(tmp_path):
    result = runner.invoke(
        app, ["decompose", str(tmp_path), "--engine", "spark", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "engine must be one of local, ray, got 'spark'" in result.output
    result = runner.invoke(app, ["decompose", "pairs.jsonl", "--engine", "ray", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "featurize pairs.jsonl first" in result.output
