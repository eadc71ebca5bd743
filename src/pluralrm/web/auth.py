"""FastAPI dependencies deciding who a request acts as, for every pluralrm app.

* :func:`bearer_principal` — the one parser of ``Authorization``: the ``Bearer`` scheme only; any other
  scheme, even carrying a valid token, is refused with 401 (a token must never be accepted under a scheme
  the caller did not mean, e.g. one a proxy adds). No header: ``None`` (the route decides).
* :func:`web_caller` — a bearer token (scripts) or the session cookie a browser got by signing in. A cookie
  is sent by the browser on its own, so a state-changing request relying on it must carry the session's
  CSRF token and come from this site (:func:`check_csrf`); a bearer token is never sent on its own.
* :func:`sign_in` — a token typed into a sign-in form becomes a session, with attempts limited per client
  address (failed attempts) and per labeller (all attempts): HTTP 429 with ``Retry-After`` past the limit.

The app keeps its :class:`~pluralrm.web.tokens.TokenStore` in ``app.state.pluralrm_tokens``
(:func:`install_tokens`); both the reward server and the labelling app set it, so one token store serves
a process whichever routes it mounts.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, status

from pluralrm.web.tokens import Principal, RevokedTokenError, TokenStore

COOKIE = "pluralrm_session"


def install_tokens(app: FastAPI, tokens: TokenStore) -> None:
    app.state.pluralrm_tokens = tokens


def get_tokens(request: Request) -> TokenStore:
    return request.app.state.pluralrm_tokens


Tokens = Annotated[TokenStore, Depends(get_tokens)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def principal_of_token(tokens: TokenStore, token: str) -> Principal:
    """The live principal of ``token``; 401 naming why (unknown or revoked) otherwise."""
    try:
        found = tokens.lookup(token)
    except RevokedTokenError as error:
        raise unauthorized(str(error)) from None
    if found is None:
        raise unauthorized("unknown token")
    return found


def bearer_principal(request: Request, tokens: Tokens) -> Principal | None:
    """The caller from ``Authorization: Bearer TOKEN``; ``None`` without a header; 401 for anything else."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    return principal_of_token(tokens, token.strip())


Bearer = Annotated[Principal | None, Depends(bearer_principal)]


@dataclass(frozen=True)
class Caller:
    """A request's principal; ``csrf`` is set for cookie sessions (``None``: a bearer token)."""

    principal: Principal
    csrf: str | None


def web_caller(request: Request, tokens: Tokens, bearer: Bearer) -> Caller | None:
    """A bearer token's principal (a wrong token is refused even when a good cookie comes with it), else
    the live session of the cookie, else ``None``."""
    if bearer is not None:
        return Caller(bearer, None)
    session = request.cookies.get(COOKIE)
    found = tokens.session(session) if session else None
    return None if found is None else Caller(found[0], found[1])


MaybeCaller = Annotated[Caller | None, Depends(web_caller)]


def require_caller(who: MaybeCaller) -> Caller:
    if who is None:
        raise unauthorized(
            "missing, unknown or expired credentials: send 'Authorization: Bearer <token>' or sign in"
        )
    return who


WebCaller = Annotated[Caller, Depends(require_caller)]


def check_same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")


def check_csrf(request: Request, expected: str | None, sent: str | None) -> None:
    """403 for a request from another site, or a cookie session's (``expected``: its CSRF token; ``None``
    for a bearer token) without its CSRF token."""
    check_same_origin(request)
    if expected is not None and not (sent and secrets.compare_digest(sent, expected)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token; reload the page")


@dataclass(frozen=True)
class SignInLimit:
    """At most ``attempts`` sign-ins per labeller, and failed ones per client address, in any
    ``window_seconds``."""

    attempts: int
    window_seconds: float


def sign_in(
    request: Request, tokens: TokenStore, token: str, *, hours: float, limit: SignInLimit
) -> tuple[Principal, str] | None:
    """A new session (principal, session id) for a token typed into a sign-in form; ``None`` for a wrong one.

    Refused with 429 past the limit — checked before the token is, so a client over its limit learns
    nothing about the tokens it tries.
    """
    address = f"ip:{request.client.host if request.client else 'unknown'}"
    _refuse_if_over(tokens, address, limit)
    try:
        found = tokens.lookup(token) if token else None
    except RevokedTokenError:
        found = None
    if found is None:
        tokens.record_attempt(address)
        return None
    labeller = f"user:{found.name}"
    _refuse_if_over(tokens, labeller, limit)
    tokens.record_attempt(labeller)
    session, _ = tokens.open_session(token, hours=hours)
    return found, session


def _refuse_if_over(tokens: TokenStore, key: str, limit: SignInLimit) -> None:
    wait = tokens.attempts_wait(key, limit=limit.attempts, window_seconds=limit.window_seconds)
    if wait > 0:
        seconds = max(math.ceil(wait), 1)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many sign-in attempts ({limit.attempts} per {limit.window_seconds:g} s); "
            f"try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
