"""The campaign report is HubSpot's facts and the audit ledger: right against the ground truth, and the same after
the opt-out and the report are rerun."""

from __future__ import annotations

import csv
import io

from airflow.models.xcom import XComModel
from airflow.sdk import ObjectStoragePath
from airflow.utils.session import create_session
from reengagement import audit
from sqlalchemy import select

from tests.e2e.conftest import states
from tests.e2e.test_rerun import rerun


def xcom(dag_run, task_id: str) -> dict:
    with create_session() as session:
        found = session.scalars(
            select(XComModel).where(
                XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id, XComModel.key == "return_value"
            )
        ).one()
        return found.value


def list_size(campaign, list_id: str) -> int:
    found = campaign.sandbox.session.get(f"{campaign.sandbox.url}/crm/v3/lists/{list_id}").json()
    return int(found["list"]["size"])


def test_the_report_equals_the_ground_truth_and_a_rerun_rewrites_it_byte_for_byte(campaign):
    campaign.seed()
    dag_run = campaign.run(rounds=2)
    assert str(dag_run.state) == "success", states(dag_run)
    (table,) = campaign.exports.glob("*/*/report.csv")
    page = table.with_name("report.html")
    written, written_page = table.read_bytes(), page.read_bytes()
    first, second = csv.DictReader(io.StringIO(written.decode()))
    figures = [{k: int(v) for k, v in row.items() if v.isdigit()} for row in (first, second)]

    truth_1, truth_2 = campaign.truth(1), campaign.truth(2)
    email = {e["name"].rsplit(" · ", 2)[-2]: e["id"] for e in campaign.emails()}
    sent = {k: set(campaign.recipients(email[f"r{k}"])) for k in (1, 2)}
    recipients = {
        int(x["name"].rsplit(" · ", 2)[-2][1:]): list_size(campaign, x["listId"])
        for x in campaign.lists()
        if x["name"].endswith("· recipients")
    }
    confirmed_1 = truth_1["confirmed"] & sent[1]
    confirmed_2 = (truth_2["confirmed"] - confirmed_1) & (sent[1] | sent[2])
    assert len(truth_2["unengaged"]) == recipients[1] > 100
    for k, row in enumerate(figures, start=1):
        metrics = xcom(dag_run, f"round_{k}.review_metrics")
        assert row["recipients"] == recipients[k]
        assert row["sent"] == len(sent[k]) and row["never_sent"] == recipients[k] - len(sent[k])
        assert (row["delivered"], row["opened"]) == (metrics["delivered"], metrics["open"])
    assert [first["round"], second["round"]] == ["1", "2"]
    assert figures[0]["cohort"] == xcom(dag_run, "build_unengaged_list")["size"] == len(truth_2["unengaged"])
    assert [r["confirmed"] for r in figures] == [len(confirmed_1), len(confirmed_2)] and len(confirmed_2) > 0
    assert figures[0]["unconfirmed"] == len(sent[1]) - len(confirmed_1) == figures[1]["cohort"]
    assert figures[1]["unconfirmed"] == len(sent[1] | sent[2]) - len(confirmed_1 | confirmed_2)
    # Those who unsubscribed through round 1's email (or bounced) are still in list 2; HubSpot skips them in round 2.
    assert [r["unsubscribed_themselves"] for r in figures] == [len(truth_2["unsubscribed_themselves"]), 0]
    assert figures[1]["never_sent"] >= len(truth_2["unsubscribed_themselves"]) > 0
    assert second["opt_out"] == "done" and first["opt_out"] == ""
    assert figures[1]["opted_out"] == len(campaign.opted_out()) == len(truth_2["opt_out"])
    assert (figures[1]["already_opted_out"], figures[1]["errors"]) == (0, 0)
    text = written_page.decode()
    assert "<th>rounds</th><td>2</td>" in text and "Events counted up to" in text and "Definitions" in text

    # A user clears list 1 and everything after it: the rebuilt lists, a second opt-out that finds everybody
    # already opted out, and the report read the same facts again.
    for task_id in (
        "round_1.build_confirmed_list",
        "round_1.build_unconfirmed_list",
        "refresh_confirmed_list",
        "opt_out_unconfirmed",
        "campaign_report",
    ):
        rerun(campaign, dag_run, task_id)
    assert xcom(dag_run, "opt_out_unconfirmed")["opted_out"] == 0  # what the old report showed
    assert table.read_bytes() == written
    assert page.read_bytes() == written_page

    # Asked again now, the approval would count only those no try of this run has opted out yet.
    rerun(campaign, dag_run, "check_guards")
    guards, rows = xcom(dag_run, "check_guards"), xcom(dag_run, "export_unconfirmed")["rows"]
    ledger = audit.read_ledger(audit.ledger_folder(ObjectStoragePath(f"file://{table.parent}")), dag_run.run_id)
    assert guards["to_opt_out"] == rows and guards["already_opted_out"] == len(audit.opted_out_ids(ledger)) > 0
    assert guards["would_change"] == rows - guards["already_opted_out"] < rows
