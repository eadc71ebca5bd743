"""Device/dtype policy, the dtype in every namespace, thread safety and tokenizer-free truncation."""

import threading

import numpy as np
import pytest
import torch

import pluralrm.backbone.device as device_module
from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, load_backbone
from pluralrm.backbone.collate import tokenize_left_truncated
from pluralrm.backbone.device import resolve_device, resolve_dtype

TEXTS = [f"User: question {i}?\nAssistant: " + "a fairly long answer " * (1 + i % 9) for i in range(24)]


def test_auto_dtype_follows_the_measurement_and_explicit_choices_are_kept(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_bf16_speedup", lambda: 7.0)
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(device_module, "cpu_bf16_speedup", lambda: 0.17)  # emulated bf16 (AVX2 only)
    assert resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(device_module, "cpu_bf16_speedup", lambda: 1.2)  # a marginal win is not enough
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float32", "cpu") == "float32" and resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_bad_devices_and_dtypes_are_clear_errors():
    with pytest.raises(ValueError, match=r"dtype must be one of \('auto', 'float32', 'bfloat16'\)"):
        resolve_dtype("float16", "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"


def _reference_features(backbone, texts, max_length=512):
    """A plain forward pass per text, with no pluralrm code path: mean-pooled final layer (BERT)."""
    out = []
    for text in texts:
        ids = backbone.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
        with torch.inference_mode():
            hidden = backbone.model(**ids).last_hidden_state[0]
        out.append(hidden.mean(dim=0).numpy())
    return np.stack(out)


def test_float32_features_equal_a_plain_forward_pass(tiny_model_dirs):
    backbone = load_backbone(str(tiny_model_dirs["bert"]), dtype="float32")
    assert backbone.dtype == "float32" and backbone.device == "cpu"
    ours = Featurizer(backbone, spec=FeatureSpec("mean", -1), batch_size=7).encode(TEXTS)
    np.testing.assert_allclose(ours, _reference_features(backbone, TEXTS), atol=1e-6)


def test_bf16_features_are_close_to_fp32_and_never_share_a_namespace(tiny_model_dirs, isolated_cache):
    fp32 = Featurizer(
        load_backbone(str(tiny_model_dirs["llama"]), dtype="float32"), cache=FeatureCache.default()
    )
    bf16 = Featurizer(
        load_backbone(str(tiny_model_dirs["llama"]), dtype="bfloat16"), cache=FeatureCache.default()
    )
    assert next(bf16.backbone.model.parameters()).dtype == torch.bfloat16
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert b.dtype == np.float32
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.98 and np.abs(a - b).max() > 1e-6  # close, but really computed in bf16
    assert (
        fp32.namespace(fp32.spec)["dtype"] == "float32" and bf16.namespace(bf16.spec)["dtype"] == "bfloat16"
    )
    namespaces = sorted(p.parent.name for p in (isolated_cache / "features").glob("*/meta.json"))
    assert len(namespaces) == 2  # one cache directory per dtype: bf16 never reads fp32 vectors
    np.testing.assert_array_equal(bf16.encode(TEXTS), b)


def test_no_cache_object_writes_nothing(tiny_model_dirs, isolated_cache):
    Featurizer(load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32")).encode(TEXTS)
    assert not (isolated_cache / "features").exists()


@pytest.mark.parametrize("kind", ["gpt2", "llama", "bert"])
def test_threads_share_one_featurizer_without_touching_the_tokenizer(tiny_model_dirs, kind):
    backbone = load_backbone(str(tiny_model_dirs[kind]), dtype="float32")
    backbone.tokenizer.truncation_side = "right"
    featurizer = Featurizer(backbone, spec=FeatureSpec("last", 1), max_length=24, batch_size=3)
    expected = featurizer.encode(TEXTS)
    results, errors = {}, []

    def work(i):
        try:
            order = np.random.default_rng(i).permutation(len(TEXTS))
            results[i] = (order, featurizer.encode([TEXTS[j] for j in order]))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for order, features in results.values():
        np.testing.assert_allclose(features, expected[order], atol=1e-5)
    assert backbone.tokenizer.truncation_side == "right"


def test_slicing_equals_the_tokenizers_own_left_truncation():
    from transformers import AutoTokenizer

    from pluralrm.backbone.loading import minilm_directory

    tokenizer = AutoTokenizer.from_pretrained(minilm_directory())  # BERT: [CLS] … [SEP]
    texts = ["short text", "a much longer text that keeps going " * 20, "x " * 63, "y " * 64]
    for max_length in (8, 64, 512):
        tokenizer.truncation_side = "left"
        expected = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        tokenizer.truncation_side = "right"
        ours = tokenize_left_truncated(tokenizer, texts, max_length, add_special_tokens=True)
        assert ours == expected, max_length
    assert tokenizer.truncation_side == "right"


def test_slicing_without_special_tokens_keeps_the_last_ids(tiny_model_dirs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["llama"])
    full = tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    ours = tokenize_left_truncated(tokenizer, TEXTS, 10, add_special_tokens=False)
    assert ours == [ids[-10:] for ids in full]
