"""The verbs on preference pairs, reward models and profiles: inspect, featurize, decompose, evaluate,
kshot, demo, serve, adapt, score, users, backbones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
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
    StoreOption,
    adapt_option,
    app,
    console,
    decompose_option,
    fail,
    featurize_option,
    load_model,
    serve_option,
    setup_logging,
    timed,
)
from pluralrm.config import (
    ADAPT,
    DECOMPOSE,
    DEMO_DECOMPOSE,
    FEATURIZE,
    SERVE,
    AdaptConfig,
    DecomposeConfig,
    FeaturizeConfig,
    ServeConfig,
)
from pluralrm.data import DataValidationError, load_pairs, load_ranked
from pluralrm.data.features import PairFeatures


def _load_pair_records(data: str, format: str, skip_invalid: bool) -> tuple[list[dict], str]:
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
    try:
        if ranked:
            result = load_ranked(data, format=format, skip_invalid=skip_invalid)
            records, summary, skipped = result.records, result.report.summary(), result.report.skipped
        else:
            records, summary = _load_pair_records(data, format, skip_invalid)
            skipped = []
    except DataValidationError as error:
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Featurize preference pairs with a backbone and save H_chosen / H_rejected.

    Example: pluralrm featurize ../shared/data/hh-rlhf-harmless/test-dev.jsonl.gz --skip-invalid
    --backbone minilm --out out/hh-minilm
    """
    setup_logging(verbose)
    from pluralrm.backbone import BackboneNotFoundError, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs

    try:
        records, summary = _load_pair_records(data, format, skip_invalid)
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
    try:
        with timed("featurize"):
            featurizer = build_featurizer(config, cache=_feature_cache(cache), show_progress=True)
            features = featurize_pairs(records, featurizer, source=data)
    except (BackboneNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    features.save(out)
    namespace = features.namespace
    console.print(
        f"[green]wrote[/] {out} ({len(features)} pairs × {features.chosen.shape[1]} features, "
        f"backbone {namespace['backbone'][:32]}…, pooling {namespace['spec']['pooling']}, "
        f"layer {namespace['spec']['layer']}, {namespace['dtype']} on {featurizer.backbone.device})"
    )


def _feature_cache(enabled: bool):
    """The default on-disk feature cache, or None."""
    if not enabled:
        return None
    from pluralrm.backbone import FeatureCache

    return FeatureCache.default()


@app.command()
def decompose(
    inputs: Annotated[
        list[str],
        typer.Argument(help="`pluralrm featurize` output directories or pairs data; several are pooled."),
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
) -> None:
    """Fit a general Bradley–Terry head and PCA reward heads on pair differences.

    Inputs that are raw pairs are featurized with --backbone/--device/--dtype; featurized inputs carry
    their own backbone and must all have been made the same way.

    Example: pluralrm decompose out/helpful-minilm out/harmless-minilm --components 32 --out models/hh-drm
    """
    from pluralrm.data.splits import group_split
    from pluralrm.rewards.fitting import fit_reward_model

    featurize = FeaturizeConfig(backbone=backbone, device=device, dtype=dtype)
    parts = [_features_for(item, skip_invalid, featurize=featurize, cache=cache) for item in inputs]
    config = DecomposeConfig(n_components=n_components, center=center, val_fraction=val_fraction, seed=seed)
    with timed("decompose"):
        try:
            features = PairFeatures.concatenate(parts)
            train_idx, val_idx = group_split(
                features.groups, [1 - config.val_fraction, config.val_fraction], seed=config.seed
            )
            model = fit_reward_model(features.select(train_idx), features.select(val_idx), config=config)
        except ValueError as error:
            raise fail(str(error)) from None
        model.save_pretrained(out)
    ratio = model.decomposed.explained_variance_ratio_
    console.print(
        f"[green]wrote[/] {out}: general head (alpha {model.general.alpha:g}) + {len(ratio)} PCA heads "
        f"from {len(train_idx)} pairs ({len(val_idx)} held out); top-5 explained variance "
        f"{', '.join(f'{r:.3f}' for r in ratio[:5])}",
        soft_wrap=True,
    )


def _features_for(
    features_or_data: str,
    skip_invalid: bool,
    *,
    model=None,
    featurize: FeaturizeConfig = FEATURIZE,
    cache: bool = True,
    device: str = FEATURIZE.device,
) -> PairFeatures:
    """PairFeatures from a featurize output directory, or by featurizing a pairs file (with the model's
    own featurizer when a model is given)."""
    path = Path(features_or_data)
    if path.is_dir():
        try:
            return PairFeatures.load(path)
        except FileNotFoundError as error:
            raise fail(str(error)) from None
    from pluralrm.backbone import BackboneNotFoundError, build_featurizer
    from pluralrm.backbone.pairs import featurize_pairs

    try:
        records, summary = _load_pair_records(features_or_data, "auto", skip_invalid)
    except DataValidationError as error:
        raise fail(str(error)) from None
    console.print(f"[green]data[/] {escape(summary)}", soft_wrap=True)
    try:
        if model is not None:
            featurizer = model.featurizer(device=device, cache=_feature_cache(cache))
        else:
            featurizer = build_featurizer(featurize, cache=_feature_cache(cache))
    except (BackboneNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    featurizer.show_progress = True
    return featurize_pairs(records, featurizer, source=features_or_data)


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
        features = _features_for(data, skip_invalid, model=model, cache=cache, device=device)
        val_features = (
            None if val is None else _features_for(val, skip_invalid, model=model, cache=cache, device=device)
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
def kshot(
    pool: Annotated[
        list[str],
        typer.Option(
            help="Pool data (features dir or pairs file): other users and general data the heads come from. "
            "Repeat to pool several; NAME=PATH labels every pair of PATH as user NAME."
        ),
    ],
    adapt_data: Annotated[
        list[str],
        typer.Option("--adapt", help="NAME=PATH: a target user's adaptation pairs. Repeat per user."),
    ],
    test_data: Annotated[
        list[str], typer.Option("--test", help="NAME=PATH: the same user's test pairs (no shared prompt).")
    ],
    out: Annotated[Path, typer.Option(help="Directory for kshot.csv and kshot.png.")],
    ks: Annotated[
        str, typer.Option(help="Comma-separated numbers of adaptation pairs.")
    ] = "0,1,3,5,10,15,20,50,100",
    draws: Annotated[
        int, typer.Option(help="Random draws of k pairs per k (95% intervals over draws).")
    ] = 20,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: all leave-one-user-out methods).")
    ] = None,
    n_components: Annotated[int, decompose_option("n_components", "--components")] = DECOMPOSE.n_components,
    backbone: BackboneOption = FEATURIZE.backbone,
    device: DeviceOption = FEATURIZE.device,
    dtype: DtypeOption = FEATURIZE.dtype,
    skip_invalid: SkipInvalidOption = False,
    seed: Annotated[int, typer.Option(help="Seed of the pool's validation split and random heads.")] = 0,
    cache: CacheOption = True,
) -> None:
    """Leave-one-user-out k-shot curves: how well each method learns a user the pool has never seen.

    For each target user the heads are fitted on the pool minus that user's pairs (pairs labelled with
    their NAME) and minus every pair on one of their test prompts; each method adapts from k of the user's
    adaptation pairs and is scored on their test pairs. The per-user Bradley–Terry head on the same k
    pairs (user-bt) is the bar to beat; user-bt-all (all adaptation pairs) is the ceiling.

    Example: pluralrm kshot --pool others.jsonl --adapt alice=alice_adapt.jsonl --test alice=alice_test.jsonl
    --out out/kshot
    """
    from dataclasses import replace

    from pluralrm.evaluate.kshot import LOO_METHODS, plot_kshot, run_kshot
    from pluralrm.evaluate.tables import write_csv

    featurize = FeaturizeConfig(backbone=backbone, device=device, dtype=dtype)

    def load(item: str, option: str, *, named: bool) -> tuple[str | None, PairFeatures]:
        name, sep, path = item.partition("=")
        if not sep:
            if named:
                raise fail(f"{option} {item!r}: expected NAME=PATH")
            name, path = None, item
        features = _features_for(path, skip_invalid, featurize=featurize, cache=cache)
        return name, features if name is None else replace(features, users=[name] * len(features))

    try:
        k_values = tuple(int(k) for k in ks.split(","))
    except ValueError:
        raise fail(f"--ks {ks!r}: expected comma-separated integers") from None
    chosen = tuple(m.strip() for m in methods.split(",")) if methods else LOO_METHODS
    adapt_sets = dict(load(item, "--adapt", named=True) for item in adapt_data)
    test_sets = dict(load(item, "--test", named=True) for item in test_data)
    if adapt_sets.keys() != test_sets.keys():
        raise fail(
            f"--adapt names {sorted(adapt_sets)} and --test names {sorted(test_sets)} must be the same users"
        )
    users = {name: (adapt_sets[name], test_sets[name]) for name in adapt_sets}
    with timed("kshot"):
        try:
            pool_features = PairFeatures.concatenate([load(item, "--pool", named=False)[1] for item in pool])
            rows = run_kshot(
                pool_features,
                users,
                ks=k_values,
                n_draws=draws,
                methods=chosen,
                decompose=replace(DECOMPOSE, n_components=n_components, seed=seed),
                random_seed=seed,
            )
        except ValueError as error:
            raise fail(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "kshot.csv")
    plot_kshot(rows, out / "kshot.png", title="leave-one-user-out")
    _print_kshot(rows, k_values)
    console.print(f"[green]wrote[/] {out / 'kshot.csv'}, {out / 'kshot.png'}")


def _print_kshot(rows: list[dict], ks: tuple[int, ...]) -> None:
    """Mean accuracy over users per method (rows) and k (columns)."""
    table = Table("method", *(f"k={k}" for k in ks), title="accuracy, mean over users")
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for k in ks:
            values = [r["mean"] for r in rows if r["method"] == method and r["k"] == k]
            cells.append(f"{np.mean(values):.3f}" if values else "")
        table.add_row(method, *cells)
    console.print(table)


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
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory.")],
    profiles: Annotated[
        Path | None,
        typer.Option(
            help="Profiles, labelled pairs and tokens (SQLite); default $PLURALRM_CACHE/profiles.sqlite."
        ),
    ] = None,
    host: Annotated[str, serve_option("host")] = SERVE.host,
    port: Annotated[int, serve_option("port")] = SERVE.port,
    max_batch_texts: Annotated[int, serve_option("max_batch_texts")] = SERVE.max_batch_texts,
    max_wait_ms: Annotated[float, serve_option("max_wait_ms")] = SERVE.max_wait_ms,
    max_batch_tokens: Annotated[int, serve_option("max_batch_tokens")] = SERVE.max_batch_tokens,
    cache_entries: Annotated[int, serve_option("cache_entries")] = SERVE.cache_entries,
    max_body_bytes: Annotated[int, serve_option("max_body_bytes")] = SERVE.max_body_bytes,
    max_texts: Annotated[int, serve_option("max_texts")] = SERVE.max_texts,
    max_text_chars: Annotated[int, serve_option("max_text_chars")] = SERVE.max_text_chars,
    max_pairs: Annotated[int, serve_option("max_pairs")] = SERVE.max_pairs,
    require_token: Annotated[
        bool | None,
        typer.Option(
            "--require-token/--no-require-token",
            help="Whether the general reward needs a token (default: only when not bound to loopback).",
        ),
    ] = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the admin token here, or write a new one (mode 0600); default: admin.token beside "
            "the profile store. $PLURALRM_ADMIN_TOKEN overrides it."
        ),
    ] = None,
    device: DeviceOption = FEATURIZE.device,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each batch and startup.")] = False,
) -> None:
    """Serve a reward model over HTTP: /v1/score, OpenRLHF's /get_reward, per-user profiles, /metrics.

    Example: pluralrm serve models/drm --port 8000, then
    curl -s localhost:8000/v1/score -H 'content-type: application/json' \\
    -d '{"prompt": "Hi", "responses": ["Hello!", "Go away."]}'
    """
    import uvicorn

    from pluralrm.adapt import ProfileStore
    from pluralrm.serve import admin_token, create_app

    setup_logging(verbose)
    model = load_model(model_dir)
    config = ServeConfig(
        host=host,
        port=port,
        max_batch_texts=max_batch_texts,
        max_wait_ms=max_wait_ms,
        max_batch_tokens=max_batch_tokens,
        cache_entries=cache_entries,
        max_body_bytes=max_body_bytes,
        max_texts=max_texts,
        max_text_chars=max_text_chars,
        max_pairs=max_pairs,
    )
    store = ProfileStore(profiles)
    token_file = admin_token_file or store.path.with_name("admin.token")
    try:
        token, token_source = admin_token(token_file)
        application = create_app(
            model, store=store, config=config, require_token=require_token, admin_token=token, device=device
        )
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(
        f"admin token: {token_source}; profiles: {store.path}; docs: http://{host}:{port}/docs",
        soft_wrap=True,
    )
    uvicorn.run(application, host=host, port=port, log_level="info" if verbose else "warning")


