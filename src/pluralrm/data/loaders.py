"""Load any supported preference format into pluralrm's records.

Two entry points, one per record shape:

* :func:`load_pairs` — TRL pairwise, HH-RLHF transcripts, DSP general preferences, DSP domain data
  (expanded to per-domain pairs) → preference pairs.
* :func:`load_ranked` — the wide rewarded format (``response_1..N``/``reward_1..N``), ranked records,
  DSP domain data → ranked-responses records.

The format is detected from the first record unless given. Each loader maps its column names onto the
record contract once, here, so nothing downstream guesses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.io import iter_raw_records
from pluralrm.data.records import (
    check_number,
    check_text,
    normalize_pair,
    normalize_ranked,
    require_field,
)
from pluralrm.data.transcripts import TranscriptError, parse_transcript, split_shared_prompt
from pluralrm.data.wide import ranked_from_wide

logger = logging.getLogger(__name__)

DSP_DOMAINS = ("academy", "business", "entertainment", "literature")
DSP_BASELINE = "normal"

PAIR_FORMATS = ("trl", "hh", "dsp", "dsp-domain")
RANKED_FORMATS = ("ranked", "wide", "dsp-domain")

_WIDE_RESPONSE = re.compile(r"^response_(\d+)$")  # how a wide row is recognised


@dataclass
class LoadReport:
    """What a load did: how many records were read, kept, skipped (and why), ties and identical pairs dropped.

    A pair whose chosen and rejected responses are the same text carries no preference (its feature
    difference is zero, so it only adds a coin flip to every accuracy): it is counted in ``n_identical``
    and skipped, as ties are.
    """

    source: str
    format: str
    n_read: int = 0
    n_loaded: int = 0
    n_ties: int = 0
    n_identical: int = 0
    n_empty_responses: int = 0
    skipped: list[DataValidationError] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        parts = [f"{self.n_loaded} records from {self.n_read} read ({self.format})"]
        if self.n_ties:
            parts.append(f"{self.n_ties} ties skipped")
        if self.n_identical:
            parts.append(f"{self.n_identical} pairs with identical chosen and rejected skipped")
        if self.n_empty_responses:
            parts.append(f"{self.n_empty_responses} empty responses kept")
        if self.skipped:
            parts.append(f"{self.n_skipped} invalid skipped, first: {self.skipped[0]}")
        return "; ".join(parts)


@dataclass
class LoadResult:
    """Normalized records plus the :class:`LoadReport` of how they were obtained."""

    records: list[dict]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def to_dataset(self) -> Any:
        """The records as a ``datasets.Dataset`` (TRL's column layout)."""
        import datasets

        return datasets.Dataset.from_list(self.records)


def detect_format(record: Any) -> str:
    """Name the format of one raw record from its keys."""
    if not isinstance(record, dict):
        return "unknown"
    keys = set(record)
    if {"query", "responses"} <= keys and isinstance(record["responses"], dict):
        return "dsp-domain"
    if {"text", "score"} <= keys:
        return "dsp"
    if any(_WIDE_RESPONSE.match(k) for k in keys):
        return "wide"
    if {"prompt", "responses"} <= keys:
        return "ranked"
    if {"chosen", "rejected"} <= keys:
        chosen = record["chosen"]
        if "prompt" not in keys and isinstance(chosen, str) and re.match(r"^\s*(Human|Assistant):", chosen):
            return "hh"
        return "trl"
    return "unknown"


def _source_name(source: Any) -> str:
    return Path(source).name if isinstance(source, str | Path) else "dataset"


# --- one function per format: raw record -> list of normalized records -------------------------------


def _pairs_from_trl(record: Any, location: RecordLocation) -> list[dict]:
    return [normalize_pair(record, location)]


def _split_transcripts(chosen: Any, rejected: Any, location: RecordLocation) -> tuple[list, str, str]:
    try:
        return split_shared_prompt(parse_transcript(chosen), parse_transcript(rejected))
    except TranscriptError as error:
        raise DataValidationError(location, str(error), "chosen") from None


def _pairs_from_hh(record: Any, location: RecordLocation) -> list[dict]:
    chosen = check_text(require_field(record, "chosen", location), location, "chosen")
    rejected = check_text(require_field(record, "rejected", location), location, "rejected")
    prompt, chosen_reply, rejected_reply = _split_transcripts(chosen, rejected, location)
    return [
        normalize_pair(
            {**record, "prompt": prompt, "chosen": chosen_reply, "rejected": rejected_reply}, location
        )
    ]


class _Tie(Exception):
    """Equal scores: no preference to learn; counted, not an error."""


def _pairs_from_dsp(record: Any, location: RecordLocation) -> list[dict]:
    texts = require_field(record, "text", location)
    scores = require_field(record, "score", location)
    if not isinstance(texts, list) or len(texts) != 2:
        raise DataValidationError(location, "expected a list of two transcripts", "text")
    if not isinstance(scores, list) or len(scores) != 2:
        raise DataValidationError(location, "expected a list of two scores", "score")
    score_a, score_b = (check_number(s, location, f"score[{i}]") for i, s in enumerate(scores))
    text_a, text_b = (check_text(t, location, f"text[{i}]") for i, t in enumerate(texts))
    if score_a == score_b:
        raise _Tie
    if score_b > score_a:
        text_a, text_b, score_a, score_b = text_b, text_a, score_b, score_a
    prompt, chosen, rejected = _split_transcripts(text_a, text_b, location)
    pair = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "margin": score_a - score_b}
    return [normalize_pair(pair, location)]


