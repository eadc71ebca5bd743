"""Provenance of every collected record and the manifest of every stage, so a dataset says how it was made.

Each record of a stage's output carries ``provenance``: the stage, the ids of the records it came from
(``parents``), where its content came from (``source``), the model and parameters that made or judged it,
the seed and the time. Each stage also writes ``<stage>.manifest.json`` (atomically): its inputs, settings,
the records in and out of every filter with their times, and whether it finished. A later stage trusts only
a manifest whose status is ``complete``, and a stage re-run with the same inputs and settings can be
skipped; that is what makes every stage re-runnable and resumable on its own.

Append-only outputs (records written as they are made) are flushed and fsynced per record; a torn last line
left by a kill is dropped when the file is read back for a resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pluralrm.atomic import write_json, write_jsonl
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.io import iter_raw_records

logger = logging.getLogger(__name__)

STAGES = ("prompts", "responses", "filter", "labels")


def now() -> str:
    """UTC time in ISO 8601 to the second (what every provenance and manifest records)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_id(*parts: Any) -> str:
    """A short id fixed by content, so a re-run gives every record the same id.

    Examples
    --------
    >>> record_id("p", 1) == record_id("p", 1) != record_id("p", 2)
    True
    """
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(
    stage: str,
    *,
    parents: Sequence[str] = (),
    source: str | None = None,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """The ``provenance`` field of one record.

    Parameters
    ----------
    stage : {"prompts", "responses", "filter", "labels"}
    parents : sequence of str
        Ids of the records this one was made from (a response's prompt, a pair's two responses).
    source : str, optional
        A file, dataset or rule the content came from (``"self-instruct"``, a prompts file …).
    model, params, seed :
        What made or judged the record, with the settings that decide the result.
    time : str, optional
        When; default now (UTC).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return {
        "stage": stage,
        "parents": list(parents),
        "source": source,
        "model": model,
        "params": dict(params or {}),
        "seed": seed,
        "time": time or now(),
    }


@dataclass(frozen=True)
class FilterCount:
    """One row of a stage's table: a named rule, the records it saw and kept, and how long it took."""

    name: str
    records_in: int
    records_out: int
    seconds: float

    @property
    def dropped(self) -> int:
        return self.records_in - self.records_out


@dataclass
class StageManifest:
    """What a stage did: written as ``<stage>.manifest.json`` beside its output.

    ``settings`` decide the output (with ``inputs``, they are compared to skip a finished stage);
    ``inputs`` maps each input file to its content hash, so a changed input forces a re-run.
    """

    stage: str
    inputs: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    filters: list[FilterCount] = field(default_factory=list)
    status: str = "running"
    started_at: str = field(default_factory=now)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        # As JSON stores them (tuples become lists), so a manifest read back compares equal to a new one.
        self.inputs = json.loads(json.dumps(self.inputs))
        self.settings = json.loads(json.dumps(self.settings, default=str))

    def to_dict(self) -> dict[str, Any]:
        import pluralrm

        out = asdict(self)
        out["filters"] = [{**asdict(f), "dropped": f.dropped} for f in self.filters]
        out["pluralrm_version"] = pluralrm.__version__
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageManifest:
        filters = [
            FilterCount(f["name"], f["records_in"], f["records_out"], f["seconds"]) for f in data["filters"]
        ]
        keep = {
            k: data[k] for k in ("stage", "inputs", "settings", "outputs", "status", "started_at", "seconds")
        }
        return cls(**keep, filters=filters)

    def same_run(self, other: StageManifest) -> bool:
        """Whether ``other`` was made from the same inputs with the same settings."""
        return self.stage == other.stage and self.inputs == other.inputs and self.settings == other.settings


def manifest_file(project: str | Path, stage: str) -> Path:
    return Path(project) / f"{stage}.manifest.json"


def write_manifest(project: str | Path, manifest: StageManifest) -> Path:
    """Write a stage's manifest atomically (a reader sees the old one or the new one, never half)."""
    path = manifest_file(project, manifest.stage)
    write_json(path, manifest.to_dict())
    return path


def read_manifest(project: str | Path, stage: str) -> StageManifest | None:
    """The stage's manifest, or None when it was never written (a damaged one is an error)."""
    path = manifest_file(project, stage)
    if not path.exists():
        return None
    try:
        return StageManifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as error:
        raise DataValidationError(
            RecordLocation(str(path)), f"not a stage manifest ({error}); delete it to re-run the stage"
        ) from None


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (an input's identity in a manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def append_record(handle: IO[str], record: dict[str, Any]) -> None:
    """Append one JSON line and make it durable before the next is made (resumable outputs)."""
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a stage's JSONL file; a bad line is a located error (``pluralrm.data.io``)."""
    records = []
    for location, record in iter_raw_records(Path(path)):
        if not isinstance(record, dict):
            raise DataValidationError(location, "expected a JSON object")
        records.append(record)
    return records


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write a whole stage output atomically (JSONL); returns how many records were written."""
    return write_jsonl(path, records)
