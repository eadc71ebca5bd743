"""What every route of one server shares — the model, features, stores, limits — and who may do what."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status

from pluralrm.adapt.profiles import ProfileCache, ProfileNotFoundError, ProfileStore, UserProfile
from pluralrm.config import ServeConfig
from pluralrm.rewards.reward_model import RewardModel, comparable_namespace
from pluralrm.serve.batching import FeatureService
from pluralrm.serve.metrics import ServerMetrics
from pluralrm.web.auth import Bearer, Tokens, bearer_principal, principal_of_token, unauthorized
from pluralrm.web.tokens import Principal, TokenStore

if TYPE_CHECKING:
    from pluralrm.backbone.featurizer import Featurizer
    from pluralrm.serve.loop import LabelLoop


def namespace_key(namespace: dict) -> str:
    """Fingerprint of a feature namespace: stored comparisons are only reused under the same one."""
    text = json.dumps(comparable_namespace(namespace), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class ServerState:
    model: RewardModel
    profiles: ProfileStore
    tokens: TokenStore
    config: ServeConfig
    require_token: bool
    metrics: ServerMetrics
    featurizer: Featurizer | None = None  # set at startup, when the backbone is loaded
    service: FeatureService | None = None
    loop: LabelLoop | None = None  # a mounted labelling project's bridge to the profiles
    # Profiles in memory until the store's file changes: a per-user request reads no SQLite row
    # (benchmarks/profiles_at_scale.py measures the per-user path against the general reward).
    profile_cache: ProfileCache = field(init=False)

    def __post_init__(self) -> None:
        self.profile_cache = ProfileCache(self.profiles, self.config.profile_cache_entries)

    def check_texts(self, field: str, texts: Sequence[str]) -> None:
        """Refuse too many texts or too long ones with a message naming the field and item (HTTP 422)."""
        if len(texts) > self.config.max_texts:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{field}: {len(texts)} items; at most {self.config.max_texts} per request",
            )
        for i, text in enumerate(texts):
            if len(text) > self.config.max_text_chars:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    f"{field}[{i}]: {len(text)} characters; at most {self.config.max_text_chars}",
                )

    def profile(self, user: str) -> UserProfile:
        try:
            return self.profile_cache.get(user, head_set=self.model.head_set)
        except ProfileNotFoundError:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"user {user!r} has no profile yet; POST labelled pairs to /v1/users/{user}/comparisons",
            ) from None


def get_state(request: Request) -> ServerState:
    return request.app.state.pluralrm


State = Annotated[ServerState, Depends(get_state)]


# The one bearer dependency of every pluralrm app (Bearer scheme only; 401 for any other).
Caller = Bearer


def openrlhf_principal(request: Request, tokens: Tokens) -> Principal | None:
    """The caller of an OpenRLHF reward route: a bearer token as everywhere, or HTTP Basic ``USER:TOKEN``.

    The one exception to "Bearer only", and why: OpenRLHF's remote-reward client sets no headers
    (``openrlhf/utils/agent.py``, ``session.post(url, json=data)``), so the only credentials it can send are
    those written in the URL, which aiohttp turns into this Basic header: ``--reward.remote_url
    http://alice:TOKEN@HOST:PORT/v1/users/alice/get_reward`` authenticates as alice. Basic is accepted on
    OpenRLHF's two reward routes only (``/get_reward`` and ``/v1/users/USER/get_reward``); every other
    route keeps to bearer tokens. The user name, when given, must be the token's own user (an admin token
    may name anyone); the token is checked by the same store as a bearer token, revocation included.
    """
    header = request.headers.get("authorization")
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return bearer_principal(request, tokens)
    try:
        name, sep, token = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized(
            "the Authorization header's Basic credentials are not base64 'user:token'"
        ) from None
    if not sep:
        raise unauthorized("unknown token")
    found = principal_of_token(tokens, token.strip())
    if name and not found.is_admin and name != found.user:
        raise unauthorized(f"the user name {name!r} in the credentials is not this token's user")
    return found


OpenRLHFCaller = Annotated[Principal | None, Depends(openrlhf_principal)]


def refuse_unknown_query_parameters(request: Request) -> None:
    """HTTP 422 for a query parameter the route does not read: ``/get_reward?user=alice`` must not quietly
    return the general reward (every route's own parameters are in its OpenAPI description)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known: set[str] = set()
    todo = [dependant] if dependant is not None else []
    while todo:  # the route's own query parameters and those of every dependency it declares
        dependant = todo.pop()
        known.update(param.alias for param in dependant.query_params)
        todo.extend(dependant.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if not unknown:
        return
    path = getattr(route, "path", request.url.path)
    takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
    hint = ""
    if path == "/get_reward" and "user" in unknown:
        hint = (
            "; a user's reward: POST /v1/users/NAME/get_reward (OpenRLHF: --reward.remote_url "
            'http://NAME:TOKEN@HOST:PORT/v1/users/NAME/get_reward), or "user" in the body with their token'
        )
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        f"unknown query parameter {unknown[0]!r} for {request.method} {path}; {takes}{hint}",
    )


def require_admin(who: Caller) -> Principal:
    if who is None:
        raise unauthorized("this needs the admin token")
    if not who.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin token")
    return who


Admin = Annotated[Principal, Depends(require_admin)]


def require_user(user: str, who: Principal | None) -> Principal:
    """The caller may act for ``user``: that user's token or the admin's (401 without one, 403 for others)."""
    if who is None:
        raise unauthorized(f"acting for user {user!r} needs that user's token")
    if not who.may_act_for(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token may not act for user {user!r}")
    return who


def require_scoring(state: ServerState, who: Principal | None, user: str | None) -> None:
    """Scoring with a profile needs its user's (or the admin's) token; the general reward needs a token
    only when the server requires one (``--require-token``, the default off loopback)."""
    if user is not None:
        require_user(user, who)
    elif state.require_token and who is None:
        raise unauthorized("this server requires a token (--require-token)")
