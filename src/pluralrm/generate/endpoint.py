"""Sampling responses from any OpenAI-compatible chat server (vLLM, TGI, llama.cpp, a hosted API).

This is how generation scales: a GPU server batches many requests itself, and pluralrm only keeps a few
in flight (``concurrency``, in :mod:`pluralrm.generate.run`). Servers differ on ``n``: vLLM honours it,
llama.cpp and TGI often return one choice, so the missing ones are asked for one at a time, each with its
own seed (a server that honours ``seed`` would otherwise return the same answer again).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from pluralrm.config import GENERATE
from pluralrm.data.transcripts import Message
from pluralrm.generate.sampling import Completion, Finish, SamplingParams

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_MAX_RETRY_AFTER_S = 60.0


class EndpointError(RuntimeError):
    """The server refused a request (4xx) or kept failing after every retry."""


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI ``error.message``, FastAPI ``detail``, or raw)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:500]


def _finish(reason: Any) -> Finish:
    # OpenAI and vLLM say "length"; TGI and llama.cpp use "length" too, and several names for a stop.
    return "length" if reason == "length" else "stop"


class EndpointGenerator:
    """Chat completions from ``{url}/v1/chat/completions``, with retries and an optional API key.

    Parameters
    ----------
    url : str
        The server's base URL, e.g. ``http://localhost:8000`` (a trailing ``/v1`` is accepted).
    model : str
        The served model's name, sent as ``model``.
    api_key_env : str
        Environment variable holding an API key, sent as ``Authorization: Bearer``; unset means none.
        The key is read once here and never written anywhere.
    retries, backoff_s, timeout_s :
        Connection errors, timeouts, 408/429/5xx are retried ``retries`` times, waiting ``backoff_s``,
        then twice as long each time (or the server's ``Retry-After``); any other 4xx fails at once.
    """

    backend = "endpoint"

    def __init__(
        self,
        url: str,
        model: str = GENERATE.model,
        *,
        api_key_env: str = GENERATE.api_key_env,
        retries: int = GENERATE.retries,
        backoff_s: float = GENERATE.backoff_s,
        timeout_s: float = GENERATE.timeout_s,
    ) -> None:
        import httpx

        base = url.rstrip("/")
        base = base.removesuffix("/v1")
        self.url = base + "/v1/chat/completions"
        self.model = model
        self.retries = retries
        self.backoff_s = backoff_s
        api_key = os.environ.get(api_key_env) if api_key_env else None
        self.api_key_env = api_key_env if api_key else None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout_s)

    def describe(self) -> dict[str, Any]:
        """What the manifest records (the URL and the key's variable name, never the key)."""
        return {
            "backend": self.backend,
            "model": self.model,
            "url": self.url,
            "api_key_env": self.api_key_env,
        }

    def close(self) -> None:
        self._client.close()

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        for attempt in range(self.retries + 1):
            wait = self.backoff_s * 2**attempt
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise EndpointError(f"{self.url} answered with a body that is not JSON") from None
                problem = f"HTTP {response.status_code}: {_server_message(response)}"
                if response.status_code not in _RETRY_STATUS:
                    raise EndpointError(f"{self.url} refused the request ({problem})")
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), _MAX_RETRY_AFTER_S)
            if attempt == self.retries:
                break
            logger.warning(
                "%s: %s; retry %d/%d in %.1f s", self.url, problem, attempt + 1, self.retries, wait
            )
            time.sleep(wait)
        raise EndpointError(f"{self.url} failed after {self.retries + 1} attempts; last: {problem}")

    def _request(
        self, messages: list[Message], params: SamplingParams, n: int, seed: int
    ) -> list[Completion]:
        payload = {
            "model": self.model,
            "messages": messages,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        body = self._post(payload)
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list):
            raise EndpointError(f"{self.url} answered without a 'choices' list: {str(body)[:300]}")
        model = str(body.get("model") or self.model)
        usage = body.get("usage") or {}
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        out = []
        for choice in choices[:n]:
            content = (choice.get("message") or {}).get("content") or ""
            # Usage covers all choices; split it evenly so per-response counts add up to the total.
            per_choice = tokens // len(choices) if isinstance(tokens, int) and choices else None
            out.append(
                Completion(str(content).strip(), _finish(choice.get("finish_reason")), model, per_choice)
            )
        return out

    def complete(self, messages: list[Message], params: SamplingParams, seed: int) -> list[Completion]:
        """``params.n`` responses to one conversation; missing choices are asked for one by one."""
        completions = self._request(messages, params, params.n, seed)
        extra = 0
        while len(completions) < params.n:
            extra += 1
            got = self._request(messages, params, 1, (seed + extra) % 2**31)
            if not got:
                raise EndpointError(f"{self.url} answered with no choices")
            completions.extend(got)
        if extra:
            logger.info("%s returned fewer than n=%d choices; asked for %d more", self.url, params.n, extra)
        return completions
