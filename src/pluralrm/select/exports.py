"""Reward-ranked selections from many responses per prompt, written in TRL's dataset formats.

* **best-of-N** and **RAFT** (Dong et al. 2023) → SFT data in TRL's conversational ``messages`` format
  (``trl sft`` / ``SFTTrainer`` read it as is): the top-1 per prompt, the top-k per prompt, or the top α
  share of all (prompt, response) samples of the batch (RAFT's global ranking).
* **best-vs-worst** and **best-vs-random** (GSHF / iterative DPO, Xiong et al. 2024) → preference pairs in
  TRL's conversational format with an explicit prompt: ``prompt`` (messages), ``chosen`` / ``rejected``
  (one assistant message each), plus ``score_chosen`` / ``score_rejected``.
* **per-user best-of-N**: each user's own best response under their profile.

Rules every export shares, so results do not depend on input quirks:
ties keep the earlier response (stable sort); an empty response is never *chosen* (SFT on it teaches
silence) but can be *rejected*; a prompt whose candidates all tie gives no preference pair (counted in
``skipped``); a pair export needs at least two responses per prompt and says which record has fewer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pluralrm.backbone.formatting import prompt_messages
from pluralrm.config import SELECT


@dataclass
class Selection:
    """Exported rows plus why some prompts gave none (reason → count)."""

    rows: list[dict]
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return f"{len(self.rows)} rows" + (f"; skipped prompts: {reasons}" if reasons else "")


class SelectionError(ValueError):
    """A record that a selection cannot use, named by its id."""


def _rewards(record: dict, rewards: Sequence[float] | None = None) -> np.ndarray:
    values = record.get("rewards") if rewards is None else rewards
    if values is None:
        raise SelectionError(
            f"record {record.get('id')!r} has no rewards; score the file first with `pluralrm rank`"
        )
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(record["responses"]),):
        raise SelectionError(
            f"record {record.get('id')!r}: {values.size} rewards for {len(record['responses'])} responses"
        )
    if not np.all(np.isfinite(values)):
        raise SelectionError(f"record {record.get('id')!r}: rewards must be finite")
    return values


def _order(rewards: np.ndarray) -> np.ndarray:
    """Indices best first; ties keep input order."""
    return np.argsort(-rewards, kind="stable")


def _choosable(record: dict, order: np.ndarray) -> list[int]:
    return [int(i) for i in order if record["responses"][i].strip()]


def _sft_row(record: dict, index: int, reward: float, **extra: Any) -> dict:
    messages = [
        *prompt_messages(record["prompt"]),
        {"role": "assistant", "content": record["responses"][index]},
    ]
    row = {"messages": messages, "id": record.get("id"), "response_index": index + 1, "reward": float(reward)}
    return row | extra


def _pair_row(record: dict, chosen: int, rejected: int, rewards: np.ndarray) -> dict:
    responses = record["responses"]
    return {
        "prompt": prompt_messages(record["prompt"]),
        "chosen": [{"role": "assistant", "content": responses[chosen]}],
        "rejected": [{"role": "assistant", "content": responses[rejected]}],
        "score_chosen": float(rewards[chosen]),
        "score_rejected": float(rewards[rejected]),
        "id": record.get("id"),
    }


def best_of_n(records: Sequence[dict], *, n: int | None = None) -> Selection:
    """The best response of each prompt (among its first ``n`` when given) as an SFT row."""
    return top_k_per_prompt(records, k=1, n=n)


def top_k_per_prompt(records: Sequence[dict], *, k: int, n: int | None = None) -> Selection:
    """RAFT's per-prompt selection: the ``k`` best non-empty responses of each prompt, best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    selection = Selection(rows=[])
    for record in records:
        rewards = _rewards(record)
        limit = len(rewards) if n is None else min(n, len(rewards))
        candidates = _choosable(record, _order(rewards[:limit]))
        if not candidates:
            selection.skipped["with only empty responses"] += 1
            continue
        selection.rows += [_sft_row(record, i, rewards[i], rank=r + 1) for r, i in enumerate(candidates[:k])]
    return selection


def top_fraction(records: Sequence[dict], *, alpha: float) -> Selection:
    """RAFT's global ranking: the top ``alpha`` share of all non-empty (prompt, response) samples."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    samples = [
        (float(r), p, i)
        for p, record in enumerate(records)
        for i, r in enumerate(_rewards(record))
        if record["responses"][i].strip()
    ]
    keep = int(np.ceil(alpha * len(samples)))
    # Best first; ties keep file order (prompt, then response), like every other export.
    samples.sort(key=lambda s: (-s[0], s[1], s[2]))
    selection = Selection(rows=[_sft_row(records[p], i, r) for r, p, i in samples[:keep]])
    chosen_prompts = {p for _, p, _ in samples[:keep]}
    selection.skipped["below the global cut"] = len(records) - len(chosen_prompts)
    return selection


def _require_two(record: dict) -> None:
    if len(record["responses"]) < 2:
        raise SelectionError(
            f"record {record.get('id')!r} has {len(record['responses'])} response; preference pairs need "
            "at least 2 per prompt"
        )


def best_vs_worst(records: Sequence[dict]) -> Selection:
    """One pair per prompt: the best non-empty response over the worst (GSHF: best-of-n vs worst-of-n)."""
    selection = Selection(rows=[])
    for record in records:
        _require_two(record)
        rewards = _rewards(record)
        order = _order(rewards)
        candidates = _choosable(record, order)
        if not candidates:
            selection.skipped["with only empty responses"] += 1
            continue
        best, worst = candidates[0], int(order[-1])
        if rewards[best] <= rewards[worst]:
            selection.skipped["whose rewards all tie"] += 1
            continue
        selection.rows.append(_pair_row(record, best, worst, rewards))
    return selection


def best_vs_random(records: Sequence[dict], *, seed: int = SELECT.seed) -> Selection:
    """One pair per prompt: the best response over a uniformly drawn response with a strictly lower reward."""
    rng = np.random.default_rng(seed)
    selection = Selection(rows=[])
    for record in records:
        _require_two(record)
        rewards = _rewards(record)
        candidates = _choosable(record, _order(rewards))
        if not candidates:
            selection.skipped["with only empty responses"] += 1
            continue
        best = candidates[0]
        lower = np.flatnonzero(rewards < rewards[best])
        if not lower.size:
            selection.skipped["whose rewards all tie"] += 1
            continue
        selection.rows.append(_pair_row(record, best, int(rng.choice(lower)), rewards))
    return selection


def per_user_best_of_n(
    records: Sequence[dict], rewards_by_user: Mapping[str, Sequence[Sequence[float]]]
) -> Selection:
    """Each user's best response per prompt under their own reward, as SFT rows with a ``user`` column.

    ``rewards_by_user[user][p]`` are the rewards of record ``p``'s responses under that user's profile.
    """
    selection = Selection(rows=[])
    for user, per_record in rewards_by_user.items():
        if len(per_record) != len(records):
            raise SelectionError(f"user {user!r}: rewards for {len(per_record)} of {len(records)} records")
        for record, values in zip(records, per_record, strict=True):
            rewards = _rewards(record, values)
            candidates = _choosable(record, _order(rewards))
            if not candidates:
                selection.skipped["with only empty responses"] += 1
                continue
            selection.rows.append(_sft_row(record, candidates[0], rewards[candidates[0]], user=user))
    return selection


EXPORTS = ("best-of-n", "top-k", "top-fraction", "best-vs-worst", "best-vs-random", "per-user")
