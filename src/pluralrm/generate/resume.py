"""Reading an output file back before a resumed run: what is done, and whether it may be continued.

A run appends one line per prompt, so a kill can leave at most one torn line at the end; that line is cut
off. Any other damage, a line written with other generation parameters, or an id whose prompt changed is
refused with an error saying where and what to do: silently mixing two settings in one file would make
its responses samples of two different distributions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pluralrm.atomic import cut_torn_line
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.generate.prompts import PromptRecord, prompt_key


class ResumeMismatchError(ValueError):
    """The output file was written with other generation parameters than this run's."""


def manifest_path(out: str | Path) -> Path:
    """``gen.jsonl`` → ``gen.meta.json``, beside it."""
    return Path(out).with_suffix(".meta.json")


def _mismatch(found: dict, wanted: dict) -> str:
    keys = sorted(set(found) | set(wanted))
    return "; ".join(
        f"{k}: {found.get(k)!r} in the file, {wanted.get(k)!r} now"
        for k in keys
        if found.get(k) != wanted.get(k)
    )


def read_done(out: Path, generation: dict, prompts: Sequence[PromptRecord]) -> tuple[set[str], int]:
    """Ids already answered in ``out`` (after cutting a torn last line) and how many responses were cut.

    Raises
    ------
    ResumeMismatchError
        A line was generated with other parameters.
    DataValidationError
        A damaged line, or an id whose prompt is not the one the prompts file now gives it.
    """
    if not out.exists():
        return set(), 0
    current = {p.id: prompt_key(p.prompt) for p in prompts}
    done: set[str] = set()
    n_length = 0
    for line_number, line in enumerate(cut_torn_line(out).split(b"\n")[:-1], start=1):
        location = RecordLocation(str(out), line=line_number)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataValidationError(
                location, f"malformed JSON ({error.msg}); the file is damaged"
            ) from None
        if not isinstance(record, dict) or "id" not in record or "generation" not in record:
            raise DataValidationError(
                location,
                "not a line written by pluralrm generate (no 'id' or 'generation'); refusing to append",
            )
        if record["generation"] != generation:
            raise ResumeMismatchError(
                f"{out} was generated with other parameters ({_mismatch(record['generation'], generation)}); "
                f"run again with the file's values to continue it, or delete {out} and "
                f"{manifest_path(out).name} (or choose another --out) to start over"
            )
        prompt_id = str(record["id"])
        if prompt_id in current and current[prompt_id] != prompt_key(record.get("prompt", "")):
            raise DataValidationError(
                location,
                f"id {prompt_id!r} was answered for another prompt than the prompts file now gives it; "
                "the prompts changed, so start a new output file",
                "prompt",
            )
        done.add(prompt_id)
        n_length += sum(1 for k, v in record.items() if k.endswith("_finish") and v == "length")
    return done, n_length
