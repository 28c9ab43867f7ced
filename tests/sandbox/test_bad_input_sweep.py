"""Bad input to the sandbox gets HubSpot's error, never a 500 or a traceback.

Every HubSpot route the app registers (``/_sandbox`` excluded) gets the same barrage: impossible path
ids, malformed and wrongly shaped bodies, and query parameters of the wrong type. Each answer must be
2xx or 4xx, and a 4xx must carry HubSpot's error body. The ``sandbox`` fixture's contract check then
validates every error body against the operation's error schema.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from include.hubspot_sandbox.routes import ROUTERS
from tests.support.contract import ContractChecker, Exchange, read_exchanges

#: HubSpot's error body (the OpenAPI ``Error`` schema plus ``status``).
ERROR_KEYS = {"status", "message", "correlationId", "category"}
#: The legacy v1 events API answers ``{"status", "message", "correlationId"}`` (HUBSPOT_API.md §1.2): no category.
LEGACY_EVENTS = "/email/public/v1/events"
LEGACY_ERROR_KEYS = {"status", "message", "correlationId"}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
WITH_BODY = {"POST", "PUT", "PATCH"}

BAD_PATH_VALUES = ("abc", "-1", "999999999999", "x" * 4000, "9" * 30)


def _nested_garbage() -> str:
    """Right keys, wrong everything else; then nesting deeper than any JSON parser's recursion."""
    wrong = {
        "inputs": [{"id": {"a": [[[{}]]]}}, [None], {"id": True}],
        "properties": {"x": [1, {"y": None}]},
        "name": ["x"],
        "objectTypeId": {"0": "1"},
        "processingType": 7,
        "filterBranch": {"filterBranches": [[]], "filters": "none"},
        "recordIdsToAdd": [[1]],
        "subscriptionId": {"id": 1},
        "emailAddress": ["a@b.c"],
        "channel": None,
        "limit": "ten",
        "after": {"x": 1},
        "sort": [None],
        "to": {"contactIlsLists": {"include": [[{}]]}},
        "content": 5,
    }
    return json.dumps(wrong)


def _deep(levels: int = 150) -> dict[str, Any]:
    """A filter branch nested ``2 * levels`` deep: it parses, but is deeper than the sandbox can echo back."""
    branch: dict[str, Any] = {}
    for _ in range(levels):
        branch = {"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": [branch]}
    return branch


BAD_BODIES = {
    "not json": "{not json",
    "array": "[]",
    "empty object": "{}",
    "inputs string": '{"inputs": "x"}',
    "inputs of junk": '{"inputs": [null, 1, {}]}',
    "2 MB string": json.dumps("x" * 2_000_000),
    "nested garbage": _nested_garbage(),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "deep filter branch": json.dumps(
        {"name": "Deep", "objectTypeId": "0-1", "processingType": "DYNAMIC", "filterBranch": _deep()}
    ),
    "deep email content": json.dumps({"name": "Deep", "content": {"widgets": _deep()}}),
}
#: Endpoints that answer 2xx to bodies HubSpot's OpenAPI file calls incomplete (``{}``, unknown fields), filling
#: in defaults as HubSpot's search does. For their 2xx answers the contract check sees this valid body in place
#: of the sweep's junk, so their responses are still validated.
LENIENT = {
    "lists.search": '{"offset": 0, "additionalProperties": []}',
    "contacts.search": '{"after": "0", "filterGroups": [], "limit": 10, "properties": [], "sorts": []}',
    "lists.memberships_add_and_remove": '{"recordIdsToAdd": [], "recordIdsToRemove": []}',
}
BAD_QUERIES = ("limit=abc", "limit=-5", "after=%00", "after=99999999999999999999999999", "limit=1e3&offset=%ff")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str

    def url(self, base: str, values: dict[str, str]) -> str:
        return base + PARAM.sub(lambda m: values.get(m[1], "1"), self.path)


def hubspot_routes() -> list[Route]:
    """Every HubSpot endpoint the app serves, once (the trailing-slash twins run the same handler)."""
    routes = []
    for router in ROUTERS:
        for route in router.routes:
            if route.path.startswith("/_sandbox") or route.name.endswith(":slash"):
                continue
            routes.extend(Route(method, route.path, route.name) for method in sorted(route.methods))
    return routes


ROUTES = hubspot_routes()


def contract_problems(contract: ContractChecker, exchange: Exchange) -> list[str]:
    if exchange.endpoint in LENIENT and exchange.status < 400:
        exchange = dataclasses.replace(exchange, request_body=LENIENT[exchange.endpoint])
    return contract.problems(exchange)


