"""A Rich progress bar for a transformers ``Trainer`` run: steps, the latest loss and validation accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class RichTrainingProgress(TrainerCallback):
    """Drives one Rich progress bar from the trainer's step and log events (the CLI's ``customize`` bar).

    The bar's text shows the last logged training loss and the last validation accuracy, so a run that
    diverges or stops learning is visible while it runs, not after.
    """

    def __init__(self, console: Console | None = None, description: str = "training") -> None:
        self.console = console
        self.description = description
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._loss = float("nan")
        self._accuracy: float | None = None

    def _text(self) -> str:
        accuracy = "–" if self._accuracy is None else f"{self._accuracy:.3f}"
        return f"{self.description}  loss {self._loss:.4f}  val acc {accuracy}"

    def _update(self, **fields: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=self._text(), **fields)

    def on_train_begin(self, args, state, control, **kwargs):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self._text(), total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self._update(completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self._loss = float(logs["loss"])
        if "eval_accuracy" in logs:
            self._accuracy = float(logs["eval_accuracy"])
        self._update()

    def on_train_end(self, args, state, control, **kwargs):
        self._update(completed=state.global_step)
        self.stop()

    def stop(self) -> None:
        """Close the bar (also after a failed run, which never reaches ``on_train_end``)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = ["RichTrainingProgress"]
