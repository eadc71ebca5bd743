"""Accuracy of a reward on the RewardBench pairs a rewarded file carries, per subset and per section.

The seed set of many-response files holds RewardBench prompts; each record keeps the benchmark's own
``rewardbench_chosen`` / ``rewardbench_rejected`` texts and its ``subset``. Scoring those two texts with
a reward model gives that model's RewardBench accuracy on these prompts, by the benchmark's sections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pluralrm.config import ANALYZE
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.evaluate.metrics import bootstrap_interval, pair_correctness

SECTIONS: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": (
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ),
    "Safety": (
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
OTHER = "other"

# RewardBench's own subset sizes, which weight its section scores; math-prm (447 pairs) is counted as
# 984 so that maths weighs as much as the six code subsets together (reward-bench, rewardbench/constants).
EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "math-prm": 984,
    **{f"hep-{lang}": 164 for lang in ("cpp", "go", "java", "js", "python", "rust")},
}

_SECTION_ORDER = (*SECTIONS, OTHER)
FIELDS = ("rewardbench_chosen", "rewardbench_rejected")

ScoreFn = Callable[[Sequence[tuple[Any, str]]], Any]


def section_of(subset: str | None) -> str:
    """The RewardBench section of a subset name, or ``"other"``."""
    return next((name for name, members in SECTIONS.items() if subset in members), OTHER)


def _check_text(record: dict, index: int, name: str, source: str) -> str:
    value = record[name]
    if isinstance(value, str) and value.strip():
        return value
    got = "an empty text" if isinstance(value, str) else f"{type(value).__name__} {value!r:.40}"
    raise DataValidationError(
        RecordLocation(source, row=index),
        f"expected the response text (a non-empty string), got {got} (record id {record.get('id')!r}); "
        "the accuracy scores the RewardBench pair itself, so an index into another file is not enough",
        name,
    )


def _accuracy_row(margins: np.ndarray, *, n_resamples: int, seed: int) -> dict:
    correct = pair_correctness(margins)
    low, high = bootstrap_interval(correct, n_resamples=n_resamples, seed=seed)
    return {
        "accuracy": float(correct.mean()),
        "ci_low": low,
        "ci_high": high,
        "n": int(margins.size),
        "ties": int((margins == 0).sum()),
    }


def rewardbench_accuracy(
    records: Sequence[dict],
    score_fn: ScoreFn,
    *,
    source: str = "records",
    n_resamples: int = ANALYZE.n_resamples,
    seed: int = ANALYZE.seed,
) -> dict[str, list[dict]]:
    """Accuracy of ``score_fn`` on each record's (``rewardbench_chosen``, ``rewardbench_rejected``) pair.

    A pair is right when ``r(chosen) > r(rejected)``; a tie counts one half (:func:`pairwise_metrics`).
    Per subset and per section (:data:`SECTIONS`; unknown subsets under ``"other"``): the pooled
    accuracy over its pairs with a bootstrap 95 % interval. A section row also has ``weighted``, the mean
    of its subsets' accuracies weighted by RewardBench's own subset sizes (:data:`EXAMPLE_COUNTS`), which
    is how the benchmark scores a section; ``all`` rows have ``weighted`` = the mean of the four sections'.

    Parameters
    ----------
    records : sequence of dict
        Ranked records; those without both fields are left out.
    score_fn : callable
        ``score_fn([(prompt, text), ...]) -> rewards``, called once with every chosen and rejected text
        (so a backbone batches them): pass :meth:`RewardModel.rewards`, the one scoring path.
    source : str
        The file the records came from, for error messages (a record is located by its 0-based index).

    Raises
    ------
    DataValidationError
        A ``rewardbench_chosen``/``rewardbench_rejected`` that is not a non-empty string (e.g. an index).
    ValueError
        No record carries both fields.
    """
    items, subsets = [], []
    for index, record in enumerate(records):
        if record.get(FIELDS[0]) is None or record.get(FIELDS[1]) is None:
            continue
        chosen, rejected = (_check_text(record, index, name, source) for name in FIELDS)
        items += [(record["prompt"], chosen), (record["prompt"], rejected)]
        subsets.append(str(record.get("subset") or "-"))
    if not subsets:
        raise ValueError(f"{source}: no record carries both {FIELDS[0]} and {FIELDS[1]}")
    scores = np.asarray(score_fn(items), dtype=np.float64)
    if scores.shape != (len(items),):
        raise ValueError(f"score_fn returned shape {scores.shape} for {len(items)} texts")
    margins = scores[0::2] - scores[1::2]  # chosen − rejected, one per record
    subset_of = np.array(subsets, dtype=object)
    section_per_pair = np.array([section_of(s) for s in subsets], dtype=object)
    kwargs = {"n_resamples": n_resamples, "seed": seed}
    subset_rows = [
        {"subset": s, "section": section_of(s), **_accuracy_row(margins[subset_of == s], **kwargs)}
        for s in sorted(set(subsets), key=lambda s: (_SECTION_ORDER.index(section_of(s)), s))
    ]
    section_rows = []
    for name in _SECTION_ORDER:
        mask = section_per_pair == name
        if not mask.any():
            continue
        mine = [r for r in subset_rows if r["section"] == name]
        weights = np.array([EXAMPLE_COUNTS.get(r["subset"], 0) for r in mine], dtype=np.float64)
        weighted = (
            float(weights @ [r["accuracy"] for r in mine] / weights.sum()) if weights.sum() else float("nan")
        )
        section_rows.append({"section": name, **_accuracy_row(margins[mask], **kwargs), "weighted": weighted})
    scored = [r["weighted"] for r in section_rows if r["section"] in SECTIONS]
    section_rows.append(
        {
            "section": "all",
            **_accuracy_row(margins, **kwargs),
            "weighted": float(np.mean(scored)) if scored else float("nan"),
        }
    )
    return {"subsets": subset_rows, "sections": section_rows}
