"""How sandbox endpoints are declared: HubSpot path, endpoint name, scopes; and request helpers.

Every HubSpot endpoint goes through :class:`Gate` before its handler runs, in HubSpot's order:
bearer token (401), rate limit (429 with ``policyName``), scopes (403 MISSING_SCOPES), then any fault
a test injected. The plain and trailing-slash forms of each path are both served, because the
generated SDK posts to ``/crm/v3/lists/`` while the docs say ``/crm/v3/lists``.

HubSpot serves each API on its legacy path and on date-based paths (``/crm/v3/lists`` is
``/crm/lists/2026-09``). Registering a legacy route registers its dated twins too, with the same endpoint
name (faults, call counts and rate limits follow the name, whichever path was called) and the version on
``request.state.api_version``, so a handler shapes its answer the way that version does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request

from . import errors
from .portal import portal_of

Handler = Callable[..., Any]

#: The version of a call made on a legacy path (``/crm/v3/...``, ``/communication-preferences/v4/...``).
LEGACY = "legacy"
#: The date-based versions HubSpot serves; any other date answers 404, as HubSpot does.
DATED_VERSIONS = ("2026-03", "2026-09")

#: Legacy path prefix -> its date-based prefix (``{version}`` filled in); the longest prefix wins. Paths
#: under no prefix (email events v1, forms v3, token introspection) have no date-based equivalent.
DATED_PREFIXES: dict[str, str] = {
    "/crm/v3/lists": "/crm/lists/{version}",
    "/crm/v3/objects/contacts": "/crm/objects/{version}/contacts",
    "/crm/v3/properties": "/crm/properties/{version}",
    "/crm/v3/exports": "/crm/exports/{version}",
    "/marketing/v3/emails": "/marketing/emails/{version}",
    "/communication-preferences/v3": "/communication-preferences/{version}",
    "/communication-preferences/v4": "/communication-preferences/{version}",
    "/account-info/v3": "/account-info/{version}",
}


def dated_path(path: str, version: str) -> str | None:
    """``path`` (a legacy route path) under a date-based version, or None if HubSpot has no such path."""
    for prefix in sorted(DATED_PREFIXES, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return DATED_PREFIXES[prefix].format(version=version) + path[len(prefix) :]
    return None


def api_version(request: Request) -> str:
    """The version the caller's path named: ``legacy`` or a date such as ``2026-09``."""
    return str(getattr(request.state, "api_version", LEGACY))


def is_dated(request: Request) -> bool:
    return api_version(request) != LEGACY


def path_for(request: Request, legacy_path: str) -> str:
    """A legacy path as the caller's version names it: links in an answer stay on the version called."""
    version = api_version(request)
    return legacy_path if version == LEGACY else dated_path(legacy_path, version) or legacy_path


class DropConnection(Exception):
    """Raised to make the middleware cut the connection instead of answering."""


class Gate:
    """The per-request checks HubSpot makes before an endpoint does anything."""

    def __init__(
        self, endpoint: str, scopes: Sequence[Sequence[str]], *, interval_exempt: bool, version: str = LEGACY
    ) -> None:
        self.endpoint = endpoint
        self.scopes = [frozenset(alternative) for alternative in scopes]
        self.interval_exempt = interval_exempt
        self.version = version

    async def __call__(self, request: Request) -> None:
        portal = portal_of(request)
        request.state.endpoint = self.endpoint
        request.state.api_version = self.version
        portal.count_call(self.endpoint)
        grant = portal.grant_for(request.headers.get("authorization", ""))
        if grant is None:
            raise errors.unauthorized()
        decision = portal.limiter.check(grant.token, exempt_interval=self.interval_exempt)
        request.state.rate_limit_headers = decision.headers
        if not decision.allowed:
            portal.count_rate_limited(self.endpoint)
            raise errors.rate_limited(decision.policy or "TEN_SECONDLY_ROLLING")
        portal.record_usage()
        granted = portal.config.scopes_for(grant)
        if self.scopes and not any(alternative <= granted for alternative in self.scopes):
            raise errors.missing_scopes(sorted(self.scopes[0]))
        for fault in portal.faults.firing(self.endpoint):
            await self._inject(request, fault, decision.headers)
        portal.before_request()

    @staticmethod
    async def _inject(request: Request, fault: Any, headers: dict[str, str]) -> None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
        elif fault.kind == "error" and fault.status < 500:
            # An answer the caller may not expect (e.g. a 400 where a 404 is usual), in HubSpot's error shape.
            raise errors.validation_error(
                f"Injected fault: this call answers {fault.status}.", status_code=fault.status
            )
        elif fault.kind == "error":
            raise errors.server_error(fault.status)
        elif fault.kind == "rate_limit":
            request.state.rate_limit_headers = {**headers, "X-HubSpot-RateLimit-Remaining": "0"}
            raise errors.rate_limited("TEN_SECONDLY_ROLLING")
        elif fault.kind == "drop_before":
            request.state.drop = True
            raise DropConnection
        elif fault.kind == "drop_after":
            request.state.drop = True


