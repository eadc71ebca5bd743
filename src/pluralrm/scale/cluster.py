"""The ``--engine`` choice checked, and joining a Ray cluster (or starting one on this machine)."""

from __future__ import annotations

import logging

from pluralrm.config import ENGINE, EngineConfig

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")


def uses_ray(config: EngineConfig = ENGINE) -> bool:
    """Whether ``config`` asks for Ray; a bad choice or worker count fails here, before any work.

    Examples
    --------
    >>> uses_ray(EngineConfig(engine="ray", num_workers=2))
    True
    >>> uses_ray(EngineConfig())
    False
    """
    if config.engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")
    if config.num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {config.num_workers}")
    if config.gpus_per_worker < 0 or config.cpus_per_worker < 0:
        raise ValueError("gpus_per_worker and cpus_per_worker must not be negative")
    if config.rows_per_batch < 1 or config.shard_rows < 1:
        raise ValueError("rows_per_batch and shard_rows must be at least 1")
    return config.engine == "ray"


def connect(config: EngineConfig = ENGINE) -> None:
    """Join the Ray cluster at ``config.address``, or start one on this machine (``address=None``).

    A caller that has already called ``ray.init`` (a test, a notebook, a job submitted to a cluster) keeps
    its own connection: nothing is re-initialised.
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            "--engine ray needs Ray: pip install 'pluralrm[ray]' (ray[data]==2.60.0)"
        ) from error
    if ray.is_initialized():
        return
    if config.address is None:
        # A private cluster on this machine: no dashboard (nothing listens beyond what Ray needs).
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    else:
        ray.init(address=config.address, logging_level=logging.WARNING)
    logger.info("ray: %s", ray.cluster_resources())
