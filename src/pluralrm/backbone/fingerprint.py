"""Content fingerprints of backbones: the key of every cached feature.

Features are only reusable if the weights, tokenizer and config that produced them are the same, so a
fingerprint hashes the files themselves. Hashing 100 MB takes a fraction of a second, but larger models
would pay that on every run, so digests are memoized per (path, size, mtime) in the cache directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from pluralrm.atomic import write_json
from pluralrm.paths import cache_root

# Files that define a model's behaviour; READMEs, licences and the like do not change a feature.
_DEFINING_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".txt", ".model", ".jinja", ".py")
# pluralrm_customize.json is a fine-tuned reward model's provenance (stages, data, scores); it never changes
# what the weights compute, and must not invalidate the features it records.
_IGNORED_NAMES = {"README.md", "modules.json", "data_config.json", "pluralrm_customize.json"}


def _file_digest(path: Path) -> str:
    stat = path.stat()
    memo_path = cache_root() / "fingerprints.json"
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    memo[memo_key] = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only cache only costs speed, never correctness
        write_json(memo_path, memo)
    return memo[memo_key]


def fingerprint_files(paths: list[Path], root: Path | None = None) -> str:
    """sha256 over the (relative name, content digest) of each file, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        name = str(path.relative_to(root)) if root else path.name
        digest.update(f"{name}\0{_file_digest(path)}\n".encode())
    return digest.hexdigest()


def fingerprint_directory(directory: str | Path) -> str:
    """Fingerprint of a local transformers directory (weights, config and tokenizer files)."""
    root = Path(directory)
    files = [
        Path(dirpath) / name
        for dirpath, _, names in os.walk(root)
        for name in names
        if name.endswith(_DEFINING_SUFFIXES) and name not in _IGNORED_NAMES and not name.startswith(".")
    ]
    if not files:
        raise FileNotFoundError(f"{root}: no model files found to fingerprint")
    return fingerprint_files(files, root)
