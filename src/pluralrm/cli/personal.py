"""The verbs on users: adapt a profile, score with it, list/show/delete profiles, and k-shot curves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from pluralrm.adapt.active import STRATEGIES
from pluralrm.cli.common import (
    CacheOption,
    SkipInvalidOption,
    StoreOption,
    app,
    comma_ints,
    console,
    fail,
    feature_cache,
    load_model,
    timed,
)
from pluralrm.cli.core import model_features, print_data, reported
from pluralrm.cli.options import config_options
from pluralrm.cli.scale import engine_from, engine_options
from pluralrm.config import (
    ACTIVE,
    ADAPT,
    DECOMPOSE,
    FEATURIZE,
    KSHOT,
    ActiveConfig,
    AdaptConfig,
    DecomposeConfig,
    EngineConfig,
    FeaturizeConfig,
)
from pluralrm.data.features import PairFeatures
from pluralrm.pool import labelled_features, named_input

_KS = ",".join(map(str, KSHOT.ks))


@app.command()
@config_options(
    DECOMPOSE,
    "n_components",
    "heads",
    "seed",
    "choice_k",
    "choice_users",
    flags={"n_components": "--components"},
)
@config_options(FEATURIZE, "backbone", "device", "dtype", into="featurize")
@config_options(ACTIVE, "candidates", into="active")
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
        typer.Option(
            "--adapt",
            help="NAME=PATH: a target user's adaptation pairs (repeat per user), or a PATH whose pairs name "
            "their 'user' (many targets in one file).",
        ),
    ],
    test_data: Annotated[
        list[str],
        typer.Option(
            "--test", help="NAME=PATH (or a many-user PATH): the same users' test pairs (no shared prompt)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Directory for kshot.csv and kshot.png.")],
    *,
    ks: Annotated[str, typer.Option(help="Comma-separated numbers of adaptation pairs.")] = _KS,
    draws: Annotated[
        int, typer.Option(help="Random draws of k pairs per k (95% intervals over draws).")
    ] = KSHOT.draws,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: all leave-one-user-out methods).")
    ] = None,
    config: DecomposeConfig,
    featurize: FeaturizeConfig,
    skip_invalid: SkipInvalidOption = False,
    cache: CacheOption = True,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated candidate layers (e.g. 1,2,3,4,5,6; pairs files only): each target user is "
            "learned in the layer where the pool's own users are learned best from --choice-k pairs, chosen "
            "without the target's pairs. Default: the backbone's final layer only."
        ),
    ] = None,
    select: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated selection rules ({', '.join(STRATEGIES)}): the target's k pairs are "
            "chosen one at a time, each label revealed before the next "
            "pick, instead of drawn at random; random selection runs beside them with the same adapter. "
            "Replaces --methods."
        ),
    ] = None,
    adapter: Annotated[
        str, typer.Option(help="--select: the adapter the rules' posterior and the scored profile use.")
    ] = "auto",
    active: ActiveConfig,
) -> None:
    """Leave-one-user-out k-shot curves: how well each method learns a user the pool has never seen.

    For each target user the heads are fitted on the pool minus that user's pairs (pairs labelled with
    their NAME) and minus every pair on one of their test prompts; each method adapts from k of the user's
    adaptation pairs and is scored on their test pairs. The per-user Bradley–Terry head on the same k
    pairs (user-bt) is the bar to beat; user-bt-all (all adaptation pairs) is the ceiling.

    With --layers, the layer each target is learned in is chosen on their pool alone: the pool's labelled
    users (NAME=PATH) are each split by prompt, learned from --choice-k pairs in every candidate layer, and
    the layer where they are learned best is the target's (the csv's 'features' column).

    With --select, each draw asks the target's pairs from a seeded subset of --candidates of their
    adaptation pairs, one at a time by the named rules (and by random, the baseline), revealing each label
    before the next pick; the csv's 'select' column names the rule.

    Example: pluralrm kshot --pool others.jsonl --adapt alice=alice_adapt.jsonl --test alice=alice_test.jsonl
    --out out/kshot --select epig
    """
    from pluralrm.adapt.choice import run_kshot_choosing
    from pluralrm.adapt.kshot import LOO_METHODS, over_users, run_kshot
    from pluralrm.adapt.kshot_active import run_kshot_active
    from pluralrm.evaluate.plots import plot_kshot
    from pluralrm.evaluate.tables import write_csv

    k_values = comma_ints(ks, "--ks")
    layer_values = comma_ints(layers, "--layers") if layers else ()
    chosen = tuple(m.strip() for m in methods.split(",")) if methods else LOO_METHODS
    spaces: list[int | None] = [None] if not layer_values else list(layer_values)
    read = dict(
        featurize=featurize, cache=feature_cache(cache), skip_invalid=skip_invalid, on_data=print_data
    )

    def load(path: str, name: str | None) -> dict[int | None, PairFeatures]:
        """The file's features in every candidate space ({None: ...} without --layers)."""
        with reported():
            return labelled_features(path, name, layer_values, **read)

    def load_users(items: list[str], option: str) -> dict[str, dict[int | None, PairFeatures]]:
        """NAME=PATH is user NAME's; a PATH alone holds many users, each pair naming its 'user'."""
        sets: dict[str, dict[int | None, PairFeatures]] = {}
        for item in items:
            name, path = named_input(item)
            found = {name: load(path, name)} if name is not None else _split_by_user(load(path, None))
            if not found:
                raise fail(f"{option} {item!r}: expected NAME=PATH, or a file whose pairs name their 'user'")
            twice = sorted(set(found) & set(sets))
            if twice:
                raise fail(f"{option} {item!r}: users {twice[:5]} are given twice")
            sets.update(found)
        return sets

    adapt_sets = load_users(adapt_data, "--adapt")
    test_sets = load_users(test_data, "--test")
    if adapt_sets.keys() != test_sets.keys():
        raise fail(
            f"--adapt names {sorted(adapt_sets)} and --test names {sorted(test_sets)} must be the same users"
        )
    pool_sets = [load(path, name) for name, path in map(named_input, pool)]
    options: dict[str, Any] = dict(ks=k_values, n_draws=draws, decompose=config, random_seed=config.seed)
    protocol: Any = run_kshot
    if select:
        if methods:
            raise fail("--select chooses the pairs of its own rules; leave out --methods")
        rules = [s.strip() for s in select.split(",")]
        options |= dict(
            strategies=list(dict.fromkeys(["random", *rules])),
            adapter=adapter,
            candidates=active.candidates,
        )
        protocol = run_kshot_active
    else:
        options["methods"] = chosen
    with timed("kshot"):
        try:
            candidates = {
                space: (
                    PairFeatures.concatenate([part[space] for part in pool_sets]),
                    {name: (adapt_sets[name][space], test_sets[name][space]) for name in adapt_sets},
                )
                for space in spaces
            }
            if layer_values:
                rows, choices = run_kshot_choosing(
                    {f"layer {layer}": candidates[layer] for layer in layer_values},
                    choice_k=config.choice_k,
                    protocol=protocol,
                    **options,
                )
            else:
                rows, choices = protocol(*candidates[None], **options), {}
        except ValueError as error:
            raise fail(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "kshot.csv")
    summary = over_users(rows)
    write_csv(summary, out / "kshot-over-users.csv")
    plot_kshot(rows, out / "kshot.png", title="leave-one-user-out")
    if choices:
        _print_choices(choices)
    _print_kshot(summary, k_values)
    console.print(f"[green]wrote[/] {out / 'kshot.csv'}, {out / 'kshot-over-users.csv'}, {out / 'kshot.png'}")


