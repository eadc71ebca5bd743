"""Texts → feature vectors for the server: a memory cache in front of a dynamic micro-batcher.

Why: a batch of texts costs less per text than one text at a time (on 2 CPU cores with MiniLM, 1.44×:
``benchmarks/serve_batches.py``; on a GPU far more), and RL trainers send many small requests at once
(OpenRLHF posts one query per request). So the backbone, on one worker thread off the event loop, takes
every text queued while it was busy as its next batch (continuous batching; ``max_wait_ms`` can add a
bounded wait for a lone text, which only pays where requests trickle in to an idle GPU). Texts already
seen are answered from an in-memory LRU of their vectors without touching the backbone. The on-disk
feature cache is not used here on purpose: it writes a shard per flush, which under a server would mean a
file per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pluralrm.backbone.feature_cache import text_key


class MemoryFeatureCache:
    """Least-recently-used feature vectors by text key (only touched from the event loop)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: bytes) -> np.ndarray | None:
        vector = self._vectors.get(key)
        if vector is not None:
            self._vectors.move_to_end(key)
        return vector

    def put(self, key: bytes, vector: np.ndarray) -> None:
        if self.max_entries == 0:
            return
        self._vectors[key] = vector
        self._vectors.move_to_end(key)
        while len(self._vectors) > self.max_entries:
            self._vectors.popitem(last=False)


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future


class MicroBatcher:
    """Gathers texts from concurrent callers into batches for one ``encode`` function.

    Parameters
    ----------
    encode : callable
        Texts → array of shape (n, d); runs on a single worker thread, one batch at a time.
    max_batch_texts : int
        Most texts per batch; a single larger request goes alone, whole. ``1`` encodes each request alone
        (the request-at-a-time baseline of ``benchmarks/serve_load.py``).
    max_wait_ms : float
        How long the first text of a batch waits for others to arrive. ``0``: no waiting — a batch is
        whatever is queued when the backbone is free (continuous batching: under load, everything that
        arrived during one forward pass goes into the next), so a lone request is never delayed.
    on_batch : callable, optional
        Called with the number of texts and the seconds of each batch (metrics).
    """

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        *,
        max_batch_texts: int,
        max_wait_ms: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch_texts < 1:
            raise ValueError(f"max_batch_texts must be >= 1, got {max_batch_texts}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.encode_batch = encode
        self.max_batch_texts = max_batch_texts
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self._pending: list[_Job] = []
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pluralrm-backbone")
        self._task = asyncio.create_task(self._run(), name="pluralrm-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Features of ``texts`` (in order), computed in a batch with whatever else is waiting."""
        if self._task is None or self._arrived is None:
            raise RuntimeError("the micro-batcher is not running; call start() first")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(list(texts), future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            if self.max_wait > 0:
                deadline = loop.time() + self.max_wait
                while self._queued() < self.max_batch_texts and (remaining := deadline - loop.time()) > 0:
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except TimeoutError:
                        break
            jobs = self._take()
            if not self._pending:
                self._arrived.clear()
            if jobs:
                await self._encode_jobs(loop, jobs)

    def _queued(self) -> int:
        return sum(len(job.texts) for job in self._pending)

    def _take(self) -> list[_Job]:
        """The jobs of the next batch: queued jobs in arrival order, up to ``max_batch_texts`` texts."""
        jobs: list[_Job] = []
        count = 0
        while self._pending and (not jobs or count + len(self._pending[0].texts) <= self.max_batch_texts):
            job = self._pending.pop(0)
            jobs.append(job)
            count += len(job.texts)
        return jobs

    async def _encode_jobs(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        unique = list(dict.fromkeys(text for job in jobs for text in job.texts))
        start = time.perf_counter()
        try:
            features = await loop.run_in_executor(self._executor, self.encode_batch, unique)
        except Exception as error:  # every caller of this batch learns why; the batcher keeps running
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        if self.on_batch is not None:
            self.on_batch(len(unique), time.perf_counter() - start)
        row = {text: i for i, text in enumerate(unique)}
        for job in jobs:
            if not job.future.done():  # a caller that gave up (client disconnected) is skipped
                job.future.set_result(features[[row[t] for t in job.texts]])


class FeatureService:
    """Features of formatted texts: memory cache first, the micro-batched backbone for the rest."""

    def __init__(
        self,
        batcher: MicroBatcher,
        cache: MemoryFeatureCache,
        *,
        n_features: int,
        on_lookup: Callable[[int, int], None] | None = None,
    ) -> None:
        self.batcher = batcher
        self.cache = cache
        self.n_features = n_features
        self.on_lookup = on_lookup

    async def features(self, texts: Sequence[str]) -> np.ndarray:
        H = np.zeros((len(texts), self.n_features), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        keys: dict[str, bytes] = {}
        for i, text in enumerate(texts):
            if text not in keys:
                keys[text] = text_key(text)
            vector = self.cache.get(keys[text])
            if vector is None:
                missing.setdefault(text, []).append(i)
            else:
                H[i] = vector
        if self.on_lookup is not None:
            n_missing = sum(len(rows) for rows in missing.values())
            self.on_lookup(len(texts) - n_missing, n_missing)
        if missing:
            fresh = list(missing)
            computed = await self.batcher.encode(fresh)
            for text, vector in zip(fresh, computed, strict=True):
                H[missing[text]] = vector
                self.cache.put(keys[text], vector)
        return H
