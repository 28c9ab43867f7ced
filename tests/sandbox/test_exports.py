"""CRM exports v3: a list exported to CSV, polled until COMPLETE, downloaded without the bearer token."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests
from hubspot.crm.exports import ApiException
from hubspot.crm.lists import ListCreateRequest


def _export_request(list_id, properties=("email",), **changes):
    """Every key HubSpot's PublicExportListRequest requires (the SDK's typed model lacks two of them)."""
    return {
        "exportType": "LIST", "listId": str(list_id), "objectType": "CONTACT", "objectProperties": list(properties),
        "format": "CSV", "exportName": "PP-2026Q3 opt-out", "language": "EN",
        "exportInternalValuesOptions": ["NAMES"], "associatedObjectType": [], "includeLabeledAssociations": False,
        "includePrimaryDisplayPropertyForAssociatedObjects": False,
        "overrideAssociatedObjectsPerDefinitionPerRowLimit": False, **changes,
    }


def _manual_list(client, name, record_ids):
    created = client.crm.lists.lists_api.create(
        ListCreateRequest(name=name, object_type_id="0-1", processing_type="MANUAL")
    )
    list_id = created.list.list_id
    client.crm.lists.memberships_api.add(list_id, [str(i) for i in record_ids])
    return list_id


def _wait_complete(client, task_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.crm.exports.public_exports_api.get_status(int(task_id))
        if status.status == "COMPLETE":
            return status
        time.sleep(0.1)
    raise AssertionError(f"export {task_id} did not complete")


@pytest.fixture
def members(seeded):
    contacts = seeded.admin("GET", "contacts")["results"]
    with_email = [c for c in contacts if c["email"]][:6]
    without_email = [c for c in contacts if not c["email"]][:1]
    return sorted(with_email + without_email, key=lambda c: int(c["id"]))


def test_list_export_is_a_snapshot_csv_downloadable_without_auth(seeded, client, members):
    list_id = _manual_list(client, "to export", [c["id"] for c in reversed(members)])
    task = client.crm.exports.public_exports_api.start(_export_request(list_id, ["email", "firstname"]))
    assert task.id and task.links["status"].endswith(f"/tasks/{task.id}/status")
    first = client.crm.exports.public_exports_api.get_status(int(task.id))
    assert first.status == "PROCESSING" and first.result is None
    client.crm.lists.memberships_api.remove(list_id, [members[0]["id"]])

    done = _wait_complete(client, task.id)
    response = requests.get(done.result, timeout=10)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Record ID", "Email", "First Name"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(c["id"], c["email"] or "") for c in members]


def test_download_with_a_wrong_secret_is_404(seeded, client, members):
    list_id = _manual_list(client, "secret", [c["id"] for c in members])
    task = client.crm.exports.public_exports_api.start(_export_request(list_id))
    url = _wait_complete(client, task.id).result
    prefix, secret, filename = url.rsplit("/", 2)
    assert requests.get(f"{prefix}/{'x' * len(secret)}/{filename}", timeout=10).status_code == 404
    assert requests.get(f"{prefix}/{secret}/other.csv", timeout=10).status_code == 404


def test_export_record_tracks_state_and_row_count(seeded, client, sandbox, members):
    list_id = _manual_list(client, "counted", [c["id"] for c in members])
    task = client.crm.exports.public_exports_api.start(_export_request(list_id, ["email", "hs_email_optout"]))
    record = sandbox.session.get(f"{sandbox.url}/crm/v3/exports/export/{task.id}").json()
    assert record["exportState"] == "PROCESSING"
    _wait_complete(client, task.id)
    record = sandbox.session.get(f"{sandbox.url}/crm/v3/exports/export/{task.id}").json()
    assert record["exportState"] == "DONE" and record["recordCount"] == len(members)
    assert record["objectProperties"] == ["email", "hs_email_optout"] and record["exportType"] == "LIST"


@pytest.mark.parametrize(
    "changes",
    [
        {"listId": "999999"},
        {"objectProperties": ["email", "favourite_colour"]},
        {"objectType": "COMPANY"},
        {"format": "XLSX"},
        {"exportType": "VIEW"},
    ],
)
def test_bad_export_requests_are_400(seeded, client, members, changes):
    list_id = _manual_list(client, "bad requests", [c["id"] for c in members])
    with pytest.raises(ApiException) as err:
        client.crm.exports.public_exports_api.start(_export_request(list_id, **changes))
    assert err.value.status == 400
    assert '"VALIDATION_ERROR"' in err.value.body


def test_export_request_missing_required_keys_is_400(seeded, sandbox, client, members):
    list_id = _manual_list(client, "partial", [c["id"] for c in members])
    body = _export_request(list_id)
    del body["language"]
    response = sandbox.session.post(f"{sandbox.url}/crm/v3/exports/export/async", json=body)
    assert response.status_code == 400
    assert "language" in response.json()["message"]


def test_unknown_export_task_is_404(seeded, client):
    with pytest.raises(ApiException) as err:
        client.crm.exports.public_exports_api.get_status(123)
    assert err.value.status == 404
