"""Responses to one prompt share its KV cache: same features, same cache keys, fewer tokens run."""

import logging

import numpy as np
import pytest
import torch

from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, load_backbone
from pluralrm.backbone import featurizer as featurizer_module
from pluralrm.backbone.feature_cache import text_key
from pluralrm.backbone.prompt_sharing import SharedPrefix, common_prefix_length, plan_prefix_sharing

SYSTEM = "You are a careful assistant. Answer the question about cooking, travel or money in plain words."
QUESTIONS = [
    "How do I bake my first loaf of bread at home without a mixer?",
    "What should I pack for a week of hiking in the mountains in spring?",
    "Is it better to pay off a small loan first or save for an emergency fund?",
]
ANSWERS = [
    "Yes.",
    "Knead it for ten minutes, then let it rise until it doubles.",
    "Start small. Weigh the flour, use warm water, and bake until the loaf sounds hollow underneath.",
    "No idea, sorry.",
    "Pack layers.",
    "It depends on the interest rate of the loan and on how steady your income is.",
]
SPECS = [
    FeatureSpec("last", -1),
    FeatureSpec("mean", -1),
    FeatureSpec("last", 1),
    FeatureSpec("mean", 2, normalize=True),
]


def conversations():
    """Prompts with 5, 1 and 4 responses of unequal length, strings and message lists, shuffled."""
    prompts, responses = [], []
    as_messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[2]}]
    for prompt, n in ((QUESTIONS[0], 5), (QUESTIONS[1], 1), (as_messages, 4)):
        for answer in ANSWERS[:n]:
            prompts.append(prompt)
            responses.append(answer)
    order = np.random.default_rng(0).permutation(len(prompts))
    return [prompts[i] for i in order], [responses[i] for i in order]


@pytest.fixture(scope="module")
def backbones(tiny_model_dirs):
    return {kind: load_backbone(str(tiny_model_dirs[kind]), device="cpu", dtype="float32") for kind in KINDS}


KINDS = ["llama", "gpt2"]


