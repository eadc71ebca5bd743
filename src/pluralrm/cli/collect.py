"""``pluralrm collect``: the collection pipeline's stages (prompts, responses, filter, or all three)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pluralrm.cli.common import (
    BackboneOption,
    DeviceOption,
    app,
    config_option,
    console,
    fail,
    load_model,
    setup_logging,
    timed,
)
from pluralrm.config import COLLECT, FEATURIZE, GENERATE, CollectConfig, replace

collect_app = typer.Typer(
    help="Collect preference data: prompts → responses → filtering, each stage a dataset with provenance.",
    no_args_is_help=True,
)
app.add_typer(collect_app, name="collect")
collect_option = partial(config_option, CollectConfig)

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
SeedOption = Annotated[int, collect_option("seed")]


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
    project,
    sources,
    backbone,
    device,
    embed,
    expand,
    expand_model,
    limit,
    skip_invalid,
    config,
    force,
    rewarded=None,
):
    from pluralrm.collect.pipeline import run_prompts

    featurizer = generator = None
    if embed:
        from pluralrm.backbone.build import build_featurizer

        featurizer = build_featurizer(replace(FEATURIZE, backbone=backbone, device=device))
    if expand:
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
def prompts(
    project: ProjectArgument,
    sources: SourcesArgument,
    backbone: BackboneOption = FEATURIZE.backbone,
    device: DeviceOption = FEATURIZE.device,
    embed: Annotated[
        bool, typer.Option(help="Embed prompts to drop near-duplicates and cover clusters.")
    ] = True,
    dedup_threshold: Annotated[float, collect_option("dedup_threshold")] = COLLECT.dedup_threshold,
    max_prompts: Annotated[int | None, collect_option("max_prompts")] = COLLECT.max_prompts,
    n_clusters: Annotated[int, collect_option("n_clusters")] = COLLECT.n_clusters,
    expand: Annotated[int, collect_option("expand")] = COLLECT.expand,
    expand_model: Annotated[str, typer.Option(help="The local LM that writes new prompts.")] = GENERATE.model,
    rewarded: Annotated[
        Path | None,
        typer.Option(help="The current reward's scores of sampled responses (`pluralrm rank` output)."),
    ] = None,
    keep_by_reward: Annotated[int | None, collect_option("keep_by_reward")] = COLLECT.keep_by_reward,
    reward_rule: Annotated[str, collect_option("reward_rule")] = COLLECT.reward_rule,
    limit: Annotated[int | None, typer.Option(help="At most this many prompts from each source.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid prompt records instead of failing.")
    ] = False,
    seed: SeedOption = COLLECT.seed,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 1: read, expand, de-duplicate and select prompts into PROJECT/prompts.jsonl.

    Example: pluralrm collect prompts proj ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --limit 200
    --max-prompts 50
    """
    setup_logging(verbose)
    config = replace(
        COLLECT,
        dedup_threshold=dedup_threshold,
        max_prompts=max_prompts,
        n_clusters=n_clusters,
        expand=expand,
        keep_by_reward=keep_by_reward,
        reward_rule=reward_rule,
        seed=seed,
    )
    try:
        with timed("prompts"):
            _prompts(
                project,
                sources,
                backbone,
                device,
                embed,
                expand,
                expand_model,
                limit,
                skip_invalid,
                config,
                force,
                rewarded,
            )
    except _errors() as error:
        raise fail(str(error)) from None
    _show(project, "prompts")


