"""Notifications, as people get them: a local SMTP server receives what a run sends when a step fails, when the
opt-out waits for approval, and when the run finishes; only ids, counts and links, never a contact's address."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import states
from tests.e2e.test_scenarios import answer_approval
from tests.support.inbox import SmtpServer


@pytest.fixture
def inbox(monkeypatch):
    with SmtpServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection())
        yield server.inbox


def test_an_approval_and_a_finished_run_are_told_to_the_runs_addresses(campaign, inbox):
    seeded = campaign.seed()
    dag_run = campaign.run(
        rounds=1, require_approval=True, notify_emails=["ops@example.com"], during=answer_approval(campaign, "Approve")
    )
    assert str(dag_run.state) == "success", states(dag_run)
    subjects = inbox.subjects()
    assert len(subjects) == 2, subjects
    truth = campaign.truth(1)
    approval = next(s for s in subjects if "approve the opt-out" in s)
    assert all(m["To"] == "ops@example.com" for m in inbox.messages)
    body = inbox.body("approve the opt-out")
    assert "/reengagement/runs/hubspot_reengagement/" in body and "/dags/hubspot_reengagement/runs/" in body
    finished = inbox.body("finished")
    assert f"{len(truth['opt_out'])} opted out" in finished and "1 round(s)" in finished
    assert approval.endswith("contacts?")
    # Counts and links only: no contact's address in any message.
    addresses = {c["email"] for c in campaign.sandbox.admin("GET", "contacts")["results"] if c.get("email")}
    everything = "".join(m.as_string() for m in inbox.messages)
    assert seeded["contacts"] and not any(address in everything for address in addresses)


def test_a_failed_step_is_told_once_with_its_first_error_line_to_the_variables_addresses(campaign, inbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_HUBSPOT_REENGAGEMENT_NOTIFICATIONS", json.dumps({"emails": ["platform@example.com"]})
    )
    campaign.seed()
    dag_run = campaign.run(rounds=1, focus_email="No such newsletter")
    assert states(dag_run)["preflight"] == "failed"
    (message,) = inbox.messages  # the watcher that fails the run after it does not tell again
    assert message["Subject"].endswith("step preflight failed") and message["To"] == "platform@example.com"
    body = inbox.body("step preflight failed")
    assert "The campaign cannot start:" in body and "Run: " in body


def test_without_addresses_nothing_is_sent(campaign, inbox):
    campaign.seed()
    dag_run = campaign.run(rounds=1, focus_email="No such newsletter")
    assert states(dag_run)["preflight"] == "failed"
    assert inbox.messages == []
