"""List operators against the sandbox: one list per name, adopt on rerun, defer while PROCESSING."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from reengagement.errors import HubSpotExportLimitError
from reengagement.operators.lists import EnsureListOperator, ExportListOperator, ListDefinitionConflict

from include.hubspot_sandbox.process import SandboxProcess
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.conftest import FAST
from tests.plugins.conftest import calls, connection_json, contact_ids, make_list, run_operator


def unengaged_op(name: str = "c · unengaged", weeks: int = 52) -> EnsureListOperator:
    return EnsureListOperator(
        task_id="build_unengaged_list",
        list_name=name,
        processing_type="DYNAMIC",
        segment="unengaged",
        poll_interval=0.1,
        segment_args={"subscription_id": str(MARKETING_SUBSCRIPTION_ID), "inactivity_weeks": weeks},
    )


def lists_named(sandbox, name: str) -> list[dict]:
    found = sandbox.session.post(
        f"{sandbox.url}/crm/v3/lists/search",
        json={"query": name, "offset": 0, "count": 500, "additionalProperties": []},
    ).json()["lists"]
    return [item for item in found if item["name"] == name]


def test_unengaged_list_holds_exactly_the_seeded_ground_truth(seeded, hubspot_conn):
    result = run_operator(unengaged_op())
    truth = seeded.admin("GET", "ground-truth", rounds=1)["unengaged"]
    assert result["size"] == len(truth)
    members = set(
        hubspot_conn.session.get(
            f"{seeded.url}/crm/v3/lists/{result['list_id']}/memberships", params={"limit": 250}
        ).json()["results"]
        and _all_members(seeded, result["list_id"])
    )
    assert members == set(truth)


def _all_members(sandbox, list_id: str) -> list[str]:
    members, after = [], None
    while True:
        page = sandbox.session.get(
            f"{sandbox.url}/crm/v3/lists/{list_id}/memberships",
            params={"limit": 250, **({"after": after} if after else {})},
        ).json()
        members += [m["recordId"] for m in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return members


def test_rerun_adopts_the_same_list(seeded, hubspot_conn):
    first = run_operator(unengaged_op())
    second = run_operator(unengaged_op())
    assert first["list_id"] == second["list_id"]
    assert len(lists_named(seeded, "c · unengaged")) == 1


def test_name_taken_by_another_definition_fails_clearly(seeded, hubspot_conn):
    run_operator(unengaged_op())
    with pytest.raises(ListDefinitionConflict, match="different definition"):
        run_operator(unengaged_op(weeks=26))


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(seeded, hubspot_conn):
    seeded.admin("POST", "faults", {"endpoint": "lists.create", "kind": "drop_after", "count": 1})
    result = run_operator(unengaged_op())
    assert [item["listId"] for item in lists_named(seeded, "c · unengaged")] == [result["list_id"]]


def test_manual_list_needs_no_segment_and_snapshot_needs_one():
    EnsureListOperator(task_id="m", list_name="x", processing_type="MANUAL")
    with pytest.raises(ValueError, match="segment"):
        EnsureListOperator(task_id="s", list_name="x", processing_type="SNAPSHOT")
    with pytest.raises(ValueError, match="processing_type"):
        EnsureListOperator(task_id="t", list_name="x", processing_type="STATIC")


def test_list_link_points_at_the_portal(seeded, hubspot_conn):
    op = unengaged_op()
    result = run_operator(op)
    assert op.hubspot_url == f"https://app.hubspot.com/contacts/46801234/objectLists/{result['list_id']}/filters"


class PreflightResult:
    """A task instance whose ``xcom_pull`` gives preflight's result (as in a DAG run)."""

    def __init__(self, result: dict | None) -> None:
        self.result = result

    def xcom_pull(self, task_ids: str):
        return self.result if task_ids == "preflight" else None


