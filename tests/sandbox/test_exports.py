"""CRM exports v3: a list exported to CSV, polled until COMPLETE, downloaded without the bearer token."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile

import pytest
import requests
from hubspot.crm.exports import ApiException
from hubspot.crm.lists import ListCreateRequest

from include.hubspot_sandbox.process import SandboxProcess
from tests.conftest import FAST


def _export_request(list_id, properties=("email",), **changes):
    """Every key HubSpot's PublicExportListRequest requires (the SDK's typed model lacks two of them)."""
    return {
        "exportType": "LIST",
        "listId": str(list_id),
        "objectType": "CONTACT",
        "objectProperties": list(properties),
        "format": "CSV",
        "exportName": "PP-2026Q3 opt-out",
        "language": "EN",
        "exportInternalValuesOptions": ["NAMES"],
        "associatedObjectType": [],
        "includeLabeledAssociations": False,
        "includePrimaryDisplayPropertyForAssociatedObjects": False,
        "overrideAssociatedObjectsPerDefinitionPerRowLimit": False,
        **changes,
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
    assert rows[0] == ["hs_object_id", "email", "firstname"]
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


def _download_rows(client, task_id) -> list[list[str]]:
    response = requests.get(_wait_complete(client, task_id).result, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


# -- column headers --------------------------------------------------------------------------------------


def test_headers_are_labels_without_names_and_internal_names_with_them(seeded, client, members):
    list_id = _manual_list(client, "headers", [c["id"] for c in members])
    labels = client.crm.exports.public_exports_api.start(
        _export_request(list_id, ["email", "firstname"], exportInternalValuesOptions=[])
    )
    names = client.crm.exports.public_exports_api.start(
        _export_request(list_id, ["email", "firstname"], exportInternalValuesOptions=["NAMES"])
    )
    assert _download_rows(client, labels.id)[0] == ["Record ID", "Email", "First Name"]
    assert _download_rows(client, names.id)[0] == ["hs_object_id", "email", "firstname"]


# -- the list lag reaches exports ------------------------------------------------------------------------


def test_export_of_a_dynamic_list_serves_the_old_members_until_the_lag_has_passed(seeded, client, members):
    ids = [c["id"] for c in members]
    recipients = _manual_list(client, "recipients", ids)
    confirmed = _manual_list(client, "confirmed", [])
    branch = {
        "filterBranchType": "OR",
        "filterBranchOperator": "OR",
        "filters": [],
        "filterBranches": [
            {
                "filterBranchType": "AND",
                "filterBranchOperator": "AND",
                "filterBranches": [],
                "filters": [
                    {"filterType": "IN_LIST", "listId": recipients, "operator": "IN_LIST"},
                    {"filterType": "IN_LIST", "listId": confirmed, "operator": "NOT_IN_LIST"},
                ],
            }
        ],
    }
    unconfirmed = client.crm.lists.lists_api.create(
        ListCreateRequest(name="unconfirmed", object_type_id="0-1", processing_type="DYNAMIC", filter_branch=branch)
    ).list.list_id
    client.crm.lists.memberships_api.add(confirmed, [ids[0]])

    stale = client.crm.exports.public_exports_api.start(_export_request(unconfirmed))
    assert [r[0] for r in _download_rows(client, stale.id)[1:]] == ids

    deadline = time.monotonic() + 5
    while True:
        fresh = client.crm.exports.public_exports_api.start(_export_request(unconfirmed))
        exported = [r[0] for r in _download_rows(client, fresh.id)[1:]]
        if ids[0] not in exported or time.monotonic() > deadline:
            break
    assert exported == ids[1:]


# -- download URLs expire; each status answer hands out a fresh one ---------------------------------------


def test_download_url_expires_after_five_minutes_and_a_new_status_gives_a_new_one(seeded, sandbox, client, members):
    list_id = _manual_list(client, "expiring", [c["id"] for c in members])
    task = client.crm.exports.public_exports_api.start(_export_request(list_id))
    first = _wait_complete(client, task.id).result
    assert requests.get(first, timeout=10).status_code == 200
    sandbox.admin("POST", "clock", {"advance_seconds": 301})

    expired = requests.get(first, timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    second = client.crm.exports.public_exports_api.get_status(int(task.id)).result
    assert second != first
    assert requests.get(second, timeout=10).status_code == 200


# -- thirty exports a day -------------------------------------------------------------------------------


def test_a_portal_may_start_thirty_exports_in_a_rolling_day(seeded, sandbox, client, members):
    list_id = _manual_list(client, "daily", [c["id"] for c in members][:1])
    api = client.crm.exports.public_exports_api
    for _ in range(30):
        api.start(_export_request(list_id))
    with pytest.raises(ApiException) as err:
        api.start(_export_request(list_id))
    assert err.value.status == 429
    assert "30 exports in a rolling 24 hours" in err.value.body
    sandbox.admin("POST", "clock", {"advance_seconds": 86_401})
    assert api.start(_export_request(list_id)).id


def test_a_portal_with_no_exports_left_refuses_the_first_one_with_the_same_429(seeded, sandbox, client, members):
    list_id = _manual_list(client, "none-left", [c["id"] for c in members][:1])
    before = sandbox.admin("GET", "settings")["exports_per_day"]
    sandbox.admin("PUT", "settings", {"exports_per_day": 0})
    try:
        with pytest.raises(ApiException) as err:
            client.crm.exports.public_exports_api.start(_export_request(list_id))
    finally:
        sandbox.admin("PUT", "settings", {"exports_per_day": before})
    assert err.value.status == 429
    assert json.loads(err.value.body)["errorType"] == "EXPORT_LIMIT"


# -- large exports come zipped ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """A sandbox whose zip threshold and rows per file are tiny, so a small list exports as HubSpot's big ones."""
    folder = tmp_path_factory.mktemp("small-files")
    args = [*FAST, "--export-zip-bytes", "100", "--export-rows-per-file", "4"]
    with SandboxProcess(folder / "portal.db", args=args) as server:
        yield server


