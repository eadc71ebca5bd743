"""Reward against what the responses are: their length (the commonest reward hack) and who wrote them.

Both read ranked records (:func:`pluralrm.data.load_ranked`) with ``rewards``; means over prompts come
with bootstrap intervals over prompts (:func:`pluralrm.evaluate.many.curves.mean_row`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from pluralrm.config import ANALYZE
from pluralrm.evaluate.many.curves import mean_row, rank_correlation

# --- reward vs length -----------------------------------------------------------------------------------

LENGTH_UNITS = {"chars": len, "words": lambda text: len(text.split())}


def _rewards_of(record: dict, i: int) -> np.ndarray:
    if record.get("rewards") is None:
        raise ValueError(f"record {i} (id {record.get('id')!r}) has no rewards")
    return np.asarray(record["rewards"], dtype=np.float64)


def length_correlation(
    records: Sequence[dict],
    *,
    n_bins: int = ANALYZE.n_bins,
    n_resamples: int = ANALYZE.n_resamples,
    seed: int = ANALYZE.seed,
) -> dict[str, list[dict]]:
    """Does the reward grow with response length (the commonest reward hack)?

    For lengths in characters and in words: the pooled Spearman ρ over every response, and the mean of
    the within-prompt ρ (:func:`mean_row`; prompts with constant rewards or lengths are undefined). Read
    the within-prompt one: prompts that ask for long answers get long answers, and whatever their reward
    level, that shows up in the pooled ρ. The bins are length quantiles of all responses; per bin the
    mean reward (95 % normal interval over its responses — a little narrow, since one prompt's responses
    are not independent) and the mean *centred* reward (reward minus its prompt's mean reward).

    Returns
    -------
    dict
        ``"summary"``: one row per unit; ``"bins"``: one row per unit × bin.
    """
    rewards = [_rewards_of(r, i) for i, r in enumerate(records)]
    summary, bins = [], []
    pooled_r = np.concatenate(rewards)
    centred = np.concatenate([r - r.mean() for r in rewards])
    for unit, measure in LENGTH_UNITS.items():
        lengths = [np.array([measure(t) for t in r["responses"]], dtype=np.float64) for r in records]
        within = [rank_correlation(length, r, "spearman") for length, r in zip(lengths, rewards, strict=True)]
        pooled_len = np.concatenate(lengths)
        summary.append(
            {
                "unit": unit,
                "pooled_spearman": rank_correlation(pooled_len, pooled_r, "spearman"),
                "n_responses": int(pooled_len.size),
                **{f"within_{k}": v for k, v in mean_row(within, n_resamples=n_resamples, seed=seed).items()},
            }
        )
        # Edges are observed lengths (inverted CDF) and bins are (e_k, e_k+1] (the first also holds e_0),
        # so every bin holds at least its upper edge: a quantile q puts the q-th of responses at or below.
        quantiles = np.quantile(pooled_len, np.linspace(0, 1, n_bins + 1), method="inverted_cdf")
        edges = np.unique(quantiles)
        which = np.searchsorted(edges[1:-1], pooled_len, side="left")  # bin of each response
        for b in range(max(len(edges) - 1, 1)):
            mask = which == b
            if not mask.any():
                continue
            values = pooled_r[mask]
            half = 1.96 * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else float("nan")
            bins.append(
                {
                    "unit": unit,
                    "bin": b,
                    "length_low": float(pooled_len[mask].min()),
                    "length_high": float(pooled_len[mask].max()),
                    "length_median": float(np.median(pooled_len[mask])),
                    "n": int(mask.sum()),
                    "mean_reward": float(values.mean()),
                    "ci_low": float(values.mean() - half),
                    "ci_high": float(values.mean() + half),
                    "mean_centred_reward": float(centred[mask].mean()),
                }
            )
    return {"summary": summary, "bins": bins}


# --- per generator --------------------------------------------------------------------------------------


def generator_stats(records: Sequence[dict]) -> list[dict]:
    """Per generator (``models``): how its responses fare under the reward.

    Columns: ``n_responses``; ``n_prompts`` (prompts it answered); ``mean_reward``; ``mean_percentile``,
    the mean within-prompt rank percentile ``(average rank − 1) / (N − 1)`` (0 = the prompt's worst,
    1 = its best; ties share the average rank; prompts with one response are left out);
    ``best_share``, the share of its prompts where it gave the best response (a tie for best splits the
    prompt equally among the tied responses); ``chance_best_share``, the same for a reward that picks
    uniformly at random (its responses per prompt / N, averaged); ``mean_chars``. Records without
    ``models`` are left out; sorted by ``mean_percentile``, best first.
    """
    acc: dict[str, dict[str, Any]] = {}
    for i, record in enumerate(records):
        if record.get("models") is None:
            continue
        r = _rewards_of(record, i)
        n = r.size
        percentile = (stats.rankdata(r) - 1) / (n - 1) if n > 1 else np.full(n, np.nan)
        best = (r == r.max()) / np.count_nonzero(r == r.max())
        for model in set(record["models"]):
            mine = np.array([m == model for m in record["models"]])
            a = acc.setdefault(model, {"rewards": [], "percentiles": [], "chars": [], "best": 0.0})
            a["rewards"].extend(r[mine])
            a["percentiles"].extend(percentile[mine])
            a["chars"].extend(len(t) for t, keep in zip(record["responses"], mine, strict=True) if keep)
            a["best"] += float(best[mine].sum())
            a["chance"] = a.get("chance", 0.0) + mine.sum() / n
            a["prompts"] = a.get("prompts", 0) + 1
    if not acc:
        raise ValueError("no record names the generator of its responses (response_i_model / models)")
    rows = [
        {
            "model": model,
            "n_responses": len(a["rewards"]),
            "n_prompts": a["prompts"],
            "mean_reward": float(np.mean(a["rewards"])),
            "mean_percentile": float(np.nanmean(a["percentiles"]))
            if not np.isnan(a["percentiles"]).all()
            else float("nan"),
            "best_share": a["best"] / a["prompts"],
            "chance_best_share": a["chance"] / a["prompts"],
            "mean_chars": float(np.mean(a["chars"])),
        }
        for model, a in acc.items()
    ]
    return sorted(rows, key=lambda row: (-np.nan_to_num(row["mean_percentile"], nan=-1.0), row["model"]))
