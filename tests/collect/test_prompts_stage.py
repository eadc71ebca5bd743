"""The prompt stage: sources (files, a local dataset directory), self-instruct expansion, and the named
selection rules on embeddings whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pluralrm.collect.prompts_stage import (
    ClusterCoverage,
    NearDuplicates,
    RewardSelection,
    embed_prompts,
    expand_self_instruct,
    kmeans,
    load_sources,
    rewards_by_prompt,
)
from pluralrm.collect.provenance import record_id
from pluralrm.data.errors import DataValidationError
from pluralrm.generate.sampling import Completion


def _files(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("How do I bake bread?\n\nWhat is a prime number?\n")
    jsonl = tmp_path / "b.jsonl"
    rows = [{"id": "q1", "prompt": "What is a prime number?"}, {"id": "q2", "prompt": "Name a planet."}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return text, jsonl


def test_sources_are_merged_by_content_with_provenance(tmp_path):
    text, jsonl = _files(tmp_path)
    records = load_sources([text, jsonl])
    assert [r["prompt"] for r in records] == [
        "How do I bake bread?",
        "What is a prime number?",
        "Name a planet.",
    ]
    assert records[1]["prompt_id"] == record_id("prompt", "What is a prime number?")
    assert records[1]["provenance"]["parents"] == ["a.txt:3"]  # first seen in the text file, line 3
    assert records[2]["provenance"]["parents"] == ["q2"] and records[2]["provenance"]["source"] == str(jsonl)
    assert records[2]["provenance"]["stage"] == "prompts"
    assert [r["prompt_id"] for r in load_sources([text, jsonl])] == [r["prompt_id"] for r in records]
    assert len(load_sources([text, jsonl], limit=1)) == 2  # one from each source


def test_a_local_dataset_directory_and_its_splits(tmp_path):
    import datasets

    rows = [{"prompt": "Tell me a joke.", "subset": "fun"}, {"prompt": "Explain tides."}]
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "single")
    records = load_sources([tmp_path / "single"])
    assert [(r["prompt"], r["subset"]) for r in records] == [
        ("Tell me a joke.", "fun"),
        ("Explain tides.", None),
    ]
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list([{"prompt": "Hi?"}])}
    )
    both.save_to_disk(tmp_path / "splits")
    assert [r["prompt"] for r in load_sources([f"{tmp_path / 'splits'}:test"])] == ["Hi?"]
    with pytest.raises(DataValidationError, match="has splits"):
        load_sources([tmp_path / "splits"])


def test_a_bad_record_is_located(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(DataValidationError, match=r"bad\.jsonl, line 2, field 'prompt'"):
        load_sources([bad])


class _Writer:
    """A stand-in LM that writes a numbered new request, and repeats one on purpose."""

    backend, model = "fake", "writer-lm"

    def __init__(self) -> None:
        self.seeds: list[int] = []
        self.contents: list[str] = []

    def complete(self, messages, params, seed):
        self.seeds.append(seed)
        self.contents.append(messages[0]["content"])
        assert "1. " in messages[0]["content"]
        n = len(self.seeds)
        text = (
            "1. How do I bake bread?"
            if n == 2
            else f'Here is a new request:\n"Request number {n}?"\nextra line'
        )
        return [Completion(text, "stop", self.model)]


def test_self_instruct_adds_new_prompts_with_their_provenance(tmp_path):
    text, jsonl = _files(tmp_path)
    prompts = load_sources([text, jsonl])
    prompts[2]["prompt"] = [{"role": "user", "content": "Name a planet."}]  # shown by its user turn
    writer = _Writer()
    new = expand_self_instruct(prompts, writer, 3, seed=7)
    assert [p["prompt"] for p in new] == ["Request number 1?", "Request number 3?"]  # #2 already exists
    assert writer.seeds == [7, 8, 9]
    assert all("Name a planet." in c for c in writer.contents)  # 3 examples of 3: every request shows it
    assert not any("'role'" in c for c in writer.contents)  # a conversation is shown as its user turn
    first = new[0]["provenance"]
    assert first["source"] == "self-instruct" and first["model"] == "writer-lm" and first["seed"] == 7
    assert len(first["parents"]) == 3 and set(first["parents"]) <= {p["prompt_id"] for p in prompts}
    assert first["params"]["temperature"] == 1.0


def test_near_duplicates_keep_the_first_of_each_group():
    E = np.array([[1.0, 0.0], [0.999, 0.045], [0.0, 1.0], [0.6, 0.8]])
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    assert NearDuplicates(0.99).keep(E).tolist() == [True, False, True, True]
    assert NearDuplicates(0.85).keep(E).tolist() == [True, False, True, True]  # cos(3,2)=0.8, cos(3,0)=0.6
    assert NearDuplicates(0.75).keep(E).tolist() == [True, False, True, False]


def test_embeddings_are_unit_length_and_equal_texts_coincide(tiny_model_dirs):
    from pluralrm.backbone import Featurizer, load_backbone

    featurizer = Featurizer(load_backbone(str(tiny_model_dirs["bert"]), dtype="float32"))
    prompts = [{"prompt": "Name a planet."}, {"prompt": [{"role": "user", "content": "Name a planet."}]}]
    E = embed_prompts(prompts, featurizer)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    assert float(E[0] @ E[1]) == pytest.approx(1.0, abs=1e-6)


def _clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    sizes = [6, 2, 2]
    return np.concatenate(
        [c + rng.normal(scale=0.1, size=(s, 2)) for c, s in zip(centres, sizes, strict=True)]
    )


def test_kmeans_finds_separated_clusters():
    labels, _ = kmeans(_clusters(), 3, seed=0)
    assert len(set(labels[:6])) == 1 and len(set(labels[6:8])) == 1 and len(set(labels[8:])) == 1
    assert len(set(labels)) == 3


def test_cluster_coverage_takes_from_every_cluster():
    keep = ClusterCoverage(max_prompts=3, n_clusters=3, seed=0).keep(_clusters())
    assert keep.sum() == 3 and keep[:6].sum() == 1 and keep[6:8].sum() == 1 and keep[8:].sum() == 1
    assert ClusterCoverage(max_prompts=20).keep(_clusters()).all()


def test_reward_selection_by_spread_or_low_mean():
    rewards = {"a": [0.0, 0.1], "b": [-3.0, 3.0], "c": [-2.0, -1.9]}
    ids = ["a", "b", "c", "d"]
    assert RewardSelection(1, "spread").keep(ids, rewards).tolist() == [False, True, False, False]
    assert RewardSelection(1, "low").keep(ids, rewards).tolist() == [False, False, True, False]
    assert RewardSelection(9, "low").keep(ids, rewards).tolist() == [True, True, True, False]  # d: no rewards
    with pytest.raises(ValueError, match="spread"):
        RewardSelection(1, "high")
    ranked = [{"prompt": "Name a planet.", "responses": ["x", "y"], "rewards": [1, 2]}]
    assert rewards_by_prompt(ranked) == {record_id("prompt", "Name a planet."): [1.0, 2.0]}
