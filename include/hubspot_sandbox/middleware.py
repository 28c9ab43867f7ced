"""ASGI middleware: rate-limit headers on every response, dropped connections, and recording."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ConnectionDropped(Exception):
    """Raised after half a response was written: the server closes the socket mid-response."""


class _Exchange:
    """One request/response pair passing through the middleware."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        latency_seconds: float = 0.0,
        on_complete: Callable[[_Exchange], None] | None = None,
    ) -> None:
        self.scope = scope
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self._receive, self._send = receive, send
        self.on_complete = on_complete
        self.started = time.time()
        self.latency_seconds = latency_seconds
        self.request_chunks: list[bytes] = []
        self.body_chunks: list[bytes] = []
        self.status = 0
        self.start: Message = {}

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.request_chunks.append(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = {
                name.lower().encode(): value.encode()
                for name, value in (self.state.get("rate_limit_headers") or {}).items()
            }
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in extra]
            headers.extend(extra.items())
            message = self.start = {**message, "headers": headers}
            self.status = message["status"]
            if self.latency_seconds and "endpoint" in self.state:  # HubSpot's routes, not the admin API
                await asyncio.sleep(self.latency_seconds)
        elif message["type"] == "http.response.body":
            self.body_chunks.append(message.get("body", b""))
            if not message.get("more_body") and self.on_complete is not None:
                # Recorded before the client has the whole answer: whoever reads the recording after a
                # response never finds that exchange missing or half-written.
                self.on_complete(self)
        if not self.state.get("drop"):
            await self._send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            await self._drop()

    async def _drop(self) -> None:
        """Promise more bytes than are sent, then fail: the client sees a connection cut mid-response."""
        body = b"".join(self.body_chunks) or b'{"status":"error"}'
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body) + 64).encode()))
        await self._send({**self.start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionDropped("fault injection: connection dropped mid-response")

    def record(self) -> dict[str, Any]:
        scope = self.scope
        headers = dict(scope.get("headers") or [])
        return {
            "endpoint": self.state["endpoint"],
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode(),
            "request_content_type": headers.get(b"content-type", b"").decode(),
            "request_body": b"".join(self.request_chunks).decode("utf-8", "replace"),
            "status": self.status,
            "response_content_type": dict(self.start.get("headers", [])).get(b"content-type", b"").decode(),
            "response_body": b"".join(self.body_chunks).decode("utf-8", "replace"),
            "dropped": bool(self.state.get("drop")),
        }

    def call(self) -> dict[str, Any]:
        """The call log's line: enough to attribute a call to the step that made it, without the bodies."""
        scope = self.scope
        headers = dict(scope.get("headers") or [])
        return {
            "at": round(self.started, 4),
            "endpoint": self.state["endpoint"],
            "method": scope["method"],
            "status": self.status,
            "agent": headers.get(b"user-agent", b"").decode("utf-8", "replace"),
        }


class SandboxMiddleware:
    """Adds ``X-HubSpot-RateLimit-*`` headers, cuts connections on request, counts errors, records traffic.

    The recording (one JSON line per HubSpot request and response) is what the contract tests
    validate against the project's response schemas. The call log keeps only when, what, the status and the
    caller's User-Agent: small enough for a million-contact campaign, and enough to count each step's calls.
    """

    def __init__(
        self,
        app: ASGIApp,
        record_path: str | None = None,
        call_log_path: str | None = None,
        latency_seconds: float = 0.0,
    ) -> None:
        self.app = app
        self.latency_seconds = latency_seconds
        self.record_path = Path(record_path) if record_path else None
        self.call_log_path = Path(call_log_path) if call_log_path else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, self.latency_seconds, on_complete=self._complete)
        await self.app(scope, exchange.receive, exchange.send)

    def _complete(self, exchange: _Exchange) -> None:
        endpoint = exchange.state.get("endpoint")
        if endpoint is None:
            return
        if exchange.status >= 400:
            exchange.scope["app"].state.portal.count_error(endpoint)
        if self.record_path is not None:
            _append_line(self.record_path, exchange.record())
        if self.call_log_path is not None:
            _append_line(self.call_log_path, exchange.call())


def _append_line(path: Path, entry: dict[str, Any]) -> None:
    """One ``write`` of one whole line on an O_APPEND descriptor: a reader never sees half a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode("utf-8"))
    finally:
        os.close(fd)
