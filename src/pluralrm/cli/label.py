"""`pluralrm label`: a labelling project — labellers and their tokens, pairs in, the web page, labels out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pluralrm.cli.common import app, console, fail, setup_logging
from pluralrm.cli.options import config_options
from pluralrm.config import LABEL, LabelConfig

label_app = typer.Typer(
    help="Human labelling of preference pairs on a web page: users, import, serve, export.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Labellers of a labelling project and their tokens.", no_args_is_help=True)
label_app.add_typer(users_app, name="users")
app.add_typer(label_app, name="label")

ProjectArgument = Annotated[
    Path, typer.Argument(help="The labelling project's directory (its store: PROJECT_DIR/labels.sqlite).")
]


def _store(project_dir: Path):
    from pluralrm.label.store import LabelStore

    return LabelStore.of_project(project_dir)


@users_app.command("add")
def users_add(
    project_dir: ProjectArgument,
    name: Annotated[str, typer.Argument(help="The labeller's name (letters, digits, '_', '.', '-').")],
    admin: Annotated[bool, typer.Option(help="An admin: sees the admin page, stats and export.")] = False,
) -> None:
    """Create a labeller and print their token — once; only its hash is stored.

    Example: pluralrm label users add labelling/ alice
    """
    try:
        token = _store(project_dir).add_labeller(name, admin=admin)
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(f"[green]added[/] {'admin' if admin else 'labeller'} {name!r}; their token (shown once):")
    print(token)


@users_app.command("list")
def users_list(project_dir: ProjectArgument) -> None:
    """List the project's labellers.

    Example: pluralrm label users list labelling/
    """
    for labeller in _store(project_dir).labellers():
        print(labeller.name + ("\tadmin" if labeller.is_admin else ""))


@users_app.command("revoke")
def users_revoke(
    project_dir: ProjectArgument,
    name: Annotated[str, typer.Argument(help="The labeller's name.")],
) -> None:
    """Revoke a labeller's tokens: their requests get 401 and their browser sessions end at once (their
    labels stay).

    Example: pluralrm label users revoke labelling/ alice
    """
    store = _store(project_dir)
    revoked = store.tokens.revoke_user(name)
    if not revoked:
        raise fail(f"labeller {name!r} has no live token in {store.path}")
    console.print(f"[green]revoked[/] {revoked} token(s) of {name!r}")


@label_app.command("import")
def import_pairs(
    project_dir: ProjectArgument,
    pairs: Annotated[
        Path,
        typer.Argument(
            help='Pairs to label, JSONL: {"pair_id", "prompt", "response_a", "response_b", "ai_label", '
            '"ai_margin", "provenance"} per line.'
        ),
    ],
) -> None:
    """Add pairs to the project (all or none; pairs already there are kept as they are).

    Example: pluralrm label import labelling/ collect/filtered/to_label.jsonl
    """
    from pluralrm.label.io import read_pairs

    try:
        added, present = _store(project_dir).import_pairs(read_pairs(pairs), source=str(pairs))
    except (OSError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(
        f"[green]imported[/] {added} new pairs from {pairs} ({present} already in the project)",
        soft_wrap=True,
    )


@label_app.command("serve")
@config_options(LABEL, exclude=("tags",))
def serve(
    project_dir: ProjectArgument,
    *,
    config: LabelConfig,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
) -> None:
    """Serve the labelling page (sign in with a token from `label users add`).

    Example: pluralrm label serve labelling/ --port 8010, then open http://127.0.0.1:8010/
    """
    import uvicorn

    from pluralrm.label.app import create_label_app
    from pluralrm.web.tokens import is_loopback

    setup_logging(verbose)
    store = _store(project_dir)
    try:
        application = create_label_app(store, config)
    except ValueError as error:
        raise fail(str(error)) from None
    if not is_loopback(config.host):
        console.print(
            f"[yellow]listening on {config.host}[/]: tokens and cookies cross the network; "
            "serve it behind HTTPS"
        )
    if not store.labellers():
        console.print(
            f"[yellow]no labellers yet[/]: add one with `pluralrm label users add {project_dir} NAME`"
        )
    console.print(
        f"labelling {len(store.pairs())} pairs at http://{config.host}:{config.port}/ (store: {store.path})",
        soft_wrap=True,
    )
    uvicorn.run(
        application,
        host=config.host,
        port=config.port,
        log_level="info" if verbose else "warning",
    )


@label_app.command("export")
def export(
    project_dir: ProjectArgument,
    out: Annotated[Path, typer.Argument(help="Output JSONL file (with --per-labeller: a directory).")],
    per_labeller: Annotated[
        bool,
        typer.Option(help="One <labeller>.jsonl per labeller with their own labels (for `pluralrm adapt`)."),
    ] = False,
) -> None:
    """Write the human labels as TRL pairwise JSONL: each pair's majority, or every labeller's own.

    Example: pluralrm label export labelling/ labels.jsonl; pluralrm label export labelling/ per_user/
    --per-labeller
    """
    from pluralrm.label.io import write_export

    written = write_export(_store(project_dir), out, per_labeller=per_labeller)
    total = sum(written.values())
    console.print(
        f"[green]wrote[/] {total} pairs to {out}" + (f" ({len(written)} files)" if per_labeller else "")
    )
