"""The two record shapes of pluralrm and their validation.

* **Preference pair** — ``prompt``, ``chosen``, ``rejected``; optional ``id``, ``source``, ``subset``,
  ``user``, ``margin``. ``prompt`` is a string or a list of ``{"role", "content"}`` messages (multi-turn
  dialogues stay messages so that a chat template can format them); ``chosen``/``rejected`` are always
  the final response *strings* — conversational inputs are reduced to that once, here.
* **Ranked responses** — ``prompt``, ``responses: list[str]`` (an empty string is a valid response);
  optional ``rewards: list[float]``, ``models: list[str]``, ``finish_reasons: list[str]``, ``subset``,
  ``id``, ``source``.

Every check raises :class:`~pluralrm.data.errors.DataValidationError` naming the location and field.
"""

from __future__ import annotations

import math
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.transcripts import Message, TranscriptError, split_shared_prompt

Prompt = str | list[Message]
ROLES = ("system", "user", "assistant")
OPTIONAL_TEXT_FIELDS = ("id", "source", "subset", "user")


def require_field(record: Any, field: str, location: RecordLocation) -> Any:
    """Return ``record[field]``, raising a located error when the record or the field is missing."""
    if not isinstance(record, dict):
        raise DataValidationError(location, f"expected a JSON object, got {type(record).__name__}")
    if field not in record or record[field] is None:
        raise DataValidationError(location, "missing required field", field)
    return record[field]


def check_text(value: Any, location: RecordLocation, field: str) -> str:
    """A non-empty string (whitespace-only counts as empty: it carries no preference signal)."""
    if not isinstance(value, str):
        raise DataValidationError(location, f"expected a string, got {type(value).__name__}", field)
    if not value.strip():
        raise DataValidationError(location, "empty text", field)
    return value


def check_messages(value: Any, location: RecordLocation, field: str) -> list[Message]:
    """A non-empty list of ``{"role", "content"}`` messages with known roles and string contents."""
    if not isinstance(value, list) or not value:
        raise DataValidationError(location, "expected a non-empty list of messages", field)
    messages: list[Message] = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataValidationError(location, "expected a message with 'role' and 'content'", where)
        if message["role"] not in ROLES:
            raise DataValidationError(location, f"unknown role {message['role']!r}; expected {ROLES}", where)
        if not isinstance(message["content"], str):
            raise DataValidationError(location, "message content must be a string", where)
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def check_prompt(value: Any, location: RecordLocation, field: str = "prompt") -> Prompt:
    if isinstance(value, list):
        messages = check_messages(value, location, field)
        if not any(m["content"].strip() for m in messages):
            raise DataValidationError(location, "empty text", field)
        return messages
    return check_text(value, location, field)


def _response_from_messages(value: list[Message], location: RecordLocation, field: str) -> str:
    """TRL's explicit-prompt conversational format: ``chosen = [{"role": "assistant", ...}]``."""
    if len(value) != 1 or value[0]["role"] != "assistant":
        raise DataValidationError(
            location, "expected exactly one assistant message (the prompt belongs in 'prompt')", field
        )
    return check_text(value[0]["content"], location, field)


def copy_optional(record: dict, out: dict, location: RecordLocation) -> None:
    for field in OPTIONAL_TEXT_FIELDS:
        value = record.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise DataValidationError(location, f"expected a string, got {type(value).__name__}", field)
        out[field] = str(value)
    if record.get("margin") is not None:
        out["margin"] = check_number(record["margin"], location, "margin")


def check_number(value: Any, location: RecordLocation, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataValidationError(location, f"expected a finite number, got {value!r}", field)
    return float(value)


def normalize_pair(record: Any, location: RecordLocation) -> dict:
    """Validate a TRL-style pair (string or conversational, explicit or implicit prompt)."""
    chosen = require_field(record, "chosen", location)
    rejected = require_field(record, "rejected", location)
    out: dict[str, Any] = {}
    if record.get("prompt") is None:
        # Implicit prompt: each side is a whole conversation; the shared prefix is the prompt.
        chosen_msgs = check_messages(chosen, location, "chosen")
        rejected_msgs = check_messages(rejected, location, "rejected")
        try:
            prompt, chosen_text, rejected_text = split_shared_prompt(chosen_msgs, rejected_msgs)
        except TranscriptError as error:
            raise DataValidationError(location, str(error), "chosen") from None
        out["prompt"] = prompt
        out["chosen"] = check_text(chosen_text, location, "chosen")
        out["rejected"] = check_text(rejected_text, location, "rejected")
    else:
        out["prompt"] = check_prompt(record["prompt"], location)
        for field, value in (("chosen", chosen), ("rejected", rejected)):
            if isinstance(value, list):
                out[field] = _response_from_messages(check_messages(value, location, field), location, field)
            else:
                out[field] = check_text(value, location, field)
    copy_optional(record, out, location)
    return out


def normalize_ranked(record: Any, location: RecordLocation) -> dict:
    """Validate a ranked-responses record (``prompt``, ``responses``, optional ``rewards``/``models``)."""
    out: dict[str, Any] = {"prompt": check_prompt(require_field(record, "prompt", location), location)}
    responses = require_field(record, "responses", location)
    if not isinstance(responses, list) or not responses:
        raise DataValidationError(location, "expected a non-empty list of responses", "responses")
    # Empty responses are kept (a model can answer nothing; the reward should see it); the loader counts them.
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise DataValidationError(
                location, f"expected a string, got {type(r).__name__}", f"responses[{i}]"
            )
    out["responses"] = list(responses)
    n = len(responses)
    for field in ("rewards", "models", "finish_reasons"):
        values = record.get(field)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != n:
            raise DataValidationError(location, f"expected a list of {n} values (one per response)", field)
        if field == "rewards":
            out[field] = [check_number(v, location, f"rewards[{i}]") for i, v in enumerate(values)]
        else:
            out[field] = [str(v) for v in values]
    copy_optional(record, out, location)
    return out
