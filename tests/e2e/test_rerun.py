"""Clearing and rerunning any task of a finished campaign changes nothing in HubSpot; no secret leaks."""

from __future__ import annotations

import json
import re
from argparse import Namespace
from collections import Counter

from tests.e2e.conftest import states

#: Tasks that talk to nobody (branches, the watcher) or wait for a person are not rerun here.
NOT_RERUN = {"approve_opt_out", "fail_if_any_step_failed"}
EMAIL_ADDRESS = re.compile(r"[^@\s\"']+@[^@\s\"']+\.[a-z]{2,}", re.IGNORECASE)


def rerun(campaign, dag_run, task_id: str) -> str:
    """What `airflow tasks test <dag> <task> <run id>` does: run one task again inside the finished run."""
    from airflow.cli.commands.task_command import task_test

    task_test(
        Namespace(
            dag_id=campaign.dag.dag_id,
            task_id=task_id,
            logical_date_or_run_id=dag_run.run_id,
            map_index=-1,
            env_vars=None,
            task_params=None,
            post_mortem=False,
            bundle_name=None,
        ),
        dag=campaign.dag,
    )
    return task_id


def hubspot_state(campaign) -> dict:
    emails = campaign.emails()
    return {
        "lists": Counter(item["name"] for item in campaign.lists()),
        "emails": Counter(e["name"] for e in emails),
        "sends": {e["name"]: Counter(campaign.recipients(e["id"])) for e in emails},
        "changes": Counter(c["contactId"] for c in campaign.status_changes()),
    }


def test_every_task_rerun_after_the_run_changes_nothing(campaign):
    campaign.seed()
    dag_run = campaign.run(rounds=2)
    assert str(dag_run.state) == "success", states(dag_run)
    before = hubspot_state(campaign)
    assert set(before["lists"].values()) == {1}
    assert all(set(sends.values()) == {1} for sends in before["sends"].values())
    ran = [t for t, state in states(dag_run).items() if state == "success" and t not in NOT_RERUN]
    for task_id in ran:
        rerun(campaign, dag_run, task_id)
    after = hubspot_state(campaign)
    assert after == before, "a rerun changed HubSpot"
    assert set(after["changes"]) == campaign.truth(2)["opt_out"]
    assert len(ran) > 15


def test_no_token_or_contact_data_in_xcom_rendered_fields_or_logs(campaign, capfd):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    campaign.seed()
    dag_run = campaign.run(rounds=1)
    assert str(dag_run.state) == "success", states(dag_run)
    token = campaign.sandbox.token
    with create_session() as session:
        xcoms = session.scalars(select(XComModel).where(XComModel.run_id == dag_run.run_id)).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.run_id == dag_run.run_id)
        ).all()
        xcom_text = [json.dumps(x.value, default=str) for x in xcoms]
        rendered_text = [json.dumps(r.rendered_fields, default=str) for r in rendered]
    logs = capfd.readouterr()
    assert len(xcom_text) > 20 and len(rendered_text) > 10  # something real was scanned
    for text in xcom_text + rendered_text + [logs.out, logs.err]:
        assert token not in text
    for text in xcom_text:
        assert not EMAIL_ADDRESS.search(text), f"contact data in XCom: {text[:200]}"


#: Each write the campaign makes, answered and then cut off once (the change was applied, the answer lost);
#: plus random 5xx and 429s on every endpoint.
LOST_ANSWERS = [
    "lists.create",
    "emails.create",
    "emails.publish",
    "lists.memberships_add",
    "subscriptions.v4.batch_unsubscribe_all",
]


def test_lost_answers_and_random_errors_leave_the_same_outcome(campaign):
    campaign.seed()
    for endpoint in LOST_ANSWERS:
        # skip=1: preflight probes publish once with a non-existent email first.
        campaign.sandbox.admin(
            "POST",
            "faults",
            {"endpoint": endpoint, "kind": "drop_after", "count": 1, "skip": 1 if endpoint == "emails.publish" else 0},
        )
    campaign.sandbox.admin(
        "POST", "faults", {"endpoint": "*", "kind": "error", "status": 503, "probability": 0.05, "seed": 11}
    )
    campaign.sandbox.admin("POST", "faults", {"endpoint": "*", "kind": "rate_limit", "probability": 0.05, "seed": 12})
    dag_run = campaign.run(rounds=2)
    assert str(dag_run.state) == "success", states(dag_run)
    fired = {f["endpoint"]: f["fired"] for f in campaign.sandbox.admin("GET", "faults")["faults"]}
    assert all(fired[e] == 1 for e in LOST_ANSWERS), fired
    campaign.sandbox.admin("DELETE", "faults")  # read the outcome without faults
    state = hubspot_state(campaign)
    assert set(state["lists"].values()) == {1} and set(state["emails"].values()) == {1}
    assert all(set(sends.values()) == {1} for sends in state["sends"].values())
    assert set(state["changes"].values()) == {1}
    assert set(state["changes"]) == campaign.truth(2)["opt_out"]
