"""``--engine`` for the verbs that featurize, score or fit (featurize, decompose, score, rank): the
options, read from :class:`pluralrm.config.EngineConfig`, and the engine they name
(:func:`pluralrm.scale.make_engine`).

No verb lives here, and no verb branches on the engine: each asks the engine object to do the work.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated

from pluralrm.cli.common import config_option, fail
from pluralrm.config import ENGINE, EngineConfig

engine_option = partial(config_option, EngineConfig)
EngineOption = Annotated[str, engine_option("engine")]
AddressOption = Annotated[str | None, engine_option("address")]
WorkersOption = Annotated[int, engine_option("num_workers")]
GpusOption = Annotated[float, engine_option("gpus_per_worker")]


def engine_from_options(
    engine: str, address: str | None, num_workers: int, gpus_per_worker: float = ENGINE.gpus_per_worker
):
    """The checked engine the options name (a bad choice is one clear error, before any work)."""
    from pluralrm.scale import make_engine

    config = replace(
        ENGINE, engine=engine, address=address, num_workers=num_workers, gpus_per_worker=gpus_per_worker
    )
    try:
        return make_engine(config)
    except ValueError as error:
        raise fail(str(error)) from None
