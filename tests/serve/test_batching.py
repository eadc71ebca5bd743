"""The micro-batcher merges concurrent requests, keeps each caller's rows, and survives a failing batch."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pluralrm.serve.batching import FeatureService, MemoryFeatureCache, MicroBatcher


def _encoder(batches: list[list[str]], fail_on: str | None = None):
    def encode(texts: list[str]) -> np.ndarray:
        batches.append(list(texts))
        if fail_on in texts:
            raise RuntimeError(f"cannot encode {fail_on!r}")
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    return encode


async def _gather(batcher: MicroBatcher, requests: list[list[str]]) -> list[np.ndarray]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.encode(texts) for texts in requests))
    finally:
        await batcher.stop()


def test_concurrent_requests_share_batches_and_get_their_own_rows():
    batches: list[list[str]] = []
    requests = [[f"text {i}", f"other {i}"] for i in range(20)]
    requests.insert(1, ["text 0"])  # a repeat of another request's text, in the same batch
    batcher = MicroBatcher(_encoder(batches), max_batch_texts=16, max_wait_ms=50)
    results = asyncio.run(_gather(batcher, requests))
    for texts, rows in zip(requests, results, strict=True):
        np.testing.assert_array_equal(rows, [[len(t), ord(t[0])] for t in texts])
    assert all(len(b) <= 16 for b in batches)
    assert [len(b) for b in batches] == [14, 16, 10]  # whole requests up to 16 texts; 41 texts, 40 unique
    assert sum(b.count("text 0") for b in batches) == 1


def test_batches_of_one_encode_each_request_alone():
    batches: list[list[str]] = []
    requests = [[f"text {i}"] for i in range(6)]
    results = asyncio.run(
        _gather(MicroBatcher(_encoder(batches), max_batch_texts=1, max_wait_ms=0), requests)
    )
    assert batches == requests
    assert [r[0, 0] for r in results] == [6.0] * 6


def test_without_waiting_whatever_is_queued_goes_together():
    batches: list[list[str]] = []
    requests = [[f"text {i}"] for i in range(6)]  # all queued before the batcher first runs
    asyncio.run(_gather(MicroBatcher(_encoder(batches), max_batch_texts=4, max_wait_ms=0), requests))
    assert batches == [[f"text {i}" for i in range(4)], ["text 4", "text 5"]]


def test_a_request_larger_than_the_batch_goes_whole():
    batches: list[list[str]] = []
    big = [f"t{i}" for i in range(40)]
    (rows,) = asyncio.run(_gather(MicroBatcher(_encoder(batches), max_batch_texts=8, max_wait_ms=1), [big]))
    assert len(batches) == 1 and rows.shape == (40, 2)


def test_a_failing_batch_fails_its_callers_and_the_next_batch_works():
    batches: list[list[str]] = []
    batcher = MicroBatcher(_encoder(batches, fail_on="bad"), max_batch_texts=1, max_wait_ms=0)

    async def run():
        await batcher.start()
        try:
            with pytest.raises(RuntimeError, match="cannot encode 'bad'"):
                await batcher.encode(["bad"])
            return await batcher.encode(["good"])
        finally:
            await batcher.stop()

    np.testing.assert_array_equal(asyncio.run(run()), [[4, ord("g")]])


def test_feature_service_answers_repeats_from_memory_and_evicts_the_oldest():
    batches: list[list[str]] = []
    lookups: list[tuple[int, int]] = []
    batcher = MicroBatcher(_encoder(batches), max_batch_texts=8, max_wait_ms=0)
    service = FeatureService(
        batcher, MemoryFeatureCache(2), n_features=2, on_lookup=lambda h, m: lookups.append((h, m))
    )

    async def run():
        await batcher.start()
        try:
            first = await service.features(["aa", "bbb", "aa"])
            second = await service.features(["bbb", "aa"])
            third = await service.features(["cccc", "aa"])  # evicts "bbb", the least recently used
            fourth = await service.features(["bbb"])
            return first, second, third, fourth
        finally:
            await batcher.stop()

    first, second, third, fourth = asyncio.run(run())
    np.testing.assert_array_equal(first, [[2, 97], [3, 98], [2, 97]])
    np.testing.assert_array_equal(second, first[[1, 0]])
    np.testing.assert_array_equal(third, [[4, 99], [2, 97]])
    np.testing.assert_array_equal(fourth, [[3, 98]])
    assert batches == [["aa", "bbb"], ["cccc"], ["bbb"]]
    assert lookups == [(0, 3), (2, 0), (1, 1), (0, 1)]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch_texts"):
        MicroBatcher(lambda t: t, max_batch_texts=0, max_wait_ms=1)
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatcher(lambda t: t, max_batch_texts=1, max_wait_ms=-1)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(MicroBatcher(lambda t: t, max_batch_texts=1, max_wait_ms=1).encode(["x"]))