users_app = typer.Typer(help="List, show and delete stored user profiles.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@app.command()
def adapt(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory with PCA heads.")],
    user: Annotated[str, typer.Option(help="Profile name to create or replace.")],
    pairs: Annotated[
        str, typer.Option(help="The user's labelled pairs (any supported format) or features dir.")
    ],
    method: Annotated[str, adapt_option("method")] = ADAPT.method,
    alpha: Annotated[float, adapt_option("alpha")] = ADAPT.alpha,
    beta: Annotated[float, adapt_option("beta")] = ADAPT.beta,
    temperature: Annotated[float, adapt_option("temperature")] = ADAPT.temperature,
    zscore: Annotated[bool, adapt_option("zscore")] = ADAPT.zscore,
    store: StoreOption = None,
    skip_invalid: SkipInvalidOption = False,
    device: DeviceOption = FEATURIZE.device,
    cache: CacheOption = True,
) -> None:
    """Fit a user's weights over the model's heads from a few labelled pairs and store the profile.

    Example: pluralrm adapt models/drm --user alice --pairs alice_pairs.jsonl
    """
    from pluralrm.adapt import ProfileStore, build_profile

    model = load_model(model_dir)
    features = _features_for(pairs, skip_invalid, model=model, cache=cache, device=device)
    config = AdaptConfig(method=method, alpha=alpha, beta=beta, temperature=temperature, zscore=zscore)
    try:
        model.check_namespace(features.namespace, what=str(model_dir))
        profile = build_profile(model, user, features.differences, config=config)
    except ValueError as error:
        raise fail(str(error)) from None
    saved = ProfileStore(store).put(profile)
    top = np.argsort(-np.abs(saved.weights))[:5]
    console.print(
        f"[green]stored[/] profile {user!r} ({method}, {saved.n_pairs} pairs); largest weights: "
        + ", ".join(f"pc{j + 1} {saved.weights[j]:+.3g}" for j in top),
        soft_wrap=True,
    )


@app.command()
def score(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory.")],
    data: Annotated[str, typer.Argument(help="Pairs to score (any supported format) or a features dir.")],
    user: Annotated[
        str | None, typer.Option(help="Score with this user's profile (default: general head).")
    ] = None,
    head: Annotated[str | None, typer.Option(help="Score with one head: 'general' or 'pcJ'.")] = None,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(help="Write per-pair rewards as JSONL here.")] = None,
    skip_invalid: SkipInvalidOption = False,
    device: DeviceOption = FEATURIZE.device,
    cache: CacheOption = True,
) -> None:
    """Score pairs with the general head, one head or a user's personal reward; print accuracy on their
    labels.

    Example: pluralrm score models/drm held_out.jsonl --user alice --out alice_scores.jsonl
    """
    from pluralrm.adapt import ProfileStore
    from pluralrm.atomic import write_jsonl
    from pluralrm.evaluate.metrics import pairwise_metrics

    model = load_model(model_dir)
    with timed("score"):
        features = _features_for(data, skip_invalid, model=model, cache=cache, device=device)
        try:
            profile = None if user is None else ProfileStore(store).get(user)
            model.check_namespace(features.namespace, what=str(model_dir))
            chosen = model.rewards(features.chosen, user=profile, head=head)
            rejected = model.rewards(features.rejected, user=profile, head=head)
        except (KeyError, ValueError) as error:
            raise fail(str(error)) from None
    metrics = pairwise_metrics(chosen - rejected)
    what = f"user {user!r}" if user else f"head {head!r}" if head else "general head"
    console.print(
        f"{what}: accuracy {metrics['accuracy']:.3f} on {metrics['n']} pairs ({metrics['n_ties']} ties), "
        f"mean margin {metrics['mean_margin']:+.3g}"
    )
    if out:
        write_jsonl(
            out,
            (
                {"id": i, "chosen_reward": float(c), "rejected_reward": float(r)}
                for i, c, r in zip(features.ids, chosen, rejected, strict=True)
            ),
        )
        console.print(f"[green]wrote[/] {out}")


