"""The labelling web app: server-rendered pages for people, a small JSON API for scripts, one store.

Routes live on an :class:`fastapi.APIRouter` (:func:`label_router`) so the reward server can mount them
later; :func:`create_label_app` wraps them in an app of their own for ``pluralrm label serve``.

Who is asking is decided once per request (:func:`_caller`): an ``Authorization: Bearer`` token (scripts,
the simulated labellers) or the session cookie a browser got by signing in with its token. A cookie is sent
by the browser on its own, so every state-changing request that relies on it must also carry the session's
CSRF token (header ``X-CSRF-Token`` or form field ``csrf``) and, when the browser says where it comes from
(``Origin``), come from this site; the cookie is HttpOnly and SameSite=Strict besides. A bearer token is
never sent on its own, so bearer requests need no CSRF token. Bodies are read through one size limit.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections import Counter
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field, ValidationError

from pluralrm.config import LABEL, LabelConfig
from pluralrm.label import agreement
from pluralrm.label.io import export_rows
from pluralrm.label.store import Label, LabelError, Labeller, LabelStore

logger = logging.getLogger(__name__)

COOKIE = "pluralrm_label"
_STATIC = {"label.js": "text/javascript; charset=utf-8", "label.css": "text/css; charset=utf-8"}
_HEADERS = {
    # Pages load only their own script and style: an injected <script> (say, in a response being judged,
    # were escaping ever to fail) would not run.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LabelIn(BaseModel):
    """A label as posted: ``choice`` in screen terms (the response shown first is ``"1"``)."""

    pair_id: str = Field(min_length=1, max_length=512)
    choice: Literal["1", "2", "tie", "skip"]
    tags: list[str] = Field(default_factory=list, max_length=32)
    seconds: float | None = Field(default=None, ge=0.0, le=86_400.0)


@dataclass(frozen=True)
class Caller:
    """The labeller behind a request; ``csrf`` is set for cookie sessions (``None``: a bearer token)."""

    labeller: Labeller
    csrf: str | None


def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("pluralrm.label", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def label_router(store: LabelStore, config: LabelConfig = LABEL, *, prefix: str = "") -> APIRouter:
    """The labelling routes on ``store`` under ``prefix`` (``""`` or e.g. ``"/label"``)."""
    router = APIRouter(prefix=prefix)
    env = _templates()
    base = prefix.rstrip("/")

    def page(template: str, code: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(base=base, **context)
        return HTMLResponse(html, status_code=code, headers=_HEADERS)

    def caller(request: Request) -> Caller | None:
        header = request.headers.get("authorization")
        if header is not None:  # a wrong token is refused even when a good cookie comes with it
            scheme, _, token = header.partition(" ")
            found = store.labeller_for_token(token.strip()) if scheme.lower() == "bearer" else None
            return None if found is None else Caller(found, None)
        session = request.cookies.get(COOKIE)
        got = store.session(session) if session else None
        return None if got is None else Caller(got[0], got[1])

    def api_caller(request: Request, *, admin: bool = False) -> Caller:
        who = caller(request)
        if who is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or unknown token: send 'Authorization: Bearer <token>' or sign in",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if admin and not who.labeller.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin token")
        return who

    async def body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(config))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(config))
            chunks.append(chunk)
        return b"".join(chunks)

    def check_csrf(request: Request, who: Caller, sent: str | None) -> None:
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
        if who.csrf is not None and not (sent and secrets.compare_digest(sent, who.csrf)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token; reload the page")

    def save(who: Caller, posted: LabelIn) -> Label:
        unknown = sorted(set(posted.tags) - set(config.tags))
        if unknown:
            raise HTTPException(422, f"unknown tags {unknown}; known: {list(config.tags)}")
        try:
            return store.record_label(
                who.labeller, posted.pair_id, posted.choice, tags=posted.tags, seconds=posted.seconds
            )
        except LabelError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None

    def next_for(labeller: Labeller):
        return store.next_for(
            labeller,
            labels_per_pair=config.labels_per_pair,
            budget=config.budget,
            reserve_seconds=config.reserve_seconds,
        )

    # --- JSON API ------------------------------------------------------------------------------------

    @router.get("/api/next", response_model=None)
    def api_next(request: Request) -> Response:
        """The caller's next pair (responses in their remembered order) and progress; 204 when done."""
        who = api_caller(request)
        shown, progress = next_for(who.labeller)
        if shown is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        return JSONResponse(
            {
                "pair_id": shown.pair_id,
                "prompt": shown.prompt,
                "response_1": shown.response_1,
                "response_2": shown.response_2,
                "progress": {"done": progress.done, "total": progress.total},
            }
        )

    @router.post("/api/labels")
    async def api_label(request: Request) -> dict:
        """Set or change the caller's label on a pair shown to them."""
        who = api_caller(request)
        raw = await body(request)
        check_csrf(request, who, request.headers.get("x-csrf-token"))
        try:
            posted = LabelIn.model_validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise HTTPException(422, problems or "invalid label") from None
        save(who, posted)
        return {"ok": True}

    @router.get("/api/labels")
    def api_my_labels(request: Request) -> list[dict]:
        """The caller's own labels, in the terms they saw (1 / 2 / tie / skip)."""
        who = api_caller(request)
        rows = []
        for label in store.labels(who.labeller):
            shown = store.shown(who.labeller, label.pair_id)
            assert shown is not None  # a label is a row of the labeller's shown pairs
            rows.append(
                {
                    "pair_id": label.pair_id,
                    "choice": shown.choice,
                    "tags": list(label.tags),
                    "seconds": label.seconds,
                }
            )
        return rows

    @router.get("/api/export")
    def api_export(request: Request, per_labeller: bool = False) -> Response:
        """Human labels as TRL pairwise JSONL (admin): majority per pair, or every labeller's own."""
        api_caller(request, admin=True)
        rows = export_rows(store, per_labeller=per_labeller)
        name = "labels-per-labeller.jsonl" if per_labeller else "labels.jsonl"
        return Response(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    @router.get("/api/stats")
    def api_stats(request: Request) -> dict:
        """Counts, Cohen's κ per labeller pair, AI-vs-human agreement and time per label (admin)."""
        api_caller(request, admin=True)
        return project_stats(store)

    # --- pages ---------------------------------------------------------------------------------------

    @router.get("/signin", response_class=HTMLResponse)
    def signin_page() -> HTMLResponse:
        return page("signin.html")

    @router.post("/signin", response_model=None)
    async def signin(request: Request) -> Response:
        form = _form(await body(request))
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
        found = store.labeller_for_token(form.get("token", [""])[0].strip())
        if found is None:
            return page("signin.html", 401, error="That token is not known here.")
        session, _ = store.open_session(found, hours=config.session_hours)
        response = RedirectResponse(f"{base}/admin" if found.is_admin else f"{base}/", status_code=303)
        response.set_cookie(
            COOKIE,
            session,
            max_age=int(config.session_hours * 3600),
            path=base or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/signout", response_model=None)
    async def signout(request: Request) -> Response:
        who = api_caller(request)
        check_csrf(request, who, _form(await body(request)).get("csrf", [None])[0])
        store.close_session(request.cookies.get(COOKIE, ""))
        response = RedirectResponse(f"{base}/signin", status_code=303)
        response.delete_cookie(COOKIE, path=base or "/")
        return response

    @router.get("/", response_class=HTMLResponse, response_model=None)
    def label_page(request: Request, pair: str | None = None) -> Response:
        who = caller(request)
        if who is None or who.csrf is None:
            return RedirectResponse(f"{base}/signin", status_code=303)
        shown, progress = next_for(who.labeller)
        if pair is not None:  # revisit an answered pair (only one's own)
            shown = store.shown(who.labeller, pair)
            if shown is None:
                return page("message.html", 404, who=who.labeller, text="No such pair among yours.")
        recent = [store.shown(who.labeller, label.pair_id) for label in store.labels(who.labeller)[-5:]]
        return page(
            "label.html",
            who=who.labeller,
            csrf=who.csrf,
            shown=shown,
            progress=progress,
            tags=config.tags,
            recent=list(reversed(recent)),
        )

    @router.post("/label", response_model=None)
    async def label_form(request: Request) -> Response:
        """The same as ``POST /api/labels`` for the page without JavaScript."""
        who = api_caller(request)
        form = _form(await body(request))
        check_csrf(request, who, form.get("csrf", [None])[0])
        try:
            posted = LabelIn.model_validate(
                {
                    "pair_id": form.get("pair_id", [""])[0],
                    "choice": form.get("choice", [""])[0],
                    "tags": form.get("tags", []),
                }
            )
        except ValidationError:
            raise HTTPException(422, "a label needs pair_id and choice (1, 2, tie or skip)") from None
        save(who, posted)
        return RedirectResponse(f"{base}/", status_code=303)

    @router.get("/admin", response_class=HTMLResponse, response_model=None)
    def admin_page(request: Request) -> Response:
        who = caller(request)
        if who is None or who.csrf is None:
            return RedirectResponse(f"{base}/signin", status_code=303)
        if not who.labeller.is_admin:
            return page("message.html", 403, who=who.labeller, text="This page is for admins.")
        return page("admin.html", who=who.labeller, csrf=who.csrf, stats=project_stats(store), config=config)

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, "no such file")
        text = files("pluralrm.label").joinpath("static", name).read_text(encoding="utf-8")
        return Response(text, media_type=_STATIC[name], headers={"X-Content-Type-Options": "nosniff"})

    return router


def _too_large(config: LabelConfig) -> str:
    return f"request body over the limit of {config.max_body_bytes:,} bytes"


def _form(raw: bytes) -> dict[str, list[str]]:
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(422, "expected a URL-encoded form") from None


def project_stats(store: LabelStore) -> dict:
    """What the admin page shows, as plain JSON-able values (NaN κ becomes ``None``)."""
    pairs = store.pairs()
    labels = store.labels()
    counts = agreement.choice_counts(labels)
    labelled = {label.pair_id for label in labels if label.choice in agreement.JUDGMENTS}
    ai = {pair.pair_id: pair.ai_label for pair in pairs}
    # Admins appear only once they label (most never do; a row of zeros would read as a lazy labeller).
    names = [who.name for who in store.labellers() if not who.is_admin or who.name in counts]
    return {
        "pairs": len(pairs),
        "pairs_labelled": len(labelled),
        "labels": sum(sum(c.values()) for c in counts.values()),
        "per_labeller": [
            {"labeller": n, **{c: counts.get(n, Counter()).get(c, 0) for c in (*agreement.JUDGMENTS, "skip")}}
            for n in names
        ],
        "kappa": [
            asdict(row) | {"kappa": None if math.isnan(row.kappa) else row.kappa}
            for row in agreement.pairwise_kappa(labels)
        ],
        "ai_agreement": [asdict(row) for row in agreement.ai_agreement(labels, ai)],
        "time_per_label": [asdict(row) for row in agreement.time_per_label(labels)],
    }


def create_label_app(store: LabelStore, config: LabelConfig = LABEL) -> FastAPI:
    """A FastAPI app serving only the labelling routes (no API docs: nothing there for a labeller)."""
    app = FastAPI(title="pluralrm labelling", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(label_router(store, config))
    return app