class Endpoints:
    """HubSpot endpoints guarded by :class:`Gate`: legacy paths in ``router``, their dated twins in ``dated_router``.

    The dated twins live in a router of their own so that whatever walks the legacy paths (HubSpot's legacy
    OpenAPI files name only those) sees each endpoint once; both routers run the same handlers.
    """

    def __init__(self) -> None:
        self.router = APIRouter()
        self.dated_router = APIRouter()

    def route(
        self,
        method: str,
        path: str,
        *,
        name: str,
        scopes: Sequence[Sequence[str]] = (),
        status_code: int = 200,
        interval_exempt: bool = False,
        dated: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Serve ``handler`` on ``path`` and, unless ``dated`` is false, on every dated equivalent of it."""

        def register(handler: Handler) -> Handler:
            gate = Gate(name, scopes, interval_exempt=interval_exempt)
            self._add(self.router, method, path, handler, name, gate, status_code)
            for version in DATED_VERSIONS if dated else ():
                versioned = dated_path(path, version)
                if versioned is not None:
                    gate = Gate(name, scopes, interval_exempt=interval_exempt, version=version)
                    self._add(self.dated_router, method, versioned, handler, f"{name}@{version}", gate, status_code)
            return handler

        return register

    @staticmethod
    def _add(
        router: APIRouter, method: str, path: str, handler: Handler, name: str, gate: Gate, status_code: int
    ) -> None:
        """The plain and the trailing-slash form of one path."""
        for variant in dict.fromkeys([path, path.rstrip("/") + "/"]):
            router.add_api_route(
                variant,
                handler,
                methods=[method],
                name=f"{name}{'' if variant == path else ':slash'}",
                status_code=status_code,
                dependencies=[Depends(gate)],
                include_in_schema=False,
            )

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


# -- request helpers --------------------------------------------------------------------------------


async def json_body(request: Request, *, default: Any = ...) -> Any:
    """The parsed JSON body, or HubSpot's "Invalid input JSON" error."""
    raw = await request.body()
    if not raw.strip():
        if default is not ...:
            return default
        raise errors.invalid_json("No content to map due to end-of-input")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise errors.invalid_json(str(err)) from err
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _nesting_depth(value) > MAX_JSON_DEPTH:
        raise errors.invalid_json(f"Document nesting depth exceeds the maximum allowed ({MAX_JSON_DEPTH})")
    return value


#: Deeper documents are refused like Jackson refuses them (its limit is 1000): the sandbox could store such a
#: body but never serialise it back (pydantic stops at 254 levels), so the resource would answer 500 forever.
MAX_JSON_DEPTH = 200


def _nesting_depth(value: Any) -> int:
    """How deeply objects and arrays nest (iteratively; stops counting past the limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def json_object(value: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.validation_error(f"The {what} must be a JSON object.")
    return value


#: HubSpot's batch endpoints take at most 100 inputs.
MAX_BATCH = 100


def batch_inputs(body: dict[str, Any], limit: int = MAX_BATCH) -> list[Any]:
    """The ``inputs`` list of a batch request, refused like HubSpot when missing or too long."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise errors.validation_error("Invalid input: inputs must be a list.", field="inputs")
    if len(inputs) > limit:
        raise errors.validation_error(
            f"Batch input size {len(inputs)} exceeds the limit of {limit} inputs.", field="inputs"
        )
    return inputs


def query_int(
    request: Request,
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise errors.validation_error(f"Unable to parse {name}={raw!r} as an integer.", field=name) from err
    if minimum is not None and value < minimum:
        raise errors.validation_error(f"{name} must be at least {minimum}, got {value}.", field=name)
    if maximum is not None and value > maximum:
        raise errors.validation_error(f"{name} must be at most {maximum}, got {value}.", field=name)
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise errors.validation_error(f"Unable to parse {name}={raw!r} as a boolean.", field=name)


def path_int(value: str, what: str) -> int:
    """An id from the path; HubSpot answers 400 for a non-numeric id."""
    try:
        return int(value)
    except ValueError as err:
        raise errors.validation_error(f"Unable to parse {what} {value!r} as a number.", field=what) from err
