"""What each notification says and to whom, without a mail server: the audience from params and the Variable,
the messages from the run's results (ids, counts, links), and that sending never fails the step."""

from __future__ import annotations

import json

import pytest
from reengagement import notify


class Ti:
    dag_id, run_id, task_id = "hubspot_reengagement", "manual__q4", "export_unconfirmed"

    def __init__(self, results: dict[str, dict], states: dict[str, str] | None = None) -> None:
        self.results, self.states = results, states or {}

    def xcom_pull(self, task_ids: str):
        return self.results.get(task_ids)

    def get_task_states(self, dag_id, run_ids):
        return {run_ids[0]: self.states}


RESULTS = {
    "preflight": {"campaign": "hubspot_reengagement 2026-Q4"},
    "check_guards": {"would_change": 140, "to_opt_out": 150, "sent": 175},
    "campaign_report": {"rounds": 2, "sent": 175, "confirmed": 35, "opted_out": 140},
}


def context(**extra):
    return {"ti": Ti(RESULTS), "params": {"notify_emails": ["ops@example.com"], "reply_to": "mkt@example.com"}, **extra}


def test_the_audience_joins_the_variable_and_the_runs_addresses(monkeypatch):
    variable = {"emails": ["platform@example.com", "ops@example.com"], "slack_conn_id": "slack", "from_email": "a@b.c"}
    monkeypatch.setenv("AIRFLOW_VAR_HUBSPOT_REENGAGEMENT_NOTIFICATIONS", json.dumps(variable))
    audience = notify.Audience.of(context())
    assert audience.emails == ("platform@example.com", "ops@example.com")
    assert (audience.slack_conn_id, audience.from_email) == ("slack", "a@b.c")
    monkeypatch.delenv("AIRFLOW_VAR_HUBSPOT_REENGAGEMENT_NOTIFICATIONS")
    alone = notify.Audience.of(context())
    assert (alone.emails, alone.from_email, bool(alone)) == (("ops@example.com",), "mkt@example.com", True)
    assert not notify.Audience.of({"ti": Ti(RESULTS), "params": {}})


def test_the_three_messages_say_what_happened_with_counts_and_links():
    failure = notify.compose("failure", context(exception=ValueError("HubSpot refused the export\ntraceback...")))
    assert failure.subject == "Campaign hubspot_reengagement 2026-Q4: step export_unconfirmed failed"
    assert failure.lines[0].endswith("failed: HubSpot refused the export")
    assert failure.lines[1].endswith("/dags/hubspot_reengagement/runs/manual__q4")
    approval = notify.compose("approval", context())
    assert approval.subject == "Campaign hubspot_reengagement 2026-Q4: approve the opt-out of 140 contacts?"
    assert "At most 140 of the 150 contacts in list 2" in approval.text and "/reengagement/runs/" in approval.text
    success = notify.compose("success", context())
    assert "2 round(s), 175 sent, 35 confirmed, 140 opted out" in success.text
    assert "<br>" in success.html and "&lt;" not in success.html


def test_an_unknown_event_is_refused_and_a_failing_send_is_logged_not_raised(monkeypatch, caplog):
    with pytest.raises(ValueError, match="event must be one of failure, approval, success"):
        notify.CampaignNotifier("finished")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr(notify.CampaignNotifier, "_email", staticmethod(refuse))
    notify.CampaignNotifier("failure").notify(context(exception=RuntimeError("boom")))
    assert "Could not send the campaign's failure notification" in caplog.text


def test_success_is_not_told_when_a_step_failed(monkeypatch):
    sent = []
    monkeypatch.setattr(notify.CampaignNotifier, "_email", staticmethod(lambda *a: sent.append(a[1].subject)))
    failed = {"ti": Ti(RESULTS, {"preflight": "failed", "campaign_report": "success"}), "params": context()["params"]}
    notify.CampaignNotifier("success").notify(failed)
    assert sent == []
    notify.CampaignNotifier("success").notify({**failed, "ti": Ti(RESULTS, {"campaign_report": "success"})})
    assert sent == ["Campaign hubspot_reengagement 2026-Q4: finished"]
