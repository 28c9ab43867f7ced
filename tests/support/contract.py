"""Validate recorded sandbox traffic against HubSpot's own OpenAPI files.

The sandbox records every HubSpot request and response it handles (``--record``); each test's share of
that recording is checked here, so a response shape that drifts from HubSpot's contract fails the test
that produced it. Endpoints with no OpenAPI file in HubSpot's collection (the legacy email events API,
property definitions, private app token information) are checked against the JSON schemas beside this
module (:data:`HAND_WRITTEN`), each written from HubSpot's reference page.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse

ROOT = Path(__file__).resolve().parents[2]
HOST = "https://api.hubapi.com"


@dataclass(frozen=True)
class HandWritten:
    """An endpoint HubSpot publishes no OpenAPI file for, and the JSON schema of its answer."""

    method: str
    path: re.Pattern[str]
    schema_file: str
    error_keys: frozenset[str] = frozenset({"status", "message", "correlationId"})


HAND_WRITTEN = (
    HandWritten("GET", re.compile(r"/email/public/v1/events"), "email_events_v1.schema.json"),
    HandWritten("GET", re.compile(r"/crm/v3/properties/[^/]+/[^/]+"), "crm_property_v3.schema.json",
                frozenset({"status", "message", "correlationId", "category"})),
    HandWritten("POST", re.compile(r"/oauth/v2/private-apps/get/access-token-info"),
                "access_token_info_v2.schema.json"),
)


def openapi_dir() -> Path:
    """HubSpot's OpenAPI files: ``$HUBSPOT_OPENAPI_DIR`` or ``../shared/hubspot-openapi`` beside the repo."""
    configured = os.environ.get("HUBSPOT_OPENAPI_DIR")
    path = Path(configured) if configured else ROOT.parent / "shared" / "hubspot-openapi"
    if not path.is_dir() or not list(path.glob("*.json")):
        raise FileNotFoundError(
            f"HubSpot's OpenAPI files are not at {path}; set HUBSPOT_OPENAPI_DIR to the folder that holds "
            "crm-lists-v3.json and the others"
        )
    return path


@dataclass
class Exchange:
    endpoint: str
    method: str
    path: str
    query: str
    request_content_type: str
    request_body: str
    status: int
    response_content_type: str
    response_body: str
    dropped: bool = False

    def describe(self) -> str:
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''} -> {self.status}"


