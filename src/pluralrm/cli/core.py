"""The verbs on preference pairs and frozen-feature reward models: inspect, featurize, decompose,
evaluate, demo, backbones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pluralrm.cli.common import (
    CacheOption,
    SkipInvalidOption,
    app,
    comma_ints,
    console,
    fail,
    feature_cache,
    load_model,
    setup_logging,
    timed,
)
from pluralrm.cli.options import config_options
from pluralrm.cli.scale import engine_from, engine_options
from pluralrm.config import (
    DECOMPOSE,
    DEMO_DECOMPOSE,
    FEATURIZE,
    DecomposeConfig,
    EngineConfig,
    FeaturizeConfig,
)
from pluralrm.data import DataValidationError, load_ranked
from pluralrm.data.features import PairFeatures
from pluralrm.data.loaders import PAIR_FORMATS, RANKED_FORMATS
from pluralrm.pool import load_pair_records


@contextmanager
def reported() -> Iterator[None]:
    """The library's located errors (bad record, missing file or backbone, bad value) as one CLI failure."""
    try:
        yield
    except (FileNotFoundError, ValueError) as error:  # DataValidationError, BackboneNotFoundError included
        raise fail(str(error)) from None


def print_data(summary: str) -> None:
    """What a loaded file held (records read, invalid skipped): the library's ``on_data``."""
    console.print(f"[green]data[/] {escape(summary)}", soft_wrap=True)


def model_features(
    source: str, model, *, device: str, cache: bool, skip_invalid: bool, engine=None
) -> PairFeatures:
    """The pairs of ``source`` as ``model``'s features (:func:`pluralrm.pool.features_for`), what was read
    printed and a library error shown as one CLI failure: what the verbs that score a model read."""
    from pluralrm.pool import features_for

    with reported():
        return features_for(
            source,
            model,
            device=device,
            cache=feature_cache(cache),
            engine=engine,
            skip_invalid=skip_invalid,
            on_data=print_data,
        )


@app.command()
def inspect(
    data: Annotated[
        str, typer.Argument(help="Data file (.json/.jsonl/.parquet, .gz ok), hub id, or 'synthetic'.")
    ],
    format: Annotated[str, typer.Option(help="Input format, or 'auto' to detect.")] = "auto",
    ranked: Annotated[bool, typer.Option(help="Load as ranked responses instead of pairs.")] = False,
    skip_invalid: SkipInvalidOption = False,
) -> None:
    """Load and validate a data file; print record counts and the first problems.

    Example: pluralrm inspect ../shared/data/dsp/webgpt.test-dev.json.gz
    """
    # 'wide' and 'ranked' name ranked-response formats only: asking for one is asking for --ranked.
    ranked = ranked or (format in RANKED_FORMATS and format not in PAIR_FORMATS)
    try:
        if ranked:
            result = load_ranked(data, format=format, skip_invalid=skip_invalid)
            records, summary, skipped = result.records, result.report.summary(), result.report.skipped
        else:
            records, summary = load_pair_records(data, format, skip_invalid)
            skipped = []
    except (DataValidationError, ValueError) as error:  # ValueError: an unknown --format
        raise fail(str(error)) from None
    console.print(escape(summary), soft_wrap=True)
    for problem in skipped[:5]:
        console.print(f"  [yellow]skipped[/] {escape(str(problem))}", soft_wrap=True)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.get("subset") or "-"] = counts.get(record.get("subset") or "-", 0) + 1
    table = Table("subset", "records")
    for subset, n in sorted(counts.items()):
        table.add_row(subset, str(n))
    Console().print(table)


