"""One analysis of a rewarded many-responses file: every table, figure and summary, written to a folder.

This is what ``pluralrm analyze`` calls; the maths is in :mod:`pluralrm.evaluate.many.curves`,
:mod:`pluralrm.evaluate.many.responses` and :mod:`pluralrm.evaluate.many.rewardbench`, the figures in
:mod:`pluralrm.evaluate.many.plots`. A piece the data cannot support (no second reward, no generator
names, no RewardBench pairs or no model to score them) is skipped with a one-line note in the summary,
not an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from pluralrm.atomic import write_json
from pluralrm.config import ANALYZE, AnalyzeConfig
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.evaluate.many.curves import agreement, best_of_n_curve, default_ns
from pluralrm.evaluate.many.plots import (
    plot_agreement,
    plot_best_of_n,
    plot_generators,
    plot_length,
    plot_rewards,
)
from pluralrm.evaluate.many.responses import generator_stats, length_correlation
from pluralrm.evaluate.many.rewardbench import FIELDS, ScoreFn, rewardbench_accuracy
from pluralrm.evaluate.tables import write_csv

logger = logging.getLogger(__name__)


class Bootstrap(TypedDict):
    """The resampling settings every interval of one analysis shares."""

    n_resamples: int
    seed: int


# Names of the best-of-n curves in the tables, the figure and the summary.
OWN, JUDGED, ORACLE = "reward", "reward, valued by against", "against (its own best)"


def require_rewards(records: Sequence[dict], source: str) -> None:
    """Raise a located error at the first record without rewards."""
    for index, record in enumerate(records):
        if record.get("rewards") is None:
            raise DataValidationError(
                RecordLocation(source, row=index),
                f"record id {record.get('id')!r} has no rewards (reward_1..N); run `pluralrm rank` first "
                "to score its responses",
                "reward_1",
            )


def match_records(
    records: Sequence[dict], others: Sequence[dict], *, source: str, other_source: str
) -> tuple[list[dict], str]:
    """The record of ``others`` for each of ``records``: by ``id``, or by position when the two files share
    no id (ids a loader made up from line numbers differ between files); then the prompt and every
    response must be equal, or a located error says which differs.

    Returns
    -------
    matched, how : list of dict, str
        ``how`` is ``"id"`` or ``"order"``.
    """
    by_id: dict[Any, int] = {}
    for j, other in enumerate(others):
        if other["id"] in by_id:
            raise DataValidationError(
                RecordLocation(other_source, row=j), f"id {other['id']!r} appears twice", "id"
            )
        by_id[other["id"]] = j
    how = "id" if any(r["id"] in by_id for r in records) else "order"
    if how == "order" and len(others) != len(records):
        raise DataValidationError(
            RecordLocation(other_source),
            f"shares no record id with {source} and has {len(others)} records, not {len(records)}: "
            "cannot match the records",
        )
    matched = []
    for i, record in enumerate(records):
        found = by_id.get(record["id"]) if how == "id" else i
        if found is None:
            raise DataValidationError(
                RecordLocation(other_source),
                f"no record with id {record['id']!r} (record {i} of {source})",
                "id",
            )
        other, where = others[found], RecordLocation(other_source, row=found)
        if other["prompt"] != record["prompt"]:
            raise DataValidationError(where, f"prompt differs from record {i} of {source}", "prompt")
        if len(other["responses"]) != len(record["responses"]):
            raise DataValidationError(
                where,
                f"{len(other['responses'])} responses, but record {i} of {source} has "
                f"{len(record['responses'])}",
                "responses",
            )
        for k, (a, b) in enumerate(zip(record["responses"], other["responses"], strict=True)):
            if a != b:
                raise DataValidationError(where, f"differs from record {i} of {source}", f"response_{k + 1}")
        matched.append(other)
    return matched, how


def _finite(obj: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def analyze_ranked(
    records: Sequence[dict],
    out: str | Path,
    *,
    against: Sequence[dict] | None = None,
    score_fn: ScoreFn | None = None,
    config: AnalyzeConfig = ANALYZE,
    source: str = "records",
    against_source: str = "against",
) -> dict:
    """Analyse rewarded ranked records and write CSVs, PNGs and ``summary.json`` under ``out``.

    Parameters
    ----------
    records : sequence of dict
        From :func:`pluralrm.data.load_ranked`; every record needs ``rewards``.
    out : path
        Folder to write into (created).
    against : sequence of dict, optional
        The same prompts and responses under a second reward: per-prompt agreement, and best-of-n picked
        by ``records``' reward but valued by this one (does the picked response stay good?).
    score_fn : callable, optional
        ``RewardModel.rewards``-like; scores the RewardBench pairs the records carry.
    config : AnalyzeConfig

    Returns
    -------
    dict
        The summary also written to ``summary.json`` (``notes`` lists the skipped pieces).
    """
    require_rewards(records, source)
    out = Path(out)
    boot: Bootstrap = {"n_resamples": config.n_resamples, "seed": config.seed}
    rewards = [np.asarray(r["rewards"], dtype=np.float64) for r in records]
    ns = list(config.ns) if config.ns else default_ns(max(r.size for r in rewards))
    summary: dict[str, Any] = {
        "source": source,
        "n_prompts": len(records),
        "n_responses": int(sum(r.size for r in rewards)),
        "ns": ns,
        "notes": [],
    }
    files: list[Path] = []
    notes: list[str] = summary["notes"]

    curves = {OWN: best_of_n_curve(rewards, ns, **boot)}
    judge: list[np.ndarray] | None = None
    if against is not None:
        require_rewards(against, against_source)
        matched, how = match_records(records, against, source=source, other_source=against_source)
        if how == "order":
            notes.append(f"{against_source} shares no id with {source}: records matched by position")
        judge = [np.asarray(r["rewards"], dtype=np.float64) for r in matched]
        result = agreement(rewards, judge, **boot)
        per_prompt = [
            {
                "id": r["id"],
                "n": len(r["responses"]),
                **{k: float(v[i]) for k, v in result.per_prompt.items()},
            }
            for i, r in enumerate(records)
        ]
        files += [
            write_csv(per_prompt, out / "agreement_per_prompt.csv"),
            write_csv(result.summary, out / "agreement.csv"),
            plot_agreement(result.per_prompt["spearman"], out / "agreement.png"),
        ]
        summary["agreement"] = result.summary
        curves[JUDGED] = best_of_n_curve(rewards, ns, judge, **boot)
        curves[ORACLE] = best_of_n_curve(judge, ns, **boot)
    else:
        notes.append("no second reward (--against): agreement and the judged best-of-n curve skipped")
    files += [
        write_csv([{"curve": k, **row} for k, rows in curves.items() for row in rows], out / "best_of_n.csv"),
        plot_best_of_n(curves, out / "best_of_n.png"),
        plot_rewards(rewards, out / "rewards.png", against=judge),
    ]
    summary["best_of_n"] = curves

    length = length_correlation(records, n_bins=config.n_bins, **boot)
    files += [
        write_csv(length["summary"], out / "length.csv"),
        write_csv(length["bins"], out / "length_bins.csv"),
        plot_length(length, out / "length.png"),
    ]
    summary["length"] = length["summary"]

    if any(r.get("models") is not None for r in records):
        generators = generator_stats(records)
        files += [
            write_csv(generators, out / "generators.csv"),
            plot_generators(generators, out / "generators.png"),
        ]
        summary["generators"] = generators
    else:
        notes.append("no generator names (response_i_model): per-generator stats skipped")

    n_bench = sum(all(r.get(f) is not None for f in FIELDS) for r in records)
    if n_bench and score_fn is not None:
        bench = rewardbench_accuracy(records, score_fn, source=source, **boot)
        files += [
            write_csv(bench["subsets"], out / "rewardbench_subsets.csv"),
            write_csv(bench["sections"], out / "rewardbench_sections.csv"),
        ]
        summary["rewardbench"] = bench["sections"]
    elif n_bench:
        notes.append(
            f"{n_bench} records carry RewardBench pairs: pass a reward model (--model) to score them"
        )
    else:
        notes.append("no rewardbench_chosen/rewardbench_rejected: RewardBench accuracy skipped")

    summary["files"] = [p.name for p in files] + ["summary.json"]
    write_json(out / "summary.json", _finite(summary))
    for note in notes:
        logger.info(note)
    return summary
