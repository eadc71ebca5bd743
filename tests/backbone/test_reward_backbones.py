"""Reward-model directories as backbones: kind detection, the 'pooler' pooling, a fingerprint that ignores
pluralrm's provenance file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from pluralrm.backbone import FeatureSpec, Featurizer, load_backbone
from pluralrm.backbone.fingerprint import fingerprint_directory
from pluralrm.backbone.loading import detect_kind


def test_sequence_classification_configs_keep_their_backbone_kind():
    from transformers import BertConfig, LlamaConfig

    llama = LlamaConfig(architectures=["LlamaForSequenceClassification"])
    bert = BertConfig(architectures=["BertForSequenceClassification"])
    assert detect_kind(llama) == "causal"
    assert detect_kind(bert) == "encoder"
    assert detect_kind(BertConfig(architectures=["BertModel"])) == "encoder"


def test_pooler_pooling_is_the_bert_pooler_output(tiny_model_dirs):
    backbone = load_backbone(str(tiny_model_dirs["bert"]), dtype="float32")
    featurizer = Featurizer(backbone, spec=FeatureSpec("pooler", -1))
    texts = ["User: hi\nAssistant: hello there", "User: hi\nAssistant: no"]
    ours = featurizer.encode(texts)
    tokenizer = backbone.tokenizer
    with torch.no_grad():
        expected = [
            backbone.model(**tokenizer(t, return_tensors="pt")).pooler_output[0].numpy() for t in texts
        ]
    np.testing.assert_allclose(ours, np.stack(expected), atol=1e-5)


def test_pooler_pooling_is_refused_where_it_does_not_exist(tiny_model_dirs):
    causal = load_backbone(str(tiny_model_dirs["llama"]))
    with pytest.raises(ValueError, match="needs an encoder with a pooler"):
        Featurizer(causal, spec=FeatureSpec("pooler", -1))
    encoder = load_backbone(str(tiny_model_dirs["bert"]))
    with pytest.raises(ValueError, match="final layer only"):
        Featurizer(encoder, spec=FeatureSpec("pooler", 1))


def test_provenance_file_does_not_change_the_fingerprint(tiny_model_dirs, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dirs["bert"], directory)
    before = fingerprint_directory(directory)
    (directory / "pluralrm_customize.json").write_text('{"stages": []}')
    assert fingerprint_directory(directory) == before
    (directory / "config.json").write_text((directory / "config.json").read_text().replace("32", "33", 1))
    assert fingerprint_directory(directory) != before  # a defining file still does
