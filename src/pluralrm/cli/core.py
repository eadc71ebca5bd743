"""The verbs on preference pairs and frozen-feature reward models: inspect, featurize, decompose,
evaluate, demo, backbones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pluralrm.cli.common import (
    SYNTHETIC,
    BackboneOption,
    CacheOption,
    DeviceOption,
    DtypeOption,
    SkipInvalidOption,
    app,
    comma_ints,
    console,
    decompose_option,
    fail,
    feature_cache,
    featurize_option,
    load_model,
    setup_logging,
    timed,
)
from pluralrm.cli.scale import (
    AddressOption,
    EngineOption,
    GpusOption,
    WorkersOption,
    decompose_on_ray,
    engine_config,
    featurize_on_ray,
)
from pluralrm.config import (
    DECOMPOSE,
    DEMO_DECOMPOSE,
    ENGINE,
    FEATURIZE,
    DecomposeConfig,
    EngineConfig,
    FeaturizeConfig,
)
from pluralrm.data import DataValidationError, load_pairs, load_ranked
from pluralrm.data.features import PairFeatures
from pluralrm.data.loaders import PAIR_FORMATS, RANKED_FORMATS


def load_pair_records(data: str, format: str, skip_invalid: bool) -> tuple[list[dict], str]:
    """Records from a file/hub id, or the built-in synthetic data when DATA is 'synthetic'."""
    if data == SYNTHETIC and not Path(data).exists():
        from pluralrm.data.synthetic import make_synthetic_preferences

        synthetic = make_synthetic_preferences()
        return synthetic.pairs, "built-in synthetic pluralistic data"
    result = load_pairs(data, format=format, skip_invalid=skip_invalid)
    return result.records, result.report.summary()


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
def featurize(
    data: Annotated[
        str, typer.Argument(help="Pairs file (.json/.jsonl/.parquet, .gz ok), hub id, or 'synthetic'.")
    ],
    out: Annotated[Path, typer.Option(help="Output directory for features.safetensors + features.json.")],
    backbone: BackboneOption = FEATURIZE.backbone,
    format: Annotated[str, typer.Option(help="Input format: auto, trl, hh, dsp, dsp-domain.")] = "auto",
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip and count invalid records instead of failing.")
    ] = False,
    pooling: Annotated[str | None, featurize_option("pooling")] = FEATURIZE.pooling,
    layer: Annotated[int, featurize_option("layer")] = FEATURIZE.layer,
    max_length: Annotated[int, featurize_option("max_length")] = FEATURIZE.max_length,
    batch_size: Annotated[int, featurize_option("batch_size")] = FEATURIZE.batch_size,
    max_batch_tokens: Annotated[int, featurize_option("max_batch_tokens")] = FEATURIZE.max_batch_tokens,
    device: DeviceOption = FEATURIZE.device,
    dtype: DtypeOption = FEATURIZE.dtype,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs.")] = None,
    cache: CacheOption = True,
    engine: EngineOption = ENGINE.engine,
    address: AddressOption = ENGINE.address,
    num_workers: WorkersOption = ENGINE.num_workers,
    gpus_per_worker: GpusOption = ENGINE.gpus_per_worker,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Featurize preference pairs with a backbone and save H_chosen / H_rejected.

    Example: pluralrm featurize ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --skip-invalid
    --backbone minilm --out out/hh-minilm   (on a Ray cluster: --engine ray --address auto --num-workers 8
    --gpus-per-worker 1)
    """
    setup_logging(verbose)
    from pluralrm.backbone import BackboneNotFoundError, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs

    try:
        records, summary = load_pair_records(data, format, skip_invalid)
    except DataValidationError as error:
        raise fail(str(error)) from None
    records = records[:limit] if limit else records
    console.print(f"[green]data[/] {escape(summary)}; featurizing {len(records)} pairs", soft_wrap=True)
    config = FeaturizeConfig(
        backbone=backbone,
        pooling=pooling,
        layer=layer,
        max_length=max_length,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        device=device,
        dtype=dtype,
    )
    on_ray = engine_config(engine, address, num_workers, gpus_per_worker)
    try:
        with timed("featurize"):
            if on_ray:
                features, where = featurize_on_ray(records, config, on_ray, cache, data)
            else:
                featurizer = build_featurizer(config, cache=feature_cache(cache), show_progress=True)
                features = featurize_pairs(records, featurizer, source=data)
                where = str(featurizer.backbone.device)
    except (BackboneNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    features.save(out)
    namespace = features.namespace
    console.print(
        f"[green]wrote[/] {out} ({len(features)} pairs × {features.chosen.shape[1]} features, "
        f"backbone {namespace['backbone'][:32]}…, pooling {namespace['spec']['pooling']}, "
        f"layer {namespace['spec']['layer']}, {namespace['dtype']} on {where})"
    )


@app.command()
def decompose(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="`pluralrm featurize` output directories or pairs data; several are pooled. NAME=PATH "
            "labels every pair of PATH as user NAME (for --layers/--adapters)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Model directory to write (config.json + heads.safetensors).")],
    n_components: Annotated[int, decompose_option("n_components", "--components")] = DECOMPOSE.n_components,
    center: Annotated[bool, decompose_option("center")] = DECOMPOSE.center,
    backbone: BackboneOption = FEATURIZE.backbone,
    device: DeviceOption = FEATURIZE.device,
    dtype: DtypeOption = FEATURIZE.dtype,
    val_fraction: Annotated[float, decompose_option("val_fraction")] = DECOMPOSE.val_fraction,
    skip_invalid: SkipInvalidOption = False,
    seed: Annotated[int, decompose_option("seed")] = DECOMPOSE.seed,
    cache: CacheOption = True,
    engine: EngineOption = ENGINE.engine,
    address: AddressOption = ENGINE.address,
    num_workers: WorkersOption = ENGINE.num_workers,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated candidate layers (pairs files; users from the records' 'user' field or "
            "NAME=PATH): the heads are fitted in the layer where those users are learned best from "
            "--choice-k pairs each; adapt and score then read that layer. Default: the final layer."
        ),
    ] = None,
    choice_k: Annotated[int, decompose_option("choice_k")] = DECOMPOSE.choice_k,
    adapters: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated adapters (e.g. map,bt): the one that learns the data's labelled users best "
            "from --choice-k pairs, each user left out of the heads in turn, becomes the model's choice for "
            "adapt --method auto."
        ),
    ] = None,
) -> None:
    """Fit a general Bradley–Terry head and PCA reward heads on pair differences.

    Inputs that are raw pairs are featurized with --backbone/--device/--dtype; featurized inputs carry
    their own backbone and must all have been made the same way. With --layers the layer is chosen from
    the data's own labelled users (docs/personalization.md: on the DSP domain users MiniLM's layers 2-3
    learn a new user from 15 pairs 9 points better than its final layer).

    Example: pluralrm decompose out/helpful-minilm out/harmless-minilm --components 32 --out models/hh-drm
    """
    from pluralrm.data.splits import group_split
    from pluralrm.rewards.fitting import fit_reward_model

    config = DecomposeConfig(
        n_components=n_components, center=center, val_fraction=val_fraction, seed=seed, choice_k=choice_k
    )
    on_ray = engine_config(engine, address, num_workers, ENGINE.gpus_per_worker)
    if on_ray and (layers or adapters):
        raise fail("--layers and --adapters choose in one process; drop --engine ray")
    if on_ray:
        with timed("decompose"):
            model, n_train, n_val = decompose_on_ray(inputs, out, config, on_ray)
        return _print_fit(out, model, n_train, n_val)
    featurize = FeaturizeConfig(backbone=backbone, device=device, dtype=dtype)
    choices = {}
    if layers:
        chosen_features, choices["features"] = _layer_chosen_by_users(
            inputs, layers, skip_invalid, featurize, config, cache
        )
        parts = [chosen_features]
    else:
        parts = [
            labelled(features_for(path, skip_invalid, featurize=featurize, cache=cache), name)
            for name, path in map(named_input, inputs)
        ]
    with timed("decompose"):
        try:
            features = PairFeatures.concatenate(parts)
            train_idx, val_idx = group_split(
                features.groups, [1 - config.val_fraction, config.val_fraction], seed=config.seed
            )
            model = fit_reward_model(features.select(train_idx), features.select(val_idx), config=config)
            if adapters:
                choices["adapter"] = _adapter_chosen_by_users(features, adapters, config)
        except ValueError as error:
            raise fail(str(error)) from None
        # What was chosen and on whom, kept with the heads (adapt --method auto reads 'adapter').
        model.metadata = {**model.metadata, **choices}
        model.save_pretrained(out)
    _print_fit(out, model, len(train_idx), len(val_idx))


