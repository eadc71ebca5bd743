"""Many rewarded responses per prompt: how two rewards agree, and what best-of-n buys, exactly.

Every function takes per-prompt rewards (a list of 1-D arrays; prompts may hold different numbers of
responses) or ranked records (:func:`pluralrm.data.load_ranked`) and returns tidy rows. Means are over
*prompts*, and their 95 % intervals are percentile bootstraps over prompts
(:func:`pluralrm.evaluate.metrics.bootstrap_interval`): the prompt is the unit a user samples, and the
responses of one prompt are not independent draws.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from pluralrm.config import ANALYZE
from pluralrm.evaluate.metrics import bootstrap_interval

AGREEMENT_METRICS = ("spearman", "kendall", "top1", "pairwise_accuracy")


def _per_prompt(values: Sequence[ArrayLike], name: str) -> list[np.ndarray]:
    out = []
    for i, v in enumerate(values):
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}] must be a non-empty 1-D array of finite rewards, got {a!r:.80}")
        out.append(a)
    return out


def mean_row(
    values: ArrayLike, *, n_resamples: int = ANALYZE.n_resamples, seed: int = ANALYZE.seed
) -> dict[str, float | int]:
    """Mean of the defined (non-NaN) per-prompt values, its bootstrap 95 % interval over prompts, how
    many prompts were used and how many were undefined (NaN) and left out."""
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        mean = low = high = float("nan")
    else:
        mean = float(defined.mean())
        low, high = bootstrap_interval(defined, n_resamples=n_resamples, seed=seed)
    return {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "n_prompts": int(defined.size),
        "n_undefined": int(values.size - defined.size),
    }


# --- agreement of two rewards on the same responses -----------------------------------------------------


def rank_correlation(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    """Spearman's ρ (``kind="spearman"``) or Kendall's τ-b (``"kendall"``) of two 1-D arrays (scipy's);
    NaN with fewer than two values or a constant array (0/0: no ranking to compare)."""
    # Say NaN ourselves: scipy would too, with a warning per prompt.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        result = stats.spearmanr(a, b) if kind == "spearman" else stats.kendalltau(a, b)
    return float(result.statistic)


def top1_agreement(a: ArrayLike, b: ArrayLike) -> float:
    """1 if the response ``a`` picks is one of ``b``'s best, else 0; NaN when ``b`` is constant.

    ``a`` picks the first of its maxima (``np.argmax``: the lowest index, as a stable best-of-N does);
    the pick agrees when ``b[pick] == max(b)``, so ties under ``b`` never count against ``a``. ``b`` is
    the reference: with ``b`` constant every pick is "best", which says nothing, hence NaN.

    Examples
    --------
    >>> top1_agreement([3, 1, 3], [1, 0, 1]), top1_agreement([1, 3, 3], [2, 0, 2])
    (1.0, 0.0)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.ptp(b) == 0:
        return float("nan")
    return float(b[int(np.argmax(a))] == b.max())


def pairwise_agreement(a: ArrayLike, b: ArrayLike) -> tuple[float, int]:
    """Share of response pairs ``i < j`` with ``b_i ≠ b_j`` that ``a`` orders the same way, and their count.

    ``accuracy = Σ_{i<j, b_i≠b_j} ( [sign(a_i−a_j) = sign(b_i−b_j)] + ½ [a_i = a_j] ) / #{i<j: b_i≠b_j}``:
    a tie under ``a`` is a coin flip (one half), as in :func:`pairwise_metrics`. NaN when ``b`` ties
    every pair.

    Examples
    --------
    >>> pairwise_agreement([1, 1, 2], [1, 2, 3])  # (0, 1) is a tie under a: one half
    (0.8333333333333334, 3)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    upper = np.triu_indices(a.size, k=1)
    sa = np.sign(a[:, None] - a[None, :])[upper]  # (n_pairs,)
    sb = np.sign(b[:, None] - b[None, :])[upper]
    keep = sb != 0
    if not keep.any():
        return float("nan"), 0
    correct = (sa[keep] == sb[keep]) + 0.5 * (sa[keep] == 0)
    return float(correct.mean()), int(keep.sum())


@dataclass(frozen=True)
class Agreement:
    """Per-prompt agreement values (NaN where undefined) and one summary row per metric."""

    per_prompt: dict[str, np.ndarray]
    summary: list[dict] = field(default_factory=list)


def agreement(
    rewards_a: Sequence[ArrayLike],
    rewards_b: Sequence[ArrayLike],
    *,
    n_resamples: int = ANALYZE.n_resamples,
    seed: int = ANALYZE.seed,
) -> Agreement:
    """How far two rewards of the same responses agree, prompt by prompt.

    Per prompt: Spearman's ρ (Pearson correlation of average ranks), Kendall's τ-b (concordant minus
    discordant pairs over the tie-corrected pair count), :func:`top1_agreement` and
    :func:`pairwise_agreement` (``b`` is the reference in both). A prompt with one response, or where
    either reward is constant, has no ρ or τ: it is NaN, counted in ``n_undefined`` and left out of the
    mean. Each summary row is :func:`mean_row` of one metric.

    Parameters
    ----------
    rewards_a, rewards_b : sequences of 1-D arrays, one per prompt
        Rewards of the same responses, in the same order.
    """
    a_list, b_list = _per_prompt(rewards_a, "rewards_a"), _per_prompt(rewards_b, "rewards_b")
    if len(a_list) != len(b_list):
        raise ValueError(f"rewards_a has {len(a_list)} prompts but rewards_b has {len(b_list)}")
    columns: dict[str, list[float]] = {name: [] for name in (*AGREEMENT_METRICS, "n_pairs")}
    for i, (a, b) in enumerate(zip(a_list, b_list, strict=True)):
        if a.size != b.size:
            raise ValueError(f"prompt {i}: rewards_a has {a.size} responses but rewards_b has {b.size}")
        accuracy, n_pairs = pairwise_agreement(a, b)
        columns["spearman"].append(rank_correlation(a, b, "spearman"))
        columns["kendall"].append(rank_correlation(a, b, "kendall"))
        columns["top1"].append(top1_agreement(a, b))
        columns["pairwise_accuracy"].append(accuracy)
        columns["n_pairs"].append(n_pairs)
    per_prompt = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    summary = [
        {"metric": name, **mean_row(per_prompt[name], n_resamples=n_resamples, seed=seed)}
        for name in AGREEMENT_METRICS
    ]
    return Agreement(per_prompt=per_prompt, summary=summary)


# --- best-of-N, exactly -------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _pick_weights(n_responses: int, ns: tuple[int, ...]) -> np.ndarray:
    """``W[k, i] = C(i, n_k − 1) / C(N, n_k)``: the chance that the ``i``-th smallest (0-based) of N is the
    largest of a uniformly random ``n_k``-subset (it must be in the subset, with the other ``n_k − 1``
    members among the ``i`` below it). Rows of NaN where ``n_k > N``. Python integers make each ratio
    the correctly rounded float even where the binomials overflow a double."""
    W = np.zeros((len(ns), n_responses))
    for k, n in enumerate(ns):
        if n > n_responses:
            W[k] = np.nan
            continue
        total = math.comb(n_responses, n)
        W[k, n - 1 :] = [math.comb(i, n - 1) / total for i in range(n - 1, n_responses)]
    return W


def win_scores(values: ArrayLike) -> np.ndarray:
    """``s_k = (#{j: v_j < v_k} + ½ #{j: v_j = v_k}) / N`` over all N responses (``j = k`` included):
    the chance that response ``k`` beats one uniformly random response, ties counting half."""
    v = np.asarray(values, dtype=np.float64)
    ordered = np.sort(v)
    below = np.searchsorted(ordered, v, side="left")
    equal = np.searchsorted(ordered, v, side="right") - below
    return (below + 0.5 * equal) / v.size


def expected_best_of_n(
    rewards: ArrayLike, ns: Sequence[int], values: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact expectations, over uniformly random ``n``-subsets (without replacement) of one prompt's N
    responses, of the response the reward picks.

    ``E_n[v_pick] = Σ_i C(i, n−1) / C(N, n) · v_(i)``, with responses sorted by ``rewards`` ascending
    (0-based ``i``); the win rate is the same sum over :func:`win_scores` of ``values``. Ties in
    ``rewards`` are broken uniformly at random, so each tied block enters with the mean of its ``values``
    (positions inside a block are exchangeable) and nothing depends on the order of the responses.

    Parameters
    ----------
    rewards : array of shape (N,)
        The reward that picks the best of ``n``.
    ns : sequence of int
        Subset sizes; ``n > N`` gives NaN.
    values : array of shape (N,), optional
        What the pick is worth (a judge's reward: the over-optimization check); default ``rewards``.

    Returns
    -------
    expected, win_rate : ndarrays of shape (len(ns),)
        Expected value of the pick, and its chance to beat one uniformly random response of the N.

    Examples
    --------
    Every 2-subset of rewards (1, 2, 2) holds a 2; a 2 beats a random one of the three with chance
    (1 + ½·2)/3:

    >>> expected, win = expected_best_of_n([1.0, 2.0, 2.0], [1, 2, 4])
    >>> expected.round(4).tolist(), win.round(4).tolist()
    ([1.6667, 2.0, nan], [0.5, 0.6667, nan])
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = r if values is None else np.asarray(values, dtype=np.float64)
    if v.shape != r.shape:
        raise ValueError(f"values has shape {v.shape} but rewards has {r.shape}")
    if any(int(n) < 1 for n in ns):
        raise ValueError(f"every n must be at least 1, got {list(ns)}")
    _, block = np.unique(r, return_inverse=True)
    sizes = np.bincount(block)
    both = np.stack([v, win_scores(v)], axis=1)  # (N, 2)
    block_means = np.stack([np.bincount(block, weights=col) / sizes for col in both.T], axis=1)
    order = np.argsort(r, kind="stable")
    expected = _pick_weights(r.size, tuple(int(n) for n in ns)) @ block_means[block[order]]  # (len(ns), 2)
    return expected[:, 0], expected[:, 1]


def best_of_n_curve(
    rewards: Sequence[ArrayLike],
    ns: Sequence[int],
    judge: Sequence[ArrayLike] | None = None,
    *,
    n_resamples: int = ANALYZE.n_resamples,
    seed: int = ANALYZE.seed,
) -> list[dict]:
    """Best-of-n over prompts: expected value of the pick and its win rate over a random response, vs n.

    Per prompt, :func:`expected_best_of_n` (picked by ``rewards``, valued by ``judge`` when given);
    then means over the prompts that have at least ``n`` responses, with bootstrap intervals over those
    prompts. ``gain`` is the expected value minus the prompt's mean value (what best-of-n adds over one
    random response, without the spread of rewards across prompts). A win rate of 0.5 at n = 1 is exact.
    Valued by its own reward and without ties, the win rate is ``(n(N+1)/(n+1) − ½)/N`` whatever the
    rewards (the expected rank of the best of n is ``n(N+1)/(n+1)``): it says something only with a
    ``judge``, where the gap to that curve is what the reward's picks lose in the judge's eyes.

    Returns
    -------
    list of dict
        One row per n: ``n``, ``expected``, ``expected_ci_low/high``, ``gain``, ``win_rate``,
        ``win_rate_ci_low/high``, ``n_prompts``.
    """
    r_list = _per_prompt(rewards, "rewards")
    v_list = r_list if judge is None else _per_prompt(judge, "judge")
    if len(v_list) != len(r_list):
        raise ValueError(f"judge has {len(v_list)} prompts but rewards has {len(r_list)}")
    expected = np.empty((len(r_list), len(ns)))
    win = np.empty_like(expected)
    gain = np.empty_like(expected)
    for p, (r, v) in enumerate(zip(r_list, v_list, strict=True)):
        expected[p], win[p] = expected_best_of_n(r, ns, v)
        gain[p] = expected[p] - v.mean()
    rows = []
    for k, n in enumerate(ns):
        e = mean_row(expected[:, k], n_resamples=n_resamples, seed=seed)
        w = mean_row(win[:, k], n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                "n": int(n),
                "expected": e["mean"],
                "expected_ci_low": e["ci_low"],
                "expected_ci_high": e["ci_high"],
                "gain": float(np.nanmean(gain[:, k])) if e["n_prompts"] else float("nan"),
                "win_rate": w["mean"],
                "win_rate_ci_low": w["ci_low"],
                "win_rate_ci_high": w["ci_high"],
                "n_prompts": e["n_prompts"],
            }
        )
    return rows


def default_ns(max_n: int) -> list[int]:
    """1, 2, 4, … up to ``max_n``, and ``max_n`` itself.

    >>> default_ns(100)
    [1, 2, 4, 8, 16, 32, 64, 100]
    """
    ns = [2**k for k in range(max(1, max_n).bit_length()) if 2**k <= max_n]
    return ns if ns[-1] == max_n else [*ns, max_n]
