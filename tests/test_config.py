"""One source of defaults: the CLI's options and the library's keyword defaults read pluralrm.config."""

import inspect
from dataclasses import fields, is_dataclass

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from pluralrm.adapt.adapters import HyReAdapter, LogisticAdapter, weights_over_heads
from pluralrm.cli import app
from pluralrm.cli.options import DERIVED, config_options
from pluralrm.config import (
    ACTIVE,
    ADAPT,
    ANALYZE,
    COLLECT,
    CUSTOMIZE,
    DECOMPOSE,
    DEMO,
    DEMO_DECOMPOSE,
    ENGINE,
    FEATURIZE,
    FINETUNE,
    GENERATE,
    KSHOT,
    LABEL,
    POPULATION,
    REPORT,
    SELECT,
    SERVE,
    AdaptConfig,
    DecomposeConfig,
    DemoConfig,
    EngineConfig,
    FeaturizeConfig,
    KShotConfig,
    SelectConfig,
    help_of,
    replace,
)
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head

# Which stage's settings each verb exposes, first match wins (``alpha`` of adapt is the adapter's).
CONFIGS_OF_VERB = {
    "featurize": [FEATURIZE, ENGINE],
    "decompose": [DECOMPOSE, FEATURIZE, ENGINE],
    "score": [FEATURIZE, ENGINE],
    "demo": [DEMO_DECOMPOSE, FEATURIZE],
    "adapt": [ADAPT, FEATURIZE],
    "kshot": [DECOMPOSE, FEATURIZE, ACTIVE],
    "population": [POPULATION],
    "serve": [SERVE, FEATURIZE],
    "sft": [FINETUNE],
    "customize": [CUSTOMIZE],
    "rank": [SELECT, FEATURIZE, ENGINE],
    "select": [SELECT, FEATURIZE],
    "generate": [GENERATE],
    "analyze": [ANALYZE, FEATURIZE],
    "report": [REPORT, FEATURIZE],
    "label serve": [LABEL],
    "collect prompts": [COLLECT, FEATURIZE],
    "collect responses": [COLLECT],
    "collect filter": [COLLECT],
    "collect all": [COLLECT, FEATURIZE],
}


def _commands(group=None, prefix=""):
    """Every leaf command, sub-commands of a group named with spaces ("label serve")."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
            continue
        yield prefix + name, command


# Options whose flag is not the field name with dashes (a rename here is a change of the command line).
RENAMED_FLAGS = {
    ("analyze", "n_bins"): "--bins",
    ("analyze", "n_resamples"): "--resamples",
    ("kshot", "n_components"): "--components",
    ("decompose", "n_components"): "--components",
    ("demo", "n_components"): "--components",
}


def _derived(command) -> dict:
    """``{parameter: (config instance, field)}`` of the options @config_options gave a verb."""
    return getattr(command.callback, DERIVED, {})


def _cli_default(value):
    """A tuple field's default as its comma-separated option shows it."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else value


def _check_option(verb, param, config, name):
    assert param.default == _cli_default(getattr(config, name)), (verb, param.name, "default")
    assert param.help == help_of(type(config), name), (verb, param.name, "help")
    assert param.opts == [RENAMED_FLAGS.get((verb, param.name), "--" + name.replace("_", "-"))], (verb, name)


@pytest.mark.parametrize(("verb", "command"), list(_commands()))
def test_cli_option_defaults_help_and_flags_are_the_configs(verb, command):
    derived = _derived(command)
    configs = CONFIGS_OF_VERB.get(verb, [FEATURIZE])
    checked = 0
    for param in command.params:
        if param.name in derived:
            _check_option(verb, param, *derived[param.name])
            checked += 1
            continue
        for config in configs:  # an option named like a field but not derived from it is restated
            assert param.name not in {f.name for f in fields(config)}, f"{verb} --{param.name} restated"
    if verb in CONFIGS_OF_VERB:
        least = 2 if verb == "rank" else 3  # rank's only settings: chunk size and device
        assert checked >= least, f"{verb} exposes too few configured options ({checked})"


@pytest.mark.parametrize(("verb", "command"), list(_commands()))
def test_no_verb_restates_a_setting_by_hand(verb, command):
    """Every configured option comes from @config_options (none restates a field's default by hand)."""
    derived = _derived(command)
    for param in command.params:
        for config in CONFIGS_OF_VERB.get(verb, [FEATURIZE]):
            if param.name in {f.name for f in fields(config)}:
                assert param.name in derived, f"{verb} --{param.name}: declare it with @config_options"
                break


