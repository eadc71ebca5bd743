"""The labelling web app: server-rendered pages for people, a small JSON API for scripts, one store.

The routes are module-level (one :data:`router`, no closures over a store): what they act on — the store,
its settings, where they are mounted, and the reward server's bridge when there is one — is the app's
:class:`LabelSite`, set by :func:`mount_labelling`. ``pluralrm label serve`` mounts them on an app of their
own (:func:`create_label_app`); ``pluralrm serve MODEL --label PROJECT`` mounts them under ``/label`` on the
reward server, where each label updates the labeller's profile and served reward at once
(:mod:`pluralrm.serve.loop`).

Who is asking comes from the one web layer (:mod:`pluralrm.web.auth`): a ``Bearer`` token (scripts) or
the session cookie a browser got by signing in — sessions expire server-side and end when their token is
revoked; sign-ins are rate limited. A cookie is sent by the browser on its own, so every state-changing
request relying on it must carry the session's CSRF token (header ``X-CSRF-Token`` or form field
``csrf``) and, when the browser says where it comes from (``Origin``), come from this site; the cookie is
HttpOnly and SameSite=Strict besides. Bodies are limited by :class:`pluralrm.web.limits.BodyLimit`.

Which pair comes next: ``assign="shared"`` hands each pair to several labellers, AI-uncertain first
(:mod:`pluralrm.label.assign`); ``assign="personal"`` asks each labeller the pairs the active rule picks for
*their* profile (:func:`pluralrm.adapt.active.next_pairs`, through the server's :class:`PersonalLoop`).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Annotated, Literal, Protocol
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field, ValidationError

from pluralrm.config import LABEL, LabelConfig
from pluralrm.label import agreement
from pluralrm.label.io import export_rows
from pluralrm.label.store import Label, LabelError, Labeller, LabelStore, PairToLabel, Progress, Shown
from pluralrm.web.auth import (
    COOKIE,
    MaybeCaller,
    SignInLimit,
    Tokens,
    WebCaller,
    check_csrf,
    check_same_origin,
    install_tokens,
    sign_in,
)
from pluralrm.web.limits import BodyLimit

logger = logging.getLogger(__name__)

ASSIGN = ("auto", "personal", "shared")
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


class PersonalLoop(Protocol):
    """What the reward server lends the labelling routes: the active pick for a labeller's own profile, and
    the bridge that turns their label into a profile update (:class:`pluralrm.serve.loop.LabelLoop`)."""

    async def pick(self, user: str, candidates: Sequence[PairToLabel], n: int) -> list[str]:
        """Ids of the ``n`` candidates to ask ``user`` next, best first."""
        ...

    async def prepare(self, pair: PairToLabel) -> None:
        """Featurize ``pair`` before its label is stored (a failure then stores nothing)."""
        ...

    async def apply(self, user: str, pair: PairToLabel, choice: str) -> object:
        """Make ``user``'s profile hold their current answer on ``pair`` (``a``, ``b``, ``tie``, ``skip``)."""
        ...