@pytest.fixture
def sandbox(sandbox_server, contract) -> Iterator[Any]:
    """conftest's ``sandbox`` (reset, then every exchange checked against HubSpot's contract), except that junk
    a LENIENT endpoint accepted on purpose is not held against the request; responses and error bodies still are."""
    sandbox_server.admin("POST", "reset")
    command = sandbox_server.command()
    record = Path(command[command.index("--record") + 1])
    start = record.stat().st_size if record.exists() else 0
    yield sandbox_server
    exchanges, _ = read_exchanges(record, start)
    problems = [p for exchange in exchanges for p in contract_problems(contract, exchange)]
    assert not problems, "sandbox traffic breaks HubSpot's OpenAPI contract:\n" + "\n".join(problems[:20])


@pytest.fixture
def real_ids(seeded) -> dict[str, str]:
    """Path values that exist, so body and query checks get past the 404 and reach the parsing."""
    session, url = seeded.session, seeded.url
    seeded.admin("PUT", "settings", {"rate_limit": "1000000/10s,100000000/day"})
    contact = next(c for c in seeded.admin("GET", "contacts")["results"] if c["email"])
    manual = session.post(
        f"{url}/crm/v3/lists", json={"name": "Sweep", "objectTypeId": "0-1", "processingType": "MANUAL"}
    ).json()["list"]
    source = session.post(
        f"{url}/crm/v3/lists", json={"name": "Sweep source", "objectTypeId": "0-1", "processingType": "MANUAL"}
    ).json()["list"]
    email = session.post(f"{url}/marketing/v3/emails", json={"name": "Sweep"}).json()
    form = session.get(f"{url}/marketing/v3/forms").json()["results"][0]
    return {
        "listId": manual["listId"],
        "sourceListId": source["listId"],
        "listName": manual["name"],
        "objectTypeId": "0-1",
        "recordId": contact["id"],
        "contactId": contact["id"],
        "emailId": email["id"],
        "formId": form["id"],
        "emailAddress": contact["email"],
        "subscriberIdString": contact["email"],
    }


def problem(response: Any, what: str, legacy: bool) -> str | None:
    """Why this answer is not HubSpot's way of refusing bad input (None when it is fine)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    if not 400 <= status < 500:
        return f"{what}: {status} {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return f"{what}: {status} with a non-JSON body {response.text[:200]!r}"
    missing = (LEGACY_ERROR_KEYS if legacy else ERROR_KEYS) - set(body if isinstance(body, dict) else ())
    return f"{what}: {status} error body lacks {sorted(missing)}: {response.text[:200]}" if missing else None


def sweep(sandbox, route: Route, real: dict[str, str]) -> list[str]:
    """Send every bad request for one route; return what went wrong."""
    session, base = sandbox.session, sandbox.url
    headers = {"Content-Type": "application/json"}
    default_body = "{}" if route.method in WITH_BODY else None
    attempts: list[tuple[str, str, str | None]] = []
    if PARAM.search(route.path):
        for value in BAD_PATH_VALUES:
            bad = {name: value for name in PARAM.findall(route.path)}
            attempts.append((f"path={value[:20]}", route.url(base, bad), default_body))
    if route.method in WITH_BODY:
        attempts.extend((f"body {label}", route.url(base, real), body) for label, body in BAD_BODIES.items())
    attempts.extend((f"query {query}", f"{route.url(base, real)}?{query}", default_body) for query in BAD_QUERIES)
    found = []
    for what, url, body in attempts:
        response = session.request(route.method, url, data=body, headers=headers, timeout=30)
        found.append(problem(response, what, route.path == LEGACY_EVENTS))
    return [p for p in found if p]


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_bad_input_gets_hubspots_error_never_a_server_error(seeded, real_ids, route):
    problems = sweep(seeded, route, real_ids)
    assert not problems, f"{route.method} {route.path}:\n" + "\n".join(problems)


def test_the_sweep_covers_every_hubspot_area():
    prefixes = {
        "/crm/v3/lists",
        "/crm/v3/objects/contacts",
        "/marketing/v3/emails",
        "/email/public/v1/events",
        "/communication-preferences/v3",
        "/communication-preferences/v4",
        "/crm/v3/exports",
        "/marketing/v3/forms",
        "/account-info/v3",
    }
    assert {p for p in prefixes if any(r.path.startswith(p) for r in ROUTES)} == prefixes
    assert len(ROUTES) >= 50 and not any(r.path.startswith("/_sandbox") for r in ROUTES)
