"""The reward server's app factory: one FastAPI app per reward model.

``create_app`` returns a plain FastAPI app, so other routers (the labelling page of the collection stage)
can be mounted on it and share its auth (:mod:`pluralrm.serve.state`). The backbone is loaded once, at
startup; its forward passes run on one worker thread behind a micro-batcher, never on the event loop.
Errors come back as JSON ``{"detail": ...}`` with the right status and never a stack trace.
"""

from __future__ import annotations

import copy
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import pluralrm
import pluralrm.serve.scoring as scoring
import pluralrm.serve.users as users
from pluralrm.adapt.profiles import ProfileMismatchError, ProfileStore
from pluralrm.config import FEATURIZE, LABEL, SERVE, LabelConfig, ServeConfig
from pluralrm.rewards.reward_model import IncompatibleBackboneError, RewardModel
from pluralrm.serve.batching import FeatureService, MemoryFeatureCache, MicroBatcher
from pluralrm.serve.metrics import ServerMetrics
from pluralrm.serve.state import ServerState, namespace_key, refuse_unknown_query_parameters
from pluralrm.web.auth import install_tokens
from pluralrm.web.limits import BodyLimit
from pluralrm.web.tokens import ADMIN, TokenStore, is_loopback

if TYPE_CHECKING:
    from pluralrm.backbone.featurizer import Featurizer
    from pluralrm.label.store import LabelStore

logger = logging.getLogger(__name__)
LABEL_PREFIX = "/label"  # where `pluralrm serve --label PROJECT` mounts the labelling page


def create_app(
    model: RewardModel | str | Path,
    *,
    store: ProfileStore | str | Path | None = None,
    config: ServeConfig = SERVE,
    require_token: bool | None = None,
    admin_token: str | None = None,
    device: str = FEATURIZE.device,
    featurizer: Featurizer | None = None,
    label: LabelStore | None = None,
    label_config: LabelConfig = LABEL,
) -> FastAPI:
    """A reward server for ``model`` (a :class:`RewardModel` or its directory).

    Parameters
    ----------
    store : ProfileStore or path, optional
        Profiles, labelled pairs and tokens (one SQLite file); default ``$PLURALRM_CACHE/profiles.sqlite``.
    config : ServeConfig
        Batching, cache and size limits.
    require_token : bool, optional
        Whether the general reward needs a token; default: only when ``config.host`` is not loopback.
    admin_token : str, optional
        Registered as the admin token (``pluralrm serve`` reads or makes one, see
        :func:`pluralrm.web.tokens.admin_token`).
    device : str
        Where the backbone runs (``auto``, ``cpu``, ``cuda``).
    featurizer : Featurizer, optional
        Use this instead of loading the model's backbone (tests, or a backbone already in memory).
    label : LabelStore, optional
        A labelling project to mount under ``/label`` (``pluralrm serve --label PROJECT``): people sign in
        there with this server's tokens, and each label they give updates their profile, so the served
        reward of that user follows their clicks (:mod:`pluralrm.serve.loop`).
    label_config : LabelConfig
        How the mounted labelling page assigns pairs (``assign``: ``personal`` — the active rule on the
        labeller's own profile — or ``shared``), keeps sessions and limits sign-ins.
    """
    if not isinstance(model, RewardModel):
        model = RewardModel.from_pretrained(model)
    profiles = store if isinstance(store, ProfileStore) else ProfileStore(store)
    tokens = TokenStore(profiles.path)  # the one token store of the process, labelling routes included
    if admin_token is not None:
        tokens.register(admin_token, role=ADMIN)
    if require_token is None:
        require_token = not is_loopback(config.host)
    metrics = ServerMetrics()
    state = ServerState(
        model=model,
        profiles=profiles,
        tokens=tokens,
        config=config,
        require_token=require_token,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The server's own copy (same backbone), with a token budget that splits mixed-length batches.
        state.featurizer = copy.copy(featurizer or model.featurizer(device=device))
        state.featurizer.max_batch_tokens = config.max_batch_tokens
        batcher = MicroBatcher(
            state.featurizer.encode,
            max_batch_texts=config.max_batch_texts,
            max_wait_ms=config.max_wait_ms,
            on_batch=metrics.observe_batch,
        )
        await batcher.start()
        state.service = FeatureService(
            batcher,
            MemoryFeatureCache(config.cache_entries),
            n_features=model.n_features,
            on_lookup=metrics.observe_lookup,
        )
        if state.loop is not None:  # labels given while no server applied them (a crash, `label serve`)
            applied = await state.loop.sync()
            if applied:
                logger.info("applied %d labels of %s to their labellers' profiles", applied, label)
        logger.info(
            "serving %s (%d heads) on %s; general reward %s a token",
            model.backbone_name,
            len(model.head_names),
            state.featurizer.backbone.device,
            "needs" if require_token else "does not need",
        )
        try:
            yield
        finally:
            await batcher.stop()
            state.profile_cache.close()

    app = FastAPI(
        title="pluralrm reward server",
        version=pluralrm.__version__,
        summary="General, per-head and per-user rewards; OpenRLHF-compatible /get_reward.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unknown_query_parameters)],
    )
    app.state.pluralrm = state
    install_tokens(app, tokens)
    app.include_router(scoring.router)
    app.include_router(users.router)

    @app.get("/healthz")
    def healthz() -> dict:
        return {
            "status": "ok" if state.service is not None else "starting",
            "backbone": model.backbone_name,
            "heads": model.head_names,
            "require_token": require_token,
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    _add_error_handlers(app)
    limits = {}
    if label is not None:
        from pluralrm.label.app import mount_labelling
        from pluralrm.serve.loop import LabelLoop

        async def featurize_conversations(conversations: list[tuple[Any, str]]) -> np.ndarray:
            assert state.service is not None and state.featurizer is not None  # set at startup
            fmt = state.featurizer.format
            return await state.service.features([fmt(prompt, response) for prompt, response in conversations])

        state.loop = LabelLoop(
            model,
            profiles,
            label,
            featurize_conversations,
            features=namespace_key(model.namespace),
            strategy=label_config.strategy,
        )
        mount_labelling(app, label, label_config, prefix=LABEL_PREFIX, loop=state.loop)
        limits[LABEL_PREFIX] = label_config.max_body_bytes
    # Outermost first: the body limit runs before any route (its 413s are counted by the metrics too).
    app.add_middleware(BodyLimit, max_body_bytes=config.max_body_bytes, limits=limits)
    app.add_middleware(_Metrics, metrics=metrics)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the offending input; a 4 MB body echoed back helps nobody. Location + message.
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(ProfileMismatchError)
    @app.exception_handler(IncompatibleBackboneError)
    async def conflict(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )


class _Metrics:
    """ASGI middleware recording each request's route, status and latency."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(path, status_code, time.perf_counter() - start)
