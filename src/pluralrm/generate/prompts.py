"""The prompts to generate for, read from any file pluralrm reads, each with an id stable across runs.

A resumed run skips prompts whose id is already in the output, so an id must name the same prompt every
time the same file is read: it is the record's own ``id`` when it has one, else ``<file name>:<line or
row>`` — the loaders' convention. Pair files repeat a prompt once per comparison; only its first
occurrence is kept (with that record's id), in first-seen order.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.io import iter_raw_records
from pluralrm.data.loaders import PAIR_FORMATS, RANKED_FORMATS, detect_format, load_pairs, load_ranked
from pluralrm.data.records import Prompt, check_prompt


@dataclass(frozen=True)
class PromptRecord:
    """One prompt to answer.

    Attributes
    ----------
    id : str
        Stable identity (the resume key).
    prompt : str or list of messages
        A user turn, or a conversation ending where the assistant should speak.
    subset : str or None
        The input record's subset (domain / category), carried to the output for later grouping.
    """

    id: str
    prompt: Prompt
    subset: str | None = None


def prompt_key(prompt: Prompt) -> str:
    """A hashable identity of a prompt's content (strings and message lists alike)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def _is_text_file(source: Any) -> bool:
    if not isinstance(source, str | Path):
        return False
    suffixes = [s.lower() for s in Path(source).suffixes]
    return suffixes[-1:] == [".txt"] or suffixes[-2:] == [".txt", ".gz"]


def _text_lines(path: Path) -> list[tuple[RecordLocation, dict]]:
    """``.txt``: one prompt per line; blank lines are skipped (ids keep their line numbers)."""
    if not path.exists():
        raise DataValidationError(RecordLocation(str(path)), "file not found")
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return [
        (RecordLocation(str(path), line=i), {"prompt": line.strip(), "id": f"{path.name}:{i}"})
        for i, line in enumerate(lines, start=1)
        if line.strip()
    ]


def _plain_prompts(source: Any, skip_invalid: bool) -> list[tuple[RecordLocation, dict]]:
    """A JSONL/JSON/Parquet file with just ``prompt`` (+ optional ``id``, ``subset``)."""
    name = Path(source).name if isinstance(source, str | Path) else "dataset"
    out = []
    for location, raw in iter_raw_records(source, skip_invalid=skip_invalid):
        try:
            if not isinstance(raw, dict) or "prompt" not in raw:
                keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
                raise DataValidationError(location, f"expected a 'prompt' field (keys: {keys})", "prompt")
            prompt = check_prompt(raw["prompt"], location)
        except DataValidationError:
            if skip_invalid:
                continue
            raise
        ordinal = location.line if location.line is not None else location.row
        record = {"prompt": prompt, "id": f"{name}:{ordinal}"}
        if raw.get("id") is not None:
            record["id"] = str(raw["id"])
        if raw.get("subset") is not None:
            record["subset"] = str(raw["subset"])
        out.append((location, record))
    return out


def _loaded_prompts(source: Any, format: str, skip_invalid: bool) -> list[tuple[RecordLocation, dict]]:
    """Pair or ranked files through :mod:`pluralrm.data.loaders` (they drop the location; rows are kept)."""
    loader = load_ranked if format in RANKED_FORMATS else load_pairs
    result = loader(source, format=format, skip_invalid=skip_invalid)
    label = result.report.source
    return [(RecordLocation(label, row=i), record) for i, record in enumerate(result.records)]


def _first_format(source: Any) -> str:
    for _, raw in iter_raw_records(source, skip_invalid=True):
        return detect_format(raw)
    return "unknown"


def _raw_location_of_id(source: Any, prompt_id: str, occurrence: int) -> RecordLocation | None:
    """Where the ``occurrence``-th raw record with this explicit id is (to point at a duplicate)."""
    seen = 0
    for location, raw in iter_raw_records(source, skip_invalid=True):
        if isinstance(raw, dict) and raw.get("id") is not None and str(raw["id"]) == prompt_id:
            seen += 1
            if seen == occurrence:
                return location
    return None


def load_prompts(source: Any, *, limit: int | None = None, skip_invalid: bool = False) -> list[PromptRecord]:
    """Unique prompts of a file, in first-seen order, each with a stable id.

    Parameters
    ----------
    source : str, Path or datasets.Dataset
        Anything :func:`~pluralrm.data.load_pairs` or :func:`~pluralrm.data.load_ranked` reads (TRL, HH
        transcripts, DSP, ranked, wide), a JSONL/JSON/Parquet file with just ``prompt`` (+ ``id``), or a
        ``.txt`` file with one prompt per line.
    limit : int, optional
        Keep only the first ``limit`` unique prompts.
    skip_invalid : bool
        Skip invalid records instead of raising on the first one.

    Raises
    ------
    DataValidationError
        A bad record, no prompts at all, or two different prompts under one id (the resume key).
    """
    loaded = False
    if _is_text_file(source):
        located = _text_lines(Path(source))
    else:
        fmt = _first_format(source)
        loaded = fmt in PAIR_FORMATS or fmt in RANKED_FORMATS
        if loaded:
            located = _loaded_prompts(source, fmt, skip_invalid)
        else:
            located = _plain_prompts(source, skip_invalid)
    prompts: list[PromptRecord] = []
    seen_prompts: set[str] = set()
    first_of_id: dict[str, RecordLocation] = {}
    for location, record in located:
        key = prompt_key(record["prompt"])
        if key in seen_prompts:
            continue
        seen_prompts.add(key)
        prompt_id = str(record["id"])
        if prompt_id in first_of_id:
            first, second = first_of_id[prompt_id], location
            if loaded:  # the loaders keep no line numbers: find the raw records carrying this id
                first = _raw_location_of_id(source, prompt_id, 1) or first
                second = _raw_location_of_id(source, prompt_id, 2) or second
            raise DataValidationError(
                second,
                f"id {prompt_id!r} names two different prompts (first at {first}); ids must be unique, "
                "since a resumed run skips the ids already answered",
                "id",
            )
        first_of_id[prompt_id] = location
        prompts.append(PromptRecord(id=prompt_id, prompt=record["prompt"], subset=record.get("subset")))
        if limit is not None and len(prompts) >= limit:
            break
    if not prompts:
        raise DataValidationError(RecordLocation(str(source)), "no prompts found")
    return prompts