@dataclass(frozen=True)
class LabelSite:
    """What the labelling routes of one app act on."""

    store: LabelStore
    config: LabelConfig
    prefix: str
    assign: str  # "personal" or "shared" ("auto" resolved)
    loop: PersonalLoop | None
    templates: Environment

    def page(self, template: str, code: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
        html = self.templates.get_template(template).render(base=self.prefix, **context)
        return HTMLResponse(html, status_code=code, headers=_HEADERS | (headers or {}))


def get_site(request: Request) -> LabelSite:
    return request.app.state.pluralrm_label


Site = Annotated[LabelSite, Depends(get_site)]


@dataclass(frozen=True)
class Who:
    """The labeller behind a request; ``csrf`` is set for cookie sessions (``None``: a bearer token)."""

    labeller: Labeller
    csrf: str | None


def maybe_who(site: Site, caller: MaybeCaller) -> Who | None:
    return None if caller is None else Who(site.store.labeller(caller.principal), caller.csrf)


def require_who(site: Site, caller: WebCaller) -> Who:
    return Who(site.store.labeller(caller.principal), caller.csrf)


def require_admin(who: Annotated[Who, Depends(require_who)]) -> Who:
    if not who.labeller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin token")
    return who


MaybeWho = Annotated[Who | None, Depends(maybe_who)]
AnyWho = Annotated[Who, Depends(require_who)]
AdminWho = Annotated[Who, Depends(require_admin)]
router = APIRouter()


class LabelIn(BaseModel):
    """A label as posted: ``choice`` in screen terms (the response shown first is ``"1"``)."""

    pair_id: str = Field(min_length=1, max_length=512)
    choice: Literal["1", "2", "tie", "skip"]
    tags: list[str] = Field(default_factory=list, max_length=32)
    seconds: float | None = Field(default=None, ge=0.0, le=86_400.0)


def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("pluralrm.label", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def mount_labelling(
    app: FastAPI,
    store: LabelStore,
    config: LabelConfig = LABEL,
    *,
    prefix: str = "",
    loop: PersonalLoop | None = None,
) -> LabelSite:
    """Mount the labelling routes on ``app`` under ``prefix`` (``""`` or e.g. ``"/label"``).

    The app must hold a token store (:func:`pluralrm.web.auth.install_tokens`); ``loop`` is the reward
    server's bridge (personal assignment and profile updates). One labelling project per app.
    """
    if config.assign not in ASSIGN:
        raise ValueError(f"assign must be one of {', '.join(ASSIGN)}; got {config.assign!r}")
    if config.labels_per_pair < 1 or (config.budget is not None and config.budget < 0):
        raise ValueError("labels_per_pair must be at least 1 and budget not negative")
    if config.signin_attempts < 1 or config.signin_window_seconds <= 0:
        raise ValueError("signin_attempts must be at least 1 and signin_window_seconds positive")
    assign = config.assign if config.assign != "auto" else ("personal" if loop is not None else "shared")
    if assign == "personal" and loop is None:
        raise ValueError(
            "assign 'personal' picks pairs with a reward model: serve the project with "
            "`pluralrm serve MODEL --label PROJECT`"
        )
    if getattr(app.state, "pluralrm_label", None) is not None:
        raise ValueError("this app already serves a labelling project")
    site = LabelSite(store, config, prefix.rstrip("/"), assign, loop, _templates())
    app.state.pluralrm_label = site
    app.include_router(router, prefix=site.prefix)
    return site


def create_label_app(store: LabelStore, config: LabelConfig = LABEL) -> FastAPI:
    """A FastAPI app serving only the labelling routes, on the project's own token store (no API docs:
    nothing there for a labeller)."""
    app = FastAPI(title="pluralrm labelling", docs_url=None, redoc_url=None, openapi_url=None)
    install_tokens(app, store.tokens)
    mount_labelling(app, store, config)
    app.add_middleware(BodyLimit, max_body_bytes=config.max_body_bytes)
    return app


# --- assignment and labels -------------------------------------------------------------------------------


async def next_shown(site: LabelSite, labeller: Labeller, n: int = 1) -> tuple[list[Shown], Progress]:
    """The pairs this labeller should answer now (their unanswered ones first), and their progress."""
    store = site.store
    if site.assign == "shared":
        if n != 1:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "n: shared assignment hands out one pair at a time (several pairs at once need "
                "assign 'personal')",
            )
        shown, progress = store.next_for(
            labeller,
            labels_per_pair=site.config.labels_per_pair,
            budget=site.config.budget,
            reserve_seconds=site.config.reserve_seconds,
        )
        return ([] if shown is None else [shown]), progress
    assert site.loop is not None  # mount_labelling refuses personal assignment without one
    out = [store.show(labeller, pair_id) for pair_id in store.pending(labeller)[:n]]
    if len(out) < n:
        candidates = store.unseen(labeller)
        if candidates:
            picked = await site.loop.pick(labeller.name, candidates, min(n - len(out), len(candidates)))
            out += [store.show(labeller, pair_id) for pair_id in picked]
    return out, store.personal_progress(labeller)


async def save(site: LabelSite, who: Who, posted: LabelIn) -> Label:
    """Store a label; on the reward server, the labeller's profile follows before the reply."""
    unknown = sorted(set(posted.tags) - set(site.config.tags))
    if unknown:
        raise HTTPException(422, f"unknown tags {unknown}; known: {list(site.config.tags)}")
    pair = site.store.pair(posted.pair_id)
    if site.loop is not None and pair is not None:
        await site.loop.prepare(pair)
    try:
        label = site.store.record_label(
            who.labeller, posted.pair_id, posted.choice, tags=posted.tags, seconds=posted.seconds
        )
    except LabelError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    if site.loop is not None and pair is not None:
        await site.loop.apply(who.labeller.name, pair, label.choice)
    return label


def _shown_json(shown: Shown) -> dict:
    return {
        "pair_id": shown.pair_id,
        "prompt": shown.prompt,
        "response_1": shown.response_1,
        "response_2": shown.response_2,
    }


# --- JSON API ------------------------------------------------------------------------------------------


@router.get("/api/next", response_model=None)
async def api_next(site: Site, who: AnyWho) -> Response:
    """The caller's next pair (responses in their remembered order) and progress; 204 when done."""
    shown, progress = await next_shown(site, who.labeller)
    if not shown:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return JSONResponse(
        _shown_json(shown[0]) | {"progress": {"done": progress.done, "total": progress.total}}
    )


@router.get("/api/pairs")
async def api_pairs(site: Site, who: AnyWho, n: Annotated[int, Query(ge=1, le=100)] = 1) -> dict:
    """The caller's next ``n`` pairs at once (a page or a program showing several); an empty list when
    done. Under personal assignment they are the active rule's batch for the caller's profile."""
    shown, progress = await next_shown(site, who.labeller, n)
    return {
        "pairs": [_shown_json(s) for s in shown],
        "progress": {"done": progress.done, "total": progress.total},
    }


@router.post("/api/labels")
async def api_label(request: Request, site: Site, who: AnyWho) -> dict:
    """Set or change the caller's label on a pair shown to them."""
    raw = await request.body()
    check_csrf(request, who.csrf, request.headers.get("x-csrf-token"))
    try:
        posted = LabelIn.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise HTTPException(422, problems or "invalid label") from None
    await save(site, who, posted)
    return {"ok": True}


@router.get("/api/labels")
def api_my_labels(site: Site, who: AnyWho) -> list[dict]:
    """The caller's own labels, in the terms they saw (1 / 2 / tie / skip)."""
    rows = []
    for label in site.store.labels(who.labeller):
        shown = site.store.shown(who.labeller, label.pair_id)
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
def api_export(site: Site, _: AdminWho, per_labeller: bool = False) -> Response:
    """Human labels as TRL pairwise JSONL (admin): majority per pair, or every labeller's own."""
    rows = export_rows(site.store, per_labeller=per_labeller)
    name = "labels-per-labeller.jsonl" if per_labeller else "labels.jsonl"
    return Response(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/api/stats")
def api_stats(site: Site, _: AdminWho) -> dict:
    """Counts, Cohen's κ per labeller pair, AI-vs-human agreement and time per label (admin)."""
    return project_stats(site.store)


# --- pages ---------------------------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def signin_page(site: Site) -> HTMLResponse:
    return site.page("signin.html")


@router.post("/signin", response_model=None)
async def signin(request: Request, site: Site, tokens: Tokens) -> Response:
    form = _form(await request.body())
    check_same_origin(request)
    limit = SignInLimit(site.config.signin_attempts, site.config.signin_window_seconds)
    try:
        opened = sign_in(
            request, tokens, form.get("token", [""])[0].strip(), hours=site.config.session_hours, limit=limit
        )
    except HTTPException as error:
        if error.status_code != status.HTTP_429_TOO_MANY_REQUESTS:
            raise
        return site.page("signin.html", error.status_code, dict(error.headers or {}), error=error.detail)
    if opened is None:
        return site.page("signin.html", 401, error="That token is not known here.")
    principal, session = opened
    base = site.prefix
    response = RedirectResponse(f"{base}/admin" if principal.is_admin else f"{base}/", status_code=303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(site.config.session_hours * 3600),
        path=base or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout", response_model=None)
async def signout(request: Request, site: Site, tokens: Tokens, who: AnyWho) -> Response:
    check_csrf(request, who.csrf, _form(await request.body()).get("csrf", [None])[0])
    tokens.close_session(request.cookies.get(COOKIE, ""))
    response = RedirectResponse(f"{site.prefix}/signin", status_code=303)
    response.delete_cookie(COOKIE, path=site.prefix or "/")
    return response


@router.get("/", response_class=HTMLResponse, response_model=None)
async def label_page(site: Site, who: MaybeWho, pair: str | None = None) -> Response:
    if who is None or who.csrf is None:
        return RedirectResponse(f"{site.prefix}/signin", status_code=303)
    store = site.store
    if pair is not None:  # revisit an answered pair (only one's own)
        shown = store.shown(who.labeller, pair)
        if shown is None:
            return site.page("message.html", 404, who=who.labeller, text="No such pair among yours.")
        progress = (await next_shown(site, who.labeller))[1]
    else:
        picked, progress = await next_shown(site, who.labeller)
        shown = picked[0] if picked else None
    recent = [store.shown(who.labeller, label.pair_id) for label in store.labels(who.labeller)[-5:]]
    return site.page(
        "label.html",
        who=who.labeller,
        csrf=who.csrf,
        shown=shown,
        progress=progress,
        tags=site.config.tags,
        recent=list(reversed(recent)),
    )


@router.post("/label", response_model=None)
async def label_form(request: Request, site: Site, who: AnyWho) -> Response:
    """The same as ``POST /api/labels`` for the page without JavaScript."""
    form = _form(await request.body())
    check_csrf(request, who.csrf, form.get("csrf", [None])[0])
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
    await save(site, who, posted)
    return RedirectResponse(f"{site.prefix}/", status_code=303)


@router.get("/admin", response_class=HTMLResponse, response_model=None)
def admin_page(site: Site, who: MaybeWho) -> Response:
    if who is None or who.csrf is None:
        return RedirectResponse(f"{site.prefix}/signin", status_code=303)
    if not who.labeller.is_admin:
        return site.page("message.html", 403, who=who.labeller, text="This page is for admins.")
    return site.page(
        "admin.html", who=who.labeller, csrf=who.csrf, stats=project_stats(site.store), config=site.config
    )


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC:
        raise HTTPException(404, "no such file")
    text = files("pluralrm.label").joinpath("static", name).read_text(encoding="utf-8")
    return Response(text, media_type=_STATIC[name], headers={"X-Content-Type-Options": "nosniff"})


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
