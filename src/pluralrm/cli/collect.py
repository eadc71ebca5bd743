"""``pluralrm collect``: the collection pipeline's stages (prompts, responses, filter, or all three)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pluralrm.cli.common import app, console, fail, load_model, setup_logging, timed
from pluralrm.cli.options import config_options
from pluralrm.config import COLLECT, FEATURIZE, GENERATE, CollectConfig, FeaturizeConfig, replace

collect_app = typer.Typer(
    help="Collect preference data: prompts → responses → filtering, each stage a dataset with provenance.",
    no_args_is_help=True,
)
app.add_typer(collect_app, name="collect")

ProjectArgument = Annotated[
    Path, typer.Argument(help="The collection project directory (created if absent).")
]
SourcesArgument = Annotated[
    list[str],
    typer.Argument(
        help="Prompt sources: files pluralrm reads (pairs, ranked, DSP, HH, plain prompts, .txt), "
        "dataset directories (DIR or DIR:SPLIT) or Hugging Face dataset names."
    ),
]
ForceOption = Annotated[
    bool, typer.Option(help="Re-run the stage even if its inputs and settings are unchanged.")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")]


def _show(project: Path, stage: str) -> None:
    from pluralrm.collect.pipeline import stage_table
    from pluralrm.collect.provenance import read_manifest

    table = Table(title=f"{stage} stage", title_justify="left")
    for column in ("rule", "in", "out", "dropped", "seconds"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for row in stage_table(project):
        if row["stage"] == stage:
            table.add_row(
                row["rule"],
                str(row["in"]),
                str(row["out"]),
                str(row["in"] - row["out"]) if row["in"] else "",
                f"{row['seconds']:.2f}",
            )
    console.print(table)
    manifest = read_manifest(project, stage)
    if manifest is not None:
        outputs = ", ".join(f"{k}: {v}" for k, v in manifest.outputs.items())
        console.print(f"[green]{stage}[/] → {escape(str(project))} ({escape(outputs)})", soft_wrap=True)


def _errors() -> tuple[type[BaseException], ...]:
    from pluralrm.backbone.loading import BackboneNotFoundError
    from pluralrm.collect.pipeline import StageOrderError
    from pluralrm.data import DataValidationError
    from pluralrm.generate import ResumeMismatchError
    from pluralrm.generate.endpoint import EndpointError

    return (
        DataValidationError,
        ValueError,
        BackboneNotFoundError,
        EndpointError,
        StageOrderError,
        ResumeMismatchError,
    )


def _prompts(
    project, sources, featurize, embed, expand_model, limit, skip_invalid, config, force, rewarded=None
):
    from pluralrm.collect.pipeline import run_prompts

    featurizer = generator = None
    if embed:
        from pluralrm.backbone.build import build_featurizer

        featurizer = build_featurizer(featurize)
    if config.expand:
        from pluralrm.generate.run import make_generator

        generator = make_generator(replace(GENERATE, model=expand_model))
    run_prompts(
        project,
        sources,
        featurizer=featurizer,
        generator=generator,
        rewarded=rewarded,
        limit=limit,
        skip_invalid=skip_invalid,
        config=config,
        force=force,
    )


@collect_app.command("prompts")
@config_options(
    COLLECT, "dedup_threshold", "max_prompts", "n_clusters", "expand", "keep_by_reward", "reward_rule", "seed"
)
@config_options(FEATURIZE, "backbone", "device", into="featurize")
def prompts(
    project: ProjectArgument,
    sources: SourcesArgument,
    *,
    featurize: FeaturizeConfig,
    embed: Annotated[
        bool, typer.Option(help="Embed prompts to drop near-duplicates and cover clusters.")
    ] = True,
    config: CollectConfig,
    expand_model: Annotated[str, typer.Option(help="The local LM that writes new prompts.")] = GENERATE.model,
    rewarded: Annotated[
        Path | None,
        typer.Option(help="The current reward's scores of sampled responses (`pluralrm rank` output)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many prompts from each source.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid prompt records instead of failing.")
    ] = False,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 1: read, expand, de-duplicate and select prompts into PROJECT/prompts.jsonl.

    Example: pluralrm collect prompts proj ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --limit 200
    --max-prompts 50
    """
    setup_logging(verbose)
    try:
        with timed("prompts"):
            _prompts(
                project, sources, featurize, embed, expand_model, limit, skip_invalid, config, force, rewarded
            )
    except _errors() as error:
        raise fail(str(error)) from None
    _show(project, "prompts")


def _settings(models, temperatures, system_prompts, endpoint, config: CollectConfig):
    from pluralrm.collect.responses_stage import settings_grid

    return settings_grid(
        models or [GENERATE.model],
        temperatures=temperatures or config.temperatures,
        system_prompts=system_prompts or [None],
        endpoint=endpoint,
        n=config.n,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )


