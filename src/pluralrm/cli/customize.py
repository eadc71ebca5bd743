"""The ``customize`` verb: fine-tune a reward model's backbone (general RM, then a domain RM)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import SkipInvalidOption, app, console, fail, setup_logging, timed
from pluralrm.cli.options import config_options
from pluralrm.config import CUSTOMIZE, CustomizeConfig


def _pairs(path: str, format: str, skip_invalid: bool, subset: str | None) -> tuple[list[dict], str]:
    from pluralrm.data import load_pairs

    result = load_pairs(path, format=format, skip_invalid=skip_invalid)
    records = result.records
    if subset is not None:
        records = [r for r in records if r.get("subset") == subset]
        if not records:
            found = sorted({str(r.get("subset")) for r in result.records})
            raise ValueError(f"{path}: no pairs with subset {subset!r}; its subsets are {found}")
    return records, result.report.summary()


@app.command()
@config_options(CUSTOMIZE)
def customize(
    data: Annotated[str, typer.Argument(help="Training pairs (.json/.jsonl/.parquet, .gz ok) or a hub id.")],
    base: Annotated[
        str,
        typer.Option(
            help="Start from: a base LM ('minilm', 'smollm2', a directory, a hub id) for a general RM, or "
            "the output of an earlier customize run for a domain RM."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Reward model directory to write (replaced whole when done).")],
    *,
    subset: Annotated[
        str | None, typer.Option(help="Train only on pairs of this subset (a DSP domain user: 'academy').")
    ] = None,
    general: Annotated[
        list[str] | None,
        typer.Option(help="General pairs to mix in for --enrichment (repeat for several files)."),
    ] = None,
    stage: Annotated[str, typer.Option(help="Label recorded in the model's metadata.")] = "",
    format: Annotated[str, typer.Option(help="Input format, or 'auto' to detect.")] = "auto",
    skip_invalid: SkipInvalidOption = False,
    config: CustomizeConfig,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar with loss and validation accuracy.")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Fine-tune a Bradley–Terry reward model; save a standard transformers reward-model directory.

    Stage 2 (general RM) starts from a base LM; stage 3 (domain RM) from a stage-2 output, on one domain's
    pairs, optionally with --enrichment (general pairs mixed in) and --imitation (an LM loss on the chosen
    response; causal LMs). A killed run started again with the same arguments resumes from its last
    checkpoint. The output loads with AutoModelForSequenceClassification and in every pluralrm verb
    (score, evaluate, rank, serve; featurize --backbone reads its hidden states).

    Example: pluralrm customize helpful.json.gz --base minilm --out rm/general

    Then:    pluralrm customize domain.json.gz --subset academy --base rm/general --out rm/academy
             --enrichment 1 --general helpful.json.gz
    """
    from pluralrm.backbone.loading import BackboneNotFoundError
    from pluralrm.data import DataValidationError
    from pluralrm.training.customize import customize_reward_model
    from pluralrm.training.customize.portable import describe
    from pluralrm.training.progress import RichTrainingProgress
    from pluralrm.training.runs import NonFiniteLossError

    setup_logging(verbose)
    bar = RichTrainingProgress(console, description=stage or "customize") if progress else None
    try:
        pairs, summary = _pairs(data, format, skip_invalid, subset)
        console.print(f"[dim]{escape(data)}: {escape(summary)}[/]", soft_wrap=True)
        general_pairs: list[dict] = []
        for path in general or []:
            general_pairs += _pairs(path, "auto", skip_invalid, None)[0]
        with timed("customize"):
            result = customize_reward_model(
                pairs,
                base=base,
                out_dir=out,
                config=config,
                general=general_pairs,
                stage=stage,
                data_name=data,
                callbacks=[bar] if bar else [],
            )
    except (DataValidationError, BackboneNotFoundError, NonFiniteLossError, ValueError) as error:
        raise fail(str(error)) from None
    finally:
        if bar is not None:
            bar.stop()
    accuracy = "–" if result.validation_accuracy is None else f"{result.validation_accuracy:.3f}"
    console.print(
        f"[green]trained[/] {result.n_train} pairs, {result.steps} steps: loss {result.losses[0]:.4f} → "
        f"{result.losses[-1]:.4f}; validation accuracy {accuracy} on {result.n_validation} pairs; "
        f"{result.tokens_per_second:,.0f} tokens/s"
    )
    console.print(f"[green]wrote[/] {escape(str(result.out_dir))}", soft_wrap=True)
    loads = result.metadata.get("export", {}).get("loads")
    if loads:
        console.print(f"[dim]{escape(describe(loads))}[/]", soft_wrap=True)
