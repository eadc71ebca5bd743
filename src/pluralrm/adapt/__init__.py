"""Test-time personalization: adapters over reward heads, user profiles, their SQLite store (numpy)."""

from pluralrm.adapt.adapters import BestHeadAdapter, HyReAdapter, LogisticAdapter, random_unit_heads
from pluralrm.adapt.personalize import build_profile, fit_user_weights
from pluralrm.adapt.profiles import (
    Comparison,
    ProfileCache,
    ProfileMismatchError,
    ProfileNotFoundError,
    ProfileStore,
    StoredComparison,
    UserProfile,
)
from pluralrm.rewards.decomposed import head_set_fingerprint

__all__ = [
    "BestHeadAdapter",
    "Comparison",
    "HyReAdapter",
    "LogisticAdapter",
    "ProfileCache",
    "ProfileMismatchError",
    "ProfileNotFoundError",
    "ProfileStore",
    "StoredComparison",
    "UserProfile",
    "build_profile",
    "fit_user_weights",
    "head_set_fingerprint",
    "random_unit_heads",
]
