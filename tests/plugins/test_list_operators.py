"""List operators against the sandbox: one list per name, adopt on rerun, defer while PROCESSING."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from reengagement.operators.lists import EnsureListOperator, ExportListOperator, ListDefinitionConflict

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import calls, contact_ids, make_list, run_operator


def unengaged_op(name: str = "c · unengaged", weeks: int = 52) -> EnsureListOperator:
    return EnsureListOperator(task_id="build_unengaged_list", list_name=name, processing_type="DYNAMIC",
                              segment="unengaged", poll_interval=0.1,
                              segment_args={"subscription_id": str(MARKETING_SUBSCRIPTION_ID),
                                            "inactivity_weeks": weeks})


def lists_named(sandbox, name: str) -> list[dict]:
    found = sandbox.session.post(f"{sandbox.url}/crm/v3/lists/search", json={
        "query": name, "offset": 0, "count": 500, "additionalProperties": []}).json()["lists"]
    return [item for item in found if item["name"] == name]


def test_unengaged_list_holds_exactly_the_seeded_ground_truth(seeded, hubspot_conn):
    result = run_operator(unengaged_op())
    truth = seeded.admin("GET", "ground-truth", rounds=1)["unengaged"]
    assert result["size"] == len(truth)
    members = set(hubspot_conn.session.get(
        f"{seeded.url}/crm/v3/lists/{result['list_id']}/memberships", params={"limit": 250}).json()["results"]
        and _all_members(seeded, result["list_id"]))
    assert members == set(truth)


def _all_members(sandbox, list_id: str) -> list[str]:
    members, after = [], None
    while True:
        page = sandbox.session.get(f"{sandbox.url}/crm/v3/lists/{list_id}/memberships",
                                   params={"limit": 250, **({"after": after} if after else {})}).json()
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


@pytest.mark.parametrize(("preflight", "lookups"), [({"portal_id": "46801234", "ui_domain": "app.hubspot.com"}, 0),
                                                    (None, 1)])
def test_the_link_takes_the_portal_from_preflight_and_looks_it_up_only_without_it(seeded, hubspot_conn, preflight,
                                                                                   lookups):
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
    run_operator(ExportListOperator(task_id="export_unconfirmed", list_id=result["list_id"], campaign="c",
                                    export_base=f"file://{tmp_path}"), {"run_id": "manual__once"})
    assert calls(seeded, "exports.status") == 1


def test_export_writes_the_list_as_a_private_csv_and_reuses_it(seeded, hook, tmp_path):
    ids = contact_ids(seeded, "never_confirm")[:40]
    list_id = make_list(hook, "to export", ids)
    base = ObjectStoragePath(f"file://{tmp_path}/exports")
    op = ExportListOperator(task_id="export_unconfirmed", list_id=list_id, campaign="c 2026-Q4",
                            export_base=str(base), poll_interval=0.1)
    result = run_operator(op, {"run_id": "manual__1"})
    assert result["rows"] == 40
    path = ObjectStoragePath(result["export_uri"])
    frame = pd.read_csv(path.path, dtype="string")
    assert list(frame.columns) == ["contact_id", "email", "run_id"]
    assert sorted(frame["contact_id"], key=int) == sorted(ids, key=int)
    assert set(frame["run_id"]) == {"manual__1"}
    assert stat.S_IMODE(os.stat(path.path).st_mode) == 0o600
    again = run_operator(ExportListOperator(task_id="export_unconfirmed", list_id=list_id, campaign="c 2026-Q4",
                                            export_base=str(base)), {"run_id": "manual__1"})
    assert again == result
    assert seeded.admin("GET", "calls")["exports.start"]["calls"] == 1