def named_input(item: str) -> tuple[str | None, str]:
    """``NAME=PATH`` → (NAME, PATH): every pair of PATH is user NAME's; a path that exists is taken whole."""
    name, sep, path = item.partition("=")
    if not sep or not name or Path(item).exists():
        return None, item
    return name, path


def labelled(features: PairFeatures, name: str | None) -> PairFeatures:
    """``features`` with every pair labelled as user ``name`` (unchanged for ``None``)."""
    return features if name is None else replace(features, users=[name] * len(features))


def _layer_chosen_by_users(
    inputs: list[str],
    layers: str,
    skip_invalid: bool,
    featurize: FeaturizeConfig,
    config: DecomposeConfig,
    cache: bool,
) -> tuple[PairFeatures, dict]:
    """The inputs' features in the candidate layer where their labelled users are learned best, and the
    record of that choice."""
    from pluralrm.evaluate.pool_choice import choose_features

    candidates = comma_ints(layers, "--layers")
    parts = []
    for name, path in map(named_input, inputs):
        by_layer = features_for_layers(path, skip_invalid, candidates, featurize=featurize, cache=cache)
        parts.append({layer: labelled(f, name) for layer, f in by_layer.items()})
    try:
        pooled = {
            f"layer {layer}": PairFeatures.concatenate([p[layer] for p in parts]) for layer in candidates
        }
        choice = choose_features(pooled, k=config.choice_k, n_draws=config.choice_draws, seed=config.seed)
    except ValueError as error:
        raise fail(str(error)) from None
    _print_choice(choice, "candidate", f"users learned from {config.choice_k} pairs each")
    console.print(f"[green]chose[/] {choice.name} ({len(choice.users)} users: {', '.join(choice.users)})")
    return pooled[choice.name], _choice_record(choice, config)


