"""PNG figures of a many-responses analysis: best-of-N curves, reward vs length, generators, agreement.

Each takes the tidy rows of :mod:`pluralrm.evaluate.many.curves` (the same rows the CSVs hold), so a figure
never shows a number the tables do not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pluralrm.atomic import atomic_path
from pluralrm.evaluate.plots import _pyplot

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")


def _save(fig, path: str | Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_best_of_n(curves: dict[str, list[dict]], path: str | Path, *, title: str = "") -> Path:
    """Two panels against n (log scale): expected value of the pick, and its win rate over a random
    response, each with its 95 % band; one line per curve (e.g. the reward, and its picks as judged by
    another reward), from :func:`best_of_n_curve` rows."""
    plt = _pyplot()
    fig, (ax_value, ax_win) = plt.subplots(1, 2, figsize=(10, 3.8))
    for color, (label, rows) in zip(COLORS * 4, curves.items(), strict=False):
        rows = [r for r in rows if r["n_prompts"]]
        n = np.array([r["n"] for r in rows])
        for ax, key in ((ax_value, "expected"), (ax_win, "win_rate")):
            mean = np.array([r[key] for r in rows])
            low, high = (np.array([r[f"{key}_ci_{side}"] for r in rows]) for side in ("low", "high"))
            ax.plot(n, mean, marker="o", color=color, label=label)
            ax.fill_between(n, low, high, color=color, alpha=0.2, linewidth=0)
    for ax in (ax_value, ax_win):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (responses picked from)")
    ax_value.set_ylabel("expected value of the pick")
    ax_win.set_ylabel("win rate over a random response")
    ax_win.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax_win.set_ylim(0, 1)
    ax_value.legend(fontsize=8)
    fig.suptitle(title or "Best-of-n (exact over random n-subsets; 95% bands over prompts)")
    return _save(fig, path)


def plot_length(length: dict[str, list[dict]], path: str | Path, *, title: str = "") -> Path:
    """Mean reward per length-quantile bin (95 % bars) and the mean prompt-centred reward, one panel per
    length unit, from :func:`length_correlation`'s result; the titles give the within-prompt ρ."""
    plt = _pyplot()
    units = [row["unit"] for row in length["summary"]]
    fig, axes = plt.subplots(1, len(units), figsize=(5 * len(units), 3.8), squeeze=False)
    for ax, summary in zip(axes[0], length["summary"], strict=True):
        bins = [b for b in length["bins"] if b["unit"] == summary["unit"]]
        x = np.array([b["length_median"] for b in bins])
        mean = np.array([b["mean_reward"] for b in bins])
        err = np.array([mean - [b["ci_low"] for b in bins], [b["ci_high"] for b in bins] - mean])
        ax.errorbar(x, mean, yerr=err, marker="o", capsize=2, color=COLORS[0], label="mean reward")
        ax.plot(
            x,
            [b["mean_centred_reward"] for b in bins],
            marker="s",
            color=COLORS[1],
            label="minus prompt mean",
        )
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel(f"response length ({summary['unit']}, median of quantile bin)")
        ax.set_ylabel("reward")
        ax.set_title(
            f"within-prompt ρ {summary['within_mean']:.2f}, pooled ρ {summary['pooled_spearman']:.2f}",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    fig.suptitle(title or "Reward vs response length")
    return _save(fig, path)


def plot_generators(rows: list[dict], path: str | Path, *, top: int = 30, title: str = "") -> Path:
    """Per generator (the ``top`` with most responses): mean within-prompt percentile, and the share of
    its prompts where it gave the best response against what a random pick would give."""
    plt = _pyplot()
    shown = sorted(
        sorted(rows, key=lambda r: -r["n_responses"])[:top], key=lambda r: np.nan_to_num(r["mean_percentile"])
    )
    names = [r["model"] for r in shown]
    y = np.arange(len(shown))
    fig, (ax_pct, ax_best) = plt.subplots(1, 2, figsize=(10, max(3, 0.28 * len(shown) + 1)), sharey=True)
    ax_pct.barh(y, [r["mean_percentile"] for r in shown], color=COLORS[0])
    ax_pct.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax_pct.set_xlim(0, 1)
    ax_pct.set_yticks(y, names, fontsize=7)
    ax_pct.set_xlabel("mean within-prompt percentile (1 = best)")
    ax_best.barh(y, [r["best_share"] for r in shown], color=COLORS[2], label="best on its prompts")
    ax_best.scatter(
        [r["chance_best_share"] for r in shown], y, color="black", marker="|", s=80, label="chance"
    )
    ax_best.set_xlabel("share of its prompts where it is best")
    ax_best.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or "Responses by generator")
    return _save(fig, path)


def plot_rewards(
    rewards: list[np.ndarray], path: str | Path, *, against: list[np.ndarray] | None = None, title: str = ""
) -> Path:
    """Histograms of the rewards of every response and of the same rewards minus their prompt's mean
    (what best-of-n ranks on), for the reward and, if given, the second one."""
    plt = _pyplot()
    fig, (ax_raw, ax_centred) = plt.subplots(1, 2, figsize=(10, 3.5))
    for color, (label, values) in zip(COLORS, (("reward", rewards), ("against", against)), strict=False):
        if values is None:
            continue
        raw = np.concatenate(values)
        centred = np.concatenate([v - v.mean() for v in values])
        ax_raw.hist(raw, bins=40, color=color, alpha=0.6, label=label)
        ax_centred.hist(centred, bins=40, color=color, alpha=0.6, label=label)
    ax_raw.set_xlabel("reward")
    ax_centred.set_xlabel("reward minus its prompt's mean")
    for ax in (ax_raw, ax_centred):
        ax.set_ylabel("responses")
        ax.legend(fontsize=8)
    fig.suptitle(title or f"Reward distribution ({sum(len(v) for v in rewards)} responses)")
    return _save(fig, path)


def plot_agreement(spearman: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """Histogram of per-prompt Spearman ρ between two rewards (undefined prompts left out)."""
    plt = _pyplot()
    values = np.asarray(spearman, dtype=np.float64)
    values = values[~np.isnan(values)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values, bins=np.linspace(-1, 1, 41), color=COLORS[0])
    if values.size:
        ax.axvline(values.mean(), color=COLORS[3], label=f"mean {values.mean():.3f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("per-prompt Spearman ρ")
    ax.set_ylabel("prompts")
    ax.set_title(title or f"Agreement of the two rewards ({values.size} prompts)")
    return _save(fig, path)