def _shared_groups(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("prompt sharing")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_shared_features_equal_unshared(backbones, kind, spec, caplog):
    prompts, responses = conversations()
    backbone = backbones[kind]
    plain = Featurizer(backbone, spec=spec, share_prompts=False).encode_conversations(prompts, responses)
    with caplog.at_level(logging.DEBUG, logger="pluralrm.backbone.featurizer"):
        shared = Featurizer(backbone, spec=spec, batch_size=3).encode_conversations(prompts, responses)
    np.testing.assert_allclose(shared, plain, atol=1e-5, rtol=0)
    assert len(_shared_groups(caplog)) == 2  # the prompts with 5 and 4 responses; the single one ran plain
    assert np.abs(plain - plain[0]).max() > 1e-3  # responses really get different vectors


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_positions_would_be_caught(backbones, kind, monkeypatch):
    """Suffix positions off by one (as if the prefix were not counted right) move features well past 1e-5."""
    prompts, responses = conversations()
    backbone = backbones[kind]
    plain = Featurizer(backbone, share_prompts=False).encode_conversations(prompts, responses)
    model = backbone.model

    class OffByOne:
        config = model.config

        def __call__(self, *, input_ids, past_key_values=None, **inputs):
            past = past_key_values.get_seq_length() if past_key_values is not None else 0
            if past:  # the suffix pass: start one position too late
                start = past + 1
                inputs["position_ids"] = torch.arange(start, start + input_ids.shape[1]).unsqueeze(0)
            return model(input_ids=input_ids, past_key_values=past_key_values, **inputs)

    monkeypatch.setattr(backbone, "model", OffByOne())
    wrong = Featurizer(backbone).encode_conversations(prompts, responses)
    assert np.abs(wrong - plain).max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_left_truncation(backbones, kind, caplog):
    """Texts cut at different places share nothing; the untruncated ones of the same prompt still do."""
    backbone = backbones[kind]
    prompts, responses = conversations()
    probe = Featurizer(backbone, share_prompts=False)
    texts = [probe.format(p, r) for p, r in zip(prompts, responses, strict=True)]
    lengths = [len(ids) for ids in probe.tokenize(texts)]
    max_length = sorted(lengths)[len(lengths) // 2]  # about half the texts lose their start
    spec = FeatureSpec("mean", -1)
    plain = Featurizer(backbone, spec=spec, max_length=max_length, share_prompts=False)
    shared = Featurizer(backbone, spec=spec, max_length=max_length)
    with caplog.at_level(logging.DEBUG, logger="pluralrm.backbone.featurizer"):
        features = shared.encode_conversations(prompts, responses)
    np.testing.assert_allclose(features, plain.encode_conversations(prompts, responses), atol=1e-5, rtol=0)
    assert len(_shared_groups(caplog)) >= 1


def test_cache_gets_the_same_keys_and_is_respected(backbones, tmp_path, monkeypatch):
    backbone = backbones["llama"]
    prompts, responses = conversations()
    plain_cache, shared_cache = FeatureCache(tmp_path / "plain"), FeatureCache(tmp_path / "shared")
    plain = Featurizer(backbone, cache=plain_cache, share_prompts=False)
    expected = plain.encode_conversations(prompts, responses)
    shared = Featurizer(backbone, cache=shared_cache)
    computed: list[int] = []
    compute = Featurizer._compute

    def counting(self, texts, *args, **kwargs):
        computed.append(len(texts))
        return compute(self, texts, *args, **kwargs)

    monkeypatch.setattr(Featurizer, "_compute", counting)
    half = len(prompts) // 2
    first = shared.encode_conversations(prompts[:half], responses[:half])
    again = shared.encode_conversations(prompts, responses)
    third = shared.encode_conversations(prompts, responses)
    assert computed == [half, len(prompts) - half, 0]
    np.testing.assert_allclose(first, expected[:half], atol=1e-5, rtol=0)
    np.testing.assert_allclose(again, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(third, again)
    namespace = plain.namespace(plain.spec)
    keys = {text_key(plain.format(p, r)) for p, r in zip(prompts, responses, strict=True)}
    for cache in (plain_cache, shared_cache):
        stored = cache.namespace(namespace)
        assert len(stored) == len(keys) and all(key in stored for key in keys)


def test_encoder_path_is_unchanged(tiny_model_dirs, monkeypatch):
    backbone = load_backbone(str(tiny_model_dirs["bert"]), device="cpu", dtype="float32")
    prompts, responses = conversations()
    featurizer = Featurizer(backbone)
    expected = featurizer.encode([featurizer.format(p, r) for p, r in zip(prompts, responses, strict=True)])

    def refuse(*args, **kwargs):
        raise AssertionError("an encoder must not take the prompt-sharing path")

    monkeypatch.setattr(featurizer_module, "plan_prefix_sharing", refuse)
    np.testing.assert_array_equal(Featurizer(backbone).encode_conversations(prompts, responses), expected)


def test_plan_shares_the_common_ids_and_leaves_each_text_a_token():
    ids = [[1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 5, 6], [7, 8], [1, 2, 9]]
    groups, rest = plan_prefix_sharing(ids, ["a", "a", "a", "b", "c"], min_shared=2)
    # [1, 2, 3] is a whole text, so the prefix stops one id short of it.
    assert groups == [SharedPrefix(prefix=[1, 2], members=[0, 1, 2])]
    assert rest == [3, 4]  # single texts of their prompt
    assert plan_prefix_sharing(ids, ["a"] * 5, min_shared=3) == ([], [0, 1, 2, 3, 4])  # 2 ids are too few
    # A text whose start was cut (left truncation) does not spoil the group of the others.
    cut = [[9, 1, 2, 3, 7], [1, 2, 3, 4], [1, 2, 3, 5]]
    assert plan_prefix_sharing(cut, ["a"] * 3, min_shared=2) == ([SharedPrefix([1, 2, 3], [1, 2])], [0])
    assert common_prefix_length([[1, 2], [1, 2]]) == 2 and common_prefix_length([[1], [2]]) == 0
    with pytest.raises(ValueError, match="labels"):
        plan_prefix_sharing(ids, ["a"])
