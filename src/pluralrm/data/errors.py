"""Errors that point at the exact place a data file went wrong.

A user with a 2 GB JSONL file needs the file, the line and the field, not a stack trace from deep inside
a parser; every loader raises :class:`DataValidationError` with those three facts filled in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordLocation:
    """Where a record came from: a file (or dataset name) and a 1-based line, or a 0-based row/index."""

    source: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.source}, line {self.line}"
        if self.row is not None:
            return f"{self.source}, record {self.row} (0-based)"
        return self.source


class DataValidationError(ValueError):
    """A record that cannot be read or does not match the expected format.

    Attributes
    ----------
    location : RecordLocation
        File and line (or record index) of the offending record.
    field : str or None
        The field that is missing or wrong, when one is to blame.
    reason : str
        What is wrong, in words.
    """

    def __init__(self, location: RecordLocation, reason: str, field: str | None = None) -> None:
        self.location = location
        self.field = field
        self.reason = reason
        where = f"{location}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {reason}")