@pytest.fixture
def small_client(small_files):
    import hubspot

    small_files.admin("POST", "reset")
    small_files.admin("POST", "seed", {"contacts": 60, "seed": 3})
    return hubspot.Client.create(access_token=small_files.token, host=small_files.url, base_url=small_files.url)


def _zip_rows(url: str) -> tuple[list[str], list[list[str]]]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert url.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(archive.namelist())
        files = [list(csv.reader(io.StringIO(archive.read(n).decode("utf-8")))) for n in names]
    return names, files


def test_a_csv_over_the_size_threshold_comes_zipped(small_files, small_client):
    ids = sorted(int(c["id"]) for c in small_files.admin("GET", "contacts")["results"])[:4]
    list_id = _manual_list(small_client, "zipped", ids)
    task = small_client.crm.exports.public_exports_api.start(_export_request(list_id, ["email", "firstname"]))
    names, files = _zip_rows(_wait_complete(small_client, task.id).result)
    assert len(names) == 1 and names[0].endswith(".csv")
    assert files[0][0] == ["hs_object_id", "email", "firstname"]
    assert [int(r[0]) for r in files[0][1:]] == ids


def test_an_export_over_the_rows_per_file_comes_as_several_csvs_in_one_zip(small_files, small_client):
    ids = sorted(int(c["id"]) for c in small_files.admin("GET", "contacts")["results"])[:10]
    list_id = _manual_list(small_client, "split", ids)
    task = small_client.crm.exports.public_exports_api.start(_export_request(list_id))
    names, files = _zip_rows(_wait_complete(small_client, task.id).result)
    assert len(names) == 3
    assert all(f[0] == ["hs_object_id", "email"] for f in files)
    assert [int(r[0]) for f in files for r in f[1:]] == ids