@app.command()
@config_options(
    FEATURIZE,
    *("backbone", "pooling", "layer", "max_length", "batch_size", "max_batch_tokens", "device", "dtype"),
)
@engine_options()
def featurize(
    data: Annotated[
        str, typer.Argument(help="Pairs file (.json/.jsonl/.parquet, .gz ok), hub id, or 'synthetic'.")
    ],
    out: Annotated[Path, typer.Option(help="Output directory for features.safetensors + features.json.")],
    *,
    config: FeaturizeConfig,
    format: Annotated[str, typer.Option(help="Input format: auto, trl, hh, dsp, dsp-domain.")] = "auto",
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip and count invalid records instead of failing.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs.")] = None,
    cache: CacheOption = True,
    engine_config: EngineConfig,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Featurize preference pairs with a backbone and save H_chosen / H_rejected.

    Example: pluralrm featurize ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --skip-invalid
    --backbone minilm --out out/hh-minilm   (on a Ray cluster: --engine ray --address auto --num-workers 8
    --gpus-per-worker 1)
    """
    setup_logging(verbose)
    try:
        records, summary = load_pair_records(data, format, skip_invalid)
    except DataValidationError as error:
        raise fail(str(error)) from None
    records = records[:limit] if limit else records
    console.print(f"[green]data[/] {escape(summary)}; featurizing {len(records)} pairs", soft_wrap=True)
    runner = engine_from(engine_config)
    with reported(), timed("featurize"):
        features, where = runner.featurize_pairs(
            records, featurize=config, cache=feature_cache(cache), source=data, show_progress=True
        )
    features.save(out)
    namespace = features.namespace
    console.print(
        f"[green]wrote[/] {out} ({len(features)} pairs × {features.chosen.shape[1]} features, "
        f"backbone {namespace['backbone'][:32]}…, pooling {namespace['spec']['pooling']}, "
        f"layer {namespace['spec']['layer']}, {namespace['dtype']} on {where})"
    )


@app.command()
@config_options(
    DECOMPOSE,
    *("n_components", "heads", "center", "val_fraction", "seed", "choice_k", "choice_users"),
    flags={"n_components": "--components"},
)
@config_options(FEATURIZE, "backbone", "device", "dtype", into="featurize")
@engine_options("engine", "address", "num_workers")
def decompose(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="`pluralrm featurize` output directories or pairs data; several are pooled. NAME=PATH "
            "labels every pair of PATH as user NAME (for --layers/--adapters)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Model directory to write (config.json + heads.safetensors).")],
    *,
    config: DecomposeConfig,
    featurize: FeaturizeConfig,
    skip_invalid: SkipInvalidOption = False,
    cache: CacheOption = True,
    engine_config: EngineConfig,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated candidate layers (pairs files; users from the records' 'user' field or "
            "NAME=PATH): the heads are fitted in the layer where those users are learned best from "
            "--choice-k pairs each; adapt and score then read that layer. Default: the final layer."
        ),
    ] = None,
    adapters: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated adapters (e.g. map,bt): the one that learns the data's labelled users best "
            "from --choice-k pairs, each user left out of the heads in turn, becomes the model's choice for "
            "adapt --method auto."
        ),
    ] = None,
) -> None:
    """Fit a general Bradley–Terry head and reward heads on pair differences.

    The heads are the PCA of the pooled differences (--heads pca), or, for a pool of many labelled
    users (a 'user' field per pair, or NAME=PATH inputs), the directions the users' own heads share
    (--heads users), or whichever of the two learns the pool's own users best (--heads auto).

    Inputs that are raw pairs are featurized with --backbone/--device/--dtype; featurized inputs carry
    their own backbone and must all have been made the same way. With --layers the layer is chosen from
    the data's own labelled users (docs/reports/personalization.md: on the DSP domain users MiniLM's layers
    2-3 learn a new user from 15 pairs 9 points better than its final layer).

    Example: pluralrm decompose out/helpful-minilm out/harmless-minilm --components 32 --out models/hh-drm
    """
    from pluralrm.pool import decompose as decompose_pool

    runner = engine_from(engine_config)
    with reported(), timed("decompose"):
        result = decompose_pool(
            inputs,
            config,
            featurize=featurize,
            engine=runner,
            layers=comma_ints(layers, "--layers") if layers else (),
            adapters=tuple(m.strip() for m in adapters.split(",")) if adapters else (),
            cache=feature_cache(cache),
            skip_invalid=skip_invalid,
            on_data=print_data,
        )
        result.model.save_pretrained(out)
    if result.layer_choice is not None:
        choice = result.layer_choice
        _print_choice(choice, "candidate", f"users learned from {config.choice_k} pairs each")
        console.print(f"[green]chose[/] {choice.name} ({len(choice.users)} users: {', '.join(choice.users)})")
    if result.heads_choice is not None:
        _print_choice(result.heads_choice, "heads", f"users as new users (map), {config.choice_k} pairs each")
        console.print(f"[green]heads[/] {result.heads_choice.name}")
    if result.adapter_choice is not None:
        _print_choice(result.adapter_choice, "adapter", f"users as new users, {config.choice_k} pairs each")
        name = result.adapter_choice.name
        console.print(f"[green]adapter[/] {name}: what adapt --method auto will use with this model")
    _print_fit(out, result.model, result.n_train, result.n_val)


def _print_choice(choice, column: str, title: str) -> None:
    """Each candidate's score on the data's users, the chosen one in bold."""
    table = Table(column, "users' accuracy", title=title)
    for name, score in choice.scores.items():
        table.add_row(f"[bold]{name}[/]" if name == choice.name else name, f"{score:.3f}")
    console.print(table)


def _print_fit(out: Path, model, n_train: int, n_val: int) -> None:
    ratio = model.decomposed.explained_variance_ratio_
    kind = model.metadata.get("heads", "pca")
    console.print(
        f"[green]wrote[/] {out}: general head (alpha {model.general.alpha:g}) + {len(ratio)} {kind} heads "
        f"from {n_train} pairs ({n_val} held out); top-5 explained variance "
        f"{', '.join(f'{r:.3f}' for r in ratio[:5])}",
        soft_wrap=True,
    )


@app.command()
@config_options(FEATURIZE, "device", into="featurize")
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory (from decompose or demo).")],
    data: Annotated[str, typer.Argument(help="A featurize output directory, or pairs data.")],
    val: Annotated[
        str | None,
        typer.Option(help="Validation pairs (features dir or data): report the PCA head picked on them."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the tidy table here as CSV.")] = None,
    by: Annotated[str, typer.Option(help="Group rows by 'subset' or 'user'.")] = "subset",
    *,
    skip_invalid: SkipInvalidOption = False,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
) -> None:
    """Pairwise accuracy (95% bootstrap interval) of the general head and every PCA head.

    Example: pluralrm evaluate models/hh-drm ../shared/data/dsp/helpful.test-dev.json.gz --skip-invalid
    --val out/helpful-val
    """
    from pluralrm.evaluate.runner import evaluate_model
    from pluralrm.evaluate.tables import write_csv

    model = load_model(model_dir)

    def read(source: str) -> PairFeatures:
        return model_features(source, model, device=featurize.device, cache=cache, skip_invalid=skip_invalid)

    with reported(), timed("evaluate"):
        features = read(data)
        val_features = None if val is None else read(val)
        rows = evaluate_model(model, features, val=val_features, by=by)
    if val_features is not None:
        console.print(f"PCA head picked on validation ({len(val_features)} pairs): {rows[0]['best_pc']}")
    _print_rows(rows, top=12)
    if out:
        write_csv(rows, out)
        console.print(f"[green]wrote[/] {out}")


def _print_rows(rows: list[dict], top: int) -> None:
    table = Table("head", "subset", "accuracy", "95% CI", "n", "ties")
    shown = [r for r in rows if r["subset"] == "all"][:top] + [
        r for r in rows if r["subset"] != "all" and r["head"] in ("general", "best-pc")
    ]
    for r in shown:
        table.add_row(
            r["head"],
            r["subset"],
            f"{r['accuracy']:.3f}",
            f"{r['ci_low']:.3f}–{r['ci_high']:.3f}",
            str(r["n"]),
            str(r["ties"]),
        )
    Console().print(table)


@app.command()
@config_options(DEMO_DECOMPOSE, "n_components", "center", flags={"n_components": "--components"})
@config_options(FEATURIZE, "backbone", "device", "dtype", into="featurize")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the model, tables and plots.")] = Path("out/demo"),
    data: Annotated[str | None, typer.Option(help="Run on these pairs instead of the built-in data.")] = None,
    *,
    featurize: FeaturizeConfig,
    config: DecomposeConfig,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """The main job: built-in pluralistic data → backbone → general + PCA heads → tables and plots.

    Example: pluralrm demo --out out/demo   (or --data ../shared/data/dsp/helpful.test-dev.json.gz)
    """
    setup_logging(verbose)
    from pluralrm.demo import run_demo

    try:
        with timed("demo"):
            result = run_demo(
                out,
                data=data,
                featurize=featurize,
                decompose=config,
                limit=limit,
                show_progress=True,
            )
    except (DataValidationError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(f"pairs: {result.n_pairs}")
    _print_rows(result.rows, top=6)
    if result.user_rows:
        table = Table("user", "general acc.", "adapted acc.", "cos(general, true w)", "cos(adapted, true w)")
        for r in result.user_rows:
            table.add_row(
                r["user"],
                f"{r['general_accuracy']:.3f}",
                f"{r['adapted_accuracy']:.3f}",
                f"{r['general_cosine_to_true_weights']:+.2f}",
                f"{r['adapted_cosine_to_true_weights']:+.2f}",
            )
        console.print(
            f"personalization: each user adapted from {result.user_rows[0]['adapt_pairs']} labelled pairs"
        )
        Console().print(table)
    if result.attribute_rows:
        table = Table("head", "explained var.", "tracks attribute", "correlation", "automatic name")
        for r in result.attribute_rows:
            table.add_row(
                r["head"],
                f"{r['explained_variance_ratio']:.3f}",
                r["attribute"],
                f"{r['correlation']:+.2f}",
                escape(result.head_names.get(r["head"], "")),
            )
        Console().print(table)
    console.print(
        f"[green]wrote[/] {result.out}/ (model/, accuracy.csv, explained_variance.png, head_accuracy.png"
        + (", head_attributes.csv, personalization.csv" if result.attribute_rows else "")
        + ", summary.json, report.html)"
    )


@app.command()
def backbones() -> None:
    """List the named backbones (each also accepts a local directory or hub id).

    Example: pluralrm backbones
    """
    from pluralrm.backbone import NAMED_BACKBONES

    table = Table("name", "description")
    for name, description in NAMED_BACKBONES.items():
        table.add_row(name, description)
    Console().print(table)
