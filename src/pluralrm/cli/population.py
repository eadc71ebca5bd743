"""``pluralrm population``: many simulated users on real responses, written as the product's pairs files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pluralrm.cli.common import SkipInvalidOption, app, console, fail
from pluralrm.cli.core import print_data
from pluralrm.cli.options import config_options
from pluralrm.config import POPULATION, PopulationConfig
from pluralrm.data import DataValidationError, load_ranked


@app.command()
@config_options(POPULATION)
def population(
    source: Annotated[
        str,
        typer.Argument(
            help="Ranked responses whose 'models' name each response's signal: the DSP domain set "
            "(domain_specific_preference.*.json.gz, five styles per query) or any ranked file with 'models'."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Directory for seen.jsonl, unseen-adapt.jsonl and unseen-test.jsonl.")
    ],
    *,
    config: PopulationConfig,
    skip_invalid: SkipInvalidOption = False,
) -> None:
    """Simulate a population of users who share taste: each a Dirichlet weight over the responses' signals.

    A user's utility of a response is the weight of its signal (for DSP, its style); each label is one
    Bradley-Terry draw with --temperature, so the Bayes-optimal accuracy is known and written to
    population.json. Seen users label pool prompts; unseen users' adaptation and test pairs lie on prompts
    the pool never saw. No backbone is touched.

    Example: pluralrm population ../shared/data/dsp/domain_specific_preference.test-dev.json.gz
    --skip-invalid --alpha 0.1 --out out/pop; then pluralrm decompose out/pop/seen.jsonl
    and pluralrm kshot --pool .../seen.jsonl --adapt .../unseen-adapt.jsonl --test .../unseen-test.jsonl
    """
    from pluralrm.data.population import make_population, queries_from_ranked

    try:
        loaded = load_ranked(source, skip_invalid=skip_invalid)
        print_data(loaded.report.summary())
        made = make_population(queries_from_ranked(loaded.records, source), config, source=source)
    except (DataValidationError, FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    paths = made.save(out)
    ceiling = made.bayes_ceiling()
    table = Table("part", "users", "pairs", "prompts", title=f"population (alpha {config.alpha})")
    users = {"seen": len(made.seen_users), "unseen-adapt": len(made.unseen_users)}
    users["unseen-test"] = users["unseen-adapt"]
    for part, records in made.pairs.items():
        table.add_row(part, str(users[part]), str(len(records)), str(made.n_prompts[part]))
    console.print(table)
    console.print(
        f"signals: {', '.join(made.signals)}; Bayes ceiling on unseen users' test pairs "
        f"{sum(ceiling.values()) / len(ceiling):.3f} (temperature {config.temperature})"
    )
    console.print(f"[green]wrote[/] {', '.join(str(p) for p in paths.values())}")
