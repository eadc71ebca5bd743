"""The verb that turns what pluralrm made into one HTML page: report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import CacheOption, app, console, feature_cache, setup_logging, timed
from pluralrm.cli.core import reported
from pluralrm.cli.options import config_options
from pluralrm.config import FEATURIZE, REPORT, FeaturizeConfig, ReportConfig


@app.command()
@config_options(REPORT)
@config_options(FEATURIZE, "device", into="featurize")
def report(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Reward model directories, kshot or analyze folders, customized models, labelling stores or "
            "collection projects; one section each."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The HTML file to write (one self-contained page).")],
    *,
    data: Annotated[
        str | None,
        typer.Option(
            help="Pairs the reward models are read on: data, accuracy, what each head means, users."
        ),
    ] = None,
    title: Annotated[str, typer.Option(help="The page's title.")] = "pluralrm report",
    config: ReportConfig,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what each path was read as.")] = False,
) -> None:
    """One self-contained HTML page (figures inline, no script, nothing fetched) for whatever PATHS are:
    each reward model's heads named automatically from the pairs of --data, k-shot curves, customization
    stages, best-of-n analyses, labellers' agreement.

    Example: pluralrm report models/hh-drm out/kshot out/analysis
    --data ../shared/data/dsp/helpful.test-dev.json.gz --out report.html
    """
    setup_logging(verbose)
    from pluralrm.report import build_sections, write_report
    from pluralrm.report.sections import Heads

    with reported(), timed("report"):
        sections = build_sections(
            paths, data=data, config=config, featurize=featurize, cache=feature_cache(cache)
        )
        write_report(sections, out, title=title)
    for section in sections:
        console.print(
            f"[green]{section.kind}[/] {escape(section.title)}: {len(section.blocks)} blocks", soft_wrap=True
        )
        for block in section.blocks:
            if isinstance(block, Heads):
                for card in block.cards:
                    console.print(f"  {card.head}: {escape(card.name)}", soft_wrap=True)
    console.print(f"[green]wrote[/] {out}")
