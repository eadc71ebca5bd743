"""Verbs on many responses per prompt: ``rank`` fills rewards, ``select`` exports TRL datasets from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pluralrm.cli.common import (
    CacheOption,
    SkipInvalidOption,
    StoreOption,
    app,
    console,
    fail,
    feature_cache,
    load_model,
    timed,
)
from pluralrm.cli.core import reported
from pluralrm.cli.options import config_options
from pluralrm.cli.scale import engine_from, engine_options
from pluralrm.config import FEATURIZE, SELECT, EngineConfig, FeaturizeConfig, SelectConfig
from pluralrm.data import DataValidationError, load_ranked


def _load_wide(path: str, skip_invalid: bool) -> list[dict]:
    try:
        result = load_ranked(path, skip_invalid=skip_invalid)
    except (DataValidationError, FileNotFoundError) as error:
        raise fail(str(error)) from None
    console.print(f"[green]data[/] {escape(result.report.summary())}", soft_wrap=True)
    return result.records


def _featurize_with_progress(
    records: list[dict], model, chunk_prompts: int, engine, device: str, cache: bool
):
    """One feature matrix per record, computed by ``engine`` (the backbone loads only where it runs)."""
    total = sum(len(r["responses"]) for r in records)
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with reported(), Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("responses", total=total)
        features, where = engine.featurize_ranked(
            records,
            model,
            device=device,
            cache=feature_cache(cache),
            chunk_prompts=chunk_prompts,
            progress=lambda n: bar.advance(task, n),
        )
    console.print(f"featurized on {where}")
    return features


@app.command()
@config_options(SELECT, "chunk_prompts")
@config_options(FEATURIZE, "device", into="featurize")
@engine_options()
def rank(
    wide: Annotated[str, typer.Argument(help="Many responses per prompt: a wide file (response_1..N).")],
    out: Annotated[Path, typer.Option(help="Where to write the rewarded wide JSONL.")],
    *,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model", help="Reward model directory; omit to keep (and check) the file's rewards."),
    ] = None,
    head: Annotated[str | None, typer.Option(help="Score with one head: 'general' or 'pcJ'.")] = None,
    user: Annotated[str | None, typer.Option(help="Score with this user's profile.")] = None,
    store: StoreOption = None,
    config: SelectConfig,
    skip_invalid: SkipInvalidOption = False,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
    engine_config: EngineConfig,
) -> None:
    """Fill reward_1..N of every prompt's responses with a pluralrm reward (general head, a head, a user).

    Example: pluralrm rank generated.jsonl --model models/drm --user alice --out rewarded.jsonl
    """
    from pluralrm.adapt import ProfileNotFoundError, ProfileStore
    from pluralrm.atomic import write_jsonl
    from pluralrm.data.wide import wide_from_ranked
    from pluralrm.select import describe_reward, rewards_from_features, with_rewards

    records = _load_wide(wide, skip_invalid)
    if model_dir is None:
        if head or user:
            raise fail("--head and --user need --model (the reward model whose heads they name)")
        unrewarded = [r.get("id") for r in records if "rewards" not in r]
        if unrewarded:
            raise fail(f"record {unrewarded[0]!r} has no rewards; pass --model to score the responses")
        rewarded = records
    else:
        runner = engine_from(engine_config)
        model = load_model(model_dir)
        try:
            profile = None if user is None else ProfileStore(store).get(user)
            model.reward_vector(user=profile, head=head)  # fail on a bad head/user before featurizing
        except (KeyError, ValueError, ProfileNotFoundError) as error:
            raise fail(str(error).strip("'\"")) from None
        with timed("rank"):
            features = _featurize_with_progress(
                records, model, config.chunk_prompts, runner, featurize.device, cache
            )
            rewards = rewards_from_features(features, model, user=profile, head=head)
        rewarded = with_rewards(records, rewards, describe_reward(str(model_dir), user=user, head=head))
    n = write_jsonl(out, (wide_from_ranked(r) for r in rewarded))
    responses = sum(len(r["responses"]) for r in rewarded)
    console.print(f"[green]wrote[/] {out} ({n} prompts, {responses} rewarded responses)")


@app.command("select")
@config_options(SELECT, "method", "k", "alpha", "seed", "chunk_prompts")
@config_options(FEATURIZE, "device", into="featurize")
def select_(
    wide: Annotated[
        str, typer.Argument(help="A rewarded wide file (from `pluralrm rank`, or with rewards).")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the TRL dataset (JSONL).")],
    *,
    config: SelectConfig,
    model_dir: Annotated[
        Path | None, typer.Option("--model", help="per-user: the reward model the profiles were fitted on.")
    ] = None,
    users: Annotated[
        str | None, typer.Option(help="per-user: comma-separated profile names (default: every profile).")
    ] = None,
    store: StoreOption = None,
    skip_invalid: SkipInvalidOption = False,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
) -> None:
    """Export best-of-N / RAFT SFT data or best-vs-worst / best-vs-random DPO pairs in TRL's format.

    Example: pluralrm select rewarded.jsonl --method best-vs-worst --out dpo_pairs.jsonl
    """
    from pluralrm.atomic import write_jsonl
    from pluralrm.select import EXPORTS, SelectionError, exports

    method = config.method
    if method not in EXPORTS:
        raise fail(f"unknown method {method!r}; expected one of {', '.join(EXPORTS)}")
    records = _load_wide(wide, skip_invalid)
    try:
        if method == "per-user":
            selection = exports.per_user_best_of_n(
                records,
                _rewards_by_user(
                    records, model_dir, users, store, config.chunk_prompts, featurize.device, cache
                ),
            )
        else:
            selection = {
                "best-of-n": lambda: exports.best_of_n(records),
                "top-k": lambda: exports.top_k_per_prompt(records, k=config.k),
                "top-fraction": lambda: exports.top_fraction(records, alpha=config.alpha),
                "best-vs-worst": lambda: exports.best_vs_worst(records),
                "best-vs-random": lambda: exports.best_vs_random(records, seed=config.seed),
            }[method]()
    except (SelectionError, ValueError) as error:
        raise fail(str(error)) from None
    write_jsonl(out, selection.rows)
    console.print(f"[green]wrote[/] {out} ({method}: {selection.summary()})")


def _rewards_by_user(records, model_dir, users, store, chunk_prompts, device, cache) -> dict:
    from pluralrm.adapt import ProfileNotFoundError, ProfileStore
    from pluralrm.select import rewards_from_features

    if model_dir is None:
        raise fail("per-user needs --model: the reward model the profiles were fitted on")
    profile_store = ProfileStore(store)
    try:
        names = users.split(",") if users else [p.user for p in profile_store.list()]
        profiles = [profile_store.get(name.strip()) for name in names]
    except ProfileNotFoundError as error:
        raise fail(str(error).strip("'\"")) from None
    if not profiles:
        raise fail("no stored profiles; create some with `pluralrm adapt`")
    from pluralrm.scale import LocalEngine

    model = load_model(model_dir)
    features = _featurize_with_progress(records, model, chunk_prompts, LocalEngine(), device, cache)
    try:
        return {p.user: rewards_from_features(features, model, user=p) for p in profiles}
    except ValueError as error:
        raise fail(str(error)) from None
