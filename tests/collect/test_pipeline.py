"""The pipeline's stages on a project directory: known counts per rule, the pairs file the labelling app
reads, provenance, skipping an unchanged stage, resuming a killed generation, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.collect.filters import RewardJudge
from pluralrm.collect.pipeline import (
    AI_LABELLED,
    PROMPTS,
    RESPONSES,
    TO_LABEL,
    StageOrderError,
    run_filter,
    run_prompts,
    run_responses,
    stage_table,
)
from pluralrm.collect.provenance import read_manifest, read_records
from pluralrm.collect.responses_stage import GeneratorSetting
from pluralrm.config import COLLECT, replace
from pluralrm.generate.sampling import Completion
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel

runner = CliRunner()
TOPICS = ["bread", "tides", "planets"]


def _texts(topic: str, temperature: float) -> list[tuple[str, str]]:
    """Per setting, one response each rule drops and the rest kept (by construction)."""
    if temperature < 0.9:
        return [
            (f"Here is a careful answer about {topic} with several useful points for you.", "stop"),
            (f"Short reply on {topic}.", "stop"),
            ("", "stop"),  # empty
            ("I'm sorry, but I can't help with that.", "stop"),  # refusal
        ]
    return [
        (
            f"Here is a careful answer about {topic} with several useful points for you!",
            "stop",
        ),  # near-identical
        ("This response is cut off because it ran out of", "length"),  # truncated
        ("bla bla bla bla bla bla bla bla bla bla", "stop"),  # repeated n-grams
        (
            "Voici une réponse en français qui ne contient aucun mot anglais courant du tout.",
            "stop",
        ),  # language
    ]


class FakeLM:
    """A deterministic generator; ``fail_after`` makes it raise (a killed run)."""

    backend = "fake"

    def __init__(self, model: str = "fake-lm", fail_after: int | None = None) -> None:
        self.model = model
        self.fail_after = fail_after
        self.prompts: list[str] = []

    def complete(self, messages, params, seed):
        if self.fail_after is not None and len(self.prompts) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        content = messages[-1]["content"]
        self.prompts.append(content)
        topic = next(t for t in TOPICS if t in content)
        return [Completion(t, f, self.model, 5) for t, f in _texts(topic, params.temperature)[: params.n]]


class LengthFeatures:
    def encode_conversations(self, prompts, responses):
        return np.array([[len(t), 1.0] for t in responses], dtype=np.float32)


def length_judge() -> RewardJudge:
    model = RewardModel(
        namespace={}, backbone_name="", general=LinearRewardHead.from_coef(np.array([1.0, 0.0]))
    )
    model._featurizer = LengthFeatures()  # a reward that prefers longer answers, through model.rewards()
    return RewardJudge(model, name="length")


SETTINGS = [
    GeneratorSetting("fake-lm", temperature=0.7, n=4),
    GeneratorSetting("fake-lm", temperature=1.0, n=4),
]


@pytest.fixture
def sources(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(f"Tell me about {t}." for t in TOPICS) + "\nTell me about bread.\n")
    return path


def _run_all(project, sources, lm=None, **config):
    run_prompts(project, [sources])
    run_responses(project, SETTINGS, generators=dict.fromkeys(SETTINGS, lm or FakeLM()))
    return run_filter(project, judge=length_judge(), config=replace(COLLECT, **config))


def test_stages_count_each_rule_and_write_the_labelling_apps_pairs(tmp_path, sources):
    project = tmp_path / "proj"
    _run_all(project, sources, ai_fraction=0.5, label_budget=2)
    assert len(read_records(project / PROMPTS)) == 3  # the repeated bread prompt is one record
    assert len(read_records(project / RESPONSES)) == 24
    rows = {(r["stage"], r["rule"]): (r["in"], r["out"]) for r in stage_table(project)}
    assert rows[("filter", "empty")] == (24, 21)
    assert rows[("filter", "truncated")] == (21, 18)
    assert rows[("filter", "repeated-ngrams")] == (18, 15)
    assert rows[("filter", "wrong-language")] == (15, 12)
    assert rows[("filter", "refusal")] == (12, 9)
    assert rows[("filter", "pairs")] == (9, 9)  # 3 kept responses per prompt → 3 pairs each
    assert rows[("filter", "near-identical")] == (9, 6)
    assert rows[("filter", "ai-judge")] == (6, 3)
    assert rows[("filter", "label-budget")] == (3, 2)
    people, ai = read_records(project / TO_LABEL), read_records(project / AI_LABELLED)
    assert len(people) == 2 and len(ai) == 3
    keys = {"pair_id", "prompt", "response_a", "response_b", "ai_label", "ai_margin", "provenance"}
    assert all(set(p) == keys for p in people + ai)
    for pair in people + ai:  # the judge prefers the longer answer; margins are length differences
        assert pair["ai_margin"] == pytest.approx(len(pair["response_a"]) - len(pair["response_b"]))
        assert pair["ai_label"] == ("a" if pair["ai_margin"] > 0 else "b")
    assert min(abs(p["ai_margin"]) for p in ai) >= max(abs(p["ai_margin"]) for p in people)
    origin = ai[0]["provenance"]
    assert origin["stage"] == "filter" and origin["model"] == "length" and len(origin["parents"]) == 2
    response = read_records(project / RESPONSES)[0]["provenance"]
    assert response["stage"] == "responses" and response["model"] == "fake-lm"
    assert response["params"]["temperature"] == 0.7 and isinstance(response["seed"], int)


def test_the_pairs_file_reads_into_the_label_store(tmp_path, sources):
    from pluralrm.label.io import read_pairs
    from pluralrm.label.store import LabelStore

    project = tmp_path / "proj"
    _run_all(project, sources, ai_fraction=0.0)
    pairs = read_pairs(project / TO_LABEL)
    assert len(pairs) == 6
    store = LabelStore.of_project(project)
    store.import_pairs(pairs)
    assert {p.pair_id for p in store.pairs()} == {p.pair_id for p in pairs}


def test_later_stages_need_earlier_ones_and_unchanged_stages_are_skipped(tmp_path, sources):
    project = tmp_path / "proj"
    with pytest.raises(StageOrderError, match="collect prompts"):
        run_responses(project, SETTINGS)
    first = _run_all(project, sources)
    lm = FakeLM()
    run_prompts(project, [sources])
    run_responses(project, SETTINGS, generators=dict.fromkeys(SETTINGS, lm))
    assert lm.prompts == []  # nothing re-generated
    judge = length_judge()
    judge.margins = lambda pairs: pytest.fail("the unchanged filter stage ran again")
    again = run_filter(project, judge=judge)
    assert again.started_at == first.started_at  # skipped: same inputs, same settings
    changed = run_filter(project, judge=length_judge(), config=replace(COLLECT, label_budget=1))
    assert changed.outputs[TO_LABEL] == 1 and read_manifest(project, "filter").settings["label_budget"] == 1


def test_a_killed_generation_resumes_without_redoing_prompts(tmp_path, sources):
    project = tmp_path / "proj"
    run_prompts(project, [sources])
    with pytest.raises(KeyboardInterrupt):
        run_responses(project, SETTINGS, generators=dict.fromkeys(SETTINGS, FakeLM(fail_after=2)))
    assert read_manifest(project, "responses").status == "running"
    lm = FakeLM()
    run_responses(project, SETTINGS, generators=dict.fromkeys(SETTINGS, lm))
    assert len(lm.prompts) == 1 + 3  # first setting: the one prompt left; second setting: all three
    assert len(read_records(project / RESPONSES)) == 24
    ids = [r["response_id"] for r in read_records(project / RESPONSES)]
    assert len(set(ids)) == 24


def test_responses_from_a_tiny_local_lm(tmp_path, tiny_model_dirs, sources):
    from transformers import AutoTokenizer

    lm_dir = tmp_path / "lm"
    shutil.copytree(tiny_model_dirs["llama"], lm_dir)
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tokenizer.save_pretrained(lm_dir)
    project = tmp_path / "proj"
    run_prompts(project, [sources])
    setting = GeneratorSetting(str(lm_dir), temperature=1.0, n=2, max_new_tokens=6)
    run_responses(project, [setting])
    responses = read_records(project / RESPONSES)
    assert len(responses) == 6 and {r["model"] for r in responses} == {str(lm_dir)}
    assert all(r["finish"] in ("stop", "length") for r in responses)


def test_cli_stages_and_errors(tmp_path, sources):
    project = tmp_path / "proj"
    result = runner.invoke(app, ["collect", "filter", str(project)])
    assert result.exit_code == 2 and "run `pluralrm collect responses` first" in result.output
    wide = tmp_path / "gen.jsonl"
    rows = [
        {
            "id": str(i),
            "prompt": f"Tell me about {t}.",
            "response_1": f"{t} is a fine subject to read about.",
            "response_2": f"Here is everything about {t}, in short sentences, for you.",
        }
        for i, t in enumerate(TOPICS)
    ]
    wide.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert runner.invoke(app, ["collect", "prompts", str(project), str(sources), "--no-embed"]).exit_code == 0
    result = runner.invoke(app, ["collect", "responses", str(project), "--from-wide", str(wide)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["collect", "filter", str(project), "--label-budget", "2"])
    assert result.exit_code == 0, result.output
    assert "label-budget" in result.output
    pairs = read_records(project / TO_LABEL)
    assert len(pairs) == 2 and all(p["ai_label"] is None and p["ai_margin"] is None for p in pairs)


class TopicEmbedding:
    """Embeds a prompt by the topic it names (paraphrases of one topic coincide); a Featurizer stand-in."""

    spec = "topic"

    def namespace(self, spec):
        return {"backbone": "topic-embedding"}

    def encode(self, texts):
        return np.array([[float(t in text) for t in TOPICS] for text in texts])


def test_prompt_stage_drops_paraphrases_and_covers_topics(tmp_path):
    source = tmp_path / "prompts.txt"
    lines = [f"{q} {t}?" for t in TOPICS for q in ("Tell me about", "Explain", "What about")]
    source.write_text("\n".join(lines) + "\n")
    project = tmp_path / "proj"
    manifest = run_prompts(project, [source], featurizer=TopicEmbedding())
    assert [p["prompt"] for p in read_records(project / PROMPTS)] == [f"Tell me about {t}?" for t in TOPICS]
    assert [(f.name, f.records_in, f.records_out) for f in manifest.filters] == [
        ("sources", 0, 9),
        ("near-duplicates", 9, 3),
    ]
    assert manifest.settings["embedding"] == {"backbone": "topic-embedding"}
    covered = run_prompts(
        project,
        [source],
        featurizer=TopicEmbedding(),
        config=replace(COLLECT, dedup_threshold=1.01, max_prompts=3),
    )
    kept = read_records(project / PROMPTS)
    assert [(f.name, f.records_out) for f in covered.filters][-1] == ("cluster-coverage", 3)
    assert sorted(next(t for t in TOPICS if t in p["prompt"]) for p in kept) == sorted(TOPICS)


def test_prompts_kept_by_the_current_rewards_spread(tmp_path, sources):
    rewarded = tmp_path / "rewarded.jsonl"
    spreads = {"bread": [0.0, 0.1], "tides": [-2.0, 2.5], "planets": [1.0, 1.5]}
    rows = [
        {
            "prompt": f"Tell me about {t}.",
            "response_1": "x",
            "response_2": "y",
            "reward_1": r[0],
            "reward_2": r[1],
        }
        for t, r in spreads.items()
    ]
    rewarded.write_text("".join(json.dumps(r) + "\n" for r in rows))
    project = tmp_path / "proj"
    args = ["collect", "prompts", str(project), str(sources), "--no-embed", "--rewarded", str(rewarded)]
    result = runner.invoke(app, [*args, "--keep-by-reward", "1"])
    assert result.exit_code == 0, result.output
    assert [p["prompt"] for p in read_records(project / PROMPTS)] == ["Tell me about tides."]
    assert read_manifest(project, "prompts").filters[-1].name == "reward-selection"
    result = runner.invoke(app, [*args, "--keep-by-reward", "1", "--reward-rule", "low"])
    assert result.exit_code == 0, result.output
    assert [p["prompt"] for p in read_records(project / PROMPTS)] == ["Tell me about bread."]


def test_cli_all_runs_the_three_stages_and_skips_them_when_unchanged(tmp_path, sources, tiny_model_dirs):
    wide = tmp_path / "gen.jsonl"
    rows = [
        {"prompt": f"Tell me about {t}.", "response_1": f"All about {t}.", "response_2": "Nothing."}
        for t in TOPICS
    ]
    wide.write_text("".join(json.dumps(r) + "\n" for r in rows))
    project = tmp_path / "proj"
    args = ["collect", "all", str(project), str(sources), "--backbone", str(tiny_model_dirs["bert"])]
    result = runner.invoke(app, [*args, "--from-wide", str(wide), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    # a random tiny BERT finds the three "Tell me about X." prompts near-identical: one pair per kept prompt
    kept = read_records(project / PROMPTS)
    assert 1 <= len(kept) <= 3 and len(read_records(project / TO_LABEL)) == len(kept)
    manifests = [project / f"{stage}.manifest.json" for stage in ("prompts", "responses", "filter")]
    first = [path.stat().st_mtime_ns for path in manifests]
    assert runner.invoke(app, [*args, "--from-wide", str(wide), "--device", "cpu"]).exit_code == 0
    assert [path.stat().st_mtime_ns for path in manifests] == first  # no stage wrote anything


def test_a_damaged_stage_file_is_a_located_error(tmp_path):
    from pluralrm.data.errors import DataValidationError

    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "a", "prompt": "hi"}\n{"id": "b", "prompt": \n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"prompts\.jsonl.*line 2.*malformed JSON"):
        read_records(path)
    path.write_text('{"id": "a", "prompt": "hi"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"line 2.*expected a JSON object"):
        read_records(path)
    path.write_text('{"id": "a", "prompt": "hi"}\n\n', encoding="utf-8")
    assert read_records(path) == [{"id": "a", "prompt": "hi"}]
