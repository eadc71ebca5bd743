import numpy as np
import pytest
import torch

from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, load_backbone, pool_hidden
from pluralrm.data.synthetic import make_synthetic_preferences

KINDS = ["gpt2", "llama", "bert"]


@pytest.fixture(scope="module")
def texts():
    data = make_synthetic_preferences(n_prompts=8, seed=2)
    return [f"User: {r['prompt']}\nAssistant: {r['text']}" for r in data.responses][:30]


def test_pool_hidden_last_token_works_for_left_and_right_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool_hidden(hidden, right, "last").flatten().tolist() == [1.0, 7.0]
    assert pool_hidden(hidden, left, "last").flatten().tolist() == [3.0, 7.0]
    assert pool_hidden(hidden, right, "mean").flatten().tolist() == [0.5, 5.5]


@pytest.mark.parametrize("kind", KINDS)
def test_features_do_not_depend_on_batch_size_order_or_padding_side(tiny_model_dirs, texts, kind):
    backbone = load_backbone(str(tiny_model_dirs[kind]), dtype="float32")
    reference = Featurizer(backbone, batch_size=1).encode(texts)
    batched = Featurizer(backbone, batch_size=8).encode(texts)
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = Featurizer(backbone, batch_size=5).encode([texts[i] for i in order])
    backbone.tokenizer.padding_side = "left"
    left = Featurizer(backbone, batch_size=8).encode(texts)
    assert reference.shape == (len(texts), 32) and reference.dtype == np.float32
    np.testing.assert_allclose(batched, reference, atol=1e-5)
    np.testing.assert_allclose(shuffled, reference[order], atol=1e-5)
    np.testing.assert_allclose(left, reference, atol=1e-5)
    assert np.abs(reference - reference[0]).max() > 1e-3  # different texts really get different vectors


def test_default_pooling_by_kind(tiny_model_dirs):
    assert load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32").kind == "causal"
    assert load_backbone(str(tiny_model_dirs["bert"]), dtype="float32").kind == "encoder"
    assert Featurizer(load_backbone(str(tiny_model_dirs["llama"]), dtype="float32")).spec.pooling == "last"
    assert Featurizer(load_backbone(str(tiny_model_dirs["bert"]), dtype="float32")).spec.pooling == "mean"


def test_a_pooling_read_as_a_string_is_checked_once():
    from pluralrm.backbone.spec import as_pooling

    assert [as_pooling(name) for name in ("last", "mean", "pooler")] == ["last", "mean", "pooler"]
    for make in (as_pooling, lambda name: FeatureSpec(pooling=name)):
        with pytest.raises(ValueError, match="pooling must be one of last, mean, pooler, got 'max'"):
            make("max")


def test_layers_and_poolings_from_one_pass_match_single_runs(tiny_model_dirs, texts):
    backbone = load_backbone(str(tiny_model_dirs["llama"]), dtype="float32")
    specs = [FeatureSpec("last", -1), FeatureSpec("last", 1), FeatureSpec("mean", 2), FeatureSpec("last", 3)]
    together = Featurizer(backbone).encode_specs(texts, specs)
    for spec in specs:
        alone = Featurizer(backbone, spec=spec).encode(texts)
        np.testing.assert_allclose(together[spec], alone, atol=1e-6)
    np.testing.assert_array_equal(together[specs[0]], together[specs[3]])  # -1 is the final layer
    assert np.abs(together[specs[1]] - together[specs[0]]).max() > 1e-3
    with pytest.raises(ValueError, match="out of range"):
        Featurizer(backbone, spec=FeatureSpec("last", 9)).encode(texts)


def test_chat_template_is_used_for_causal_models_that_have_one(tiny_model_dirs):
    llama = Featurizer(load_backbone(str(tiny_model_dirs["llama"]), dtype="float32"))
    gpt2 = Featurizer(load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32"))
    assert llama.format("Hi?", "Yo.") == "<|user|>Hi?<|end|>\n<|assistant|>Yo.<|end|>\n"
    assert gpt2.format([{"role": "user", "content": "Hi?"}], "Yo.") == "User: Hi?\nAssistant: Yo."


def test_long_texts_are_truncated_from_the_left(tiny_model_dirs):
    backbone = load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32")
    featurizer = Featurizer(backbone, max_length=16)
    tail = " the end of the response" * 6  # far more than 16 tokens
    a = featurizer.encode(["first prefix " * 40 + tail])
    b = featurizer.encode(["another different start " * 40 + tail])
    np.testing.assert_allclose(a, b, atol=1e-6)  # only the last 16 tokens are read


def test_second_run_recomputes_nothing(tiny_model_dirs, texts, monkeypatch):
    backbone = load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32")
    first = Featurizer(backbone, flush_every=7, cache=FeatureCache.default()).encode(texts)
    calls = []
    original = Featurizer._forward
    monkeypatch.setattr(
        Featurizer, "_forward", lambda self, ids, specs: calls.append(len(ids)) or original(self, ids, specs)
    )
    again = Featurizer(backbone, cache=FeatureCache.default()).encode(texts[::-1])[::-1]
    assert calls == []
    np.testing.assert_array_equal(first, again)
    Featurizer(backbone, cache=FeatureCache.default()).encode([*texts, "a brand new text"])
    assert calls == [1]


def test_duplicate_texts_are_computed_once(tiny_model_dirs, texts, monkeypatch):
    backbone = load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32")
    seen = []
    original = Featurizer._forward
    monkeypatch.setattr(
        Featurizer, "_forward", lambda self, ids, specs: seen.extend(ids) or original(self, ids, specs)
    )
    out = Featurizer(backbone).encode([texts[0], texts[1], texts[0]])
    assert len(seen) == 2
    np.testing.assert_array_equal(out[0], out[2])


@pytest.mark.parametrize("kind", KINDS)
def test_middle_layers_stop_the_forward_pass_early_with_identical_features(
    tiny_model_dirs, texts, kind, monkeypatch
):
    import pluralrm.backbone.featurizer as featurizer_module

    backbone = load_backbone(str(tiny_model_dirs[kind]), dtype="float32")
    stops = []
    original = featurizer_module.run_until
    monkeypatch.setattr(featurizer_module, "run_until", lambda *a: stops.append(a[2]) or original(*a))
    early = Featurizer(backbone, spec=FeatureSpec("last", 1)).encode(texts[:6])
    assert stops and set(stops) == {1}  # the early-exit path really ran
    full = Featurizer(backbone).encode_specs(texts[:6], [FeatureSpec("last", 1), FeatureSpec("last", -1)])
    np.testing.assert_allclose(early, full[FeatureSpec("last", 1)], atol=1e-5)
    # The model is untouched: a full pass afterwards still returns every layer.
    ids = backbone.tokenizer(["hello world"], return_tensors="pt")
    with torch.inference_mode():
        hidden = backbone.model(**ids, output_hidden_states=True).hidden_states
    assert len(hidden) == backbone.num_layers + 1
