"""A generation run: wide output that load_ranked reads, resumption after a kill, refused mismatches."""

from __future__ import annotations

import json

import pytest

from pluralrm.data import DataValidationError, load_ranked
from pluralrm.generate import (
    Completion,
    PromptRecord,
    ResumeMismatchError,
    SamplingParams,
    manifest_path,
    write_generations,
)
from pluralrm.generate.local import LocalGenerator

PROMPTS = [PromptRecord(id=f"p{i}", prompt=f"Question number {i}?") for i in range(5)]
PARAMS = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=5, seed=7)


class Recording:
    """Wraps a generator and records which prompts it was asked to answer."""

    def __init__(self, inner) -> None:
        self.inner, self.backend, self.model = inner, inner.backend, inner.model
        self.asked: list[str] = []

    def complete(self, messages, params, seed):
        self.asked.append(messages[-1]["content"])
        return self.inner.complete(messages, params, seed)


class Echo:
    """A fake model: deterministic answers, some empty, some cut."""

    backend, model = "fake", "echo"

    def complete(self, messages, params, seed):
        text = messages[-1]["content"]
        return [
            Completion("" if i == 1 else f"{text} {seed} {i}", "length" if i == 2 else "stop", "echo", 2)
            for i in range(params.n)
        ]


@pytest.fixture(scope="module")
def lm(chat_lm_dir):
    return LocalGenerator(str(chat_lm_dir), device="cpu", dtype="float32")


class Kill(Exception):
    pass


def _kill_after(k):
    def progress(event):
        if event.done == k:
            raise Kill

    return progress


def test_a_killed_run_resumes_to_the_uninterrupted_file(lm, tmp_path):
    whole = tmp_path / "whole.jsonl"
    summary = write_generations(PROMPTS, whole, lm, PARAMS)
    assert (summary.n_generated, summary.n_responses, summary.n_skipped) == (5, 15, 0)

    out = tmp_path / "resumed.jsonl"
    first = Recording(lm)
    with pytest.raises(Kill):
        write_generations(PROMPTS, out, first, PARAMS, progress=_kill_after(2))
    assert len(out.read_text().splitlines()) == 2
    assert json.loads(manifest_path(out).read_text())["status"] == "interrupted"

    second = Recording(lm)
    summary = write_generations(PROMPTS, out, second, PARAMS)
    assert second.asked == [p.prompt for p in PROMPTS[2:]]  # nothing generated twice
    assert (summary.n_skipped, summary.n_generated) == (2, 3)
    assert out.read_bytes() == whole.read_bytes()
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"prompts": 5, "done": 5, "responses": 15, "length_cut": summary.n_length}
    assert [run["prompts"] for run in manifest["runs"]] == [2, 3]


def test_a_torn_last_line_is_dropped_and_regenerated(lm, tmp_path):
    whole = tmp_path / "whole.jsonl"
    write_generations(PROMPTS, whole, lm, PARAMS)
    lines = whole.read_bytes().splitlines(keepends=True)
    out = tmp_path / "torn.jsonl"
    out.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-write of line 4
    recording = Recording(lm)
    write_generations(PROMPTS, out, recording, PARAMS)
    assert recording.asked == [p.prompt for p in PROMPTS[3:]]
    assert out.read_bytes() == whole.read_bytes()


def test_the_output_reads_back_with_load_ranked(tmp_path):
    out = tmp_path / "gen.jsonl"
    prompts = [*PROMPTS[:2], PromptRecord(id="m", prompt=[{"role": "user", "content": "hey"}], subset="chat")]
    write_generations(prompts, out, Echo(), SamplingParams(n=3, seed=1))
    result = load_ranked(out)
    assert result.report.format == "wide"
    records = {r["id"]: r for r in result.records}
    assert records["m"]["prompt"] == [{"role": "user", "content": "hey"}] and records["m"]["subset"] == "chat"
    assert records["p0"]["responses"][1] == ""  # an empty answer is written as the model gave it
    assert records["p0"]["finish_reasons"] == ["stop", "stop", "length"]
    assert records["p0"]["models"] == ["echo"] * 3
    assert records["p0"]["generation"] == {
        "backend": "fake",
        "model": "echo",
        "n": 3,
        "temperature": 0.8,
        "top_p": 0.95,
        "max_new_tokens": 256,
        "seed": 1,
        "system_prompt": None,
    }


def test_other_parameters_on_resume_are_refused_and_the_file_is_untouched(tmp_path):
    out = tmp_path / "gen.jsonl"
    write_generations(PROMPTS[:2], out, Echo(), PARAMS)
    before = out.read_bytes()
    changed = SamplingParams(n=3, temperature=0.5, top_p=0.9, max_new_tokens=5, seed=7)
    with pytest.raises(
        ResumeMismatchError, match=r"temperature: 1\.0 in the file, 0\.5 now.*delete .*gen\.jsonl"
    ):
        write_generations(PROMPTS, out, Echo(), changed)
    with pytest.raises(ResumeMismatchError, match=r"^(?!.*top_p).*n: 3 in the file, 4 now"):
        write_generations(
            PROMPTS, out, Echo(), SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=5, seed=7)
        )
    assert out.read_bytes() == before


def test_a_changed_prompt_under_a_done_id_is_refused(tmp_path):
    out = tmp_path / "gen.jsonl"
    write_generations(PROMPTS[:2], out, Echo(), PARAMS)
    changed = [PromptRecord(id="p1", prompt="something else")]
    with pytest.raises(DataValidationError, match=r"gen\.jsonl, line 2, field 'prompt'.*'p1'"):
        write_generations(changed, out, Echo(), PARAMS)


def test_a_damaged_line_in_the_middle_is_an_error_not_a_torn_line(tmp_path):
    out = tmp_path / "gen.jsonl"
    write_generations(PROMPTS[:2], out, Echo(), PARAMS)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0][:10] + "\n" + lines[1])
    with pytest.raises(DataValidationError, match=r"gen\.jsonl, line 1: malformed JSON"):
        write_generations(PROMPTS, out, Echo(), PARAMS)


def test_each_prompt_gets_the_same_samples_alone_or_after_others(lm, tmp_path):
    together = write_generations(PROMPTS, tmp_path / "a.jsonl", lm, PARAMS).out.read_text().splitlines()
    alone = write_generations(PROMPTS[3:4], tmp_path / "b.jsonl", lm, PARAMS).out.read_text().splitlines()
    assert alone == [together[3]]


def test_library_defaults_are_the_config():
    import inspect

    from pluralrm.config import GENERATE
    from pluralrm.generate.endpoint import EndpointGenerator

    assert SamplingParams() == SamplingParams.from_config(GENERATE)
    for cls, names in (
        (LocalGenerator, ("model", "device", "dtype", "batch_size")),
        (EndpointGenerator, ("model", "api_key_env", "retries", "backoff_s", "timeout_s")),
    ):
        parameters = inspect.signature(cls).parameters
        for name in names:
            assert parameters[name].default == getattr(GENERATE, name), (cls.__name__, name)