@users_app.command("list")
def users_list(store: StoreOption = None) -> None:
    """List stored profiles.

    Example: pluralrm users list
    """
    from datetime import UTC, datetime

    from pluralrm.adapt import ProfileStore

    table = Table("user", "method", "pairs", "heads", "head set", "updated")
    for p in ProfileStore(store).list():
        table.add_row(
            p.user,
            p.method,
            str(p.n_pairs),
            str(len(p.weights)),
            p.head_set[:12],
            datetime.fromtimestamp(p.updated_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
    Console().print(table)


@users_app.command("show")
def users_show(user: Annotated[str, typer.Argument(help="Profile name.")], store: StoreOption = None) -> None:
    """Show one profile's weights.

    Example: pluralrm users show alice
    """
    from pluralrm.adapt import ProfileNotFoundError, ProfileStore

    try:
        p = ProfileStore(store).get(user)
    except ProfileNotFoundError as error:
        raise fail(str(error)) from None
    console.print(f"user {p.user!r}: {p.method}, {p.n_pairs} pairs, head set {p.head_set}")
    table = Table("head", "weight")
    for j in np.argsort(-np.abs(p.weights)):
        table.add_row(f"pc{j + 1}", f"{p.weights[j]:+.4g}")
    Console().print(table)


@users_app.command("delete")
def users_delete(
    user: Annotated[str, typer.Argument(help="Profile name.")], store: StoreOption = None
) -> None:
    """Delete one profile.

    Example: pluralrm users delete alice
    """
    from pluralrm.adapt import ProfileNotFoundError, ProfileStore

    try:
        ProfileStore(store).delete(user)
    except ProfileNotFoundError as error:
        raise fail(str(error)) from None
    console.print(f"deleted profile {user!r}")


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
