"""A featurization killed mid-way resumes without recomputing or losing finished vectors."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from pluralrm.backbone import Featurizer, load_backbone
from pluralrm.backbone.feature_cache import FeatureCache

WORKER = textwrap.dedent(
    """
    import sys, time
    from pluralrm.backbone import FeatureCache, Featurizer, load_backbone
    original = Featurizer._forward
    def slow_forward(self, ids, specs):  # slow enough that the parent can kill us mid-run
        time.sleep(0.15)
        return original(self, ids, specs)
    Featurizer._forward = slow_forward
    texts = [f"text number {i} " * (1 + i % 7) for i in range(200)]
    backbone = load_backbone(sys.argv[1], dtype="float32")
    Featurizer(backbone, batch_size=4, flush_every=8, cache=FeatureCache.default()).encode(texts)
    print("finished", flush=True)
    """
)


def _shards(cache_dir):
    return list((cache_dir / "features").glob("*/shard-*.safetensors"))


def test_killed_run_resumes_without_recomputing(tiny_model_dirs, isolated_cache, monkeypatch):
    model_dir = str(tiny_model_dirs["gpt2"])
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, model_dir],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(_shards(isolated_cache)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert b"finished" not in process.stdout.read(), "the worker finished before it could be killed"
    shards = _shards(isolated_cache)
    assert len(shards) >= 3

    texts = [f"text number {i} " * (1 + i % 7) for i in range(200)]
    backbone = load_backbone(model_dir, dtype="float32")
    featurizer = Featurizer(backbone, batch_size=4, flush_every=8)
    namespace_cache = FeatureCache.default().namespace(featurizer.namespace(featurizer.spec))
    n_done = len(namespace_cache)
    assert 0 < n_done < len(texts)

    computed = []
    original = Featurizer._forward
    monkeypatch.setattr(
        Featurizer, "_forward", lambda self, ids, specs: computed.extend(ids) or original(self, ids, specs)
    )
    resumed = Featurizer(backbone, batch_size=4, flush_every=8, cache=FeatureCache.default()).encode(texts)
    assert len(computed) == len(texts) - n_done  # only what the killed run had not finished
    fresh = Featurizer(backbone).encode(texts)
    np.testing.assert_allclose(resumed, fresh, atol=1e-5)
