"""@config_options: a config's fields become a verb's options, and the verb gets the config they build."""

from __future__ import annotations

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from pluralrm.cli.options import DERIVED, config_options
from pluralrm.config import (
    ANALYZE,
    COLLECT,
    DEMO_DECOMPOSE,
    FEATURIZE,
    AnalyzeConfig,
    CollectConfig,
    DecomposeConfig,
    FeaturizeConfig,
    replace,
)

runner = CliRunner()


def _app(verb) -> typer.Typer:
    app = typer.Typer()
    app.command()(verb)
    return app


def _params(app: typer.Typer) -> dict:
    return {p.name: p for p in typer.main.get_command(app).params}


def test_two_configs_build_two_objects_and_the_rest_keep_the_instance_values():
    seen = {}

    @config_options(DEMO_DECOMPOSE, "n_components", flags={"n_components": "--components"})
    @config_options(FEATURIZE, "backbone", "device", into="featurize")
    def verb(name: str, *, config: DecomposeConfig, featurize: FeaturizeConfig, loud: bool = False) -> None:
        seen.update(name=name, config=config, featurize=featurize, loud=loud)

    app = _app(verb)
    params = _params(app)
    assert params["n_components"].default == DEMO_DECOMPOSE.n_components == 16  # the instance's default
    assert params["n_components"].opts == ["--components"]
    assert {"config", "featurize"}.isdisjoint(params)
    result = runner.invoke(app, ["x", "--components", "3", "--device", "cpu", "--loud"])
    assert result.exit_code == 0, result.output
    assert seen["config"] == replace(DEMO_DECOMPOSE, n_components=3)
    assert seen["featurize"] == replace(FEATURIZE, device="cpu")
    assert seen["name"] == "x" and seen["loud"] is True
    assert getattr(verb, DERIVED) == {
        "n_components": (DEMO_DECOMPOSE, "n_components"),
        "backbone": (FEATURIZE, "backbone"),
        "device": (FEATURIZE, "device"),
    }


def test_a_tuple_field_is_a_comma_separated_option():
    seen = []

    @config_options(COLLECT, "temperatures", "skip_rules")
    def verb(*, config: CollectConfig) -> None:
        seen.append(config)

    app = _app(verb)
    params = _params(app)
    assert params["temperatures"].default == "0.8" and params["skip_rules"].default == ""
    assert runner.invoke(app, ["--temperatures", "0.7, 1.0", "--skip-rules", "refusal"]).exit_code == 0
    assert seen[-1].temperatures == (0.7, 1.0) and seen[-1].skip_rules == ("refusal",)
    assert runner.invoke(app, []).exit_code == 0
    assert seen[-1] == COLLECT
    result = runner.invoke(app, ["--temperatures", "0.7,hot"])
    assert result.exit_code == 2 and "--temperatures '0.7,hot'" in result.output


def test_an_optional_tuple_field_defaults_to_none():
    seen = []

    @config_options(ANALYZE, "ns")
    def verb(*, config: AnalyzeConfig) -> None:
        seen.append(config.ns)

    app = _app(verb)
    assert _params(app)["ns"].default is None
    assert runner.invoke(app, []).exit_code == 0 and seen[-1] is None
    assert runner.invoke(app, ["--ns", "1,4"]).exit_code == 0 and seen[-1] == (1, 4)


def test_mistakes_are_named_when_the_verb_is_defined():
    with pytest.raises(ValueError, match=r"no field\(s\) \['epochs'\]"):
        config_options(FEATURIZE, "epochs")
    with pytest.raises(ValueError, match="no field"):
        config_options(FEATURIZE, exclude=("epochs",))
    with pytest.raises(TypeError, match="needs a parameter `config: FeaturizeConfig`"):

        @config_options(FEATURIZE, "device")
        def no_target(*, featurize: FeaturizeConfig) -> None: ...

    with pytest.raises(TypeError, match=r"\['device'\] of FeaturizeConfig already exist"):

        @config_options(FEATURIZE, "device")
        def clash(*, config: FeaturizeConfig, device: str = "cpu") -> None: ...
