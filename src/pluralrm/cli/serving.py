"""`pluralrm serve`: the reward server on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pluralrm.cli.common import (
    DeviceOption,
    app,
    console,
    fail,
    load_model,
    serve_option,
    setup_logging,
)
from pluralrm.config import (
    FEATURIZE,
    SERVE,
    ServeConfig,
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
