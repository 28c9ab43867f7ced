"""Campaign scenarios: late confirmations, the wait, dry run, guards, empty and full cohorts, approval."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from reengagement.campaign import default_campaign

from tests.e2e.conftest import states

CAMPAIGN_ID = default_campaign("hubspot_reengagement", dt.datetime.now(dt.timezone.utc))


def test_late_click_and_hand_added_contact_are_spared(campaign):
    campaign.seed()
    late, by_hand = (c["id"] for c in campaign.contacts("never_confirm")[:2])

    def confirm_late() -> None:
        list_two = campaign.wait_for_list("· r1 · unconfirmed")
        campaign.confirm_late(clicker=late, by_hand=by_hand, campaign_id=CAMPAIGN_ID)
        assert list_two["listId"]

    dag_run = campaign.run(rounds=2, during=confirm_late)
    assert str(dag_run.state) == "success", states(dag_run)
    assert campaign.opted_out() == campaign.truth(2)["opt_out"] - {late, by_hand}


def test_the_wait_is_measured_from_the_send_even_when_the_send_is_late(campaign):
    campaign.seed()
    # The first publish call is preflight's capability probe; the second is the send.
    campaign.sandbox.admin(
        "POST", "faults", {"endpoint": "emails.publish", "kind": "latency", "seconds": 6, "skip": 1, "count": 1}
    )
    dag_run = campaign.run(rounds=1)
    assert str(dag_run.state) == "success", states(dag_run)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    sent_at = dt.datetime.fromisoformat(
        tis["round_1.send_email"].xcom_pull(task_ids="round_1.send_email")["sent_at"].replace("Z", "+00:00")
    )
    waited_until = tis["round_1.wait_for_responses"].end_date
    assert waited_until - sent_at >= dt.timedelta(seconds=4)
    assert waited_until - dag_run.start_date >= dt.timedelta(seconds=10)  # 6 s late send + the 4 s window


def test_dry_run_changes_no_subscription_and_writes_the_would_be_opt_out(campaign):
    import pandas as pd

    campaign.seed()
    dag_run = campaign.run(rounds=1, dry_run=True)
    assert str(dag_run.state) == "success", states(dag_run)
    assert campaign.status_changes() == []
    (would_be,) = campaign.exports.glob("*/*/opt_out_dry_run.try-*.csv")
    frame = pd.read_csv(would_be, dtype="string")
    # Rows of list 2 HubSpot never sent, or who confirmed, are written as SKIPPED, not as would-be opt-outs.
    would_be = frame[(frame["status"] == "DRY_RUN") & (frame["reason"] == "would be opted out")]
    assert set(would_be["contact_id"]) == campaign.truth(1)["opt_out"]
    assert set(frame["status"]) <= {"DRY_RUN", "SKIPPED"}


def guard_failure(dag_run) -> None:
    got = states(dag_run)
    assert str(dag_run.state) == "failed"
    assert got["check_guards"] == "failed"
    assert got["opt_out_unconfirmed"] == "upstream_failed"
    assert got["campaign_report"] == "success"


def test_guard_no_clicks_tracked(campaign):
    campaign.seed()
    campaign.sandbox.admin("PUT", "tracking", {"clicks": False})
    guard_failure(campaign.run(rounds=1, max_opt_out_fraction=1.0))
    assert campaign.status_changes() == []


def test_guard_list_one_disagrees_with_click_stats(campaign):
    campaign.seed()
    # A designed template whose first link (a logo) catches the clicks: HubSpot counts clicks, none on the CTA.
    template = campaign.sandbox.session.post(
        f"{campaign.sandbox.url}/marketing/v3/emails",
        json={
            "name": "designed",
            "subject": "x",
            "content": {
                "widgets": {
                    "main": {
                        "id": "main",
                        "name": "main",
                        "type": "module",
                        "body": {
                            "html": '<a href="https://www.example.com/logo">Logo</a> '
                            '<a href="{{ confirm_url }}">Yes, keep me subscribed</a>'
                        },
                    }
                }
            },
        },
    ).json()
    guard_failure(campaign.run(rounds=1, template_email_id=template["id"], max_opt_out_fraction=1.0))
    assert campaign.status_changes() == []


def test_guard_fraction_above_the_limit(campaign):
    campaign.seed()
    guard_failure(campaign.run(rounds=1, max_opt_out_fraction=0.3))
    assert campaign.status_changes() == []


def test_nobody_unengaged_ends_cleanly_with_nothing_sent(campaign):
    campaign.seed(contacts=60, profiles={"engaged": 1, "already_unsubscribed": 1})
    dag_run = campaign.run(rounds=2)
    got = states(dag_run)
    assert str(dag_run.state) == "success", got
    assert got["round_1.send_email"] == "skipped" and got["campaign_report"] == "success"
    assert campaign.emails() == [] and campaign.status_changes() == []
    (report,) = campaign.exports.glob("*/*/report.html")
    assert "nobody is unengaged" in report.read_text()


def test_everyone_confirmed_opts_out_nobody(campaign):
    campaign.seed(contacts=120, profiles={"engaged": 1, "confirm_r1": 1})
    dag_run = campaign.run(rounds=2)
    got = states(dag_run)
    assert str(dag_run.state) == "success", got
    assert got["round_2.send_email"] == "skipped"
    assert got["opt_out_unconfirmed"] == "success"
    assert campaign.status_changes() == []


def answer_approval(campaign, choice: str):
    """Answer the run's approval like the UI's PATCH .../hitlDetails does, until the approval task has moved on.

    ``dag.test()`` records the state a task ended in only once the task's in-process run has returned: an answer
    that lands in between is overwritten by ``awaiting_input``, and the run would wait forever. So the answer is
    given again whenever the task is (still, or again) awaiting input, until it has finished.
    """

    def answer() -> None:
        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import State, TaskInstanceState
        from sqlalchemy import select
        from sqlalchemy.exc import OperationalError

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with create_session() as session:
                    ti = session.scalar(
                        select(TaskInstance)
                        .join(TaskInstance.dag_run)
                        .where(TaskInstance.task_id == "approve_opt_out", DagRun.logical_date == campaign.logical_date)
                    )
                    if ti is not None and ti.state in State.finished:
                        return
                    if ti is not None and ti.state == TaskInstanceState.AWAITING_INPUT:
                        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
                        detail.responded_by = {"id": "pytest", "name": "pytest"}
                        detail.responded_at = timezone.utcnow()
                        detail.chosen_options = [choice]
                        detail.params_input = {}
                        handle_event_submit(
                            TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
                        )
            except OperationalError:  # SQLite busy with the run's own writes: look again
                pass
            time.sleep(0.5)
        raise AssertionError(f"approve_opt_out, answered {choice!r}, did not finish within 300 s")

    # SQLAlchemy must configure its mappers in the main thread first, or the two threads deadlock.
    import airflow.models  # noqa: F401
    from airflow.models.backfill import Backfill  # noqa: F401
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    return answer


@pytest.mark.parametrize("choice", ["Approve", "Reject"])
def test_approval_gates_the_opt_out(campaign, choice):
    campaign.seed()
    dag_run = campaign.run(rounds=1, require_approval=True, during=answer_approval(campaign, choice))
    got = states(dag_run)
    assert str(dag_run.state) == "success", got
    if choice == "Approve":
        assert campaign.opted_out() == campaign.truth(1)["opt_out"]
    else:
        assert got["opt_out_unconfirmed"] == "skipped"
        assert campaign.status_changes() == []
        (report,) = campaign.exports.glob("*/*/report.html")
        assert "rejected" in report.read_text()
