"""Every HubSpot endpoint on its legacy path and on its date-based paths: one state, each version's shape."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from include.hubspot_sandbox.config import DEFAULT_SERVICE_KEY, DEFAULT_TOKEN, SERVICE_KEY, TokenGrant
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.support.contract import read_exchanges

VERSIONS = ("2026-03", "2026-09")
LEGACY_LISTS = "/crm/v3/lists"
ERROR_KEYS = {"status", "message", "correlationId", "category"}


def search_body(**fields) -> dict:
    """A list search with the fields every version requires (``offset``, ``additionalProperties``)."""
    return {"offset": 0, "additionalProperties": [], **fields}


def dated_lists(version: str) -> str:
    return f"/crm/lists/{version}"


def call(sandbox, method: str, path: str, json=None, **params) -> requests.Response:
    return sandbox.session.request(method, f"{sandbox.url}{path}", json=json, params=params or None, timeout=10)


def create_list(sandbox, prefix: str, name: str, processing_type: str = "MANUAL") -> dict:
    response = call(sandbox, "POST", prefix, {"name": name, "objectTypeId": "0-1", "processingType": processing_type})
    assert response.status_code == 200, response.text
    return response.json()["list"]


def wait_list_complete(sandbox, path: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while (found := call(sandbox, "GET", path).json()["list"])["processingStatus"] != "COMPLETE":
        assert time.monotonic() < deadline, f"{path} still {found['processingStatus']} after {timeout} s"
        time.sleep(0.05)
    return found


def mailable(sandbox, n: int) -> list[dict]:
    rows = [c for c in sandbox.admin("GET", "contacts")["results"] if c["email"] and not c["optout"]]
    return rows[:n]


def recorded(sandbox, start: int) -> list:
    exchanges, _ = read_exchanges(recording(sandbox), start)
    return exchanges


def recording(sandbox) -> Path:
    command = sandbox.command()
    return Path(command[command.index("--record") + 1])


# -- one state behind both paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_list_made_on_the_legacy_path_is_read_and_changed_on_the_dated_one(seeded, version):
    made = create_list(seeded, LEGACY_LISTS, "Made on legacy")
    dated = dated_lists(version)
    read = wait_list_complete(seeded, f"{dated}/{made['listId']}")
    assert (read["listId"], read["name"]) == (made["listId"], "Made on legacy")

    contact = mailable(seeded, 1)[0]
    added = call(seeded, "PUT", f"{dated}/{made['listId']}/memberships/add", [contact["id"]])
    assert added.status_code == 200, added.text
    legacy_members = call(seeded, "GET", f"{LEGACY_LISTS}/{made['listId']}/memberships").json()["results"]
    assert [m["recordId"] for m in legacy_members] == [str(contact["id"])]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_list_made_on_the_dated_path_is_found_by_name_on_the_legacy_one(sandbox, version):
    made = create_list(sandbox, dated_lists(version), f"Made on {version}")
    found = call(sandbox, "GET", f"{LEGACY_LISTS}/object-type-id/0-1/name/Made on {version}")
    assert found.status_code == 200, found.text
    assert found.json()["list"]["listId"] == made["listId"]
    by_name = call(sandbox, "GET", f"{dated_lists(version)}/object-type-id/0-1/name/Made on {version}")
    assert by_name.json()["list"]["listId"] == made["listId"]


def test_emails_exports_properties_and_account_answer_on_dated_paths(seeded):
    made = call(seeded, "POST", "/marketing/emails/2026-09", {"name": "Dated email", "subject": "Still there?"})
    assert made.status_code == 201, made.text
    email_id = made.json()["id"]
    assert call(seeded, "GET", f"/marketing/v3/emails/{email_id}").json()["name"] == "Dated email"
    clone = call(seeded, "POST", "/marketing/emails/2026-03/clone", {"id": email_id, "cloneName": "Dated clone"})
    assert clone.status_code == 200 and clone.json()["name"] == "Dated clone"
    assert (
        call(
            seeded,
            "GET",
            "/marketing/emails/2026-09/statistics/list",
            startTimestamp="2020-01-01T00:00:00Z",
            endTimestamp="2040-01-01T00:00:00Z",
        ).status_code
        == 200
    )

    prop = call(seeded, "GET", "/crm/properties/2026-09/contacts/hs_email_optout")
    assert prop.status_code == 200 and prop.json()["name"] == "hs_email_optout"
    details = call(seeded, "GET", "/account-info/2026-09/details")
    assert details.json()["portalId"] == call(seeded, "GET", "/account-info/v3/details").json()["portalId"]
    assert call(seeded, "GET", "/account-info/2026-03/api-usage/daily/private-apps").status_code == 200

    contact = mailable(seeded, 1)[0]
    assert call(seeded, "GET", f"/crm/objects/2026-09/contacts/{contact['id']}").json()["id"] == str(contact["id"])
    page = call(seeded, "GET", "/crm/objects/2026-09/contacts", limit=2).json()
    assert page["paging"]["next"]["link"].startswith(f"{seeded.url}/crm/objects/2026-09/contacts?")


def test_an_export_started_on_a_dated_path_links_its_status_on_that_version(seeded):
    listed = create_list(seeded, LEGACY_LISTS, "Export me")
    call(seeded, "PUT", f"{LEGACY_LISTS}/{listed['listId']}/memberships/add", [mailable(seeded, 1)[0]["id"]])
    started = call(
        seeded,
        "POST",
        "/crm/exports/2026-09/export/async",
        {
            "exportType": "LIST",
            "listId": listed["listId"],
            "objectType": "CONTACT",
            "objectProperties": ["email"],
            "format": "CSV",
            "exportName": "dated",
            "language": "EN",
            "exportInternalValuesOptions": ["NAMES"],
            "associatedObjectType": [],
            "includeLabeledAssociations": False,
            "includePrimaryDisplayPropertyForAssociatedObjects": False,
            "overrideAssociatedObjectsPerDefinitionPerRowLimit": False,
        },
    )
    assert started.status_code == 202, started.text
    task = started.json()["id"]
    assert started.json()["links"]["status"] == (f"{seeded.url}/crm/exports/2026-09/export/async/tasks/{task}/status")
    legacy = call(seeded, "GET", f"/crm/v3/exports/export/async/tasks/{task}/status")
    assert legacy.status_code == 200 and legacy.json()["links"]["self"].startswith(f"{seeded.url}/crm/v3/exports/")


# -- (a) definitions: the dated path answers v4's shape --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_dated_definitions_answer_results_never_subscription_definitions(seeded, version):
    dated = call(seeded, "GET", f"/communication-preferences/{version}/definitions")
    assert dated.status_code == 200, dated.text
    assert "subscriptionDefinitions" not in dated.json()
    assert str(MARKETING_SUBSCRIPTION_ID) in {d["id"] for d in dated.json()["results"]}
    legacy_v3 = call(seeded, "GET", "/communication-preferences/v3/definitions").json()
    assert "subscriptionDefinitions" in legacy_v3 and "results" not in legacy_v3


# -- (b) batch reads: errors inside a 200 on dated paths, 207 on legacy ----------------------------------


def test_contacts_batch_read_reports_missing_ids_in_a_200_on_dated_paths(seeded):
    contact = mailable(seeded, 1)[0]
    body = {
        "inputs": [{"id": str(contact["id"])}, {"id": "999999999"}],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }
    legacy = call(seeded, "POST", "/crm/v3/objects/contacts/batch/read", body)
    dated = call(seeded, "POST", "/crm/objects/2026-09/contacts/batch/read", body)
    assert legacy.status_code == 207
    assert dated.status_code == 200
    assert dated.json()["numErrors"] == 1 and dated.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert [r["id"] for r in dated.json()["results"]] == [str(contact["id"])]


@pytest.mark.parametrize("tail", ["statuses/batch/read", "statuses/batch/unsubscribe-all/read"])
def test_subscription_batch_reads_report_unknown_subscribers_in_a_200_on_dated_paths(seeded, tail):
    body = {"inputs": [mailable(seeded, 1)[0]["email"], "nobody@example.invalid"]}
    legacy = call(seeded, "POST", f"/communication-preferences/v4/{tail}", body, channel="EMAIL")
    dated = call(seeded, "POST", f"/communication-preferences/2026-09/{tail}", body, channel="EMAIL")
    assert legacy.status_code == 207
    assert dated.status_code == 200
    assert dated.json()["numErrors"] == 1 and len(dated.json()["results"]) == 1


def test_a_full_batch_read_is_a_plain_200_on_both_paths(seeded):
    body = {"inputs": [mailable(seeded, 1)[0]["email"]]}
    for prefix in ("/communication-preferences/v4", "/communication-preferences/2026-09"):
        answer = call(seeded, "POST", f"{prefix}/statuses/batch/read", body, channel="EMAIL")
        assert answer.status_code == 200 and "errors" not in answer.json()


# -- (c) list search: listIds and processingTypes required on dated paths --------------------------------


@pytest.mark.parametrize("missing", ["listIds", "processingTypes"])
def test_dated_list_search_requires_list_ids_and_processing_types(sandbox, missing):
    made = create_list(sandbox, LEGACY_LISTS, "Searchable")
    body = search_body(query="Searchable", listIds=[made["listId"]], processingTypes=["MANUAL"])
    del body[missing]
    refused = call(sandbox, "POST", "/crm/lists/2026-09/search", body)
    assert refused.status_code == 400
    assert ERROR_KEYS <= refused.json().keys() and refused.json()["category"] == "VALIDATION_ERROR"
    assert refused.json()["errors"][0]["in"] == missing
    legacy = call(sandbox, "POST", f"{LEGACY_LISTS}/search", body)
    assert [found["listId"] for found in legacy.json()["lists"]] == [made["listId"]]


def test_dated_list_search_finds_the_named_ids_and_an_empty_list_ids_matches_no_list(sandbox):
    made = create_list(sandbox, LEGACY_LISTS, "Searchable")
    create_list(sandbox, LEGACY_LISTS, "Searchable too")
    named = call(
        sandbox,
        "POST",
        "/crm/lists/2026-09/search",
        search_body(query="Searchable", listIds=[made["listId"]], processingTypes=["MANUAL"]),
    )
    assert named.status_code == 200 and [found["listId"] for found in named.json()["lists"]] == [made["listId"]]
    empty = call(
        sandbox,
        "POST",
        "/crm/lists/2026-09/search",
        search_body(query="Searchable", listIds=[], processingTypes=["MANUAL"]),
    )
    assert empty.status_code == 200 and empty.json()["lists"] == [] and empty.json()["total"] == 0
    legacy = call(sandbox, "POST", f"{LEGACY_LISTS}/search", search_body(query="Searchable", listIds=[]))
    assert len(legacy.json()["lists"]) == 2


# -- what is not dated ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/crm/lists/2027-01/search",
        "/crm/objects/2027-01/contacts",
        "/crm/lists/v3",
        "/communication-preferences/2025-09/definitions",
    ],
)
def test_an_unknown_version_answers_404_in_hubspots_shape(sandbox, path):
    searching = path.endswith("search")
    answer = call(sandbox, "POST" if searching else "GET", path, search_body() if searching else None)
    assert answer.status_code == 404
    assert ERROR_KEYS <= answer.json().keys()


@pytest.mark.parametrize(
    "path",
    [
        "/email/public/2026-09/events",
        "/email/events/2026-09",
        "/marketing/forms/2026-09",
        "/marketing/forms/2026-09-beta",
    ],
)
def test_email_events_and_forms_have_no_dated_path(seeded, path):
    assert call(seeded, "GET", path).status_code == 404
    assert call(seeded, "GET", "/email/public/v1/events", limit=1).status_code == 200
    assert call(seeded, "GET", "/marketing/v3/forms").status_code == 200


# -- endpoint names: faults and call counts follow the name, whatever the path ------------------------


@pytest.mark.parametrize(
    ("endpoint", "method", "path", "query"),
    [
        ("exports.start", "POST", "/crm/exports/2026-09/export/async", {}),
        (
            "subscriptions.v4.batch_unsubscribe_all",
            "POST",
            "/communication-preferences/2026-09/statuses/batch/unsubscribe-all",
            {"channel": "EMAIL"},
        ),
        ("lists.search", "POST", "/crm/lists/2026-03/search", {}),
    ],
)
def test_a_fault_injected_by_endpoint_name_fires_on_the_dated_path(sandbox, endpoint, method, path, query):
    sandbox.admin("DELETE", "calls")
    sandbox.admin("POST", "faults", {"endpoint": endpoint, "kind": "error", "status": 502, "count": 1})
    answer = call(sandbox, method, path, {}, **query)
    assert answer.status_code == 502
    assert sandbox.admin("GET", "calls")[endpoint] == {"calls": 1, "errors": 1, "rateLimited": 0}


def test_the_recording_carries_the_path_really_called(sandbox):
    start = recording(sandbox).stat().st_size
    call(sandbox, "GET", "/account-info/2026-09/details")
    call(sandbox, "GET", "/account-info/v3/details/")
    paths = [(e.endpoint, e.path) for e in recorded(sandbox, start)]
    assert paths == [
        ("account.details", "/account-info/2026-09/details"),
        ("account.details", "/account-info/v3/details/"),
    ]


# -- Service Keys ------------------------------------------------------------------------------------------


def test_a_service_key_is_accepted_like_a_private_app_token(sandbox):
    headers = {"Authorization": f"Bearer {DEFAULT_SERVICE_KEY}"}
    for path in ("/account-info/2026-09/details", "/crm/v3/lists/search"):
        method = "POST" if path.endswith("search") else "GET"
        answer = requests.request(
            method,
            f"{sandbox.url}{path}",
            headers=headers,
            timeout=10,
            json=search_body() if method == "POST" else None,
        )
        assert answer.status_code == 200, answer.text
    unknown = requests.get(
        f"{sandbox.url}/account-info/2026-09/details",
        timeout=10,
        headers={"Authorization": f"Bearer {DEFAULT_SERVICE_KEY}x"},
    )
    assert unknown.status_code == 401


def test_introspection_answers_for_private_app_tokens_only(sandbox):
    url = f"{sandbox.url}/oauth/v2/private-apps/get/access-token-info"
    token = sandbox.session.post(url, json={"tokenKey": DEFAULT_TOKEN}, timeout=10)
    assert token.status_code == 200 and token.json()["hubId"]
    key = requests.post(
        url,
        json={"tokenKey": DEFAULT_SERVICE_KEY},
        timeout=10,
        headers={"Authorization": f"Bearer {DEFAULT_SERVICE_KEY}"},
    )
    assert key.status_code == 404
    assert ERROR_KEYS <= key.json().keys() and key.json()["category"] == "OBJECT_NOT_FOUND"


def test_token_options_name_either_kind_of_credential():
    key = TokenGrant.parse("service-key:svc-other=crm.lists.read")
    assert (key.token, key.kind, key.scopes) == ("svc-other", SERVICE_KEY, frozenset({"crm.lists.read"}))
    assert TokenGrant.parse(DEFAULT_SERVICE_KEY).is_service_key
    assert not TokenGrant.parse("pat-other").is_service_key
