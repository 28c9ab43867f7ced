"""The campaign's decisions, each operator on its own: branches, the guards (with the audit ledger), approval,
the watcher; and the macros the DAG's templates use."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException
from reengagement import audit, macros
from reengagement.operators.flow import (
    AnotherRoundOperator,
    CheckGuardsOperator,
    FailIfAnyFailedOperator,
    GuardTripped,
    HasUnengagedOperator,
    NeedsApprovalOperator,
)

RUN_ID = "manual__q4"


@pytest.mark.parametrize(("size", "branch"), [(0, "campaign_report"), (12, "round_1.build_recipients_list")])
def test_an_empty_unengaged_list_goes_straight_to_the_report(size, branch):
    op = HasUnengagedOperator(
        task_id="has_unengaged",
        unengaged={"size": size},
        first_round="round_1.build_recipients_list",
        when_empty="campaign_report",
    )
    assert op.choose_branch({}) == branch


@pytest.mark.parametrize(
    ("round_no", "rounds", "left", "branch"),
    [(1, 3, 40, "next"), (1, 1, 40, "opt_out"), (2, 3, 0, "opt_out"), (3, 3, 40, "opt_out")],
)
def test_another_round_only_when_asked_for_and_someone_is_left(round_no, rounds, left, branch):
    op = AnotherRoundOperator(
        task_id=f"another_round_{round_no}",
        round_no=round_no,
        rounds=str(rounds),
        unconfirmed={"size": left},
        next_round="next",
        opt_out_path="opt_out",
    )
    assert op.choose_branch({}) == branch


@pytest.mark.parametrize(("required", "branch"), [("True", ["approve"]), (False, ["opt_out"]), ("false", ["opt_out"])])
def test_approval_only_when_the_run_asks_for_it(required, branch):
    op = NeedsApprovalOperator(
        task_id="needs_approval", require_approval=required, approval_task="approve", opt_out_task="opt_out"
    )
    assert list(op.choose_branch({})) == branch


def test_the_watcher_fails_without_retries():
    with pytest.raises(AirflowFailException, match="A task of this campaign failed"):
        FailIfAnyFailedOperator(task_id="fail_if_any_step_failed").execute({})
    assert FailIfAnyFailedOperator(task_id="w").trigger_rule == "one_failed"


def export_with(folder, ids: list[str]) -> dict:
    """An export of list 2 as the export task writes it, in the run's folder."""
    path = folder / "unconfirmed.csv"
    pd.DataFrame({"contact_id": ids, "email": [f"c{i}@example.com" for i in ids], "run_id": RUN_ID}).to_csv(
        path, index=False
    )
    return {"export_uri": f"file://{path}", "rows": len(ids)}


def guards(export: dict, metrics=None) -> CheckGuardsOperator:
    metrics = metrics if metrics is not None else [{"sent": 100, "delivered": 100, "click": 10}, None, None]
    return CheckGuardsOperator(
        task_id="check_guards",
        metrics=json.dumps(metrics),
        export=export,
        confirmed={"confirmed": 10},
        max_fraction="0.95",
    )


def test_the_guards_count_whom_an_earlier_try_already_opted_out(tmp_path):
    run = tmp_path / "campaign" / "run"
    run.mkdir(parents=True)
    export = export_with(run, [str(i) for i in range(1, 61)])
    first = guards(export).execute({"run_id": RUN_ID})
    assert (first["to_opt_out"], first["already_opted_out"], first["would_change"]) == (60, 0, 60)

    ledger = audit.LedgerPart(audit.ledger_folder(ObjectStoragePath(f"file://{run}")), "t0__run__try-1")
    with ledger:
        reasons = ["UNSUBSCRIBE_FROM_ALL_OCCURRED"] * 30 + ["NO_STATUS_CHANGE"] * 5 + [""] * 5
        statuses = ["UNSUBSCRIBED"] * 35 + ["ERROR"] * 5
        ledger.write(
            pd.DataFrame(
                [
                    ("t", RUN_ID, "1", str(i), f"c{i}@example.com", "all_email", "", "B", "E", "", "", status, reason)
                    for i, status, reason in zip(range(1, 41), statuses, reasons, strict=True)
                ],
                columns=audit.COLUMNS,
            )
        )
    again = guards(export).execute({"run_id": RUN_ID})
    # 30 changed and 5 already opted out count; the 5 errors and the 20 never asked would still change.
    assert (again["already_opted_out"], again["would_change"]) == (35, 25)


def test_the_guards_read_skipped_rounds_as_absent_and_refuse_with_the_numbers(tmp_path):
    export = export_with(tmp_path, [str(i) for i in range(1, 100)])
    with pytest.raises(GuardTripped, match="Nobody was opted out") as tripped:
        guards(export, [{"sent": 100, "delivered": 100, "click": 0}, None]).execute({"run_id": RUN_ID})
    assert "disagrees" in str(tripped.value) or "more than" in str(tripped.value)


class FakeTi:
    dag_id, run_id = "hubspot_reengagement", "manual__2026-12-01T00:00:00+00:00"

    def __init__(self, results: dict) -> None:
        self.results = results

    def xcom_pull(self, task_ids):
        if isinstance(task_ids, list):
            return [self.results.get(t) for t in task_ids]
        return self.results.get(task_ids)


def test_outputs_of_renders_every_round_as_json_with_none_for_skipped_rounds():
    ti = FakeTi({"round_1.send_email": {"email_id": "5"}})
    rendered = macros.outputs_of(ti, "round_1.send_email", "round_2.send_email")
    assert json.loads(rendered) == [{"email_id": "5"}, None]
    assert macros.outputs("a", "b") == "{{ outputs_of(ti, 'a', 'b') }}"


def test_served_url_of_links_a_run_file_by_its_name(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    url = macros.served_url_of(FakeTi({}), "s3://bucket/exports/c/run/unconfirmed.csv")
    assert url == (
        "https://airflow.example.com/reengagement/runs/hubspot_reengagement/"
        "manual__2026-12-01T00%3A00%3A00%2B00%3A00/files/unconfirmed.csv"
    )


def test_name_and_result_macros_read_preflights_campaign():
    ti = FakeTi({"preflight": {"campaign": "q4"}, "build_unengaged_list": {"list_id": "7"}})
    assert macros.campaign_of(ti) == "q4"
    assert "q4" in macros.name_of(ti, "unengaged")
    assert macros.result_of(ti, "build_unengaged_list", "list_id") == "7"
    assert macros.campaign_or_param(FakeTi({}), {"campaign": "given"}) == "given"
    assert macros.ref("t", "k") == "{{ result_of(ti, 't', 'k') }}"
