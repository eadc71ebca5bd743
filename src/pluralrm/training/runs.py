"""What every pluralrm training run shares, whatever it trains (policy SFT, reward models).

A run must stop on a non-finite loss before it writes a broken checkpoint, resume only checkpoints of the
*same* run, replace its output directories whole, and record the library versions that produced it. These
helpers give ``pluralrm sft`` (:mod:`pluralrm.training.policy`) and ``pluralrm customize``
(:mod:`pluralrm.training.customize`) one behaviour. transformers and torch are imported inside functions.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUN_FILE = "pluralrm_run.json"  # inside checkpoints/: which data/model/config the checkpoints belong to


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops before saving a broken checkpoint."""


def loss_watch(log: logging.Logger):
    """A callback that logs each step's loss to ``log`` and stops the run when it is not finite.

    With ``logging_steps=1`` and ``logging_nan_inf_filter=False`` every step's loss reaches ``on_log``
    (transformers would otherwise hide a NaN step behind the average of earlier ones). Raising there
    comes before the checkpoint of that step is written, so a resume starts from weights that were finite.
    """
    from transformers import TrainerCallback

    class LossWatch(TrainerCallback):
        tokens = 0  # non-padding tokens trained on in this process (TRL's running count)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "num_tokens" in logs:
                self.tokens = int(logs["num_tokens"])
            if "loss" not in logs:
                return
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"training loss is {loss} at step {state.global_step}; lower the learning rate "
                    "(and check the data for empty or extreme records)"
                )
            log.info("step %d/%d  loss %.4f", state.global_step, state.max_steps, loss)

    return LossWatch()


def checkpoint_to_resume(checkpoints: Path, identity: dict[str, Any]) -> str | None:
    """The last checkpoint of an unfinished run with the same ``identity``, if there is one.

    Raises ``ValueError`` when the folder holds checkpoints of another run (other data, model or settings):
    continuing those would silently mix two runs.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if not checkpoints.is_dir():
        return None
    last = get_last_checkpoint(str(checkpoints))
    if last is None:
        return None
    run_file = checkpoints / RUN_FILE
    previous = json.loads(run_file.read_text()) if run_file.exists() else None
    if previous != identity:
        raise ValueError(
            f"{checkpoints} holds checkpoints of a different run (other data, model or settings); "
            "use a new output directory, or delete that folder to start over"
        )
    return last


def run_arguments(checkpoints: Path, *, seed: int, on_cuda: bool, save_steps: int) -> dict[str, Any]:
    """The TrainingArguments every pluralrm training run shares, whatever TRL config it goes into.

    A loss logged at every step (what :func:`loss_watch` and the progress bars read, NaN/inf unfiltered so
    that it can stop the run), checkpoints every ``save_steps`` for resuming (two kept), seeded data order,
    and nothing reported or pushed anywhere; Rich draws the progress, not tqdm.
    """
    return {
        "output_dir": str(checkpoints),
        "seed": seed,
        "data_seed": seed,
        "use_cpu": not on_cuda,
        "logging_steps": 1,
        "logging_nan_inf_filter": False,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_total_limit": 2,
        "report_to": [],
        "push_to_hub": False,
        "disable_tqdm": True,
    }


def replace_dir(build: Path, target: Path) -> None:
    """Move a fully written directory into place; a reader sees the old one or the new one, never half."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        target.rename(old / target.name)
    build.rename(target)
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Silence the tqdm bars of ``datasets`` (tokenizing) and transformers (saving), then restore them.

    The library reports through ``logging`` (and the CLI through Rich); a bar per preprocessing pass would
    only interleave with those lines on stderr.
    """
    import datasets.utils as datasets_utils
    from transformers.utils import logging as transformers_logging

    datasets_on = not datasets_utils.are_progress_bars_disabled()
    transformers_on = transformers_logging.is_progress_bar_enabled()
    datasets_utils.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets_utils.enable_progress_bars()
        if transformers_on:
            transformers_logging.enable_progress_bar()


def training_versions() -> dict[str, str]:
    """Versions of the libraries that decide a trained model's weights (recorded in its metadata)."""
    import peft
    import torch
    import transformers
    import trl

    import pluralrm

    return {
        "pluralrm": pluralrm.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }


__all__ = [
    "RUN_FILE",
    "NonFiniteLossError",
    "checkpoint_to_resume",
    "loss_watch",
    "quiet_progress_bars",
    "replace_dir",
    "training_versions",
]
