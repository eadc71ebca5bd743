"""The ``customize`` verb: fine-tune a reward model's backbone (general RM, then a domain RM)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import SkipInvalidOption, app, config_option, console, fail, setup_logging, timed
from pluralrm.config import CUSTOMIZE, CustomizeConfig

customize_option = partial(config_option, CustomizeConfig)


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
    epochs: Annotated[int, customize_option("epochs")] = CUSTOMIZE.epochs,
    learning_rate: Annotated[float, customize_option("learning_rate")] = CUSTOMIZE.learning_rate,
    batch_size: Annotated[int, customize_option("batch_size")] = CUSTOMIZE.batch_size,
    gradient_accumulation: Annotated[int, customize_option("gradient_accumulation")] = (
        CUSTOMIZE.gradient_accumulation
    ),
    max_length: Annotated[int, customize_option("max_length")] = CUSTOMIZE.max_length,
    imitation: Annotated[float, customize_option("imitation")] = CUSTOMIZE.imitation,
    enrichment: Annotated[float, customize_option("enrichment")] = CUSTOMIZE.enrichment,
    head_init: Annotated[str, customize_option("head_init")] = CUSTOMIZE.head_init,
    lora: Annotated[bool, customize_option("lora")] = CUSTOMIZE.lora,
    lora_r: Annotated[int, customize_option("lora_r")] = CUSTOMIZE.lora_r,
    lora_alpha: Annotated[int, customize_option("lora_alpha")] = CUSTOMIZE.lora_alpha,
    lora_dropout: Annotated[float, customize_option("lora_dropout")] = CUSTOMIZE.lora_dropout,
    validation_fraction: Annotated[float, customize_option("validation_fraction")] = (
        CUSTOMIZE.validation_fraction
    ),
    eval_steps: Annotated[int, customize_option("eval_steps")] = CUSTOMIZE.eval_steps,
    save_steps: Annotated[int, customize_option("save_steps")] = CUSTOMIZE.save_steps,
    gradient_checkpointing: Annotated[bool, customize_option("gradient_checkpointing")] = (
        CUSTOMIZE.gradient_checkpointing
    ),
    group_by_length: Annotated[bool, customize_option("group_by_length")] = CUSTOMIZE.group_by_length,
    seed: Annotated[int, customize_option("seed")] = CUSTOMIZE.seed,
    device: Annotated[str, customize_option("device")] = CUSTOMIZE.device,
    dtype: Annotated[str, customize_option("dtype")] = CUSTOMIZE.dtype,
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
    from pluralrm.customize import customize_reward_model
    from pluralrm.customize.portable import describe
    from pluralrm.customize.progress import RichTrainingProgress
    from pluralrm.data import DataValidationError
    from pluralrm.training_runs import NonFiniteLossError

    setup_logging(verbose)
    config = CustomizeConfig(
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        max_length=max_length,
        imitation=imitation,
        enrichment=enrichment,
        head_init=head_init,
        lora=lora,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        validation_fraction=validation_fraction,
        eval_steps=eval_steps,
        save_steps=save_steps,
        gradient_checkpointing=gradient_checkpointing,
        group_by_length=group_by_length,
        seed=seed,
        device=device,
        dtype=dtype,
    )
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
