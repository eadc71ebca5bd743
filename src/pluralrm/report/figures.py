"""Figures as ``data:`` URIs, so the page is one file that needs no network and no script.

The library's own plot functions write PNG files (:mod:`pluralrm.evaluate.plots`,
:mod:`pluralrm.evaluate.many.plots`); :func:`inline_plot` runs one into a temporary folder and inlines
its bytes, so a figure of the report is the very figure the other verbs write. The few figures only the
report draws (weights over heads, labels per labeller) are here.
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.evaluate.plots import _pyplot


def png_uri(data: bytes) -> str:
    """``data:image/png;base64,…`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def file_uri(path: str | Path) -> str:
    """A PNG file of a run folder, inlined."""
    return png_uri(Path(path).read_bytes())


def inline_plot(plot: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Run ``plot(*args, path, **kwargs)`` (a library plot function that writes a PNG) and inline it."""
    with tempfile.TemporaryDirectory(prefix="pluralrm-report-") as tmp:
        path = Path(tmp) / "figure.png"
        plot(*args, path, **kwargs)
        return file_uri(path)


def _figure_uri(fig: Any) -> str:
    plt = _pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return png_uri(buffer.getvalue())


def grouped_bars(
    groups: Sequence[str], series: Mapping[str, Sequence[float] | np.ndarray], *, ylabel: str, title: str
) -> str:
    """One group of bars per name in ``groups``, one bar per series (e.g. users' weights per head)."""
    plt = _pyplot()
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(groups) * max(1, len(series) / 3)), 3.4))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, list(groups), rotation=45 if len(groups) > 8 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7, ncol=min(4, len(series)))
    return _figure_uri(fig)


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str, title: str
) -> str:
    """One line per series of (x, y) values (e.g. training loss per step)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, (x, y) in series.items():
        ax.plot(x, y, marker="o", markersize=2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _figure_uri(fig)