ModelsOption = Annotated[
    list[str] | None, typer.Option("--model", help="Generator model; repeat for several (default: smollm2).")
]
TemperatureOption = Annotated[
    list[float] | None,
    typer.Option("--temperature", help="Sampling temperature; repeat for several (default: 0.8)."),
]
SystemOption = Annotated[
    list[str] | None,
    typer.Option("--system-prompt", help="A system prompt; repeat for several (default: none)."),
]
EndpointOption = Annotated[
    str | None, typer.Option(help="Base URL of an OpenAI-compatible server serving the --model(s).")
]
FromWideOption = Annotated[
    list[Path] | None,
    typer.Option("--from-wide", help="Import responses of an earlier `pluralrm generate` file; repeatable."),
]


@collect_app.command("responses")
@config_options(COLLECT, "n", "max_new_tokens", "seed")
def responses(
    project: ProjectArgument,
    *,
    model: ModelsOption = None,
    temperature: TemperatureOption = None,
    system_prompt: SystemOption = None,
    endpoint: EndpointOption = None,
    config: CollectConfig,
    from_wide: FromWideOption = None,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 2: N responses per prompt from every model × system prompt × temperature (resumable).

    Example: pluralrm collect responses proj --n 4 --temperature 0.7 --temperature 1.0 --max-new-tokens 128
    (or --from-wide gen.jsonl to import responses already generated)
    """
    from pluralrm.collect.pipeline import run_responses

    setup_logging(verbose)
    try:
        with timed("responses"):
            settings = (
                []
                if from_wide and not model
                else _settings(model, temperature, system_prompt, endpoint, config)
            )
            run_responses(project, settings, from_wide=from_wide or [], force=force)
    except _errors() as error:
        raise fail(str(error)) from None
    _show(project, "responses")


def _filter(project, judge, head, lm_judge_url, lm_judge_model, config, force):
    from pluralrm.collect.filters import LMJudge, RewardJudge
    from pluralrm.collect.pipeline import run_filter

    reward = RewardJudge(load_model(judge), head=head, name=str(judge)) if judge else None
    lm = LMJudge(lm_judge_url, lm_judge_model) if lm_judge_url else None
    try:
        run_filter(project, judge=reward, lm_judge=lm, config=config, force=force)
    finally:
        if lm is not None:
            lm.close()


JudgeOption = Annotated[
    Path | None, typer.Option(help="Reward model directory of the AI judge (default: no AI labels).")
]


@collect_app.command("filter")
@config_options(
    COLLECT,
    "min_chars",
    "ngram",
    "max_repeated",
    "min_stopwords",
    "near_identical",
    "pairs_per_prompt",
    "ai_fraction",
    "ai_margin",
    "label_budget",
    "seed",
)
def filter_(
    project: ProjectArgument,
    *,
    judge: JudgeOption = None,
    head: Annotated[str | None, typer.Option(help="The judge's head ('general' or 'pcJ').")] = None,
    lm_judge_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server of an LM that must agree with the reward.")
    ] = None,
    lm_judge_model: Annotated[str, typer.Option(help="The LM judge's served model name.")] = GENERATE.model,
    config: CollectConfig,
    skip_rule: Annotated[
        list[str] | None,
        typer.Option("--skip-rule", help="A response rule not to apply (e.g. refusal); repeatable."),
    ] = None,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 3: drop degenerate responses and near-identical pairs; the AI judge labels the clear pairs,
    the rest go to people (PROJECT/pairs-to-label.jsonl; AI labels in ai-labelled.jsonl).

    Example: pluralrm collect filter proj --judge models/helpful-minilm --ai-fraction 0.5 --label-budget 200
    """
    setup_logging(verbose)
    if skip_rule:
        config = replace(config, skip_rules=tuple(skip_rule))
    try:
        with timed("filter"):
            _filter(project, judge, head, lm_judge_url, lm_judge_model, config, force)
    except _errors() as error:
        raise fail(str(error)) from None
    _show(project, "filter")


@collect_app.command("all")
@config_options(COLLECT, "max_prompts", "n", "max_new_tokens", "ai_fraction", "label_budget", "seed")
@config_options(FEATURIZE, "backbone", "device", into="featurize")
def all_stages(
    project: ProjectArgument,
    sources: SourcesArgument,
    *,
    featurize: FeaturizeConfig,
    config: CollectConfig,
    limit: Annotated[int | None, typer.Option(help="At most this many prompts from each source.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid prompt records instead of failing.")
    ] = False,
    model: ModelsOption = None,
    temperature: TemperatureOption = None,
    endpoint: EndpointOption = None,
    from_wide: FromWideOption = None,
    judge: JudgeOption = None,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stages 1-3 in a row (each skipped when already done with the same inputs and settings).

    Example: pluralrm collect all proj prompts.txt --max-prompts 40 --n 4 --judge models/helpful-minilm
    """
    from pluralrm.collect.pipeline import run_responses

    setup_logging(verbose)
    try:
        with timed("collect"):
            # no self-instruct expansion here (config.expand keeps COLLECT's default, 0)
            _prompts(project, sources, featurize, True, GENERATE.model, limit, skip_invalid, config, force)
            settings = (
                [] if from_wide and not model else _settings(model, temperature, None, endpoint, config)
            )
            run_responses(project, settings, from_wide=from_wide or [], force=force)
            _filter(project, judge, None, None, GENERATE.model, config, force)
    except _errors() as error:
        raise fail(str(error)) from None
    for stage in ("prompts", "responses", "filter"):
        _show(project, stage)
