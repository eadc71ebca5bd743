"""Reading raw records from files and ``datasets`` objects, with their locations.

Every format-specific loader sits on top of :func:`iter_raw_records`, so the rules for compression,
encodings and malformed JSON live in one place. Records are yielded lazily with a
:class:`~pluralrm.data.errors.RecordLocation`, so a bad record can be reported by line (JSONL) or by index
(JSON list, Parquet, ``datasets``).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pluralrm.data.errors import DataValidationError, RecordLocation

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".parquet")

RawRecord = tuple[RecordLocation, Any]


def _data_suffix(path: Path) -> str:
    """The last suffix, looking through a trailing ``.gz`` ("" for none)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _format_suffix(path: Path) -> str:
    """The data suffix, looking through a trailing ``.gz``; an unsupported one is a located error."""
    suffix = _data_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataValidationError(
            RecordLocation(str(path)),
            f"unsupported file type {''.join(path.suffixes)!r}; expected one of "
            f"{', '.join(SUPPORTED_SUFFIXES)} (optionally gzip-compressed, ending in .gz)",
        )
    return suffix


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _iter_jsonl(path: Path, skip_invalid: bool, problems: list[DataValidationError]) -> Iterator[RawRecord]:
    with _open_bytes(path) as handle:
        for line_number, raw in enumerate(handle, start=1):
            location = RecordLocation(str(path), line=line_number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem = DataValidationError(
                    location, f"not valid UTF-8 (byte offset {error.start} in line)"
                )
                if not skip_invalid:
                    raise problem from None
                problems.append(problem)
                continue
            if not text.strip():
                continue
            try:
                yield location, json.loads(text)
            except json.JSONDecodeError as error:
                problem = DataValidationError(
                    location, f"malformed JSON: {error.msg} at column {error.colno}"
                )
                if not skip_invalid:
                    raise problem from None
                problems.append(problem)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _iter_json(path: Path) -> Iterator[RawRecord]:
    with _open_bytes(path) as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        location = RecordLocation(str(path), line=_line_of_offset(data, error.start))
        raise DataValidationError(location, "not valid UTF-8") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        location = RecordLocation(str(path), line=error.lineno)
        raise DataValidationError(location, f"malformed JSON: {error.msg} at column {error.colno}") from None
    if isinstance(document, dict):
        # A columnar dict of equal-length lists ({"prompt": [...], "chosen": [...]}) is how
        # `datasets.Dataset.to_dict()` writes; a single object is one record.
        if document and all(isinstance(v, list) for v in document.values()):
            lengths = {len(v) for v in document.values()}
            if len(lengths) == 1:
                n = lengths.pop()
                for i in range(n):
                    yield RecordLocation(str(path), row=i), {k: v[i] for k, v in document.items()}
                return
        yield RecordLocation(str(path), row=0), document
        return
    if not isinstance(document, list):
        raise DataValidationError(
            RecordLocation(str(path)), f"expected a JSON list of records, got {type(document).__name__}"
        )
    for i, record in enumerate(document):
        yield RecordLocation(str(path), row=i), record


def _iter_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DataValidationError(
            RecordLocation(str(path)), f"not a readable Parquet file: {error}"
        ) from None
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            yield RecordLocation(str(path), row=row), record
            row += 1


def iter_raw_records(
    source: str | Path | Any,
    *,
    skip_invalid: bool = False,
    problems: list[DataValidationError] | None = None,
) -> Iterator[RawRecord]:
    """Yield ``(location, record)`` for every record of a file or a ``datasets.Dataset``.

    Parameters
    ----------
    source : str, Path or datasets.Dataset
        A ``.json``/``.jsonl``/``.parquet`` file (optionally ``.gz``); a dataset directory, laid out as on
        the Hugging Face hub (``data/train-00000-of-00001.parquet``: :func:`dataset_directory_files`) or
        written by ``save_to_disk``, optionally ``"DIR:split"``; a ``datasets.Dataset`` (or a
        ``DatasetDict`` with one split); or a Hugging Face hub id such as ``"Anthropic/hh-rlhf"``
        (optionally ``"id:split"``). Hub ids need the network or a populated local hub cache.
    skip_invalid : bool
        When true, unreadable lines (JSONL only) are recorded in ``problems`` and skipped instead of
        raising. A whole-file failure (malformed ``.json``) always raises.
    problems : list, optional
        Receives the skipped :class:`DataValidationError` objects.
    """
    problems = problems if problems is not None else []
    if isinstance(source, str | Path):
        path = Path(source)
        folder, split = _directory_and_split(source)
        if folder is not None:
            if (folder / "state.json").exists() or (folder / "dataset_dict.json").exists():
                yield from _iter_dataset(_load_saved_dataset(folder, split))
                return
            for file in dataset_directory_files(folder, split):
                yield from _iter_file(file, skip_invalid, problems)
            return
        if path.exists():
            yield from _iter_file(path, skip_invalid, problems)
            return
        if isinstance(source, Path) or _looks_like_path(str(source)):
            raise DataValidationError(RecordLocation(str(path)), "file not found")
        source = _load_hub_dataset(str(source))
    yield from _iter_dataset(source)


def _iter_file(path: Path, skip_invalid: bool, problems: list[DataValidationError]) -> Iterator[RawRecord]:
    suffix = _format_suffix(path)
    if suffix == ".jsonl":
        yield from _iter_jsonl(path, skip_invalid, problems)
    elif suffix == ".json":
        yield from _iter_json(path)
    else:
        yield from _iter_parquet(path)


# A Hugging Face dataset repository's file names: ``data/train-00000-of-00002.parquet`` → split "train".
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}")