def _dsp_domain_responses(record: Any, location: RecordLocation) -> tuple[str, dict[str, str]]:
    query = check_text(require_field(record, "query", location), location, "query")
    responses = require_field(record, "responses", location)
    if not isinstance(responses, dict):
        raise DataValidationError(location, "expected an object of domain -> response", "responses")
    out = {}
    for domain in (*DSP_DOMAINS, DSP_BASELINE):
        if domain not in responses:
            raise DataValidationError(location, "missing required field", f"responses.{domain}")
        out[domain] = check_text(responses[domain], location, f"responses.{domain}")
    return query, out


def _pairs_from_dsp_domain(record: Any, location: RecordLocation) -> list[dict]:
    """A user of domain D prefers the D response over each other domain's and the original answer."""
    query, responses = _dsp_domain_responses(record, location)
    base_id = record.get("id", None)
    pairs = []
    for domain in DSP_DOMAINS:
        for other in (*DSP_DOMAINS, DSP_BASELINE):
            if other == domain:
                continue
            pair = {
                "prompt": query,
                "chosen": responses[domain],
                "rejected": responses[other],
                "subset": domain,
            }
            if base_id is not None:
                pair["id"] = f"{base_id}/{domain}>{other}"
            pairs.append(normalize_pair(pair, location))
    return pairs


def _ranked_from_dsp_domain(record: Any, location: RecordLocation) -> list[dict]:
    query, responses = _dsp_domain_responses(record, location)
    models = [*DSP_DOMAINS, DSP_BASELINE]
    return [
        normalize_ranked(
            {"prompt": query, "responses": [responses[m] for m in models], "models": models}, location
        )
    ]


def _ranked_from_ranked(record: Any, location: RecordLocation) -> list[dict]:
    return [normalize_ranked(record, location)]


_PAIR_PARSERS: dict[str, Callable[[Any, RecordLocation], list[dict]]] = {
    "trl": _pairs_from_trl,
    "hh": _pairs_from_hh,
    "dsp": _pairs_from_dsp,
    "dsp-domain": _pairs_from_dsp_domain,
}
_RANKED_PARSERS: dict[str, Callable[[Any, RecordLocation], list[dict]]] = {
    "ranked": _ranked_from_ranked,
    "wide": lambda record, location: [ranked_from_wide(record, location)],
    "dsp-domain": _ranked_from_dsp_domain,
}


