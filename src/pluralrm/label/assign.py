"""Which pair a labeller gets next: each pair to several labellers where the budget allows, never twice
to the same one.

The rule is *depth first*: a pair that others have started but not finished goes before a fresh one, so a
budget that runs out leaves finished pairs (each with ``labels_per_pair`` labels, whose agreement — Cohen's
κ — can be measured) rather than many pairs seen once. Among fresh pairs the AI judge's least certain go
first (Hu et al. 2024: people judge what the AI could not decide), then import order. A pair on someone's
screen is *reserved* for them for a while, so labellers asking at the same moment are spread over pairs
instead of all taking the one that needed a single last label.

Pure functions on plain records; :class:`pluralrm.label.store.LabelStore` calls them inside one
``BEGIN IMMEDIATE`` transaction, so two labellers never take the last free place of a pair at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairState:
    """What the assigner needs to know of one pair, as seen by the labeller asking.

    Attributes
    ----------
    pair_id : str
    seq : int
        Import order (ties between equally urgent pairs keep it).
    filled : int
        Places taken: labels other than skips, plus live reservations of other labellers.
    ai_margin : float or None
        The AI judge's margin (``None``: the AI had no opinion, as uncertain as it gets).
    seen : bool
        Whether this labeller was ever shown the pair (then it is never offered to them again).
    """

    pair_id: str
    seq: int
    filled: int
    ai_margin: float | None = None
    seen: bool = False


def _urgency(state: PairState) -> tuple[int, float, int]:
    # Most-filled first (finish started pairs), then smallest |margin| (None counts as 0), then import order.
    margin = 0.0 if state.ai_margin is None or math.isnan(state.ai_margin) else abs(state.ai_margin)
    return (-state.filled, margin, state.seq)


def open_pairs(states: Iterable[PairState], *, labels_per_pair: int) -> list[PairState]:
    """The pairs this labeller may still get, most urgent first.

    Examples
    --------
    >>> states = [PairState("p1", 0, filled=0), PairState("p2", 1, filled=1), PairState("p3", 2, filled=2)]
    >>> [s.pair_id for s in open_pairs(states, labels_per_pair=2)]
    ['p2', 'p1']
    """
    if labels_per_pair < 1:
        raise ValueError(f"labels_per_pair must be at least 1, got {labels_per_pair}")
    candidates = [s for s in states if not s.seen and s.filled < labels_per_pair]
    return sorted(candidates, key=_urgency)


def budget_left(budget: int | None, used: int) -> int | None:
    """Labels the budget still allows (``None``: no budget); ``used`` counts labels and live reservations."""
    if budget is None:
        return None
    if budget < 0:
        raise ValueError(f"budget must not be negative, got {budget}")
    return max(budget - used, 0)


def next_pair(states: Iterable[PairState], *, labels_per_pair: int, budget_left: int | None) -> str | None:
    """The pair to show next, or ``None`` when this labeller has nothing left (or the budget is spent).

    Examples
    --------
    >>> states = [PairState("p1", 0, filled=0, ai_margin=3.0), PairState("p2", 1, filled=0, ai_margin=0.1)]
    >>> next_pair(states, labels_per_pair=2, budget_left=None)
    'p2'
    >>> next_pair(states, labels_per_pair=2, budget_left=0) is None
    True
    """
    if budget_left is not None and budget_left <= 0:
        return None
    ordered = open_pairs(states, labels_per_pair=labels_per_pair)
    return ordered[0].pair_id if ordered else None


def remaining_for(states: Iterable[PairState], *, labels_per_pair: int, budget_left: int | None) -> int:
    """How many more pairs this labeller could get if nobody else labelled (the progress bar's rest).

    Examples
    --------
    >>> states = [PairState(f"p{i}", i, filled=0) for i in range(5)]
    >>> remaining_for(states, labels_per_pair=2, budget_left=3)
    3
    """
    n = len(open_pairs(states, labels_per_pair=labels_per_pair))
    return n if budget_left is None else min(n, budget_left)