class ContractChecker:
    def __init__(self, spec_dir: Path | None = None) -> None:
        self.spec_dir = spec_dir or openapi_dir()

    @cached_property
    def specs(self) -> list[tuple[str, OpenAPI, set[str]]]:
        loaded = []
        for file in sorted(self.spec_dir.glob("*.json")):
            spec = json.loads(file.read_text())
            # Security is checked by the sandbox's own tests; openapi-core cannot evaluate OAuth2 scopes.
            spec.pop("security", None)
            for item in spec["paths"].values():
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.pop("security", None)
                        for response in operation.get("responses", {}).values():
                            _json_for_any(response)
            for response in spec.get("components", {}).get("responses", {}).values():
                _json_for_any(response)
            prefixes = {p.split("{")[0].rstrip("/") for p in spec["paths"]}
            loaded.append((file.name, OpenAPI.from_dict(spec), prefixes))
        return loaded

    @cached_property
    def hand_written_schemas(self) -> dict[str, dict[str, Any]]:
        return {e.schema_file: json.loads(Path(__file__).with_name(e.schema_file).read_text()) for e in HAND_WRITTEN}

    def problems(self, exchange: Exchange) -> list[str]:
        """Everything about one exchange that breaks HubSpot's contract (empty when it conforms)."""
        if exchange.dropped:
            return []
        path = exchange.path.rstrip("/") or "/"
        for endpoint in HAND_WRITTEN:
            if exchange.method.upper() == endpoint.method and endpoint.path.fullmatch(path):
                return self._hand_written(exchange, endpoint)
        args = _query_args(exchange.query)
        request = MockRequest(
            HOST, exchange.method.lower(), path, args=args,
            data=exchange.request_body.encode() if exchange.request_body else None,
            content_type=exchange.request_content_type or "application/json",
        )
        response = MockResponse(
            exchange.response_body.encode(), status_code=exchange.status,
            content_type=(exchange.response_content_type or "application/json").split(";")[0],
        )
        for name, openapi, _ in self._candidates(path):
            try:
                openapi.validate_request(request) if exchange.status < 400 else None
            except (PathNotFound, OperationNotFound):
                continue
            except Exception as err:  # noqa: BLE001 - report every validation failure the same way
                return [f"{exchange.describe()}: request breaks {name}: {_explain(err)}"]
            try:
                openapi.validate_response(request, response)
            except (PathNotFound, OperationNotFound):
                continue
            except Exception as err:  # noqa: BLE001
                return [f"{exchange.describe()}: response breaks {name}: {_explain(err)}"]
            return []
        return [f"{exchange.describe()}: no operation in HubSpot's OpenAPI files matches"]

    def _candidates(self, path: str) -> list[tuple[str, OpenAPI, set[str]]]:
        def score(entry: tuple[str, OpenAPI, set[str]]) -> int:
            return max((len(p) for p in entry[2] if path.startswith(p)), default=-1)

        return sorted((e for e in self.specs if score(e) >= 0), key=score, reverse=True)

    def _hand_written(self, exchange: Exchange, endpoint: HandWritten) -> list[str]:
        if exchange.status >= 400:
            body = json.loads(exchange.response_body or "{}")
            missing = endpoint.error_keys - set(body)
            return [f"{exchange.describe()}: error lacks {sorted(missing)}"] if missing else []
        try:
            jsonschema.validate(json.loads(exchange.response_body), self.hand_written_schemas[endpoint.schema_file])
        except jsonschema.ValidationError as err:
            return [f"{exchange.describe()}: response breaks {endpoint.schema_file}: {err.message}"]
        return []


def _json_for_any(response: dict[str, Any]) -> None:
    """HubSpot declares error bodies as ``*/*``; openapi-core only parses JSON for a JSON media type."""
    content = response.get("content") or {}
    if "*/*" in content and "application/json" not in content:
        content["application/json"] = content["*/*"]
    if "content" in response and not content:
        # ``204 No content`` is declared with an empty ``content`` map; openapi-core then wants a body.
        del response["content"]


def _query_args(query: str) -> dict[str, Any]:
    from urllib.parse import parse_qs

    parsed = parse_qs(query, keep_blank_values=True)
    # openapi-core reads arrays from a MultiDict; a plain dict of lists works with its MockRequest.
    from werkzeug.datastructures import ImmutableMultiDict

    return ImmutableMultiDict([(k, v) for k, values in parsed.items() for v in values])  # type: ignore[return-value]


def _explain(err: Exception) -> str:
    details = [str(err)]
    for inner in getattr(err, "schema_errors", None) or []:
        details.append(f"{list(inner.absolute_path)}: {inner.message}")
    cause = err.__cause__
    while cause is not None:
        details.append(str(cause))
        for inner in getattr(cause, "schema_errors", None) or []:
            details.append(f"{list(inner.absolute_path)}: {inner.message}")
        cause = cause.__cause__
    return " | ".join(details)[:2000]


def read_exchanges(path: Path, start: int = 0) -> tuple[list[Exchange], int]:
    """Exchanges recorded whole after byte ``start`` of the recording, and the offset after the last of them.

    A line still being written is left for the next read: the offset stops before it.
    """
    if not path.exists():
        return [], start
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    whole = data[: data.rfind(b"\n") + 1]
    lines = whole.decode("utf-8").splitlines()
    return [Exchange(**json.loads(line)) for line in lines if line.strip()], start + len(whole)