@pytest.mark.parametrize(
    ("preflight", "lookups"), [({"portal_id": "46801234", "ui_domain": "app.hubspot.com"}, 0), (None, 1)]
)
def test_the_link_takes_the_portal_from_preflight_and_looks_it_up_only_without_it(
    seeded, hubspot_conn, preflight, lookups
):
    op = unengaged_op()
    op.portal_from = "preflight"
    seeded.admin("DELETE", "calls")
    result = run_operator(op, {"ti": PreflightResult(preflight)})
    assert op.hubspot_url == f"https://app.hubspot.com/contacts/46801234/objectLists/{result['list_id']}/filters"
    assert calls(seeded, "account.details") == lookups


def test_a_list_and_an_export_ready_within_half_a_second_are_each_checked_once(seeded, hook, tmp_path):
    """The task has just seen PROCESSING, so the wait pauses before its first check instead of after."""
    seeded.admin("DELETE", "calls")
    op = unengaged_op()
    op.poll_interval = 5.0  # the DAG's default: the first check comes after 0.5 s, the sandbox takes 0.3 s
    result = run_operator(op)
    assert calls(seeded, "lists.get") == 1
    run_operator(
        ExportListOperator(
            task_id="export_unconfirmed", list_id=result["list_id"], campaign="c", export_base=f"file://{tmp_path}"
        ),
        {"run_id": "manual__once"},
    )
    # Once by the trigger, once more by the task for a download URL that has not had time to expire.
    assert calls(seeded, "exports.status") == 2


def test_export_writes_the_list_as_a_private_csv_and_reuses_it(seeded, hook, tmp_path):
    ids = contact_ids(seeded, "never_confirm")[:40]
    list_id = make_list(hook, "to export", ids)
    base = ObjectStoragePath(f"file://{tmp_path}/exports")
    op = ExportListOperator(
        task_id="export_unconfirmed", list_id=list_id, campaign="c 2026-Q4", export_base=str(base), poll_interval=0.1
    )
    result = run_operator(op, {"run_id": "manual__1"})
    assert result["rows"] == 40
    path = ObjectStoragePath(result["export_uri"])
    frame = pd.read_csv(path.path, dtype="string")
    assert list(frame.columns) == ["contact_id", "email", "run_id"]
    assert sorted(frame["contact_id"], key=int) == sorted(ids, key=int)
    assert set(frame["run_id"]) == {"manual__1"}
    assert stat.S_IMODE(os.stat(path.path).st_mode) == 0o600
    again = run_operator(
        ExportListOperator(task_id="export_unconfirmed", list_id=list_id, campaign="c 2026-Q4", export_base=str(base)),
        {"run_id": "manual__1"},
    )
    assert again == result
    assert seeded.admin("GET", "calls")["exports.start"]["calls"] == 1


# -- exports as HubSpot hands them out ------------------------------------------------------------------------


def export_op(list_id: str, base) -> ExportListOperator:
    return ExportListOperator(
        task_id="export_unconfirmed", list_id=list_id, campaign="c 2026-Q4", export_base=str(base), poll_interval=0.1
    )


def exported_ids(result: dict) -> list[str]:
    frame = pd.read_csv(ObjectStoragePath(result["export_uri"]).path, dtype="string")
    return sorted(frame["contact_id"], key=int)


def first_event(trigger) -> dict:
    async def run():
        async for event in trigger.run():
            return event.payload
        raise AssertionError("trigger ended without an event")

    return asyncio.run(run())


def deferred_export(seeded, hook, tmp_path, name: str):
    """An export of 12 contacts started and deferred, and the trigger's event: ready to resume."""
    ids = contact_ids(seeded, "never_confirm")[:12]
    op = export_op(make_list(hook, name, ids), ObjectStoragePath(f"file://{tmp_path}/exports"))
    context = {"run_id": "manual__1"}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    return ids, op, context, first_event(deferred.value.trigger)


def test_a_task_resuming_after_its_url_expired_downloads_through_a_new_one(seeded, hook, tmp_path):
    ids, op, context, event = deferred_export(seeded, hook, tmp_path, "expiring export")
    seeded.admin("POST", "clock", {"advance_seconds": 301})  # the task resumes after the five minutes

    result = op.execute_complete(context, event)
    assert result["rows"] == len(ids) and exported_ids(result) == sorted(ids, key=int)


