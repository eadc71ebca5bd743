"""The labelling project's files: the pairs-to-label JSONL that comes in, the TRL pairs that go out.

In: one object per line, ``{"pair_id", "prompt", "response_a", "response_b", "ai_label": "a"|"b"|null,
"ai_margin": float|null, "provenance": {...}}`` — the filtering stage's output handed to people; a bad line
raises :class:`~pluralrm.data.errors.DataValidationError` naming file, line and field. ``prompt`` is the text
a labeller reads; a multi-turn prompt also keeps its turns in ``provenance.conversation`` (role/content
messages, as the filtering stage writes them), and the export uses those turns.

Out: TRL's conversational preference format with an explicit prompt, as :mod:`pluralrm.select.exports`
writes it (``prompt`` messages — every turn of a multi-turn prompt —, one assistant message each in
``chosen`` / ``rejected``), plus ``id`` and who labelled it; any pluralrm loader, ``pluralrm adapt`` and
TRL's ``RewardTrainer`` read it as is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pluralrm.atomic import write_jsonl
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.records import check_messages
from pluralrm.label.agreement import DECISIVE, majority
from pluralrm.label.store import LabelStore, PairToLabel


def read_pairs(path: str | Path) -> list[PairToLabel]:
    """Read a pairs-to-label JSONL file; the first bad line raises an error naming line and field."""
    path = Path(path)
    pairs: list[PairToLabel] = []
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = RecordLocation(str(path), line=number)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataValidationError(where, f"not valid JSON ({error.msg})") from None
            pair = _pair_of(record, where)
            if pair.pair_id in lines:
                raise DataValidationError(
                    where, f"duplicate pair_id (first on line {lines[pair.pair_id]})", "pair_id"
                )
            lines[pair.pair_id] = number
            pairs.append(pair)
    return pairs


def _pair_of(record: Any, where: RecordLocation) -> PairToLabel:
    if not isinstance(record, dict):
        raise DataValidationError(where, f"expected a JSON object, got {type(record).__name__}")
    for name in ("pair_id", "prompt", "response_a", "response_b"):
        value = record.get(name)
        if not isinstance(value, str) or (name == "pair_id" and not value):
            raise DataValidationError(where, "missing, or not a (non-empty id) string", name)
    ai_label, ai_margin = record.get("ai_label"), record.get("ai_margin")
    if ai_label not in ("a", "b", None):
        raise DataValidationError(where, f"must be 'a', 'b' or null, got {ai_label!r}", "ai_label")
    if ai_margin is not None and (
        isinstance(ai_margin, bool) or not isinstance(ai_margin, int | float) or not math.isfinite(ai_margin)
    ):
        raise DataValidationError(where, f"must be a finite number or null, got {ai_margin!r}", "ai_margin")
    provenance = record.get("provenance", {})
    if not isinstance(provenance, dict):
        raise DataValidationError(where, "must be a JSON object", "provenance")
    if provenance.get("conversation") is not None:
        check_messages(provenance["conversation"], where, "provenance.conversation")
    return PairToLabel(
        record["pair_id"],
        record["prompt"],
        record["response_a"],
        record["response_b"],
        ai_label,
        None if ai_margin is None else float(ai_margin),
        provenance,
    )


def export_rows(store: LabelStore, *, per_labeller: bool = False) -> list[dict[str, Any]]:
    """Human labels as TRL conversational preference pairs (as :mod:`pluralrm.select.exports` writes).

    Overall: one row per pair with a decisive majority of its labellers (``labellers`` lists them; pairs
    answered only ``tie``, or split evenly, give no row). Per labeller: one row per decisive label, with
    the labeller's name in ``user`` (the column ``pluralrm adapt`` data and the synthetic users share).
    """
    pairs = {pair.pair_id: pair for pair in store.pairs()}
    labels = store.labels()
    decided: list[tuple[str, str | None, dict[str, Any]]]
    if per_labeller:
        decided = [(label.pair_id, label.choice, {"user": label.labeller}) for label in labels]
    else:
        names: dict[str, list[str]] = {}
        for label in labels:
            if label.choice in DECISIVE:
                names.setdefault(label.pair_id, []).append(label.labeller)
        # A pair answered only "tie" has no decisive label, hence no labellers here: it gives no row.
        decided = [(p, m, {"labellers": sorted(names.get(p, []))}) for p, m in majority(labels).items()]
    decided = [item for item in decided if item[1] in DECISIVE]
    rows = []
    for pair_id, choice, extra in sorted(decided, key=lambda item: (item[0], str(item[2]))):
        pair = pairs[pair_id]
        chosen, rejected = (
            (pair.response_a, pair.response_b) if choice == "a" else (pair.response_b, pair.response_a)
        )
        rows.append(
            {
                "prompt": prompt_messages(pair),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "id": pair_id,
                **extra,
                "source": "human",
            }
        )
    return rows


def prompt_messages(pair: PairToLabel) -> list[dict[str, str]]:
    """The pair's prompt as TRL messages: its turns when it came as a conversation, else one user turn."""
    conversation = pair.provenance.get("conversation")
    if conversation:
        return [{"role": m["role"], "content": m["content"]} for m in conversation]
    return [{"role": "user", "content": pair.prompt}]


def write_export(store: LabelStore, out: str | Path, *, per_labeller: bool = False) -> dict[str, int]:
    """Write the export atomically: one file, or with ``per_labeller`` a directory of ``<name>.jsonl``
    (one per labeller with a decisive label, each ready for ``pluralrm adapt --pairs``).

    Returns rows written per file name.
    """
    rows = export_rows(store, per_labeller=per_labeller)
    if not per_labeller:
        return {Path(out).name: write_jsonl(out, rows)}
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_user.setdefault(row["user"], []).append(row)
    return {f"{user}.jsonl": write_jsonl(Path(out) / f"{user}.jsonl", got) for user, got in by_user.items()}
