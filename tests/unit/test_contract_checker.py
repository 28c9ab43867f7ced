"""The contract check holds every recorded exchange to the project's own schemas of HubSpot's answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests.support.contract import (
    ENDPOINTS,
    SCHEMAS,
    ContractChecker,
    Exchange,
    find_endpoint,
    find_openapi_dir,
    read_exchanges,
)

LIST = {
    "listId": "1001",
    "name": "Recipients",
    "objectTypeId": "0-1",
    "processingType": "MANUAL",
    "processingStatus": "COMPLETE",
    "listVersion": 1,
    "size": 0,
}
STATUS = {
    "subscriberIdString": "a@example.com",
    "subscriptionId": 7,
    "channel": "EMAIL",
    "status": "SUBSCRIBED",
    "source": "Default status",
    "timestamp": "2026-12-01T00:00:00Z",
}
ENVELOPE = {"status": "COMPLETE", "startedAt": "2026-12-01T00:00:00Z", "completedAt": "2026-12-01T00:00:01Z"}
BATCH_ERROR = {
    "status": "error",
    "category": "OBJECT_NOT_FOUND",
    "message": "not found",
    "context": {},
    "errors": [],
    "links": {},
}


def exchange(method: str, path: str, status: int, body: object = None, request: object = None) -> Exchange:
    return Exchange(
        endpoint="x",
        method=method,
        path=path,
        query="",
        request_content_type="application/json",
        request_body=json.dumps(request) if request is not None else "",
        status=status,
        response_content_type="application/json",
        response_body=json.dumps(body) if body is not None else "",
    )


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> ContractChecker:
    """Own schemas only, so these tests say the same with or without HubSpot's OpenAPI files."""
    return ContractChecker(tmp_path_factory.mktemp("no-openapi"))


@pytest.mark.parametrize("path", ["/crm/v3/lists", "/crm/lists/2026-03", "/crm/lists/2026-09"])
def test_a_list_answer_in_hubspots_shape_passes_on_every_version(checker, path):
    assert checker.problems(exchange("POST", path, 200, {"list": LIST})) == []


@pytest.mark.parametrize("path", ["/crm/v3/lists", "/crm/lists/2026-09"])
def test_a_list_answer_with_a_wrong_type_or_a_missing_key_is_reported(checker, path):
    wrong_type = checker.problems(exchange("POST", path, 200, {"list": {**LIST, "listVersion": "1"}}))
    assert len(wrong_type) == 1 and "['list', 'listVersion']" in wrong_type[0]
    missing = checker.problems(exchange("POST", path, 200, {"list": {k: v for k, v in LIST.items() if k != "listId"}}))
    assert len(missing) == 1 and "'listId' is a required property" in missing[0]


def test_definitions_answer_their_versions_shape(checker):
    definition = {
        "id": "7",
        "name": "Marketing Information",
        "description": "",
        "isActive": True,
        "isDefault": True,
        "isInternal": False,
        "createdAt": "2023-01-01T00:00:00Z",
        "updatedAt": "2023-01-01T00:00:00Z",
    }
    legacy = {"subscriptionDefinitions": [definition]}
    dated = {**ENVELOPE, "results": [definition]}
    assert checker.problems(exchange("GET", "/communication-preferences/v3/definitions", 200, legacy)) == []
    assert checker.problems(exchange("GET", "/communication-preferences/2026-09/definitions", 200, dated)) == []
    assert checker.problems(exchange("GET", "/communication-preferences/2026-09/definitions", 200, legacy))
    assert checker.problems(exchange("GET", "/communication-preferences/v3/definitions", 200, dated))


def test_a_dated_batch_read_reports_failed_inputs_inside_a_200_never_a_207(checker):
    partly_failed = {
        **ENVELOPE,
        "results": [{"subscriberIdString": "a@example.com", "statuses": [STATUS]}],
        "errors": [BATCH_ERROR],
        "numErrors": 1,
    }
    legacy = "/communication-preferences/v4/statuses/batch/read"
    dated = "/communication-preferences/2026-09/statuses/batch/read"
    assert checker.problems(exchange("POST", legacy, 207, partly_failed)) == []
    assert checker.problems(exchange("POST", dated, 200, partly_failed)) == []
    (problem,) = checker.problems(exchange("POST", dated, 207, partly_failed))
    assert "[200], not 207" in problem
    missing_errors = {k: v for k, v in partly_failed.items() if k not in ("errors", "numErrors")}
    assert checker.problems(exchange("POST", legacy, 207, missing_errors))


def test_a_dated_list_search_must_name_list_ids_and_processing_types(checker):
    answer = {"lists": [], "hasMore": False, "offset": 0, "total": 0}
    legacy_request = {"query": "hubspot_reengagement", "offset": 0, "additionalProperties": []}
    dated_request = {**legacy_request, "listIds": [], "processingTypes": ["MANUAL", "DYNAMIC"]}
    assert checker.problems(exchange("POST", "/crm/v3/lists/search", 200, answer, legacy_request)) == []
    assert checker.problems(exchange("POST", "/crm/lists/2026-09/search", 200, answer, dated_request)) == []
    problems = checker.problems(exchange("POST", "/crm/lists/2026-09/search", 200, answer, legacy_request))
    assert {re.search(r"'(\w+)' is a required property", p)[1] for p in problems} == {"listIds", "processingTypes"}


