"""One source of defaults: the CLI's options and the library's keyword defaults read pluralrm.config."""

import inspect
from dataclasses import fields

import pytest
import typer.main

from pluralrm.adapt.adapters import HyReAdapter, LogisticAdapter, weights_over_heads
from pluralrm.cli import app
from pluralrm.config import (
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
    SELECT,
    SERVE,
    AdaptConfig,
    DecomposeConfig,
    DemoConfig,
    FeaturizeConfig,
    KShotConfig,
    help_of,
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
    "serve": [SERVE, FEATURIZE],
    "sft": [FINETUNE],
    "customize": [CUSTOMIZE],
    "rank": [SELECT, FEATURIZE, ENGINE],
    "select": [SELECT, FEATURIZE],
    "generate": [GENERATE],
    "analyze": [ANALYZE, FEATURIZE],
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


@pytest.mark.parametrize(("verb", "command"), list(_commands()))
def test_cli_option_defaults_and_help_are_the_configs(verb, command):
    configs = CONFIGS_OF_VERB.get(verb, [FEATURIZE])
    checked = 0
    for param in command.params:
        for config in configs:
            names = {f.name for f in fields(config)}
            if param.name in names:
                assert param.default == getattr(config, param.name), (verb, param.name)
                assert param.help == help_of(type(config), param.name), (verb, param.name)
                checked += 1
                break
    if verb in CONFIGS_OF_VERB:
        least = 2 if verb == "rank" else 3  # rank's only settings: chunk size and device
        assert checked >= least, f"{verb} exposes too few configured options ({checked})"


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


def test_every_setting_has_help():
    for config in (FeaturizeConfig, DecomposeConfig, AdaptConfig, KShotConfig, DemoConfig):
        for f in fields(config):
            assert f.metadata.get("help"), f"{config.__name__}.{f.name} has no help text"