def _adapter_chosen_by_users(features: PairFeatures, adapters: str, config: DecomposeConfig) -> dict:
    """The adapter that learns the data's labelled users best as new users (each left out of the heads)."""
    from pluralrm.evaluate.pool_choice import choose_adapter

    methods = tuple(m.strip() for m in adapters.split(","))
    choice = choose_adapter(
        features,
        methods=methods,
        k=config.choice_k,
        n_draws=config.choice_draws,
        seed=config.seed,
        decompose=config,
    )
    _print_choice(choice, "adapter", f"users as new users, {config.choice_k} pairs each")
    console.print(f"[green]adapter[/] {choice.name}: what adapt --method auto will use with this model")
    return _choice_record(choice, config)


def _print_choice(choice, column: str, title: str) -> None:
    """Each candidate's score on the data's users, the chosen one in bold."""
    table = Table(column, "users' accuracy", title=title)
    for name, score in choice.scores.items():
        table.add_row(f"[bold]{name}[/]" if name == choice.name else name, f"{score:.3f}")
    console.print(table)


def _choice_record(choice, config: DecomposeConfig) -> dict:
    return {"chosen": choice.name, "scores": choice.scores, "users": list(choice.users), "k": config.choice_k}


def _print_fit(out: Path, model, n_train: int, n_val: int) -> None:
    ratio = model.decomposed.explained_variance_ratio_
    console.print(
        f"[green]wrote[/] {out}: general head (alpha {model.general.alpha:g}) + {len(ratio)} PCA heads "
        f"from {n_train} pairs ({n_val} held out); top-5 explained variance "
        f"{', '.join(f'{r:.3f}' for r in ratio[:5])}",
        soft_wrap=True,
    )


