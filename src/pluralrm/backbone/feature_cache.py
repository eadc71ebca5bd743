"""A content-addressed on-disk cache of feature vectors.

Layout, one namespace per (backbone fingerprint, feature spec, formatting, max length, dtype)::

    <root>/features/<namespace>/meta.json
    <root>/features/<namespace>/shard-<time>-<random>.safetensors  # keys (n, 32) uint8, features (n, d)

Each shard carries the sha256 digests of its texts next to their vectors, so the shards *are* the index:
opening the cache reads only the small ``keys`` tensors, and there is no second file that could disagree
with them. Shards are written to a temporary name and renamed, so a process killed at any moment leaves
only complete shards — a re-run finds every finished vector and computes only the rest.

A cache is an object the caller passes to the featurizer (``FeatureCache.default()`` for
``$PLURALRM_CACHE/features``, or ``None`` for none): a long-running server scoring fresh texts should not
write a shard per request, so the library never caches unless asked. One process may share a cache
between threads: index updates and shard writes happen under a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from pluralrm.atomic import atomic_path, write_json

logger = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    """The 32-byte sha256 digest that addresses a text's vector."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class FeatureCache:
    """The root of the on-disk feature cache: one :class:`NamespaceCache` per feature namespace.

    Parameters
    ----------
    root : Path
        Directory holding one sub-directory per namespace (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._namespaces: dict[str, NamespaceCache] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> FeatureCache:
        """``$PLURALRM_CACHE/features`` (``~/.cache/pluralrm/features``)."""
        from pluralrm.paths import cache_root

        return cls(cache_root() / "features")

    def namespace(self, meta: dict) -> NamespaceCache:
        """The vectors of the namespace described by ``meta`` (one directory per distinct ``meta``)."""
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24]
        with self._lock:
            if digest not in self._namespaces:
                self._namespaces[digest] = NamespaceCache(self.root / digest, meta)
            return self._namespaces[digest]


class NamespaceCache:
    """Feature vectors of one namespace, keyed by text digest.

    Parameters
    ----------
    directory : Path
        The namespace directory (created on first write).
    meta : dict
        Description of what produced the vectors (backbone, spec); written once as ``meta.json`` and
        checked on reopen so that two different producers can never share a namespace silently.
    """

    def __init__(self, directory: str | Path, meta: dict) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self._location: dict[bytes, tuple[Path, int]] = {}
        self._lock = threading.Lock()
        self._check_meta()
        for shard in sorted(self.directory.glob("shard-*.safetensors")):
            self._index_shard(shard)

    def _check_meta(self) -> None:
        path = self.directory / "meta.json"
        if path.exists():
            stored = json.loads(path.read_text())
            if stored != self.meta:
                raise ValueError(f"{path}: cache namespace holds features of {stored}, not {self.meta}")

    def _index_shard(self, shard: Path) -> None:
        from safetensors import safe_open

        with safe_open(shard, framework="numpy") as handle:
            keys = handle.get_tensor("keys")
        with self._lock:
            for row, key in enumerate(keys):
                self._location[key.tobytes()] = (shard, row)

    def __len__(self) -> int:
        return len(self._location)

    def __contains__(self, key: bytes) -> bool:
        return key in self._location

    def get_many(self, keys: list[bytes]) -> np.ndarray:
        """Vectors for ``keys`` (all must be present), shape ``(len(keys), d)``."""
        from safetensors import safe_open

        by_shard: dict[Path, list[tuple[int, int]]] = {}
        with self._lock:
            locations = [self._location[key] for key in keys]
        for i, (shard, row) in enumerate(locations):
            by_shard.setdefault(shard, []).append((i, row))
        out: np.ndarray | None = None
        for shard, wanted in by_shard.items():
            with safe_open(shard, framework="numpy") as handle:
                features = handle.get_tensor("features")
            if out is None:
                out = np.empty((len(keys), features.shape[1]), dtype=np.float32)
            positions, rows = zip(*wanted, strict=True)
            out[list(positions)] = features[list(rows)]
        if out is None:
            raise ValueError("get_many needs at least one key")
        return out

    def put_many(self, keys: list[bytes], features: np.ndarray) -> None:
        """Store vectors as one new shard (atomically)."""
        from safetensors.numpy import save_file

        if len(keys) != len(features):
            raise ValueError(f"{len(keys)} keys for {len(features)} feature rows")
        if not keys:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if not (self.directory / "meta.json").exists():
                write_json(self.directory / "meta.json", self.meta)
        name = f"shard-{time.time_ns():020d}-{os.urandom(4).hex()}.safetensors"
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        with atomic_path(self.directory / name) as tmp:
            save_file({"keys": key_array, "features": np.ascontiguousarray(features, dtype=np.float32)}, tmp)
        self._index_shard(self.directory / name)
        logger.debug("cached %d vectors in %s", len(keys), name)
