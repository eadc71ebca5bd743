"""How far labellers agree with each other and with the AI judge, and how long a label takes.

Cohen's κ (Cohen 1960) corrects the share of pairs two labellers answer alike for the share they would
answer alike by chance, given how often each picks each answer: κ = (p_o − p_e) / (1 − p_e). It is computed
per labeller pair on the pairs both judged, over the answers ``a``, ``b`` and ``tie`` (a skip is no
judgment and is left out). When chance agreement is certain (both always gave the same one answer) κ is
undefined and reported as NaN, as :func:`sklearn.metrics.cohen_kappa_score` does.

Inputs are labels as stored (:class:`pluralrm.label.store.Label`: ``labeller``, ``pair_id``,
``choice`` in terms of the pair's own ``a``/``b``, never the screen's 1/2, and ``seconds``).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

JUDGMENTS = ("a", "b", "tie")
DECISIVE = ("a", "b")


class LabelLike(Protocol):
    """What agreement needs of a label (read-only, so frozen dataclasses such as the store's fit)."""

    @property
    def labeller(self) -> str: ...
    @property
    def pair_id(self) -> str: ...
    @property
    def choice(self) -> str: ...
    @property
    def seconds(self) -> float | None: ...


@dataclass(frozen=True)
class KappaRow:
    """Cohen's κ of two labellers over the ``n_common`` pairs both judged (NaN when undefined)."""

    labeller_1: str
    labeller_2: str
    n_common: int
    kappa: float
    observed: float  # share of the common pairs answered alike


@dataclass(frozen=True)
class AiAgreement:
    """Share of a labeller's decisive labels (``a``/``b``) that match the AI judge's label on the pair."""

    labeller: str
    n: int
    agreement: float


@dataclass(frozen=True)
class LabellerTime:
    """Seconds per label of one labeller, as the page measured them (from showing a pair to answering)."""

    labeller: str
    n: int
    median_s: float
    mean_s: float


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Cohen's κ of two equally long answer sequences (NaN when chance agreement is 1).

    Examples
    --------
    >>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 3)
    0.5
    >>> cohen_kappa(["a", "b"], ["a", "b"])
    1.0
    """
    if len(first) != len(second):
        raise ValueError(f"answer sequences differ in length: {len(first)} vs {len(second)}")
    n = len(first)
    if n == 0:
        return math.nan
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    counts_1, counts_2 = Counter(first), Counter(second)
    expected = sum(counts_1[c] * counts_2[c] for c in counts_1) / (n * n)
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)


def _judgments(labels: Iterable[LabelLike]) -> dict[str, dict[str, str]]:
    """labeller → pair → answer, skips left out."""
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for label in labels:
        if label.choice in JUDGMENTS:
            table[label.labeller][label.pair_id] = label.choice
    return table


def pairwise_kappa(labels: Iterable[LabelLike], *, min_common: int = 1) -> list[KappaRow]:
    """κ for every two labellers who judged at least ``min_common`` pairs in common, by name."""
    table = _judgments(labels)
    rows = []
    for one, two in combinations(sorted(table), 2):
        common = sorted(table[one].keys() & table[two].keys())
        if len(common) < min_common:
            continue
        first = [table[one][p] for p in common]
        second = [table[two][p] for p in common]
        observed = sum(x == y for x, y in zip(first, second, strict=True)) / len(common)
        rows.append(KappaRow(one, two, len(common), cohen_kappa(first, second), observed))
    return rows


def majority(labels: Iterable[LabelLike]) -> dict[str, str | None]:
    """Each judged pair's decisive majority: ``a``, ``b``, or ``None`` (a tie in votes, or only ties).

    Examples
    --------
    >>> from types import SimpleNamespace as L
    >>> majority([L(labeller="x", pair_id="p", choice="a", seconds=1.0),
    ...           L(labeller="y", pair_id="p", choice="a", seconds=1.0),
    ...           L(labeller="z", pair_id="p", choice="b", seconds=1.0)])
    {'p': 'a'}
    """
    votes: dict[str, Counter] = defaultdict(Counter)
    for label in labels:
        if label.choice in JUDGMENTS:
            votes[label.pair_id][label.choice] += 1
    result: dict[str, str | None] = {}
    for pair_id, count in votes.items():
        a, b = count["a"], count["b"]
        result[pair_id] = "a" if a > b else "b" if b > a else None
    return result


def ai_agreement(labels: Iterable[LabelLike], ai_labels: Mapping[str, str | None]) -> list[AiAgreement]:
    """Per labeller, then ``"(majority)"`` for the humans' majority per pair, then ``"(all labels)"``.

    Only decisive human answers on pairs the AI labelled count; a labeller with none is left out.
    """
    labels = list(labels)
    per: dict[str, list[bool]] = defaultdict(list)
    for label in labels:
        ai = ai_labels.get(label.pair_id)
        if ai in DECISIVE and label.choice in DECISIVE:
            per[label.labeller].append(label.choice == ai)
    rows = [AiAgreement(name, len(hits), sum(hits) / len(hits)) for name, hits in sorted(per.items())]
    votes = [(ai_labels.get(p), m) for p, m in majority(labels).items()]
    hits = [m == ai for ai, m in votes if ai in DECISIVE and m in DECISIVE]
    if hits:
        rows.append(AiAgreement("(majority)", len(hits), sum(hits) / len(hits)))
    every = [hit for name in per for hit in per[name]]
    if every:
        rows.append(AiAgreement("(all labels)", len(every), sum(every) / len(every)))
    return rows


def time_per_label(labels: Iterable[LabelLike]) -> list[LabellerTime]:
    """Median and mean seconds per label of each labeller (labels without a time are left out)."""
    per: dict[str, list[float]] = defaultdict(list)
    for label in labels:
        if label.seconds is not None and math.isfinite(label.seconds):
            per[label.labeller].append(float(label.seconds))
    return [
        LabellerTime(name, len(times), statistics.median(times), statistics.fmean(times))
        for name, times in sorted(per.items())
    ]


def choice_counts(labels: Iterable[LabelLike]) -> dict[str, Counter]:
    """labeller → Counter of answers (``a``, ``b``, ``tie``, ``skip``)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for label in labels:
        counts[label.labeller][label.choice] += 1
    return dict(sorted(counts.items()))
