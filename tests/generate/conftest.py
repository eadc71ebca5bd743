"""A tiny chat LM whose template supports add_generation_prompt, and a stand-in OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.servers import served_in_thread

GENERATION_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def chat_lm_dir(tiny_model_dirs, tmp_path_factory) -> Path:
    """The tiny random llama with a chat template that ends in the assistant's turn when asked."""
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("chat-lm") / "llama"
    shutil.copytree(tiny_model_dirs["llama"], directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.chat_template = GENERATION_TEMPLATE
    tokenizer.save_pretrained(directory)
    return directory


class StandIn:
    """What the stand-in server saw, and how its flaky route behaves (reset per test)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.failures_left = 0

    def reset(self) -> None:
        self.requests.clear()
        self.failures_left = 2


def fake_content(messages: list[dict], seed: int, index: int) -> str:
    """A deterministic answer derived from the last message, the seed and the choice index."""
    return f"re: {messages[-1]['content']} [seed {seed} #{index}]"


def _make_app(state: StandIn) -> FastAPI:
    # Request is imported at module level: FastAPI resolves the (string) annotation in module globals.
    app = FastAPI()

    @app.post("/{variant}/v1/chat/completions")
    async def chat(variant: str, request: Request):
        payload = await request.json()
        state.requests.append({"variant": variant, "payload": payload, "headers": dict(request.headers)})
        if variant == "bad":
            return JSONResponse({"error": {"message": "model 'nope' does not exist"}}, status_code=400)
        if variant == "flaky" and state.failures_left > 0:
            state.failures_left -= 1
            return JSONResponse({"detail": "overloaded"}, status_code=503)
        if variant == "slow":  # later prompts answer sooner: the file must keep the input order anyway
            await asyncio.sleep(0.2 / (1 + len(state.requests)))
        n = payload.get("n", 1) if variant in ("honour", "flaky", "slow") else 1
        finish = "length" if payload["max_tokens"] < 5 else "stop"
        choices = [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": " " + fake_content(payload["messages"], payload["seed"], i),
                },
                "finish_reason": finish,
            }
            for i in range(n)
        ]
        return {
            "model": f"served-{payload['model']}",
            "choices": choices,
            "usage": {"completion_tokens": 7 * n},
        }

    return app


@pytest.fixture(scope="session")
def stand_in_server():
    """(base URL, state): uvicorn in a background thread on a free loopback port."""
    state = StandIn()
    with served_in_thread(_make_app(state), "the stand-in server") as url:
        yield url, state


@pytest.fixture
def server(stand_in_server):
    url, state = stand_in_server
    state.reset()
    return url, state
