"""The ``sft`` verb: LoRA-fine-tune a policy on chosen responses (one RAFT round's training step)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import app, console, fail, setup_logging, timed
from pluralrm.cli.options import config_options
from pluralrm.config import FINETUNE, FinetuneConfig


@app.command()
@config_options(FINETUNE)
def sft(
    data: Annotated[
        Path,
        typer.Argument(help="SFT records (JSONL/JSON/Parquet): messages ending in the assistant's answer."),
    ],
    model: Annotated[
        str, typer.Option(help="Policy to fine-tune: 'smollm2', a causal-LM directory or a hub id.")
    ],
    out: Annotated[Path, typer.Option(help="Run directory: adapter/, merged/ and pluralrm_sft.json.")],
    *,
    config: FinetuneConfig,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log loading details.")] = False,
) -> None:
    """LoRA-fine-tune a policy on best-of-N answers; write the adapter and a merged model to sample from.

    A killed run started again with the same arguments resumes from its last checkpoint.

    Example: pluralrm sft best_of_n.jsonl --model smollm2 --out runs/raft1

    Then sample from the fine-tuned policy with --model runs/raft1/merged.
    """
    from pluralrm.backbone.loading import BackboneNotFoundError
    from pluralrm.data import DataValidationError
    from pluralrm.training.policy import NonFiniteLossError, finetune_sft

    setup_logging(verbose)
    # The loss of every step is this verb's progress report, so it shows without --verbose.
    logging.getLogger("pluralrm.training.policy").setLevel(logging.INFO)
    try:
        with timed("sft"):
            result = finetune_sft(data, model=model, out_dir=out, config=config)
    except (DataValidationError, BackboneNotFoundError, NonFiniteLossError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(
        f"[green]trained[/] {result.n_records} records, {result.steps} steps: loss "
        f"{result.first_loss:.4f} → {result.last_loss:.4f}; {result.tokens_per_second:,.0f} tokens/s"
    )
    console.print(
        f"[green]wrote[/] {escape(str(result.merged_dir))} (merged model) and "
        f"{escape(str(result.adapter_dir))} (LoRA adapter)",
        soft_wrap=True,
    )
