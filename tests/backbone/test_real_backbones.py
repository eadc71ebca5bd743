"""The real named backbones, offline, on real data (slow: tens of seconds)."""

import numpy as np
import pytest

from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone
from pluralrm.data import load_pairs
from tests.conftest import shared_file

pytestmark = pytest.mark.slow


def test_minilm_on_a_slice_of_hh_rlhf_harmless():
    pairs = load_pairs(shared_file("hh-rlhf-harmless/test-dev.jsonl.gz"), skip_invalid=True).records[:24]
    backbone = load_backbone("minilm", dtype="float32")
    assert backbone.kind == "encoder" and backbone.hidden_size == 384
    featurizer = Featurizer(backbone, batch_size=8)
    features = featurize_pairs(pairs, featurizer)
    assert features.chosen.shape == (24, 384) and np.isfinite(features.chosen).all()
    assert np.abs(features.differences).sum(axis=1).min() > 0  # chosen and rejected differ
    # The same texts one at a time give the same vectors (batching is invisible).
    single = Featurizer(backbone, batch_size=1).encode(
        [featurizer.format(p["prompt"], p["chosen"]) for p in pairs[:6]]
    )
    np.testing.assert_allclose(single, features.chosen[:6], atol=1e-5)


def test_minilm_mean_pooling_matches_sentence_transformers_before_normalization():
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    from pluralrm.backbone.loading import minilm_directory

    texts = ["A short sentence.", "Another, somewhat longer sentence about preference learning."]
    ours = Featurizer(load_backbone("minilm", dtype="float32")).encode(texts)
    theirs = SentenceTransformer(str(minilm_directory()), device="cpu").encode(
        texts, normalize_embeddings=False
    )
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)  # their pipeline ends with a Normalize module
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_smollm2_cached_conversion_matches_the_gguf_model():
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pluralrm.backbone.loading import smollm2_gguf_path

    backbone = load_backbone("smollm2", dtype="float32")
    assert backbone.kind == "causal" and backbone.hidden_size == 576 and backbone.num_layers == 30
    text = Featurizer(backbone).format("What is the capital of France?", "Paris.")
    ours = Featurizer(backbone).encode([text])
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    with torch.inference_mode():
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        reference = model(**ids).last_hidden_state[0, -1].numpy()
    np.testing.assert_allclose(ours[0], reference, atol=1e-4)
    again = load_backbone("smollm2", dtype="float32")  # the second load uses the converted copy
    assert again.fingerprint == backbone.fingerprint
