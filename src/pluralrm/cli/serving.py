"""`pluralrm serve`: the reward server on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pluralrm.cli.common import app, console, fail, load_model, setup_logging
from pluralrm.cli.options import config_options
from pluralrm.config import FEATURIZE, LABEL, SERVE, FeaturizeConfig, LabelConfig, ServeConfig

# The labelling settings `serve --label` takes (host, port and the body limit are the server's own).
LABEL_OPTIONS = (
    "assign",
    "strategy",
    "labels_per_pair",
    "budget",
    "reserve_seconds",
    "session_hours",
    "signin_attempts",
    "signin_window_seconds",
)


@app.command()
@config_options(SERVE)
@config_options(FEATURIZE, "device", into="featurize")
@config_options(LABEL, *LABEL_OPTIONS, into="label_config")
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A reward model directory.")],
    *,
    profiles: Annotated[
        Path | None,
        typer.Option(
            help="Profiles, labelled pairs and tokens (SQLite); default $PLURALRM_CACHE/profiles.sqlite."
        ),
    ] = None,
    config: ServeConfig,
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
    featurize: FeaturizeConfig,
    label: Annotated[
        Path | None,
        typer.Option(
            help="A labelling project directory to serve under /label: people sign in with this server's "
            "tokens (`pluralrm users token NAME`), and each label updates their profile and served reward."
        ),
    ] = None,
    label_config: LabelConfig,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each batch and startup.")] = False,
) -> None:
    """Serve a reward model over HTTP: /v1/score, OpenRLHF's /get_reward, per-user profiles, /metrics.

    Example: pluralrm serve models/drm --port 8000, then
    curl -s localhost:8000/v1/score -H 'content-type: application/json' \\
    -d '{"prompt": "Hi", "responses": ["Hello!", "Go away."]}'; with the labelling page on the same
    server: pluralrm serve models/drm --label labelling/, then open http://127.0.0.1:8000/label/
    """
    import uvicorn

    from pluralrm.adapt import ProfileStore
    from pluralrm.serve import admin_token, create_app

    setup_logging(verbose)
    model = load_model(model_dir)
    store = ProfileStore(profiles)
    project = None
    if label is not None:
        from pluralrm.label.store import LabelStore

        project = LabelStore.of_project(label)
    token_file = admin_token_file or store.path.with_name("admin.token")
    try:
        token, token_source = admin_token(token_file)
        application = create_app(
            model,
            store=store,
            config=config,
            require_token=require_token,
            admin_token=token,
            device=featurize.device,
            label=project,
            label_config=label_config,
        )
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(
        f"admin token: {token_source}; profiles: {store.path}; docs: http://{config.host}:{config.port}/docs",
        soft_wrap=True,
    )
    if project is not None:
        console.print(
            f"labelling {len(project.pairs())} pairs of {label} at http://{config.host}:{config.port}/label/ "
            "(sign in with a token from `pluralrm users token NAME`)",
            soft_wrap=True,
        )
    uvicorn.run(application, host=config.host, port=config.port, log_level="info" if verbose else "warning")
