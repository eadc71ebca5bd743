"""The ``sft`` verb: LoRA-fine-tune a policy on chosen responses (one RAFT round's training step)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import app, config_option, console, fail, setup_logging, timed
from pluralrm.config import FINETUNE, FinetuneConfig

finetune_option = partial(config_option, FinetuneConfig)


@app.command()
def sft(
    data: Annotated[
        Path,
        typer.Argument(help="SFT records (JSONL/JSON/Parquet): messages ending in the assistant's answer."),
    ],
    model: Annotated[
        str, typer.Option(help="Policy to fine-tune: 'smollm2', a causal-LM directory or a hub id.")
    ],
    out: Annotated[Path, typer.Option(help="Run directory: adapter/, merged/ and pluralrm_sft.json.")],
    epochs: Annotated[int, finetune_option("epochs")] = FINETUNE.epochs,
    learning_rate: Annotated[float, finetune_option("learning_rate")] = FINETUNE.learning_rate,
    batch_size: Annotated[int, finetune_option("batch_size")] = FINETUNE.batch_size,
    gradient_accumulation: Annotated[int, finetune_option("gradient_accumulation")] = (
        FINETUNE.gradient_accumulation
    ),
    max_length: Annotated[int, finetune_option("max_length")] = FINETUNE.max_length,
    lora_r: Annotated[int, finetune_option("lora_r")] = FINETUNE.lora_r,
    lora_alpha: Annotated[int, finetune_option("lora_alpha")] = FINETUNE.lora_alpha,
    lora_dropout: Annotated[float, finetune_option("lora_dropout")] = FINETUNE.lora_dropout,
    seed: Annotated[int, finetune_option("seed")] = FINETUNE.seed,
    device: Annotated[str, finetune_option("device")] = FINETUNE.device,
    save_steps: Annotated[int, finetune_option("save_steps")] = FINETUNE.save_steps,
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
    config = FinetuneConfig(
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        max_length=max_length,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        seed=seed,
        device=device,
        save_steps=save_steps,
    )
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
