"""One body-limit middleware: a request body over the limit is refused (HTTP 413) before any route reads it.

The limit holds whether or not the client declares a ``Content-Length`` (a chunked body is counted while it
is read), and a path prefix may have its own limit, so the labelling routes keep their small one when they
are mounted on the reward server.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware refusing bodies over ``max_body_bytes`` (or over ``limits[prefix]`` under a prefix)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Longest prefix first, so "/label/api" could override "/label".
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(limit)(scope, receive, send)
            return
        body, over = await _read_body(receive, limit)
        if over:
            await too_large(limit)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def too_large(limit: int) -> JSONResponse:
    """The 413 answer (a response is itself an ASGI app: called with the request's scope and channels)."""
    return JSONResponse(
        {"detail": f"request body over the server's limit of {limit:,} bytes"},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
    )


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body, or (b"", True) as soon as it passes ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