def test_an_expiry_answer_to_the_download_is_met_with_a_new_url(seeded, hook, tmp_path):
    ids, op, context, event = deferred_export(seeded, hook, tmp_path, "expiring twice")
    real_status, urls = op.hook.export_status, []

    def status_then_expire(task_id):
        answer = real_status(task_id)
        urls.append(answer["result"])
        if len(urls) == 1:  # the first URL expires between the status answer and the download
            seeded.admin("POST", "clock", {"advance_seconds": 301})
        return answer

    op.hook.export_status = status_then_expire
    result = op.execute_complete(context, event)
    assert len(urls) == 2 and urls[0] != urls[1]
    assert exported_ids(result) == sorted(ids, key=int)


def test_a_rerun_reuses_the_export_already_started_instead_of_starting_another(seeded, hook, tmp_path):
    ids = contact_ids(seeded, "never_confirm")[:12]
    list_id = make_list(hook, "started once", ids)
    base = ObjectStoragePath(f"file://{tmp_path}/exports")
    context = {"run_id": "manual__1"}
    with pytest.raises(TaskDeferred) as first:
        export_op(list_id, base).execute(context)  # the worker is lost while the export is PROCESSING
    with pytest.raises(TaskDeferred) as second:
        export_op(list_id, base).execute(context)
    assert second.value.trigger.export_task_id == first.value.trigger.export_task_id

    task_id = first.value.trigger.export_task_id
    deadline = time.monotonic() + 10
    while hook.export_status(task_id)["status"] != "COMPLETE":
        assert time.monotonic() < deadline, "the export did not complete"
        time.sleep(0.05)
    result = export_op(list_id, base).execute(context)  # a rerun once it is COMPLETE downloads it at once
    assert exported_ids(result) == sorted(ids, key=int)
    assert calls(seeded, "exports.start") == 1


def test_running_out_of_daily_exports_is_a_permanent_error_that_says_nobody_was_changed(seeded, hook, tmp_path):
    list_id = make_list(hook, "one too many", contact_ids(seeded, "never_confirm")[:3])
    for _ in range(30):
        hook.start_export(
            {
                "exportType": "LIST",
                "listId": list_id,
                "objectType": "CONTACT",
                "objectProperties": ["email"],
                "format": "CSV",
                "language": "EN",
                "exportName": "x",
                "exportInternalValuesOptions": ["NAMES"],
                "associatedObjectType": [],
                "includeLabeledAssociations": False,
                "includePrimaryDisplayPropertyForAssociatedObjects": False,
                "overrideAssociatedObjectsPerDefinitionPerRowLimit": False,
            }
        )
    with pytest.raises(HubSpotExportLimitError) as err:
        export_op(list_id, ObjectStoragePath(f"file://{tmp_path}/exports")).execute({"run_id": "manual__1"})
    assert isinstance(err.value, AirflowFailException)  # Airflow does not retry it
    assert "Nobody was opted out" in str(err.value) and "Rerun this task" in str(err.value)
    assert calls(seeded, "exports.start") == 31  # asked once, not retried


@pytest.fixture(scope="module")
def zipping_sandbox(tmp_path_factory):
    """A portal that zips every export over 100 bytes and puts 7 rows in each CSV, as HubSpot does at 2 MB."""
    folder = tmp_path_factory.mktemp("zipping")
    args = [*FAST, "--export-zip-bytes", "100", "--export-rows-per-file", "7"]
    with SandboxProcess(folder / "portal.db", args=args) as server:
        yield server


def test_a_zipped_export_of_several_csvs_is_unzipped_as_a_stream(zipping_sandbox, monkeypatch, tmp_path):
    from reengagement.hook import HubSpotHook

    zipping_sandbox.admin("POST", "reset")
    zipping_sandbox.admin("POST", "seed", {"contacts": 120, "seed": 5})
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(zipping_sandbox.url, zipping_sandbox.token))
    ids = contact_ids(zipping_sandbox)[:20]
    list_id = make_list(HubSpotHook(), "zipped", ids)
    result = run_operator(export_op(list_id, ObjectStoragePath(f"file://{tmp_path}/exports")), {"run_id": "manual__1"})
    assert result["rows"] == 20 and exported_ids(result) == sorted(ids, key=int)
