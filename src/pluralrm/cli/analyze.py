"""The verb on rewarded many-responses files: analyze (agreement, best-of-n, length, generators,
RewardBench)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pluralrm.cli.common import (
    CacheOption,
    app,
    console,
    fail,
    feature_cache,
    load_model,
    setup_logging,
    timed,
)
from pluralrm.cli.options import config_options
from pluralrm.config import ANALYZE, FEATURIZE, AnalyzeConfig, FeaturizeConfig
from pluralrm.data import DataValidationError, load_ranked
from pluralrm.evaluate.many.report import JUDGED, OWN, analyze_ranked


def _check_ns(ns: tuple[int, ...] | None) -> None:
    if ns is not None and (not ns or min(ns) < 1):
        raise fail(f"--ns must list sizes of at least 1, got {','.join(map(str, ns))!r}")


def _load(path: str, option: str) -> list[dict]:
    try:
        return load_ranked(path).records
    except DataValidationError as error:
        raise fail(str(error)) from None
    except (FileNotFoundError, ValueError) as error:
        raise fail(f"{option} {path}: {error}") from None


@app.command()
@config_options(ANALYZE, flags={"n_bins": "--bins", "n_resamples": "--resamples"})
@config_options(FEATURIZE, "device", into="featurize")
def analyze(
    wide: Annotated[str, typer.Argument(help="A rewarded file: prompt, response_1..N, reward_1..N.")],
    out: Annotated[Path, typer.Option(help="Directory for the CSVs, PNGs and summary.json.")],
    *,
    against: Annotated[
        str | None,
        typer.Option(
            help="The same prompts and responses under a second reward (agreement, judged best-of-n)."
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="A reward model directory: scores the RewardBench pairs WIDE carries.")
    ] = None,
    config: AnalyzeConfig,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what was skipped and why.")] = False,
) -> None:
    """Analyse a rewarded many-responses file: agreement of two rewards, best-of-n curves, reward vs
    length, per-generator stats, RewardBench accuracy; writes tables (CSV), figures (PNG), summary.json.

    Example: pluralrm analyze ranked.jsonl --against ranked_by_other.jsonl --model models/drm
    --out out/analysis
    """
    setup_logging(verbose)
    _check_ns(config.ns)
    records = _load(wide, "WIDE")
    other = None if against is None else _load(against, "--against")
    score_fn = None
    if model is not None:
        reward_model = load_model(model)

        def score_fn(items):
            # The backbone loads only if the file has RewardBench pairs to score.
            reward_model.featurizer(device=featurize.device, cache=feature_cache(cache))
            return reward_model.rewards(items)

    try:
        with timed("analyze"):
            summary = analyze_ranked(
                records,
                out,
                against=other,
                score_fn=score_fn,
                config=config,
                source=Path(wide).name,
                against_source=Path(against).name if against else "against",
            )
    except (DataValidationError, ValueError) as error:
        raise fail(str(error)) from None
    _print_summary(summary)
    for note in summary["notes"]:
        console.print(f"[dim]note:[/] {escape(note)}", soft_wrap=True)
    console.print(f"[green]wrote[/] {out}: {', '.join(summary['files'])}", soft_wrap=True)


def _print_summary(summary: dict) -> None:
    table = Table("what", "value", "95% CI", "prompts", title=f"{summary['n_prompts']} prompts")
    for row in summary["best_of_n"][OWN]:
        table.add_row(
            f"best-of-{row['n']}: expected reward",
            f"{row['expected']:.3f}",
            f"{row['expected_ci_low']:.3f}–{row['expected_ci_high']:.3f}",
            f"{row['n_prompts']} (gain {row['gain']:+.3f})",
        )
    # Under its own reward the win rate depends on n and N only; valued by the other reward it informs.
    for row in summary["best_of_n"].get(JUDGED, []):
        table.add_row(
            f"best-of-{row['n']}: win rate (--against)",
            f"{row['win_rate']:.3f}",
            f"{row['win_rate_ci_low']:.3f}–{row['win_rate_ci_high']:.3f}",
            str(row["n_prompts"]),
        )
    for row in summary.get("agreement", []):
        table.add_row(
            f"agreement: {row['metric']}",
            f"{row['mean']:.3f}",
            f"{row['ci_low']:.3f}–{row['ci_high']:.3f}",
            f"{row['n_prompts']} (+{row['n_undefined']} undefined)",
        )
    for row in summary["length"]:
        table.add_row(
            f"within-prompt ρ(reward, {row['unit']})",
            f"{row['within_mean']:.3f}",
            f"{row['within_ci_low']:.3f}–{row['within_ci_high']:.3f}",
            f"{row['within_n_prompts']} (pooled ρ {row['pooled_spearman']:.3f})",
        )
    for row in summary.get("rewardbench", []):
        table.add_row(
            f"RewardBench {row['section']}",
            f"{row['accuracy']:.3f}",
            f"{row['ci_low']:.3f}–{row['ci_high']:.3f}",
            f"{row['n']} pairs",
        )
    Console().print(table)
