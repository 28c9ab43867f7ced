"""Validate recorded sandbox traffic against the project's own schemas of HubSpot's answers.

The sandbox records every HubSpot request and response it handles (``--record``); each test's share of that
recording is checked here, so a shape that drifts from what HubSpot answers fails the test that produced it.
The schemas in ``schemas/`` are the project's own, each written from HubSpot's public reference pages, for
every endpoint the sandbox serves, on legacy paths (``/crm/v3/lists``) and date-based ones
(``/crm/lists/2026-09``). An exchange on a HubSpot path with no schema here is a problem in itself.

HubSpot's own OpenAPI files (``$HUBSPOT_OPENAPI_DIR`` or ``../shared/hubspot-openapi``) are not ours to ship;
where they are present they are an extra check of legacy traffic, and of date-based traffic on the endpoints
whose shape did not change.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from reengagement.api_versions import DATED_PREFIXES, DATED_VERSIONS
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
HOST = "https://api.hubapi.com"
SCHEMAS = Path(__file__).with_name("schemas")
SCHEMA_BASE = "https://hubspot-reengagement.test/schemas/"
#: Paths that are not HubSpot API calls: the sandbox's own admin endpoints and its pre-signed download URLs.
EXEMPT_PREFIXES = ("/_sandbox/",)
_PARAM = re.compile(r"\{(\w+)(:path)?\}")
_VERSION_PATTERN = "(?:" + "|".join(re.escape(v) for v in DATED_VERSIONS) + ")"
#: The product's legacy -> date-based prefixes, plus HubSpot's date-based properties API for every object type.
PREFIXES: dict[str, str] = {**DATED_PREFIXES, "/crm/v3/properties": "/crm/properties/{version}"}


@dataclass(frozen=True)
class Endpoint:
    """One HubSpot operation: its legacy path, and the schema of each answer HubSpot gives it.

    ``answers`` maps each success status to a schema reference (``file#/$defs/name``; ``None`` for an empty
    body). ``dated`` says whether a date-based twin exists; ``dated_answers`` and ``dated_request`` hold what
    differs there. ``legacy_errors`` marks the APIs whose error body has no ``category``.
    """

    method: str
    path: str
    answers: Mapping[int, str | None]
    request: str | None = None
    dated: bool = True
    dated_answers: Mapping[int, str | None] | None = None
    dated_request: str | None = None
    legacy_errors: bool = False
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def changed_when_dated(self) -> bool:
        """Whether the date-based shape differs from the legacy one (HUBSPOT_API.md section 10)."""
        return self.dated_answers is not None or self.dated_request is not None

    def legacy_prefix(self) -> str | None:
        return max((p for p in PREFIXES if self.path.startswith(p + "/") or self.path == p), key=len, default=None)

    def pattern(self, version: str) -> re.Pattern[str] | None:
        """The regex of this endpoint's path under ``legacy`` or ``dated``; ``None`` when it has no such path."""
        if version not in self.patterns:
            self.patterns[version] = self._compile(version)
        return self.patterns[version]

    def _compile(self, version: str) -> re.Pattern[str] | None:
        template = self.path
        if version == "dated":
            prefix = self.legacy_prefix()
            if not self.dated or prefix is None:
                return None
            template = PREFIXES[prefix] + self.path[len(prefix) :]
        parts, last = [], 0
        for match in _PARAM.finditer(template):
            parts.append(re.escape(template[last : match.start()]))
            if match[1] == "version":
                parts.append(_VERSION_PATTERN)
            else:
                parts.append(".+" if match[2] else "[^/]+")
            last = match.end()
        parts.append(re.escape(template[last:]))
        return re.compile("".join(parts))


LISTS, CONTACTS, EMAILS = "crm-lists.schema.json", "crm-contacts.schema.json", "marketing-emails.schema.json"
PREFS, EXPORTS, ACCOUNT = "communication-preferences.schema.json", "crm-exports.schema.json", "account-info.schema.json"
FORMS = "marketing-forms.schema.json"


