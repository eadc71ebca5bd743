"""`pluralrm serve`: the reward server on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pluralrm.cli.common import app, console, fail, load_model, setup_logging
from pluralrm.cli.options import config_options
from pluralrm.config import FEATURIZE, SERVE, FeaturizeConfig, ServeConfig


@app.command()
@config_options(SERVE)
@config_options(FEATURIZE, "device", into="featurize")
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
    store = ProfileStore(profiles)
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
        )
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(
        f"admin token: {token_source}; profiles: {store.path}; docs: http://{config.host}:{config.port}/docs",
        soft_wrap=True,
    )
    uvicorn.run(application, host=config.host, port=config.port, log_level="info" if verbose else "warning")
