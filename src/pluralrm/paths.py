"""Where pluralrm keeps its cache (converted backbones, features): ``$PLURALRM_CACHE`` or
``~/.cache/pluralrm``. Nothing else is written outside the paths a user names."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache directory (not created until something is written to it)."""
    override = os.environ.get("PLURALRM_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "pluralrm"