def _split_by_user(spaces: dict[int | None, PairFeatures]) -> dict[str, dict[int | None, PairFeatures]]:
    """A many-user file's features as one entry per user; empty when a pair names no user."""
    users = next(iter(spaces.values())).users
    if not users or any(not user for user in users):
        return {}
    by_user: dict[str, list[int]] = {}
    for i, user in enumerate(users):
        by_user.setdefault(str(user), []).append(i)
    return {user: {space: f.select(idx) for space, f in spaces.items()} for user, idx in by_user.items()}


def _print_choices(choices: dict) -> None:
    """Per target: each candidate's score on the pool's users, the chosen one in bold (targets that
    share a seen pool, and so a choice, share a row)."""
    names = list(next(iter(choices.values())).scores)
    table = Table("users", *names, title="pool users' accuracy at --choice-k pairs, per candidate")
    by_choice: dict[int, list[str]] = {}
    for user, choice in choices.items():
        by_choice.setdefault(id(choice), []).append(user)
    for users in by_choice.values():
        choice = choices[users[0]]
        user = users[0] if len(users) == 1 else f"{users[0]} and {len(users) - 1} more"
        cells = [f"{choice.scores[n]:.3f}" for n in names]
        cells = [f"[bold]{c}[/]" if n == choice.name else c for n, c in zip(names, cells, strict=True)]
        table.add_row(user, *cells)
    console.print(table)


def _print_kshot(summary: list[dict], ks: tuple[int, ...]) -> None:
    """Mean accuracy over users per method (rows) and k (columns), ± the 95 % interval over users."""
    table = Table("method", *(f"k={k}" for k in ks), title="accuracy, mean over users (± 95% over users)")
    for method in dict.fromkeys(r["method"] for r in summary):
        cells = []
        for k in ks:
            found = [r for r in summary if r["method"] == method and r["k"] == k]
            cells.append(
                f"{found[0]['mean']:.3f} ± {found[0]['mean'] - found[0]['ci_low']:.3f}" if found else ""
            )
        table.add_row(method, *cells)
    console.print(table)


