"""A Rich progress bar with texts done and tokens/s, or a no-op when not asked for."""

from __future__ import annotations


class TokenProgress:
    """A Rich progress bar showing texts done and tokens/s, or a no-op when not asked for."""

    def __init__(self, enabled: bool, n_texts: int, n_tokens: int) -> None:
        self.enabled = enabled
        self.n_texts = n_texts
        self.tokens = 0
        self.seconds = 0.0

    def __enter__(self):
        if not self.enabled:
            return lambda *args: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("featurizing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("featurize", total=self.n_texts, rate="")

        def advance(n: int, tokens: int, seconds: float) -> None:
            self.tokens += tokens
            self.seconds += seconds
            self.bar.update(self.task, advance=n, rate=f"{self.tokens / max(self.seconds, 1e-9):,.0f} tok/s")

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
