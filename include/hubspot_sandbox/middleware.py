"""ASGI middleware: rate-limit headers on every response, dropped connections, and recording."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ConnectionDropped(Exception):
    """Raised after half a response was written: the server closes the socket mid-response."""


class SandboxMiddleware:
    """Wraps the app: adds ``X-HubSpot-RateLimit-*`` headers, cuts connections, records traffic.

    The recording (one JSON line per HubSpot request and response) is what the contract tests
    validate against HubSpot's OpenAPI files.
    """

    def __init__(self, app: ASGIApp, record_path: str | None = None) -> None:
        self.app = app
        self.record_path = Path(record_path) if record_path else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        request_chunks: list[bytes] = []
        response: dict[str, Any] = {"status": 0, "headers": [], "body": []}

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_chunks.append(message.get("body", b""))
            return message

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in (state.get("rate_limit_headers") or {}).items():
                    headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
                response["status"] = message["status"]
                response["headers"] = headers
                if state.get("drop"):
                    response["start"] = message
                    return
            elif message["type"] == "http.response.body":
                response["body"].append(message.get("body", b""))
                if state.get("drop"):
                    if not message.get("more_body"):
                        await self._drop(response, send)
                    return
            await send(message)

        await self.app(scope, recording_receive, wrapped_send)
        if response["status"] >= 400 and state.get("endpoint"):
            portal = scope["app"].state.portal
            portal.count_error(state["endpoint"])
        if self.record_path is not None and state.get("endpoint"):
            self._record(scope, state, b"".join(request_chunks), response)

    @staticmethod
    async def _drop(response: dict[str, Any], send: Send) -> None:
        body = b"".join(response["body"]) or b'{"status":"error"}'
        headers = [(k, v) for k, v in response["start"]["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body) + 64).encode()))
        await send({**response["start"], "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionDropped("fault injection: connection dropped mid-response")

    def _record(self, scope: Scope, state: dict[str, Any], body: bytes, response: dict[str, Any]) -> None:
        assert self.record_path is not None
        headers = dict(scope.get("headers") or [])
        entry = {
            "endpoint": state["endpoint"],
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode(),
            "request_content_type": headers.get(b"content-type", b"").decode(),
            "request_body": body.decode("utf-8", "replace"),
            "status": response["status"],
            "response_content_type": dict(response["headers"]).get(b"content-type", b"").decode(),
            "response_body": b"".join(response["body"]).decode("utf-8", "replace"),
            "dropped": bool(state.get("drop")),
        }
        with self.record_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
