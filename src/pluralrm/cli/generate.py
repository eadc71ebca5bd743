"""The generate verb: N responses per prompt, from a local LM or an OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pluralrm.cli.common import app, console, fail, setup_logging
from pluralrm.cli.options import config_options
from pluralrm.config import GENERATE, GenerateConfig

if TYPE_CHECKING:
    from rich.progress import TaskID

    from pluralrm.generate import GenerationProgress


class _Bar:
    """A Rich bar of prompts done with responses/s and tokens/s, fed by the library's progress callback."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None  # added at the first event, which knows the total

    def __call__(self, event: GenerationProgress) -> None:
        if self.task is None:
            self.task = self.bar.add_task("generate", total=event.total, rate="")
        seconds = max(event.seconds, 1e-9)
        rate = f"{event.responses / seconds:.2f} responses/s, {event.tokens / seconds:,.0f} tok/s"
        self.bar.update(self.task, completed=event.done, rate=rate if event.done else "")


@app.command()
@config_options(GENERATE)
def generate(
    prompts: Annotated[
        str,
        typer.Argument(
            help="Prompts: any pairs/ranked file pluralrm reads, a JSONL/Parquet with 'prompt' (+ 'id'), "
            "or .txt with one prompt per line."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Wide JSONL output (resumed if it exists); manifest OUT.meta.json.")
    ],
    *,
    config: GenerateConfig,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="Base URL of an OpenAI-compatible server (vLLM, TGI, llama.cpp) instead of a local LM."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first K unique prompts.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid prompt records instead of failing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log retries and resume details.")] = False,
) -> None:
    """Sample N responses per prompt into a wide JSONL file (one line per prompt; rerun to resume).

    Example: pluralrm generate ../shared/data/dsp/helpful.test-dev.json.gz --skip-invalid --limit 20
    --n 4 --max-new-tokens 128 --out gen/helpful.jsonl
    (or --endpoint http://localhost:8000 --model meta-llama/Llama-3.1-8B-Instruct for a vLLM server)
    """
    from pluralrm.backbone.loading import BackboneNotFoundError
    from pluralrm.data import DataValidationError
    from pluralrm.generate import generate as run_generation
    from pluralrm.generate.endpoint import EndpointError

    setup_logging(verbose)
    try:
        bar = _Bar() if progress else None
        if bar is not None:
            bar.bar.start()
        try:
            summary = run_generation(
                prompts,
                out,
                config=config,
                endpoint=endpoint,
                limit=limit,
                skip_invalid=skip_invalid,
                progress=bar,
            )
        finally:
            if bar is not None:
                bar.bar.stop()
    except (DataValidationError, ValueError, BackboneNotFoundError, EndpointError) as error:
        raise fail(str(error)) from None
    done = summary.n_skipped + summary.n_generated
    resumed = f" ({summary.n_skipped} were already done)" if summary.n_skipped else ""
    tokens_per_s = summary.tokens / summary.seconds if summary.seconds > 0 else 0.0
    console.print(
        f"[green]wrote[/] {escape(str(summary.out))}: {done}/{summary.n_prompts} prompts{resumed}; "
        f"{summary.n_responses} responses in {summary.seconds:.1f} s = "
        f"{summary.responses_per_s:.2f} responses/s ({summary.seconds_per_1000:.0f} s per 1,000), "
        f"{tokens_per_s:,.0f} tok/s; {summary.n_length} cut at --max-new-tokens",
        soft_wrap=True,
    )
