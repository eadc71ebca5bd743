"""``--engine`` for the verbs that featurize, score or fit (featurize, decompose, score, rank): the
options, derived from :class:`pluralrm.config.EngineConfig`, and the engine they name
(:func:`pluralrm.scale.make_engine`).

No verb lives here, and no verb branches on the engine: each asks the engine object to do the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pluralrm.cli.common import fail
from pluralrm.cli.options import config_options
from pluralrm.config import ENGINE, EngineConfig

#: The engine options every such verb shows; decompose's shards reserve no GPUs, so it leaves that one out.
ENGINE_FIELDS = ("engine", "address", "num_workers", "gpus_per_worker")


def engine_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``EngineConfig`` options (``names``, default :data:`ENGINE_FIELDS`) to a verb, which receives the
    parsed config as its parameter ``engine_config: EngineConfig``."""
    return config_options(ENGINE, *(names or ENGINE_FIELDS), into="engine_config")


def engine_from(config: EngineConfig):
    """The checked engine ``config`` names (a bad choice is one clear error, before any work)."""
    from pluralrm.scale import make_engine

    try:
        return make_engine(config)
    except ValueError as error:
        raise fail(str(error)) from None