def _directory_and_split(source: str | Path) -> tuple[Path | None, str | None]:
    """``(directory, split)`` when ``source`` names a directory, or ``DIR:split``; else ``(None, None)``."""
    path = Path(source)
    if path.is_dir():
        return path, None
    head, sep, split = str(source).rpartition(":")
    if sep and head and split and "/" not in split and Path(head).is_dir():
        return Path(head), split
    return None, None


def _split_of(file: Path) -> str:
    name = file.name.split(".")[0]
    match = _SHARD.match(name)
    return match.group("split") if match else name


def dataset_directory_files(directory: Path, split: str | None = None) -> list[Path]:
    """The data files of a dataset directory laid out as on the Hugging Face hub, in order.

    Every ``.json``/``.jsonl``/``.parquet`` file (``.gz`` too) below ``directory`` (hidden folders such as
    ``.git`` or ``.cache`` aside) belongs to the split its name starts with — ``data/train-00000-of-00002
    .parquet`` to ``train``, ``test.jsonl`` to ``test``. One split is read whole; with several, ``split``
    (``DIR:split``) says which, as for a hub id.
    """
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and _data_suffix(p) in SUPPORTED_SUFFIXES
    )
    if not files:
        raise DataValidationError(
            RecordLocation(str(directory)),
            f"a directory without data files ({', '.join(SUPPORTED_SUFFIXES)}, optionally .gz) below it",
        )
    splits: dict[str, list[Path]] = {}
    for file in files:
        splits.setdefault(_split_of(file), []).append(file)
    if split is not None:
        if split not in splits:
            raise DataValidationError(
                RecordLocation(str(directory)), f"no split {split!r}; it has {sorted(splits)}"
            )
        return splits[split]
    if len(splits) > 1:
        raise DataValidationError(
            RecordLocation(str(directory)),
            f"has splits {sorted(splits)}; pass one, e.g. '{directory}:{sorted(splits)[0]}'",
        )
    return files


def _load_saved_dataset(directory: Path, split: str | None) -> Any:
    """A directory written by ``datasets``' ``save_to_disk`` (one split, or ``DIR:split`` of several)."""
    import datasets

    loaded = datasets.load_from_disk(str(directory))
    if split is not None:
        if not isinstance(loaded, datasets.DatasetDict) or split not in loaded:
            raise DataValidationError(RecordLocation(str(directory)), f"no split {split!r}")
        return loaded[split]
    return loaded


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or any(
        text.lower().endswith(s) for s in (*SUPPORTED_SUFFIXES, ".gz")
    )


def _load_hub_dataset(spec: str) -> Any:
    """Load ``"owner/name"`` or ``"owner/name:split"`` with ``datasets.load_dataset``."""
    import datasets

    name, _, split = spec.partition(":")
    try:
        return datasets.load_dataset(name, split=split or None)
    except Exception as error:  # the hub client raises many types; all mean "could not get it"
        raise DataValidationError(
            RecordLocation(spec),
            f"not a local file, and loading it as a Hugging Face dataset failed: {error}",
        ) from None


def _iter_dataset(dataset: Any) -> Iterator[RawRecord]:
    import datasets

    name = getattr(dataset, "info", None)
    label = f"dataset {getattr(name, 'dataset_name', None) or 'in memory'}"
    if isinstance(dataset, datasets.DatasetDict):
        if len(dataset) != 1:
            raise DataValidationError(
                RecordLocation(label), f"has splits {sorted(dataset)}; pass one split, e.g. 'name:test'"
            )
        dataset = next(iter(dataset.values()))
    if not isinstance(dataset, datasets.Dataset | list):
        raise DataValidationError(
            RecordLocation(label),
            f"expected a path, a datasets.Dataset or a list, got {type(dataset).__name__}",
        )
    for i, record in enumerate(dataset):
        yield RecordLocation(label, row=i), record