def test_an_error_answer_must_carry_hubspots_error_body(checker):
    error = {
        "status": "error",
        "message": "List 9 does not exist.",
        "correlationId": "c0ffee",
        "category": "OBJECT_NOT_FOUND",
    }
    assert checker.problems(exchange("GET", "/crm/lists/2026-09/9", 404, error)) == []
    assert checker.problems(exchange("GET", "/crm/lists/2026-09/9", 404, {"detail": "Not Found"}))
    assert checker.problems(exchange("GET", "/crm/lists/2026-09/9", 404, None))
    legacy_events = {k: v for k, v in error.items() if k != "category"}
    assert checker.problems(exchange("GET", "/email/public/v1/events", 400, legacy_events)) == []


def test_an_empty_answer_is_checked_as_empty(checker):
    assert checker.problems(exchange("POST", "/marketing/emails/2026-09/5/publish", 204)) == []
    assert checker.problems(exchange("POST", "/marketing/emails/2026-09/5/publish", 204, {"ok": True}))


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/crm/v3/lists/folders/7"),  # a HubSpot endpoint with no schema here
        ("GET", "/crm/lists/2025-09/7"),  # a date HubSpot does not serve
        ("GET", "/email/public/2026-09/events"),  # no date-based email events
        ("POST", "/communication-preferences/2026-09/links/generate"),  # dated, but the product never calls it
    ],
)
def test_an_exchange_on_a_path_without_a_schema_is_reported(checker, method, path):
    (problem,) = checker.problems(exchange(method, path, 200, {}))
    assert f"no schema for {method} {path}" in problem


def test_the_sandboxs_own_endpoints_and_dropped_connections_are_not_hubspot_answers(checker):
    assert checker.problems(exchange("GET", "/_sandbox/downloads/exports/1/t/list.csv", 200)) == []
    dropped = exchange("GET", "/crm/v3/lists/folders/7", 200)
    dropped.dropped = True
    assert checker.problems(dropped) == []


def test_without_hubspots_openapi_files_the_own_schemas_still_check(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_OPENAPI_DIR", str(tmp_path))
    assert find_openapi_dir() is None
    checker = ContractChecker()
    assert checker.openapi is None
    assert checker.openapi_note.startswith("HubSpot OpenAPI check: skipped") and str(tmp_path) in checker.openapi_note
    assert checker.problems(exchange("POST", "/crm/v3/lists", 200, {"list": LIST})) == []
    assert checker.problems(exchange("POST", "/crm/v3/lists", 200, {"list": {}}))


def test_dated_traffic_meets_hubspots_legacy_file_only_where_the_shape_is_unchanged():
    unchanged = find_endpoint("GET", "/communication-preferences/2026-09/statuses/a%40example.com")
    changed = find_endpoint("GET", "/communication-preferences/2026-09/definitions")
    assert unchanged is not None and changed is not None
    assert not unchanged.endpoint.changed_when_dated and changed.endpoint.changed_when_dated
    assert (
        unchanged.legacy_path("/communication-preferences/2026-09/statuses/a%40example.com")
        == "/communication-preferences/v4/statuses/a%40example.com"
    )
    assert find_endpoint("GET", "/crm/v3/lists/7").legacy_path("/crm/v3/lists/7") == "/crm/v3/lists/7"


@pytest.mark.skipif(find_openapi_dir() is None, reason="HubSpot's OpenAPI files are not in this workspace")
def test_with_hubspots_openapi_files_a_legacy_answer_is_also_held_to_them():
    checker = ContractChecker()
    # The own schema asks only what the product reads; HubSpot's file also wants listPermissions on a list.
    assert checker.problems(exchange("POST", "/crm/v3/lists", 200, {"list": LIST})) != []


def test_every_schema_is_valid_and_cites_hubspots_reference():
    for file in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(file.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert "https://developers.hubspot.com/" in schema["description"], file.name


def test_every_endpoint_points_at_a_schema_that_exists(checker):
    refs = {ref for e in ENDPOINTS for answers in (e.answers, e.dated_answers or {}) for ref in answers.values() if ref}
    refs |= {ref for e in ENDPOINTS for ref in (e.request, e.dated_request) if ref}
    for ref in refs:
        file, _, pointer = ref.partition("#")
        node = json.loads((SCHEMAS / file).read_text())
        for part in filter(None, pointer.split("/")):
            node = node[part]
        assert isinstance(node, dict), ref


def test_every_hubspot_route_the_sandbox_serves_has_a_schema_on_every_version():
    from include.hubspot_sandbox.routes import DATED_ROUTERS, ROUTERS

    served, missing = 0, []
    for router in (*ROUTERS, *DATED_ROUTERS):
        for route in router.routes:
            if route.path.startswith("/_sandbox") or route.name.endswith(":slash"):
                continue
            path = re.sub(r"\{\w+(:path)?\}", "1", route.path)
            served += 1
            missing += [f"{method} {route.path}" for method in route.methods if find_endpoint(method, path) is None]
    assert served >= 50
    assert not missing, "sandbox routes with no schema in tests/support/schemas: " + ", ".join(sorted(missing))


def test_the_recording_reader_and_checker_agree_on_the_recordings_format(tmp_path: Path, checker):
    record = tmp_path / "traffic.jsonl"
    record.write_text(json.dumps(vars(exchange("POST", "/crm/v3/lists", 200, {"list": LIST}))) + "\n")
    (read,), _ = read_exchanges(record)
    assert checker.problems(read) == []