def test_a_derived_option_follows_its_field():
    """Change a default in the config and the option changes with it (one edit)."""
    verb_app = typer.Typer()
    seen = []

    @verb_app.command()
    @config_options(replace(SELECT, k=7), "k", "method")
    def verb(*, config: SelectConfig) -> None:
        seen.append(config)

    params = {p.name: p for p in typer.main.get_command(verb_app).params}
    assert params["k"].default == 7 and params["k"].help == help_of(SelectConfig, "k")
    assert CliRunner().invoke(verb_app, ["--method", "top-k"]).exit_code == 0
    assert seen[-1] == replace(SELECT, k=7, method="top-k")


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_library_defaults_are_the_configs():
    from pluralrm.backbone import Featurizer

    for name in ("max_length", "batch_size", "max_batch_tokens", "flush_every"):
        assert _default(Featurizer, name) == getattr(FEATURIZE, name), name
    assert _default(LinearRewardHead, "alpha") == DECOMPOSE.alpha
    assert _default(fit_general_head, "alphas") == DECOMPOSE.alphas
    assert _default(DecomposedRewardModel, "center") == DECOMPOSE.center
    assert _default(DecomposedRewardModel, "batch_size") == DECOMPOSE.batch_size
    assert _default(LogisticAdapter, "alpha") == ADAPT.alpha
    assert _default(HyReAdapter, "beta") == ADAPT.beta
    assert _default(HyReAdapter, "temperature") == ADAPT.temperature
    for name in ("alpha", "beta", "temperature"):
        assert _default(weights_over_heads, name) == getattr(ADAPT, name), name
    from pluralrm.adapt.kshot import kshot_rows, run_kshot
    from pluralrm.demo import run_demo

    for function in (kshot_rows, run_kshot):
        assert _default(function, "ks") == KSHOT.ks
        assert _default(function, "n_draws") == KSHOT.draws
        assert _default(function, "n_random_seeds") == KSHOT.random_seeds
    assert _default(run_demo, "demo") == DEMO and _default(run_demo, "decompose") == DEMO_DECOMPOSE


def test_kshot_verb_defaults_are_the_kshot_config():
    params = {p.name: p for p in typer.main.get_command(app).commands["kshot"].params}
    assert params["ks"].default == ",".join(map(str, KSHOT.ks))
    assert params["draws"].default == KSHOT.draws


def test_more_library_defaults_are_the_configs():
    from pluralrm.adapt.choice import choose_features, pool_learnability, run_kshot_choosing
    from pluralrm.adapt.priors import GaussianPriorAdapter
    from pluralrm.evaluate.many import curves, responses, rewardbench
    from pluralrm.rewards.reward_model import RewardModel
    from pluralrm.select import exports, scoring
    from pluralrm.serve.app import create_app

    prior = {"taus": "map_taus", "default_taus": "map_default_taus", "mean_signs": "map_signs"}
    prior |= {"n_sweeps": "map_sweeps", "min_gain": "map_min_gain"}
    for name, field in prior.items():
        assert _default(GaussianPriorAdapter, name) == getattr(ADAPT, field), name
    for function in (curves.mean_row, curves.agreement, curves.best_of_n_curve, responses.length_correlation):
        assert _default(function, "n_resamples") == ANALYZE.n_resamples, function.__name__
        assert _default(function, "seed") == ANALYZE.seed, function.__name__
    assert _default(responses.length_correlation, "n_bins") == ANALYZE.n_bins
    assert _default(rewardbench.rewardbench_accuracy, "n_resamples") == ANALYZE.n_resamples
    assert _default(scoring.featurize_ranked, "chunk_prompts") == SELECT.chunk_prompts
    assert _default(exports.best_vs_random, "seed") == SELECT.seed
    for function in (pool_learnability, choose_features):
        assert _default(function, "seed") == DECOMPOSE.seed, function.__name__
    assert _default(run_kshot_choosing, "random_seed") == DECOMPOSE.seed
    assert _default(RewardModel.featurizer, "device") == FEATURIZE.device
    assert _default(create_app, "device") == FEATURIZE.device


def test_every_setting_has_help():
    import pluralrm.config as config_module

    classes = [c for c in vars(config_module).values() if isinstance(c, type) and is_dataclass(c)]
    expected = {
        FeaturizeConfig,
        DecomposeConfig,
        AdaptConfig,
        SelectConfig,
        EngineConfig,
        KShotConfig,
        DemoConfig,
    }
    assert expected <= set(classes)
    for config in classes:
        for f in fields(config):
            assert f.metadata.get("help"), f"{config.__name__}.{f.name} has no help text"
