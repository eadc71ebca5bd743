"""Training records for policy SFT: best-of-N ``messages`` records → TRL prompt-completion examples.

``pluralrm.select`` exports one record per prompt, ``{"messages": [...prompt turns..., {"role":
"assistant", "content": best}], "id": ..., "reward": ...}``. SFT needs the last turn to be a non-empty
assistant answer with at least one turn before it; a record that is not is reported by file, line and
field before any model is loaded, so a bad line 9,000 does not surface after an hour of training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation


def _check_message(message: Any, index: int, location: RecordLocation) -> dict[str, str]:
    if not isinstance(message, dict):
        raise DataValidationError(
            location,
            f"expected an object with 'role' and 'content', got {type(message).__name__}",
            field=f"messages[{index}]",
        )
    for key in ("role", "content"):
        if not isinstance(message.get(key), str):
            got = "nothing" if key not in message else type(message[key]).__name__
            raise DataValidationError(
                location, f"expected a string, got {got}", field=f"messages[{index}].{key}"
            )
    return {"role": message["role"], "content": message["content"]}


def sft_example(record: Any, location: RecordLocation) -> dict[str, list[dict[str, str]]]:
    """One ``messages`` record as TRL's conversational prompt-completion example, or a located error.

    The last turn must be the assistant's, with non-empty content, and at least one turn must precede it:
    that answer is what the policy learns to give, and the turns before it are what it learns to answer.
    """
    if not isinstance(record, dict):
        raise DataValidationError(location, f"expected a JSON object, got {type(record).__name__}")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        got = "nothing" if "messages" not in record else repr(messages)[:60]
        raise DataValidationError(
            location, f"expected a non-empty list of turns, got {got}", field="messages"
        )
    turns = [_check_message(message, i, location) for i, message in enumerate(messages)]
    last = len(turns) - 1
    if turns[last]["role"] != "assistant":
        raise DataValidationError(
            location,
            f"the last turn must be the assistant's answer, got role {turns[last]['role']!r}",
            field=f"messages[{last}].role",
        )
    if not turns[last]["content"].strip():
        raise DataValidationError(
            location, "the assistant's answer is empty", field=f"messages[{last}].content"
        )
    if last == 0:
        raise DataValidationError(
            location, "no prompt: the answer needs at least one turn before it", "messages"
        )
    return {"prompt": turns[:last], "completion": [turns[last]]}


def load_sft_examples(source: str | Path | Iterable[dict]) -> tuple[list[dict], str, str]:
    """Validated prompt-completion examples, a sha256 of the data and a name for it.

    A file is hashed byte for byte; records given in memory are hashed as canonical JSON lines
    (sorted keys), so the same records give the same fingerprint whichever way they arrive.
    """
    from pluralrm.data.io import iter_raw_records

    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise DataValidationError(RecordLocation(str(path)), "file not found")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        raw = list(iter_raw_records(path))
        name = str(path)
    else:
        records = list(source)
        hasher = hashlib.sha256()
        for record in records:
            hasher.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n")
        digest = hasher.hexdigest()
        raw = [(RecordLocation("records", row=i), record) for i, record in enumerate(records)]
        name = f"{len(records)} records in memory"
    examples = [sft_example(record, location) for location, record in raw]
    if not examples:
        raise DataValidationError(RecordLocation(name), "no records to train on")
    return examples, digest, name


__all__ = ["load_sft_examples", "sft_example"]
