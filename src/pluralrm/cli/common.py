"""What every verb shares: the Typer app, the stderr console, the option builder reading pluralrm.config
(verbs use :func:`pluralrm.cli.options.config_options`), logging set-up and one way to fail with a located
message."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from pluralrm.config import help_of

app = typer.Typer(
    name="pluralrm",
    help="Learn the diversity of human preferences as decomposed, personalizable reward models.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def version(value: bool) -> None:
    if value:
        import pluralrm

        print(f"pluralrm {pluralrm.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=version, is_eager=True)
    ] = False,
) -> None:
    """Learn the diversity of human preferences as decomposed, personalizable reward models."""


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Print how long a long verb took, on every run (a log file shows it as well as a terminal)."""
    start = time.perf_counter()
    yield
    console.print(f"[dim]{what} took {time.perf_counter() - start:.1f} s[/]")


def config_option(config: type, name: str, *flags: str) -> typer.models.OptionInfo:
    """A Typer option whose help is field ``name`` of a config dataclass.

    The building block of :func:`pluralrm.cli.options.config_options`, which also takes the default from
    the field; verbs declare their settings through that decorator, not through this.
    """
    return typer.Option(*flags, help=help_of(config, name))


CacheOption = Annotated[
    bool,
    typer.Option(
        help="Use the on-disk feature cache ($PLURALRM_CACHE) so no text is featurized twice "
        "(the library's default is no cache)."
    ),
]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


def fail(message: str) -> typer.Exit:
    # soft_wrap keeps the file/line/field message on one line, so it can be grepped and copied.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


SkipInvalidOption = Annotated[bool, typer.Option(help="Skip and count invalid records.")]
StoreOption = Annotated[
    Path | None, typer.Option(help="Profile store (SQLite); default $PLURALRM_CACHE/profiles.sqlite.")
]


def comma_ints(text: str, option: str) -> tuple[int, ...]:
    """``"1,2,3"`` → ``(1, 2, 3)``; a clear error naming the option otherwise."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise fail(f"{option} {text!r}: expected comma-separated integers") from None


def load_model(model_dir: Path):
    from pluralrm.rewards.reward_model import RewardModel

    try:
        return RewardModel.from_pretrained(model_dir)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None


def feature_cache(enabled: bool):
    """The default on-disk feature cache, or None."""
    if not enabled:
        return None
    from pluralrm.backbone import FeatureCache

    return FeatureCache.default()