def _settings(models, temperatures, system_prompts, endpoint, n, max_new_tokens, seed):
    from pluralrm.collect.responses_stage import settings_grid

    return settings_grid(
        models or [GENERATE.model],
        temperatures=temperatures or COLLECT.temperatures,
        system_prompts=system_prompts or [None],
        endpoint=endpoint,
        n=n,
        max_new_tokens=max_new_tokens,
        seed=seed,
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
def responses(
    project: ProjectArgument,
    model: ModelsOption = None,
    temperature: TemperatureOption = None,
    system_prompt: SystemOption = None,
    endpoint: EndpointOption = None,
    n: Annotated[int, collect_option("n")] = COLLECT.n,
    max_new_tokens: Annotated[int, collect_option("max_new_tokens")] = COLLECT.max_new_tokens,
    from_wide: FromWideOption = None,
    seed: SeedOption = COLLECT.seed,
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
                else _settings(model, temperature, system_prompt, endpoint, n, max_new_tokens, seed)
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
def filter_(
    project: ProjectArgument,
    judge: JudgeOption = None,
    head: Annotated[str | None, typer.Option(help="The judge's head ('general' or 'pcJ').")] = None,
    lm_judge_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server of an LM that must agree with the reward.")
    ] = None,
    lm_judge_model: Annotated[str, typer.Option(help="The LM judge's served model name.")] = GENERATE.model,
    min_chars: Annotated[int, collect_option("min_chars")] = COLLECT.min_chars,
    ngram: Annotated[int, collect_option("ngram")] = COLLECT.ngram,
    max_repeated: Annotated[float, collect_option("max_repeated")] = COLLECT.max_repeated,
    min_stopwords: Annotated[float, collect_option("min_stopwords")] = COLLECT.min_stopwords,
    skip_rule: Annotated[
        list[str] | None,
        typer.Option("--skip-rule", help="A response rule not to apply (e.g. refusal); repeatable."),
    ] = None,
    near_identical: Annotated[float, collect_option("near_identical")] = COLLECT.near_identical,
    pairs_per_prompt: Annotated[int, collect_option("pairs_per_prompt")] = COLLECT.pairs_per_prompt,
    ai_fraction: Annotated[float, collect_option("ai_fraction")] = COLLECT.ai_fraction,
    ai_margin: Annotated[float | None, collect_option("ai_margin")] = COLLECT.ai_margin,
    label_budget: Annotated[int | None, collect_option("label_budget")] = COLLECT.label_budget,
    seed: SeedOption = COLLECT.seed,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 3: drop degenerate responses and near-identical pairs; the AI judge labels the clear pairs,
    the rest go to people (PROJECT/pairs-to-label.jsonl; AI labels in ai-labelled.jsonl).

    Example: pluralrm collect filter proj --judge models/helpful-minilm --ai-fraction 0.5 --label-budget 200
    """
    setup_logging(verbose)
    config = replace(
        COLLECT,
        min_chars=min_chars,
        ngram=ngram,
        max_repeated=max_repeated,
        min_stopwords=min_stopwords,
        near_identical=near_identical,
        skip_rules=tuple(skip_rule or COLLECT.skip_rules),
        pairs_per_prompt=pairs_per_prompt,
        ai_fraction=ai_fraction,
        ai_margin=ai_margin,
        label_budget=label_budget,
        seed=seed,
    )
    try:
        with timed("filter"):
            _filter(project, judge, head, lm_judge_url, lm_judge_model, config, force)
    except _errors() as error:
        raise fail(str(error)) from None
    _show(project, "filter")


@collect_app.command("all")
def all_stages(
    project: ProjectArgument,
    sources: SourcesArgument,
    backbone: BackboneOption = FEATURIZE.backbone,
    device: DeviceOption = FEATURIZE.device,
    max_prompts: Annotated[int | None, collect_option("max_prompts")] = COLLECT.max_prompts,
    limit: Annotated[int | None, typer.Option(help="At most this many prompts from each source.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid prompt records instead of failing.")
    ] = False,
    model: ModelsOption = None,
    temperature: TemperatureOption = None,
    endpoint: EndpointOption = None,
    n: Annotated[int, collect_option("n")] = COLLECT.n,
    max_new_tokens: Annotated[int, collect_option("max_new_tokens")] = COLLECT.max_new_tokens,
    from_wide: FromWideOption = None,
    judge: JudgeOption = None,
    ai_fraction: Annotated[float, collect_option("ai_fraction")] = COLLECT.ai_fraction,
    label_budget: Annotated[int | None, collect_option("label_budget")] = COLLECT.label_budget,
    seed: SeedOption = COLLECT.seed,
    force: ForceOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stages 1-3 in a row (each skipped when already done with the same inputs and settings).

    Example: pluralrm collect all proj prompts.txt --max-prompts 40 --n 4 --judge models/helpful-minilm
    """
    from pluralrm.collect.pipeline import run_responses

    setup_logging(verbose)
    config = replace(
        COLLECT,
        max_prompts=max_prompts,
        n=n,
        max_new_tokens=max_new_tokens,
        ai_fraction=ai_fraction,
        label_budget=label_budget,
        seed=seed,
    )
    try:
        with timed("collect"):
            _prompts(
                project,
                sources,
                backbone,
                device,
                True,
                0,
                GENERATE.model,
                limit,
                skip_invalid,
                config,
                force,
            )
            settings = (
                []
                if from_wide and not model
                else _settings(model, temperature, None, endpoint, n, max_new_tokens, seed)
            )
            run_responses(project, settings, from_wide=from_wide or [], force=force)
            _filter(project, judge, None, None, GENERATE.model, config, force)
    except _errors() as error:
        raise fail(str(error)) from None
    for stage in ("prompts", "responses", "filter"):
        _show(project, stage)