users_app = typer.Typer(
    help="Stored user profiles (list, show, delete) and the reward server's user tokens (token, revoke).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


@app.command()
@config_options(ADAPT, "method", "alpha", "beta", "temperature", "zscore")
@config_options(FEATURIZE, "device", into="featurize")
def adapt(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory with PCA heads.")],
    *,
    user: Annotated[str, typer.Option(help="Profile name to create or replace.")],
    pairs: Annotated[
        str, typer.Option(help="The user's labelled pairs (any supported format) or features dir.")
    ],
    config: AdaptConfig,
    store: StoreOption = None,
    skip_invalid: SkipInvalidOption = False,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
) -> None:
    """Fit a user's weights over the model's heads from a few labelled pairs and store the profile.

    Example: pluralrm adapt models/drm --user alice --pairs alice_pairs.jsonl
    """
    from pluralrm.adapt import ProfileStore, build_profile

    model = load_model(model_dir)
    features = model_features(pairs, model, device=featurize.device, cache=cache, skip_invalid=skip_invalid)
    try:
        model.check_namespace(features.namespace, what=str(model_dir))
        profile = build_profile(model, user, features.differences, config=config)
    except ValueError as error:
        raise fail(str(error)) from None
    saved = ProfileStore(store).put(profile)
    top = np.argsort(-np.abs(saved.weights))[:5]
    console.print(
        f"[green]stored[/] profile {user!r} ({saved.method}{' (auto)' if config.method == 'auto' else ''}, "
        f"{saved.n_pairs} pairs); largest weights: "
        + ", ".join(f"pc{j + 1} {saved.weights[j]:+.3g}" for j in top),
        soft_wrap=True,
    )


@app.command()
@config_options(FEATURIZE, "device", into="featurize")
@engine_options()
def score(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory.")],
    data: Annotated[str, typer.Argument(help="Pairs to score (any supported format) or a features dir.")],
    *,
    user: Annotated[
        str | None, typer.Option(help="Score with this user's profile (default: general head).")
    ] = None,
    head: Annotated[str | None, typer.Option(help="Score with one head: 'general' or 'pcJ'.")] = None,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(help="Write per-pair rewards as JSONL here.")] = None,
    skip_invalid: SkipInvalidOption = False,
    featurize: FeaturizeConfig,
    cache: CacheOption = True,
    engine_config: EngineConfig,
) -> None:
    """Score pairs with the general head, one head or a user's personal reward; print accuracy on their
    labels.

    Example: pluralrm score models/drm held_out.jsonl --user alice --out alice_scores.jsonl
    """
    from pluralrm.adapt import ProfileStore
    from pluralrm.atomic import write_jsonl
    from pluralrm.evaluate.metrics import pairwise_metrics

    model = load_model(model_dir)
    runner = engine_from(engine_config)
    with timed("score"):
        features = model_features(
            data, model, device=featurize.device, cache=cache, skip_invalid=skip_invalid, engine=runner
        )
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


@users_app.command("token")
def users_token(user: Annotated[str, typer.Argument(help="User name.")], store: StoreOption = None) -> None:
    """Issue a token for a user of the reward server and print it — once; only its hash is stored. The
    token scores as that user, labels their pairs and signs in on `pluralrm serve --label`'s page.

    Example: pluralrm users token alice
    """
    from pluralrm.adapt import ProfileStore
    from pluralrm.serve.schemas import USER_NAME
    from pluralrm.web.tokens import TokenStore

    if not re.match(USER_NAME, user):
        raise fail(f"user name {user!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    token = TokenStore(ProfileStore(store).path).issue(user=user)
    console.print(f"[green]issued[/] a token for {user!r} (shown once):")
    print(token)


@users_app.command("revoke")
def users_revoke(user: Annotated[str, typer.Argument(help="User name.")], store: StoreOption = None) -> None:
    """Revoke every token of a user of the reward server: requests with them get 401, and their browser
    sessions end at once (the profile stays; `users delete` removes it).

    Example: pluralrm users revoke alice
    """
    from pluralrm.adapt import ProfileStore
    from pluralrm.web.tokens import TokenStore

    tokens = TokenStore(ProfileStore(store).path)
    revoked = tokens.revoke_user(user)
    if not revoked:
        raise fail(f"user {user!r} has no live token in {tokens.path}")
    console.print(f"[green]revoked[/] {revoked} token(s) of {user!r}")
