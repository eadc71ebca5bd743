"""User routes: the admin creates users and tokens; a user (or the admin) labels pairs, reads and deletes
their own profile. Each labelled batch is stored and the profile refitted in one SQLite transaction
(:meth:`pluralrm.adapt.ProfileStore.add_comparisons`), so an acknowledged update survives a crash."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Response, status

from pluralrm.adapt.personalize import build_profile
from pluralrm.adapt.profiles import Comparison, ProfileNotFoundError, UserProfile
from pluralrm.serve.schemas import (
    USER_NAME,
    ComparisonsRequest,
    ComparisonsResponse,
    NewUser,
    ProfileOut,
    StoredComparisonOut,
    TokenOut,
    plain_prompt,
)
from pluralrm.serve.state import Admin, Caller, State, namespace_key, require_user
from pluralrm.web.tokens import USER

router = APIRouter(prefix="/v1/users")
UserName = Annotated[str, Path(pattern=USER_NAME, description="User name.")]


def _profile_out(profile: UserProfile) -> ProfileOut:
    return ProfileOut(
        user=profile.user,
        method=profile.method,
        n_pairs=profile.n_pairs,
        weights=np.asarray(profile.weights, dtype=float).tolist(),
        has_full_part=profile.full is not None,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
def create_user(body: NewUser, state: State, _: Admin) -> TokenOut:
    """Create a user and their first token (admin only)."""
    if state.tokens.has_user(body.user):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"user {body.user!r} exists; POST /v1/users/{body.user}/tokens for another token",
        )
    return TokenOut(user=body.user, token=state.tokens.issue(role=USER, user=body.user))


@router.get("", response_model=list[str])
def list_users(state: State, _: Admin) -> list[str]:
    """Users that hold tokens (admin only)."""
    return state.tokens.users()


@router.post("/{user}/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
def new_token(user: UserName, state: State, _: Admin) -> TokenOut:
    """Another token for an existing user (admin only)."""
    if not state.tokens.has_user(user):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user!r}; POST /v1/users first")
    return TokenOut(user=user, token=state.tokens.issue(role=USER, user=user))


@router.get("/{user}", response_model=ProfileOut)
def get_profile(
    user: UserName,
    state: State,
    who: Caller,
) -> ProfileOut:
    require_user(user, who)
    return _profile_out(state.profile(user))


@router.get("/{user}/comparisons", response_model=list[StoredComparisonOut])
def list_comparisons(
    user: UserName,
    state: State,
    who: Caller,
) -> list[StoredComparisonOut]:
    """The user's labelled pairs, oldest first."""
    require_user(user, who)
    return [
        StoredComparisonOut(
            id=c.id, prompt=c.prompt, chosen=c.chosen, rejected=c.rejected, created_at=c.created_at
        )
        for c in state.profiles.comparisons(user)
    ]


@router.post("/{user}/comparisons", response_model=ComparisonsResponse)
async def add_comparisons(
    body: ComparisonsRequest,
    user: UserName,
    state: State,
    who: Caller,
) -> ComparisonsResponse:
    """Store labelled pairs (``chosen`` preferred over ``rejected``) and refit the user's profile on all of
    their pairs with the default adapter. The reply comes after the commit: what it acknowledges is kept."""
    require_user(user, who)
    if len(body.pairs) > state.config.max_pairs:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"pairs: {len(body.pairs)} items; at most {state.config.max_pairs} per request",
        )
    comparisons = [Comparison(plain_prompt(p.prompt), p.chosen, p.rejected) for p in body.pairs]
    for i, c in enumerate(comparisons):
        if c.chosen == c.rejected:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"pairs[{i}]: chosen and rejected are the same text, which carries no preference",
            )
    state.check_texts("pairs", [t for c in comparisons for t in (c.chosen, c.rejected)])
    assert state.service is not None and state.featurizer is not None  # both set at startup
    fmt = state.featurizer.format
    H = await state.service.features(
        [fmt(c.prompt, c.chosen) for c in comparisons] + [fmt(c.prompt, c.rejected) for c in comparisons]
    )
    diffs = H[: len(comparisons)] - H[len(comparisons) :]
    model = state.model

    def refit(D: np.ndarray) -> UserProfile:
        return build_profile(model, user, D.astype(np.float64))

    ids, profile = await asyncio.to_thread(
        state.profiles.add_comparisons,
        user,
        comparisons,
        diffs,
        features=namespace_key(model.namespace),
        refit=refit,
    )
    return ComparisonsResponse(ids=ids, profile=_profile_out(profile))


@router.delete("/{user}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(
    user: UserName,
    state: State,
    who: Caller,
) -> Response:
    """Forget the user: profile, labelled pairs, tokens and, on a server with a labelling project, their
    labels there (else the next start would bring the profile back from them)."""
    require_user(user, who)
    revoked = state.tokens.revoke_user(user)
    if state.loop is not None:
        revoked += state.loop.store.forget(user)
    try:
        state.profiles.delete(user)
    except ProfileNotFoundError:
        if not revoked:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user!r}") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