def features_for(
    features_or_data: str,
    skip_invalid: bool,
    *,
    model=None,
    featurize: FeaturizeConfig = FEATURIZE,
    cache: bool = True,
    device: str = FEATURIZE.device,
    engine: EngineConfig | None = None,
) -> PairFeatures:
    """PairFeatures from a featurize output directory, or by featurizing a pairs file (with the model's
    own featurizer when a model is given; on Ray workers when ``engine`` is given)."""
    path = Path(features_or_data)
    if path.is_dir():
        try:
            return PairFeatures.load(path)
        except FileNotFoundError as error:
            raise fail(str(error)) from None
    from pluralrm.backbone import BackboneNotFoundError, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs

    records = _pairs_to_featurize(features_or_data, skip_invalid)
    if engine is not None:
        try:
            settings = replace(featurize, device=device) if model is not None else featurize
            return featurize_on_ray(records, settings, engine, cache, features_or_data, model=model)[0]
        except (BackboneNotFoundError, ValueError) as error:
            raise fail(str(error)) from None
    try:
        if model is not None:
            featurizer = model.featurizer(device=device, cache=feature_cache(cache))
        else:
            featurizer = build_featurizer(featurize, cache=feature_cache(cache))
    except (BackboneNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    featurizer.show_progress = True
    return featurize_pairs(records, featurizer, source=features_or_data)


def _pairs_to_featurize(data: str, skip_invalid: bool) -> list[dict]:
    """The records of a pairs file (located errors become a CLI failure), with their summary printed."""
    try:
        records, summary = load_pair_records(data, "auto", skip_invalid)
    except DataValidationError as error:
        raise fail(str(error)) from None
    console.print(f"[green]data[/] {escape(summary)}", soft_wrap=True)
    return records


def features_for_layers(
    data: str, skip_invalid: bool, layers: Sequence[int], *, featurize: FeaturizeConfig, cache: bool = True
) -> dict[int, PairFeatures]:
    """One pairs file featurized at several layers in one forward pass per batch (``featurize``'s
    pooling), keyed by the layer as given. Features directories hold one layer and are refused."""
    from pluralrm.backbone import BackboneNotFoundError, FeatureSpec, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs_specs

    if Path(data).is_dir():
        raise fail(f"{data}: a features directory holds one layer; candidate layers need the pairs file")
    records = _pairs_to_featurize(data, skip_invalid)
    try:
        featurizer = build_featurizer(featurize, cache=feature_cache(cache))
        specs = {layer: FeatureSpec(pooling=featurizer.spec.pooling, layer=layer) for layer in layers}
        featurizer.show_progress = True
        by_spec = featurize_pairs_specs(records, featurizer, list(dict.fromkeys(specs.values())), source=data)
    except (BackboneNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    return {layer: by_spec[spec] for layer, spec in specs.items()}


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory (from decompose or demo).")],
    data: Annotated[str, typer.Argument(help="A featurize output directory, or pairs data.")],
    val: Annotated[
        str | None,
        typer.Option(help="Validation pairs (features dir or data): report the PCA head picked on them."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the tidy table here as CSV.")] = None,
    by: Annotated[str, typer.Option(help="Group rows by 'subset' or 'user'.")] = "subset",
    skip_invalid: SkipInvalidOption = False,
    device: DeviceOption = FEATURIZE.device,
    cache: CacheOption = True,
) -> None:
    """Pairwise accuracy (95% bootstrap interval) of the general head and every PCA head.

    Example: pluralrm evaluate models/hh-drm ../shared/data/dsp/helpful.test-dev.json.gz --skip-invalid
    --val out/helpful-val
    """
    from pluralrm.evaluate.runner import evaluate_model
    from pluralrm.evaluate.tables import write_csv

    model = load_model(model_dir)
    with timed("evaluate"):
        features = features_for(data, skip_invalid, model=model, cache=cache, device=device)
        val_features = (
            None if val is None else features_for(val, skip_invalid, model=model, cache=cache, device=device)
        )
        try:
            rows = evaluate_model(model, features, val=val_features, by=by)
        except ValueError as error:
            raise fail(str(error)) from None
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
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the model, tables and plots.")] = Path("out/demo"),
    data: Annotated[str | None, typer.Option(help="Run on these pairs instead of the built-in data.")] = None,
    backbone: BackboneOption = FEATURIZE.backbone,
    n_components: Annotated[
        int, decompose_option("n_components", "--components")
    ] = DEMO_DECOMPOSE.n_components,
    center: Annotated[bool, decompose_option("center")] = DEMO_DECOMPOSE.center,
    device: DeviceOption = FEATURIZE.device,
    dtype: DtypeOption = FEATURIZE.dtype,
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
                featurize=FeaturizeConfig(backbone=backbone, device=device, dtype=dtype),
                decompose=DecomposeConfig(n_components=n_components, center=center),
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
        table = Table("head", "explained var.", "tracks attribute", "correlation")
        for r in result.attribute_rows:
            table.add_row(
                r["head"], f"{r['explained_variance_ratio']:.3f}", r["attribute"], f"{r['correlation']:+.2f}"
            )
        Console().print(table)
    console.print(
        f"[green]wrote[/] {result.out}/ (model/, accuracy.csv, explained_variance.png, head_accuracy.png"
        + (", head_attributes.csv, personalization.csv" if result.attribute_rows else "")
        + ", summary.json)"
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
