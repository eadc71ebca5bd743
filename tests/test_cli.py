import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.config import DECOMPOSE
from pluralrm.data.features import PairFeatures

runner = CliRunner()


@pytest.mark.parametrize(
    "verb",
    [
        "inspect",
        "featurize",
        "backbones",
        "decompose",
        "evaluate",
        "demo",
        "adapt",
        "score",
        "users list",
        "users show",
        "users delete",
        "kshot",
        "population",
    ],
)
def test_every_verb_has_help_with_an_example(verb):
    result = runner.invoke(app, [*verb.split(), "--help"])
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


def test_adapt_score_and_users(tmp_path, tiny_model_dirs):
    rng = __import__("numpy").random.default_rng(0)
    words = ["formal", "casual", "long", "short", "kind", "blunt"]
    records = []
    for i in range(60):
        a, b = rng.choice(words, size=2, replace=False)
        good, bad = (a, b) if words.index(a) % 2 == 0 else (b, a)  # this user likes even-indexed words
        records.append({"prompt": f"q{i}", "chosen": f"a {good} reply {i}", "rejected": f"a {bad} reply {i}"})
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    backbone, store = str(tiny_model_dirs["gpt2"]), str(tmp_path / "profiles.sqlite")
    runner.invoke(app, ["featurize", str(data), "--backbone", backbone, "--out", str(tmp_path / "f")])
    runner.invoke(app, ["decompose", str(tmp_path / "f"), "--components", "6", "--out", str(tmp_path / "m")])
    result = runner.invoke(
        app,
        ["adapt", str(tmp_path / "m"), "--user", "alice", "--pairs", str(tmp_path / "f"), "--store", store],
    )
    assert result.exit_code == 0, result.output
    assert "stored profile 'alice'" in result.output
    result = runner.invoke(
        app,
        [
            "score",
            str(tmp_path / "m"),
            str(data),
            "--user",
            "alice",
            "--store",
            store,
            "--out",
            str(tmp_path / "s.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(scores) == 60 and {"id", "chosen_reward", "rejected_reward"} <= set(scores[0])
    listed = runner.invoke(app, ["users", "list", "--store", store])
    assert listed.exit_code == 0 and "alice" in listed.output
    assert runner.invoke(app, ["users", "show", "alice", "--store", store]).exit_code == 0
    assert runner.invoke(app, ["users", "delete", "alice", "--store", store]).exit_code == 0
    missing = runner.invoke(
        app, ["score", str(tmp_path / "m"), str(data), "--user", "alice", "--store", store]
    )
    assert missing.exit_code == 2 and "no profile for user 'alice'" in missing.output


def _pairs_file(path, n, offset=0, like=("formal", "kind", "long")):
    rng = __import__("numpy").random.default_rng(offset)
    words = ["formal", "casual", "long", "short", "kind", "blunt"]
    records = []
    for i in range(offset, offset + n):
        a, b = rng.choice(words, size=2, replace=False)
        good, bad = (a, b) if a in like else (b, a)
        records.append({"prompt": f"q{i}", "chosen": f"a {good} reply {i}", "rejected": f"a {bad} reply {i}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_kshot_path_and_adapt_plus_score_give_identical_rewards(tmp_path, tiny_model_dirs):
    """The k-shot figures and the product's verbs go through one scoring path."""

    from pluralrm.adapt import ProfileStore, build_profile
    from pluralrm.adapt.kshot import adapted_margins
    from pluralrm.rewards.reward_model import RewardModel

    backbone, store = str(tiny_model_dirs["gpt2"]), str(tmp_path / "profiles.sqlite")
    for name, n, offset in (("pool", 60, 0), ("user", 12, 100), ("test", 20, 200)):
        data = _pairs_file(tmp_path / f"{name}.jsonl", n, offset)
        args = ["featurize", str(data), "--backbone", backbone, "--out", str(tmp_path / name)]
        assert runner.invoke(app, args).exit_code == 0
    args = ["decompose", str(tmp_path / "pool"), "--components", "5", "--out", str(tmp_path / "m")]
    assert runner.invoke(app, args).exit_code == 0
    for method in ("logistic", "hyre", "best-head", "bt"):
        args = ["adapt", str(tmp_path / "m"), "--user", "u", "--pairs", str(tmp_path / "user")]
        result = runner.invoke(app, [*args, "--method", method, "--store", store])
        assert result.exit_code == 0, result.output
        args = ["score", str(tmp_path / "m"), str(tmp_path / "test"), "--user", "u", "--store", store]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "s.jsonl")])
        assert result.exit_code == 0, result.output
        scores = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
        cli_margins = np.array([s["chosen_reward"] - s["rejected_reward"] for s in scores])

        model = RewardModel.from_pretrained(tmp_path / "m")
        user, test = PairFeatures.load(tmp_path / "user"), PairFeatures.load(tmp_path / "test")
        kshot_margins = adapted_margins(model, f"drm-{method}", user.differences, test)
        np.testing.assert_array_equal(cli_margins, kshot_margins)
        stored = ProfileStore(store).get("u")
        np.testing.assert_array_equal(
            stored.weights, build_profile(model, "u", user.differences, method=method).weights
        )
        accuracy = float(result.output.split("accuracy ")[1].split(" ")[0])
        assert accuracy == round(float(((kshot_margins > 0) + 0.5 * (kshot_margins == 0)).mean()), 3)


def test_decompose_pools_several_inputs_and_evaluate_reports_the_validation_pick(tmp_path, tiny_model_dirs):
    backbone = str(tiny_model_dirs["gpt2"])
    for name, offset in (("a", 0), ("b", 100), ("val", 200)):
        data = _pairs_file(tmp_path / f"{name}.jsonl", 30, offset)
        args = ["featurize", str(data), "--backbone", backbone, "--out", str(tmp_path / name)]
        assert runner.invoke(app, args).exit_code == 0
    args = ["decompose", str(tmp_path / "a"), str(tmp_path / "b.jsonl"), "--backbone", backbone]
    result = runner.invoke(
        app, [*args, "--components", "3", "--val-fraction", "0.2", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert "from 48 pairs (12 held out)" in result.output and "decompose took" in result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["metadata"]["fit_pairs"] == 48
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "m"), str(tmp_path / "a"), "--val", str(tmp_path / "val")]
    )
    assert result.exit_code == 0, result.output
    assert "PCA head picked on validation (30 pairs): pc" in result.output
    assert "best-pc" in result.output and "evaluate took" in result.output
    # Features made another way cannot be pooled.
    other = ["featurize", str(tmp_path / "a.jsonl"), "--backbone", backbone, "--layer", "1"]
    assert runner.invoke(app, [*other, "--out", str(tmp_path / "a1")]).exit_code == 0
    args = ["decompose", str(tmp_path / "a"), str(tmp_path / "a1"), "--out", str(tmp_path / "m2")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "cannot pool features made differently" in result.output


def test_version():
    import pluralrm

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"pluralrm {pluralrm.__version__}"


def test_kshot_runs_leave_one_user_out_from_separate_files(tmp_path):
    """Pool, adaptation and test pairs as separate feature directories; the CLI's numbers are the
    library's (user-bt-all = a BT head on all the user's adaptation pairs, scored on their test pairs)."""
    from dataclasses import replace

    from pluralrm.adapt.kshot import run_kshot
    from tests.conftest import low_rank_users

    pool, per_user = low_rank_users()
    pool.save(tmp_path / "pool")
    for name in ("u0", "u1"):
        adapt, test = per_user[name]
        adapt.save(tmp_path / f"{name}-adapt")
        replace(test, users=[None] * len(test)).save(tmp_path / f"{name}-test")
    args = ["kshot", "--pool", str(tmp_path / "pool"), "--out", str(tmp_path / "out")]
    for name in ("u0", "u1"):
        args += [
            "--adapt",
            f"{name}={tmp_path / f'{name}-adapt'}",
            "--test",
            f"{name}={tmp_path / f'{name}-test'}",
        ]
    methods = "general,drm-logistic,user-bt,user-bt-all"
    result = runner.invoke(
        app, [*args, "--ks", "0,5", "--draws", "3", "--methods", methods, "--components", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "user-bt-all" in result.output and "took" in result.output
    rows = list(csv.DictReader((tmp_path / "out" / "kshot.csv").open()))
    assert (tmp_path / "out" / "kshot.png").exists()
    assert {(r["user"], r["method"], r["k"]) for r in rows} == {
        (u, m, k) for u in ("u0", "u1") for m in methods.split(",") for k in ("0", "5")
    }
    direct = run_kshot(
        pool,
        {name: per_user[name] for name in ("u0", "u1")},
        ks=(0, 5),
        n_draws=3,
        methods=methods.split(","),
        decompose=replace(DECOMPOSE, n_components=4),
    )
    for got, want in zip(rows, direct, strict=True):
        assert (got["user"], got["method"], int(got["k"])) == (want["user"], want["method"], want["k"])
        assert float(got["mean"]) == pytest.approx(want["mean"], abs=5e-5)  # CSV keeps 4 decimals
        assert int(got["n_fit"]) == want["n_fit"] < len(pool)  # the target's pairs were left out
    mismatched = runner.invoke(
        app, [*args[:5], "--adapt", f"u0={tmp_path / 'u0-adapt'}", "--test", f"u1={tmp_path / 'u1-test'}"]
    )
    assert mismatched.exit_code != 0 and "must be the same users" in mismatched.output


def test_kshot_layers_chooses_each_targets_layer_on_the_pool_and_matches_the_library(
    tmp_path, tiny_model_dirs
):
    """--layers: every file featurized at each candidate layer; the choice and the figures are
    run_kshot_choosing's on the same features (the target's pairs take no part in its choice)."""
    from pluralrm.adapt.choice import run_kshot_choosing
    from pluralrm.backbone import FeatureSpec, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs_specs
    from pluralrm.config import FeaturizeConfig
    from pluralrm.data import load_pairs

    backbone = str(tiny_model_dirs["gpt2"])
    files = {
        "p0": _pairs_file(tmp_path / "p0.jsonl", 40, 0, like=("formal", "kind", "long")),
        "p1": _pairs_file(tmp_path / "p1.jsonl", 40, 100, like=("casual", "kind", "short")),
        "t-adapt": _pairs_file(tmp_path / "t-adapt.jsonl", 20, 200, like=("formal", "blunt", "short")),
        "t-test": _pairs_file(tmp_path / "t-test.jsonl", 20, 300, like=("formal", "blunt", "short")),
    }
    args = ["kshot", "--backbone", backbone, "--out", str(tmp_path / "out"), "--layers", "1,2"]
    args += ["--pool", f"p0={files['p0']}", "--pool", f"p1={files['p1']}"]
    args += ["--adapt", f"t={files['t-adapt']}", "--test", f"t={files['t-test']}"]
    options = ["--choice-k", "5", "--ks", "0,5", "--draws", "2", "--methods", "user-bt,user-bt-all"]
    result = runner.invoke(app, [*args, *options, "--components", "4"])
    assert result.exit_code == 0, result.output
    assert "pool users' accuracy" in result.output
    rows = list(csv.DictReader((tmp_path / "out" / "kshot.csv").open()))

    featurizer = build_featurizer(FeaturizeConfig(backbone=backbone))
    specs = [FeatureSpec(featurizer.spec.pooling, 1), FeatureSpec(featurizer.spec.pooling, 2)]

    def features(name, user):
        by_spec = featurize_pairs_specs(load_pairs(files[name]).records, featurizer, specs)
        return [replace_users(by_spec[spec], user) for spec in specs]

    p0, p1, adapt, test = (
        features("p0", "p0"),
        features("p1", "p1"),
        features("t-adapt", "t"),
        features("t-test", "t"),
    )
    candidates = {
        f"layer {layer}": (PairFeatures.concatenate([p0[i], p1[i]]), {"t": (adapt[i], test[i])})
        for i, layer in enumerate((1, 2))
    }
    want, choices = run_kshot_choosing(
        candidates,
        choice_k=5,
        ks=(0, 5),
        n_draws=2,
        methods=("user-bt", "user-bt-all"),
        decompose=__import__("dataclasses").replace(DECOMPOSE, n_components=4),
    )
    assert choices["t"].users == ("p0", "p1")
    assert [(r["user"], r["method"], int(r["k"]), r["features"]) for r in rows] == [
        (w["user"], w["method"], w["k"], choices["t"].name) for w in want
    ]
    for got, expected in zip(rows, want, strict=True):
        assert float(got["mean"]) == pytest.approx(expected["mean"], abs=5e-5)
    for name, score in choices["t"].scores.items():
        assert f"{score:.3f}" in result.output, name

    features_dir = tmp_path / "t-features"
    adapt[0].save(features_dir)
    refused = runner.invoke(
        app, [*args[:11], "--adapt", f"t={features_dir}", "--test", f"t={files['t-test']}"]
    )
    assert refused.exit_code != 0 and "holds one layer" in refused.output


def replace_users(features: PairFeatures, user: str) -> PairFeatures:
    from dataclasses import replace

    return replace(features, users=[user] * len(features))


def test_decompose_layers_fits_in_the_layer_its_users_are_learned_best_and_adapt_reads_it(
    tmp_path, tiny_model_dirs
):
    from pluralrm.adapt.choice import choose_features
    from pluralrm.backbone import FeatureSpec, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs_specs
    from pluralrm.config import FeaturizeConfig
    from pluralrm.rewards.reward_model import RewardModel

    backbone = str(tiny_model_dirs["gpt2"])
    records = []
    for user, offset, like in (
        ("ann", 0, ("formal", "kind", "long")),
        ("bob", 100, ("casual", "blunt", "long")),
    ):
        path = _pairs_file(tmp_path / f"{user}.jsonl", 40, offset, like=like)
        records += [{**json.loads(line), "user": user} for line in path.read_text().splitlines()]
    data = tmp_path / "users.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["decompose", str(data), "--backbone", backbone, "--components", "4", "--layers", "1,2"]
    result = runner.invoke(app, [*args, "--choice-k", "5", "--out", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output

    featurizer = build_featurizer(FeaturizeConfig(backbone=backbone))
    specs = {f"layer {layer}": FeatureSpec(featurizer.spec.pooling, layer) for layer in (1, 2)}
    by_spec = featurize_pairs_specs(records, featurizer, list(specs.values()))
    choice = choose_features({name: by_spec[spec] for name, spec in specs.items()}, k=5)
    assert f"chose {choice.name} (2 users: ann, bob)" in result.output
    model = RewardModel.from_pretrained(tmp_path / "model")
    assert model.namespace["spec"]["layer"] == specs[choice.name].layer
    np.testing.assert_allclose(
        model.margins(by_spec[specs[choice.name]], head="general"),
        by_spec[specs[choice.name]].differences @ model.general.coef_,
        rtol=1e-6,
    )
    profile = ["--user", "ann", "--pairs", str(tmp_path / "ann.jsonl"), "--store", str(tmp_path / "p.sqlite")]
    adapted = runner.invoke(app, ["adapt", str(tmp_path / "model"), *profile])
    assert adapted.exit_code == 0, adapted.output  # featurized in the model's chosen layer, no mismatch

    nobody = tmp_path / "nobody.jsonl"
    nobody.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "user"}) + "\n" for r in records)
    )
    refused = runner.invoke(app, ["decompose", str(nobody), *args[2:], "--out", str(tmp_path / "m2")])
    assert refused.exit_code != 0 and "labelled users in the pool" in refused.output


def test_decompose_adapters_records_the_choice_and_adapt_auto_uses_it(tmp_path):
    from pluralrm.adapt import ProfileStore
    from pluralrm.adapt.kshot import choose_adapter
    from pluralrm.rewards.reward_model import RewardModel
    from tests.conftest import shared_taste_pool

    pool = shared_taste_pool()
    pool.save(tmp_path / "pool")
    pool.select(range(20)).save(tmp_path / "new-user")
    store = str(tmp_path / "p.sqlite")
    for name, extra in (
        ("chosen", ["--adapters", "bt,map"]),
        ("only-bt", ["--adapters", "bt"]),
        ("plain", []),
    ):
        args = ["decompose", str(tmp_path / "pool"), "--components", "4", "--choice-k", "5", *extra]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    recorded = RewardModel.from_pretrained(tmp_path / "chosen").metadata["adapter"]
    settings = __import__("dataclasses").replace(DECOMPOSE, n_components=4, choice_k=5)
    library = choose_adapter(
        pool, methods=("bt", "map"), k=5, n_draws=DECOMPOSE.choice_draws, decompose=settings
    )
    assert recorded["chosen"] == library.name == "map"
    assert recorded["scores"] == pytest.approx(library.scores) and recorded["users"] == list(library.users)
    # NAME=PATH labels unlabelled inputs: the same users, the same choice
    named = []
    for user in library.users:
        part = pool.select([i for i, u in enumerate(pool.users) if u == user])
        __import__("dataclasses").replace(part, users=[None] * len(part)).save(tmp_path / f"anon-{user}")
        named.append(f"{user}={tmp_path / f'anon-{user}'}")
    args = ["decompose", *named, "--components", "4", "--choice-k", "5", "--adapters", "bt,map"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "named")]).exit_code == 0
    assert RewardModel.from_pretrained(tmp_path / "named").metadata["adapter"] == recorded
    # auto: the model's recorded choice; a model without one falls back to map
    for name, expected in (("only-bt", "bt"), ("chosen", "map"), ("plain", "map")):
        args = ["adapt", str(tmp_path / name), "--user", name, "--pairs", str(tmp_path / "new-user")]
        result = runner.invoke(app, [*args, "--store", store])
        assert result.exit_code == 0, result.output
        assert ProfileStore(store).get(name).method == expected
        assert f"({expected} (auto)" in result.output