def _ref(file: str, name: str | None = None) -> str:
    return f"{file}#/$defs/{name}" if name else file


#: Every HubSpot operation the sandbox serves, literal paths before the parameterised ones they resemble.
ENDPOINTS: tuple[Endpoint, ...] = (
    # CRM lists
    Endpoint("POST", "/crm/v3/lists", {200: _ref(LISTS, "oneList")}),
    Endpoint("GET", "/crm/v3/lists", {200: _ref(LISTS, "manyLists")}),
    Endpoint(
        "POST",
        "/crm/v3/lists/search",
        {200: _ref(LISTS, "searchResponse")},
        request=_ref(LISTS, "searchRequest"),
        dated_request=_ref(LISTS, "datedSearchRequest"),
    ),
    Endpoint("GET", "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName:path}", {200: _ref(LISTS, "oneList")}),
    Endpoint(
        "GET", "/crm/v3/lists/records/{objectTypeId}/{recordId}/memberships", {200: _ref(LISTS, "recordMemberships")}
    ),
    Endpoint("GET", "/crm/v3/lists/{listId}", {200: _ref(LISTS, "oneList")}),
    Endpoint("DELETE", "/crm/v3/lists/{listId}", {204: None}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/restore", {204: None}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/update-list-name", {200: _ref(LISTS, "updatedList")}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/update-list-filters", {200: _ref(LISTS, "updatedList")}),
    Endpoint("GET", "/crm/v3/lists/{listId}/memberships", {200: _ref(LISTS, "memberships")}),
    Endpoint("GET", "/crm/v3/lists/{listId}/memberships/join-order", {200: _ref(LISTS, "memberships")}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/memberships/add", {200: _ref(LISTS, "membershipChange")}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/memberships/remove", {200: _ref(LISTS, "membershipChange")}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/memberships/add-and-remove", {200: _ref(LISTS, "membershipChange")}),
    Endpoint("PUT", "/crm/v3/lists/{listId}/memberships/add-from/{sourceListId}", {204: None}),
    Endpoint("DELETE", "/crm/v3/lists/{listId}/memberships", {204: None}),
    # CRM contacts and properties
    Endpoint(
        "POST",
        "/crm/v3/objects/contacts/batch/read",
        {200: _ref(CONTACTS, "batchRead"), 207: _ref(CONTACTS, "batchReadWithErrors")},
        dated_answers={200: _ref(CONTACTS, "batchRead")},
    ),
    Endpoint("POST", "/crm/v3/objects/contacts/search", {200: _ref(CONTACTS, "search")}),
    Endpoint("GET", "/crm/v3/objects/contacts", {200: _ref(CONTACTS, "page")}),
    Endpoint("GET", "/crm/v3/objects/contacts/{contactId}", {200: _ref(CONTACTS, "contact")}),
    # the date-based answer drops a few display hints the schema does not require
    Endpoint(
        "GET",
        "/crm/v3/properties/{objectType}/{propertyName}",
        {200: "crm-properties.schema.json"},
        dated_answers={200: "crm-properties.schema.json"},
    ),
    # Marketing emails
    Endpoint("POST", "/marketing/v3/emails", {201: _ref(EMAILS, "email")}),
    Endpoint("GET", "/marketing/v3/emails", {200: _ref(EMAILS, "page")}),
    Endpoint("POST", "/marketing/v3/emails/clone", {200: _ref(EMAILS, "email")}),
    Endpoint("GET", "/marketing/v3/emails/statistics/list", {200: _ref(EMAILS, "statistics")}),
    Endpoint("GET", "/marketing/v3/emails/statistics/histogram", {200: _ref(EMAILS, "histogram")}),
    Endpoint("GET", "/marketing/v3/emails/{emailId}", {200: _ref(EMAILS, "email")}),
    Endpoint("PATCH", "/marketing/v3/emails/{emailId}", {200: _ref(EMAILS, "email")}),
    Endpoint("DELETE", "/marketing/v3/emails/{emailId}", {204: None}),
    Endpoint("POST", "/marketing/v3/emails/{emailId}/publish", {204: None}),
    Endpoint("POST", "/marketing/v3/emails/{emailId}/unpublish", {204: None}),
    # Legacy email events: no date-based equivalent
    Endpoint("GET", "/email/public/v1/events", {200: "email-events-v1.schema.json"}, dated=False, legacy_errors=True),
    # Communication preferences: date-based definitions answer the v4 shape
    Endpoint(
        "GET",
        "/communication-preferences/v3/definitions",
        {200: _ref(PREFS, "v3Definitions")},
        dated_answers={200: _ref(PREFS, "v4Definitions")},
    ),
    Endpoint("GET", "/communication-preferences/v3/status/email/{emailAddress}", {200: _ref(PREFS, "v3Statuses")}),
    Endpoint("POST", "/communication-preferences/v3/subscribe", {200: _ref(PREFS, "v3Status")}),
    Endpoint("POST", "/communication-preferences/v3/unsubscribe", {200: _ref(PREFS, "v3Status")}),
    Endpoint("GET", "/communication-preferences/v4/definitions", {200: _ref(PREFS, "v4Definitions")}),
    Endpoint(
        "POST",
        "/communication-preferences/v4/statuses/batch/read",
        {200: _ref(PREFS, "statusesByContact"), 207: _ref(PREFS, "statusesByContactWithErrors")},
        dated_answers={200: _ref(PREFS, "statusesByContact")},
    ),
    Endpoint("POST", "/communication-preferences/v4/statuses/batch/write", {200: _ref(PREFS, "statuses")}),
    Endpoint(
        "POST", "/communication-preferences/v4/statuses/batch/unsubscribe-all", {200: _ref(PREFS, "statusesByContact")}
    ),
    Endpoint(
        "POST",
        "/communication-preferences/v4/statuses/batch/unsubscribe-all/read",
        {200: _ref(PREFS, "wideStatusesByContact"), 207: _ref(PREFS, "wideStatusesByContactWithErrors")},
        dated_answers={200: _ref(PREFS, "wideStatusesByContact")},
    ),
    Endpoint("GET", "/communication-preferences/v4/statuses/{subscriberIdString}", {200: _ref(PREFS, "statuses")}),
    Endpoint("POST", "/communication-preferences/v4/statuses/{subscriberIdString}", {200: _ref(PREFS, "statuses")}),
    Endpoint(
        "POST",
        "/communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all",
        {200: _ref(PREFS, "statuses")},
    ),
    Endpoint(
        "GET",
        "/communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all",
        {200: _ref(PREFS, "wideStatuses")},
    ),
    # CRM exports
    Endpoint("POST", "/crm/v3/exports/export/async", {202: _ref(EXPORTS, "started")}),
    Endpoint("GET", "/crm/v3/exports/export/async/tasks/{taskId}/status", {200: _ref(EXPORTS, "taskStatus")}),
    Endpoint("GET", "/crm/v3/exports/export/{exportId}", {200: _ref(EXPORTS, "export")}),
    # Forms: date-based only in beta
    Endpoint("GET", "/marketing/v3/forms", {200: _ref(FORMS, "page")}, dated=False),
    Endpoint("GET", "/marketing/v3/forms/{formId}", {200: _ref(FORMS, "form")}, dated=False),
    # Account information and token introspection
    Endpoint("GET", "/account-info/v3/details", {200: _ref(ACCOUNT, "details")}),
    Endpoint("GET", "/account-info/v3/api-usage/daily/private-apps", {200: _ref(ACCOUNT, "dailyUsage")}),
    Endpoint(
        "POST",
        "/oauth/v2/private-apps/get/access-token-info",
        {200: "access-token-info.schema.json"},
        dated=False,
        legacy_errors=True,
    ),
)

ERROR = "common.schema.json#/$defs/error"
#: Legacy v1 APIs, and every 429 (HubSpot's rate limiter answers ``errorType``/``policyName``, no category).
LEGACY_ERROR = "common.schema.json#/$defs/legacyError"


@dataclass(frozen=True)
class Match:
    """The endpoint an exchange hit, and whether it came in on a date-based path."""

    endpoint: Endpoint
    dated: bool

    def answers(self) -> Mapping[int, str | None]:
        if self.dated and self.endpoint.dated_answers is not None:
            return self.endpoint.dated_answers
        return self.endpoint.answers

    def request(self) -> str | None:
        return self.endpoint.dated_request if self.dated and self.endpoint.dated_request else self.endpoint.request

    def legacy_path(self, path: str) -> str:
        """``path`` as the legacy API names it, for HubSpot's OpenAPI files (which have legacy paths only)."""
        if not self.dated:
            return path
        prefix = self.endpoint.legacy_prefix() or ""
        dated = re.escape(PREFIXES[prefix]).replace(re.escape("{version}"), _VERSION_PATTERN)
        return re.sub("^" + dated, prefix, path)


def find_endpoint(method: str, path: str) -> Match | None:
    """The HubSpot operation a request went to, on its legacy or date-based path."""
    for endpoint in ENDPOINTS:
        if endpoint.method != method.upper():
            continue
        for version in ("legacy", "dated"):
            pattern = endpoint.pattern(version)
            if pattern is not None and pattern.fullmatch(path):
                return Match(endpoint, version == "dated")
    return None


def find_openapi_dir() -> Path | None:
    """HubSpot's OpenAPI files, ``$HUBSPOT_OPENAPI_DIR`` or ``../shared/hubspot-openapi``; ``None`` when absent."""
    path = _openapi_location()
    return path if path.is_dir() and any(path.glob("*.json")) else None


def openapi_dir() -> Path:
    """Like :func:`find_openapi_dir`, for a test that cannot run without the files: it is skipped when they are absent.

    HubSpot does not license its OpenAPI files to others, so a clone outside this workspace has none.
    """
    found = find_openapi_dir()
    if found is None:
        pytest.skip(f"HubSpot's OpenAPI files are not at {_openapi_location()} (set HUBSPOT_OPENAPI_DIR)")
    return found


def _openapi_location() -> Path:
    configured = os.environ.get("HUBSPOT_OPENAPI_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "hubspot-openapi"


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
    """Checks exchanges against the project's schemas, and against HubSpot's OpenAPI files when present."""

    def __init__(self, spec_dir: Path | None = None) -> None:
        self.looked_in = spec_dir if spec_dir is not None else _openapi_location()
        has_files = self.looked_in.is_dir() and any(self.looked_in.glob("*.json"))
        self.spec_dir = self.looked_in if has_files else None

    @property
    def openapi_note(self) -> str:
        """One line saying whether the extra check against HubSpot's OpenAPI files runs, and why not."""
        if self.spec_dir is None:
            return (
                f"HubSpot OpenAPI check: skipped, no OpenAPI files at {self.looked_in} "
                "(set HUBSPOT_OPENAPI_DIR); the project's own schemas still apply"
            )
        return f"HubSpot OpenAPI check: on, with the files in {self.spec_dir}"

    @cached_property
    def registry(self) -> Registry:
        resources = [
            (SCHEMA_BASE + file.name, Resource.from_contents(json.loads(file.read_text())))
            for file in sorted(SCHEMAS.glob("*.schema.json"))
        ]
        return Registry().with_resources(resources)

    @cached_property
    def openapi(self) -> OpenApiCheck | None:
        return OpenApiCheck(self.spec_dir) if self.spec_dir is not None else None

    def problems(self, exchange: Exchange) -> list[str]:
        """Everything about one exchange that breaks HubSpot's contract (empty when it conforms)."""
        path = exchange.path.rstrip("/") or "/"
        if exchange.dropped or path.startswith(EXEMPT_PREFIXES):
            return []
        match = find_endpoint(exchange.method, path)
        if match is None:
            return [f"{exchange.describe()}: no schema for {exchange.method.upper()} {path} in tests/support/schemas"]
        found = self._own(exchange, match)
        if not found and self.openapi is not None and not (match.dated and match.endpoint.changed_when_dated):
            found = self.openapi.problems(exchange, match.legacy_path(path))
        return found

    def _own(self, exchange: Exchange, match: Match) -> list[str]:
        if exchange.status >= 400:
            legacy = match.endpoint.legacy_errors or exchange.status == 429
            return self._validate(exchange, "error", exchange.response_body, LEGACY_ERROR if legacy else ERROR)
        answers = match.answers()
        if exchange.status not in answers:
            return [f"{exchange.describe()}: HubSpot answers this with {sorted(answers)}, not {exchange.status}"]
        found = []
        if (request := match.request()) is not None:
            found += self._validate(exchange, "request", exchange.request_body, request)
        schema = answers[exchange.status]
        if schema is None:
            if exchange.response_body.strip():
                body = exchange.response_body[:200]
                found.append(f"{exchange.describe()}: HubSpot answers no body here, got {body!r}")
            return found
        return found + self._validate(exchange, "response", exchange.response_body, schema)

    def _validate(self, exchange: Exchange, what: str, body: str, ref: str) -> list[str]:
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{exchange.describe()}: {what} is not JSON: {body[:200]!r}"]
        validator = jsonschema.Draft202012Validator({"$ref": SCHEMA_BASE + ref}, registry=self.registry)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        return [
            f"{exchange.describe()}: {what} breaks {ref} at {list(err.absolute_path)}: {err.message[:300]}"
            for err in errors[:5]
        ]


class OpenApiCheck:
    """The extra check against HubSpot's own OpenAPI files (legacy paths only)."""

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = spec_dir

    @cached_property
    def specs(self) -> list[tuple[str, Any, set[str]]]:
        from openapi_core import OpenAPI

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

    def problems(self, exchange: Exchange, path: str) -> list[str]:
        """What breaks HubSpot's file for ``path``; nothing when no file describes it (no file for every API)."""
        from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
        from openapi_core.testing import MockRequest, MockResponse

        request = MockRequest(
            HOST,
            exchange.method.lower(),
            path,
            args=_query_args(exchange.query),
            data=exchange.request_body.encode() if exchange.request_body else None,
            content_type=exchange.request_content_type or "application/json",
        )
        response = MockResponse(
            exchange.response_body.encode(),
            status_code=exchange.status,
            content_type=(exchange.response_content_type or "application/json").split(";")[0],
        )
        for name, openapi, _ in self._candidates(path):
            try:
                openapi.validate_request(request) if exchange.status < 400 else None
            except (PathNotFound, OperationNotFound):
                continue
            except Exception as err:  # noqa: BLE001 - report every validation failure the same way
                return [f"{exchange.describe()}: request breaks HubSpot's {name}: {_explain(err)}"]
            try:
                openapi.validate_response(request, response)
            except (PathNotFound, OperationNotFound):
                continue
            except Exception as err:  # noqa: BLE001
                return [f"{exchange.describe()}: response breaks HubSpot's {name}: {_explain(err)}"]
            return []
        return []

    def _candidates(self, path: str) -> list[tuple[str, Any, set[str]]]:
        def score(entry: tuple[str, Any, set[str]]) -> int:
            return max((len(p) for p in entry[2] if path.startswith(p)), default=-1)

        return sorted((e for e in self.specs if score(e) >= 0), key=score, reverse=True)


def _json_for_any(response: dict[str, Any]) -> None:
    """HubSpot declares error bodies as ``*/*``; openapi-core only parses JSON for a JSON media type."""
    content = response.get("content") or {}
    if "*/*" in content and "application/json" not in content:
        content["application/json"] = content["*/*"]
    if "content" in response and not content:
        # ``204 No content`` is declared with an empty ``content`` map; openapi-core then wants a body.
        del response["content"]


def _query_args(query: str) -> Any:
    from urllib.parse import parse_qs

    from werkzeug.datastructures import ImmutableMultiDict

    parsed = parse_qs(query, keep_blank_values=True)
    # openapi-core reads arrays from a MultiDict.
    return ImmutableMultiDict([(k, v) for k, values in parsed.items() for v in values])


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
