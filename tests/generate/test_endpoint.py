"""The endpoint generator against a stand-in OpenAI-compatible server, and the CLI end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.data import load_ranked
from pluralrm.generate import PromptRecord, SamplingParams, conversation, manifest_path, write_generations
from pluralrm.generate.endpoint import EndpointError, EndpointGenerator
from tests.generate.conftest import fake_content

runner = CliRunner()
MESSAGES = conversation("Hi?", None)
PARAMS = SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=32, seed=0)


def test_a_server_that_honours_n_is_asked_once(server):
    url, state = server
    completions = EndpointGenerator(f"{url}/honour", "tiny").complete(MESSAGES, PARAMS, seed=5)
    assert [c.text for c in completions] == [fake_content(MESSAGES, 5, i) for i in range(3)]  # stripped
    assert {(c.model, c.finish, c.tokens) for c in completions} == {("served-tiny", "stop", 7)}
    [request] = state.requests
    assert request["payload"] == {
        "model": "tiny",
        "messages": MESSAGES,
        "n": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 32,
        "seed": 5,
    }


def test_missing_choices_are_asked_for_one_by_one_with_their_own_seeds(server):
    url, state = server
    completions = EndpointGenerator(f"{url}/ignore/v1", "tiny").complete(MESSAGES, PARAMS, seed=5)
    assert [c.text for c in completions] == [fake_content(MESSAGES, s, 0) for s in (5, 6, 7)]
    assert [(r["payload"]["n"], r["payload"]["seed"]) for r in state.requests] == [(3, 5), (1, 6), (1, 7)]


def test_503_is_retried_and_a_400_fails_at_once_with_the_servers_message(server):
    url, state = server
    completions = EndpointGenerator(f"{url}/flaky", "tiny", backoff_s=0.01).complete(MESSAGES, PARAMS, seed=1)
    assert len(completions) == 3 and len(state.requests) == 3  # two 503s, then the answer
    state.reset()
    with pytest.raises(EndpointError, match=r"failed after 2 attempts; last: HTTP 503: overloaded"):
        EndpointGenerator(f"{url}/flaky", "tiny", retries=1, backoff_s=0.01).complete(
            MESSAGES, PARAMS, seed=1
        )
    state.reset()
    with pytest.raises(EndpointError) as info:
        EndpointGenerator(f"{url}/bad", "nope", backoff_s=0.01).complete(MESSAGES, PARAMS, seed=1)
    assert (
        f"{url}/bad/v1/chat/completions refused the request (HTTP 400: model 'nope' does not exist)"
        in str(info.value)
    )
    assert len(state.requests) == 1


def test_connection_errors_are_retried_then_reported():
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    with pytest.raises(
        EndpointError, match=r"127\.0\.0\.1:9/v1/chat/completions failed after 3 attempts; last: Connect"
    ):
        EndpointGenerator(closed, "tiny", retries=2, backoff_s=0.01).complete(MESSAGES, PARAMS, seed=1)


def test_the_api_key_is_sent_as_bearer_and_never_written(server, tmp_path, monkeypatch):
    url, state = server
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    generator = EndpointGenerator(f"{url}/honour", "tiny", api_key_env="MY_KEY")
    out = tmp_path / "gen.jsonl"
    write_generations([PromptRecord("a", "Hi?")], out, generator, PARAMS)
    assert state.requests[0]["headers"]["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in out.read_text() and "sk-secret" not in manifest_path(out).read_text()
    assert json.loads(manifest_path(out).read_text())["generator"]["api_key_env"] == "MY_KEY"
    monkeypatch.delenv("MY_KEY")
    state.reset()
    EndpointGenerator(f"{url}/honour", "tiny", api_key_env="MY_KEY").complete(MESSAGES, PARAMS, seed=1)
    assert "authorization" not in state.requests[0]["headers"]


def test_concurrent_requests_keep_the_input_order(server, tmp_path):
    url, _ = server
    prompts = [PromptRecord(f"p{i}", f"prompt {i}") for i in range(6)]
    out = tmp_path / "gen.jsonl"
    write_generations(prompts, out, EndpointGenerator(f"{url}/slow", "tiny"), PARAMS, concurrency=4)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [p.id for p in prompts]


def test_cli_end_to_end_against_the_stand_in(server, tmp_path, monkeypatch):
    url, state = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is 2+2?\nName a colour.\nWhy is the sky blue?\n")
    out = tmp_path / "gen.jsonl"
    args = ["generate", str(prompts), "--out", str(out), "--endpoint", f"{url}/ignore", "--model", "tiny"]
    args += ["--n", "2", "--max-new-tokens", "4", "--seed", "3", "--limit", "2", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2/2 prompts" in result.output and "responses/s" in result.output and "4 cut" in result.output
    records = load_ranked(out).records
    assert [r["prompt"] for r in records] == ["What is 2+2?", "Name a colour."]
    assert all(r["finish_reasons"] == ["length", "length"] for r in records)
    assert (
        records[0]["generation"]["max_new_tokens"] == 4 and records[0]["generation"]["backend"] == "endpoint"
    )
    assert state.requests[0]["headers"]["authorization"] == "Bearer sk-cli-secret"
    assert "sk-cli-secret" not in out.read_text() + manifest_path(out).read_text()

    result = runner.invoke(app, [*args[:-2], "3", "--no-progress"])  # --limit 3: resumes
    assert result.exit_code == 0, result.output
    assert "3/3 prompts (2 were already done)" in result.output

    result = runner.invoke(app, [*args, "--temperature", "0.1"])
    assert result.exit_code == 2
    assert "temperature: 0.8 in the file, 0.1 now" in result.output


def test_cli_reports_a_refusing_server_in_one_line(server, tmp_path):
    url, _ = server
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n")
    args = ["generate", str(prompts), "--out", str(tmp_path / "g.jsonl"), "--endpoint", f"{url}/bad"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 2
    assert "error:" in result.output and "HTTP 400: model 'nope' does not exist" in result.output


def test_generate_help_has_an_example():
    result = runner.invoke(app, ["generate", "--help"])
    assert result.exit_code == 0 and "Example" in result.output
