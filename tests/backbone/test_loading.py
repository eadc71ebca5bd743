import shutil

import pytest

from pluralrm.backbone import BackboneNotFoundError, build_featurizer, load_backbone, resolve_backbone
from pluralrm.backbone.feature_cache import FeatureCache, NamespaceCache, text_key
from pluralrm.backbone.fingerprint import fingerprint_directory


def test_unknown_names_and_missing_directories_are_clear_errors(tmp_path):
    with pytest.raises(BackboneNotFoundError, match="unknown backbone 'nonsense'"):
        load_backbone("nonsense")
    with pytest.raises(BackboneNotFoundError, match="no such directory"):
        load_backbone(str(tmp_path / "missing"))
    with pytest.raises(BackboneNotFoundError, match=r"no config\.json"):
        load_backbone(str(tmp_path))


def test_resolve_backbone_reads_a_directory_or_a_hub_id_without_loading(tiny_model_dirs, tmp_path):
    directory = tiny_model_dirs["gpt2"]
    assert resolve_backbone(str(directory)) == (directory, "dir:" + fingerprint_directory(directory), None)
    assert resolve_backbone("owner/name@v2") == ("owner/name", "", "v2")  # fingerprinted once fetched
    assert resolve_backbone("owner/name") == ("owner/name", "", None)
    with pytest.raises(BackboneNotFoundError, match="a/b/c: no such directory"):
        resolve_backbone("a/b/c")


def test_tokenize_is_what_the_forward_pass_sees(tiny_model_dirs):
    from pluralrm.config import FEATURIZE, replace

    config = replace(FEATURIZE, backbone=str(tiny_model_dirs["gpt2"]), device="cpu", max_length=6)
    featurizer = build_featurizer(config)
    ids = featurizer.tokenize(["a b c d e f g h i j", "a"])
    tokenizer = featurizer.backbone.tokenizer
    assert [len(row) for row in ids] == [6, len(tokenizer("a")["input_ids"])]
    assert ids[0] == tokenizer("a b c d e f g h i j")["input_ids"][-6:]  # long texts lose their start


def test_hub_id_offline_without_cache_explains_itself(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(BackboneNotFoundError, match="could not load backbone 'someone/not-a-model'"):
        load_backbone("someone/not-a-model")


def test_fingerprint_changes_with_the_weights(tiny_model_dirs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dirs["gpt2"], copy)
    assert fingerprint_directory(copy) == fingerprint_directory(tiny_model_dirs["gpt2"])
    (copy / "README.md").write_text("docs do not change features")
    assert fingerprint_directory(copy) == fingerprint_directory(tiny_model_dirs["gpt2"])
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert fingerprint_directory(copy) != fingerprint_directory(tiny_model_dirs["gpt2"])
    assert load_backbone(str(copy)).fingerprint.startswith("dir:")


def test_cache_refuses_a_namespace_with_other_metadata(tmp_path):
    import numpy as np

    cache = NamespaceCache(tmp_path / "ns", {"backbone": "a"})
    cache.put_many([text_key("x")], np.ones((1, 3), np.float32))
    assert len(NamespaceCache(tmp_path / "ns", {"backbone": "a"})) == 1
    with pytest.raises(ValueError, match="holds features of"):
        NamespaceCache(tmp_path / "ns", {"backbone": "b"})
    root = FeatureCache(tmp_path / "root")
    a, b = root.namespace({"dtype": "float32"}), root.namespace({"dtype": "bfloat16"})
    assert a is root.namespace({"dtype": "float32"}) and a.directory != b.directory


def test_hub_id_loads_from_a_local_hub_cache_offline(tiny_model_dirs, tmp_path, monkeypatch):
    """The real hub code path, fed by a hub cache laid out on disk as huggingface_hub writes it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-gpt2"
    shutil.copytree(tiny_model_dirs["gpt2"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    backbone = load_backbone("someone/tiny-gpt2")
    assert backbone.kind == "causal"
    assert backbone.fingerprint == f"hub:someone/tiny-gpt2@{commit}"
