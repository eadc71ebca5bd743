"""The wide rewarded format: one row per prompt with ``response_1..N``, ``reward_1..N``, ``response_i_model``.

It is the layout of the RAFT/GSHF rewarded sets (``prompt``, 100 responses, 100 rewards) and what
``pluralrm generate`` and ``pluralrm rank`` write. Reading maps it onto the ranked-responses record once
(:func:`ranked_from_wide`); writing maps a ranked record back (:func:`wide_from_ranked`), so a file survives
``load → rank → write`` with every other column intact.

Errors name the wide column (``reward_3``), not the internal list position, so a user can find the cell.
An empty response (``""``) is accepted: language models do return nothing sometimes and a reward should see
that; the loader counts such responses, and the selection exports never pick one as a *chosen* response.
"""

from __future__ import annotations

import re
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.records import (
    OPTIONAL_TEXT_FIELDS,
    check_number,
    check_prompt,
    copy_optional,
    require_field,
)

_NUMBERED = re.compile(r"^(response|reward)_(\d+)$")
# Per-response columns besides the response and reward (``response_3_model``) → the ranked record's list.
PER_RESPONSE = {"model": "models", "finish": "finish_reasons"}
# Row-level columns carried through untouched (RewardBench pairs, generation parameters).
PASSTHROUGH = ("rewardbench_chosen", "rewardbench_rejected", "generation", "reward_source")
# Every other column of a row (``category``, ``response_3_tokens``, …) is kept as it is under this key and
# written back by :func:`wide_from_ranked`, so ``rank`` never drops a column of the file it rewards.
OTHER_COLUMNS = "other_columns"
_PER_RESPONSE_COLUMN = re.compile(rf"^response_\d+_({'|'.join(PER_RESPONSE)})$")


def _numbered(record: dict, kind: str) -> list[int]:
    return sorted(int(m.group(2)) for key in record if (m := _NUMBERED.match(key)) and m.group(1) == kind)


def _check_response(value: Any, location: RecordLocation, field: str) -> str:
    if not isinstance(value, str):
        raise DataValidationError(location, f"expected a string, got {type(value).__name__}", field)
    return value


def ranked_from_wide(record: Any, location: RecordLocation) -> dict:
    """One wide row → a ranked-responses record (N inferred from the ``response_i`` columns).

    Raises
    ------
    DataValidationError
        Response columns not numbered 1..N, a ``reward_i`` without ``response_i``, some rewards present
        and others missing (ragged), a reward that is not a finite number (NaN, inf, text), a response that
        is not a string.
    """
    if not isinstance(record, dict):
        raise DataValidationError(location, f"expected a JSON object, got {type(record).__name__}")
    indices = _numbered(record, "response")
    n = len(indices)
    if not n:
        raise DataValidationError(location, "no response_1..N columns", "response_1")
    if indices != list(range(1, n + 1)):
        missing = sorted(set(range(1, max(indices) + 1)) - set(indices))
        raise DataValidationError(
            location, "response columns are not numbered 1..N", f"response_{missing[0]}"
        )
    out: dict[str, Any] = {"prompt": check_prompt(require_field(record, "prompt", location), location)}
    out["responses"] = [
        _check_response(require_field(record, f"response_{i}", location), location, f"response_{i}")
        for i in indices
    ]
    extra = [i for i in _numbered(record, "reward") if i > n]
    if extra:
        raise DataValidationError(
            location, f"a reward without a response (the row has {n})", f"reward_{extra[0]}"
        )
    # A null reward counts as absent: a file whose rewards are all null is simply unrewarded.
    present = [i for i in indices if record.get(f"reward_{i}") is not None]
    if present:
        if len(present) < n:
            gap = next(i for i in indices if i not in present)
            raise DataValidationError(
                location, f"rewards given for {len(present)} of {n} responses (ragged row)", f"reward_{gap}"
            )
        out["rewards"] = [check_number(record[f"reward_{i}"], location, f"reward_{i}") for i in indices]
    for suffix, key in PER_RESPONSE.items():
        present = [i for i in indices if record.get(f"response_{i}_{suffix}") is not None]
        if not present:
            continue
        if len(present) < n:
            gap = next(i for i in indices if i not in present)
            raise DataValidationError(location, "missing required field", f"response_{gap}_{suffix}")
        out[key] = [str(record[f"response_{i}_{suffix}"]) for i in indices]
    copy_optional(record, out, location)
    for key in PASSTHROUGH:
        if record.get(key) is not None:
            out[key] = record[key]
    other = {key: value for key, value in record.items() if not _is_read(key)}
    if other:
        out[OTHER_COLUMNS] = other
    return out


def _is_read(key: str) -> bool:
    """Whether :func:`ranked_from_wide` maps column ``key`` onto a field of the ranked record."""
    return (
        key in ("prompt", "margin", *OPTIONAL_TEXT_FIELDS, *PASSTHROUGH)
        or _NUMBERED.match(key) is not None
        or _PER_RESPONSE_COLUMN.match(key) is not None
    )


def wide_from_ranked(record: dict, *, reward_prefix: str = "reward") -> dict:
    """A ranked record → one wide row (inverse of :func:`ranked_from_wide` on what it reads).

    Examples
    --------
    >>> wide_from_ranked({"id": "a", "prompt": "p", "responses": ["x", "y"], "rewards": [0.5, -1.0]})
    {'id': 'a', 'prompt': 'p', 'response_1': 'x', 'response_2': 'y', 'reward_1': 0.5, 'reward_2': -1.0}
    """
    out: dict[str, Any] = {}
    for key in ("id", "source", "subset", "user"):
        if record.get(key) is not None:
            out[key] = record[key]
    out["prompt"] = record["prompt"]
    responses = record["responses"]
    out |= {f"response_{i}": text for i, text in enumerate(responses, start=1)}
    if record.get("rewards") is not None:
        out |= {f"{reward_prefix}_{i}": float(r) for i, r in enumerate(record["rewards"], start=1)}
    for suffix, key in PER_RESPONSE.items():
        values = record.get(key)
        if values is not None:
            out |= {f"response_{i}_{suffix}": v for i, v in enumerate(values, start=1)}
    for key in PASSTHROUGH:
        if record.get(key) is not None:
            out[key] = record[key]
    for key, value in (record.get(OTHER_COLUMNS) or {}).items():
        out.setdefault(key, value)
    return out