def _load(
    source: Any,
    parsers: dict[str, Callable[[Any, RecordLocation], list[dict]]],
    format: str,
    skip_invalid: bool,
    kind: str,
) -> LoadResult:
    if format != "auto" and format not in parsers:
        raise ValueError(f"unknown {kind} format {format!r}; expected 'auto' or one of {sorted(parsers)}")
    name = _source_name(source)
    report = LoadReport(source=str(source) if isinstance(source, str | Path) else name, format=format)
    records: list[dict] = []
    parser = parsers.get(format)
    for location, raw in iter_raw_records(source, skip_invalid=skip_invalid, problems=report.skipped):
        report.n_read += 1
        if parser is None:
            detected = detect_format(raw)
            if detected not in parsers:
                raise DataValidationError(location, _undetected(raw, detected, kind, parsers))
            report.format, parser = detected, parsers[detected]
        try:
            parsed = parser(raw, location)
        except _Tie:
            report.n_ties += 1
            continue
        except DataValidationError as error:
            if not skip_invalid:
                raise
            report.skipped.append(error)
            continue
        if kind == "preference-pair":
            kept = [r for r in parsed if r["chosen"] != r["rejected"]]
            report.n_identical += len(parsed) - len(kept)
            parsed = kept
        else:
            report.n_empty_responses += sum(not r.strip() for record in parsed for r in record["responses"])
        ordinal = location.line if location.line is not None else location.row
        for i, record in enumerate(parsed):
            record.setdefault("id", f"{name}:{ordinal}" + (f"/{i}" if len(parsed) > 1 else ""))
            record.setdefault("source", name)
        records.extend(parsed)
    report.n_loaded = len(records)
    if not records:
        first = f"; first problem: {report.skipped[0]}" if report.skipped else ""
        raise DataValidationError(RecordLocation(report.source), f"no valid {kind} records found{first}")
    if report.n_identical:
        logger.warning(
            "%s: skipped %d pairs whose chosen and rejected responses are identical (no preference)",
            name,
            report.n_identical,
        )
    if report.n_empty_responses:
        logger.warning(
            "%s: %d empty responses (kept and scored; never picked as chosen)", name, report.n_empty_responses
        )
    if report.skipped:
        logger.warning("%s: skipped %d invalid records; first: %s", name, report.n_skipped, report.skipped[0])
    return LoadResult(records=records, report=report)


def _undetected(raw: Any, detected: str, kind: str, parsers: dict) -> str:
    """Why a record's format is not one ``kind`` reads: short (a wide row has hundreds of keys), and
    pointing to the other loader when the record is of the other shape."""
    if kind == "preference-pair" and detected in RANKED_FORMATS:
        return (
            f"this is the {detected!r} format of ranked responses (several responses per prompt), not "
            "preference pairs; load it with load_ranked (on the command line: inspect --ranked; rank, "
            "analyze and select read it)"
        )
    if kind == "ranked-responses" and detected in PAIR_FORMATS:
        return f"this is the {detected!r} preference-pair format, not ranked responses; use load_pairs"
    if isinstance(raw, dict):
        keys = sorted(map(str, raw))
        shown = ", ".join(keys[:8]) + (f", … ({len(keys) - 8} more)" if len(keys) > 8 else "")
        what = f"keys: {shown}"
    else:
        what = f"a JSON {type(raw).__name__}, not an object"
    return (
        f"cannot tell the {kind} format from this record ({what}); expected one of {sorted(parsers)} — "
        "pass format= explicitly"
    )


def load_pairs(source: Any, *, format: str = "auto", skip_invalid: bool = False) -> LoadResult:
    """Load preference pairs (``prompt``, ``chosen``, ``rejected``, …) from a file or dataset.

    Parameters
    ----------
    source : str, Path or datasets.Dataset
        See :func:`pluralrm.data.io.iter_raw_records`.
    format : {"auto", "trl", "hh", "dsp", "dsp-domain"}
        ``"auto"`` detects it from the first record.
    skip_invalid : bool
        Skip and count invalid records instead of raising on the first one.

    Returns
    -------
    LoadResult
        ``.records`` (list of dicts) and ``.report`` (counts, ties, skipped records).
    """
    return _load(source, _PAIR_PARSERS, format, skip_invalid, "preference-pair")


def load_ranked(source: Any, *, format: str = "auto", skip_invalid: bool = False) -> LoadResult:
    """Load ranked-responses records (``prompt``, ``responses``, optional ``rewards``/``models``)."""
    return _load(source, _RANKED_PARSERS, format, skip_invalid, "ranked-responses")
