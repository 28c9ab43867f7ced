"""Step 1's checks, and the wait measured from the send."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import TaskDeferred
from reengagement.operators.settings import PreflightFailed, PreflightOperator
from reengagement.sensors import SendWindowSensor

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import run_operator


def preflight(**kw) -> PreflightOperator:
    args = {
        "task_id": "preflight",
        "subscription_type": "Marketing Information",
        "confirm_url": "https://www.example.com/thanks",
        "rounds": 2,
        **kw,
    }
    return PreflightOperator(**args)


def test_preflight_passes_on_an_enterprise_portal_and_counts_consent_warnings(seeded, hubspot_conn):
    result = run_operator(preflight())
    expected = {
        "campaign": "hubspot_reengagement " + _quarter(),
        "portal_id": "46801234",
        "ui_domain": "app.hubspot.com",
        "subscription_id": str(MARKETING_SUBSCRIPTION_ID),
        "contacts": 300,
        "consent_warnings": 2,
        "inconclusive_probes": [],
    }
    assert {key: result[key] for key in expected} == expected


def _quarter() -> str:
    today = dt.date.today()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


def test_bad_params_fail_before_any_call_to_hubspot(seeded, hubspot_conn):
    seeded.admin("DELETE", "calls")
    with pytest.raises(ValueError, match="rounds"):
        run_operator(preflight(), {"params": {"rounds": 7}})
    assert seeded.admin("GET", "calls") == {}


def test_subscription_type_can_be_given_by_id(seeded, hubspot_conn):
    assert run_operator(preflight(subscription_type=str(MARKETING_SUBSCRIPTION_ID)))["consent_warnings"] == 2


def test_preflight_lists_every_problem_in_one_message(seeded, hubspot_conn):
    seeded.admin("PUT", "settings", {"tier": "professional"})
    with pytest.raises(PreflightFailed) as err:
        run_operator(
            preflight(
                subscription_type="Newsletter",
                template_email_id="123",
                confirm_url="https://example.com/hs/manage-preferences/unsubscribe",
            )
        )
    message = str(err.value)
    for fragment in (
        "'Newsletter' does not exist",
        "Marketing Information",
        "preferences or unsubscribe page",
        "publish marketing email",
        "batch-write subscription statuses",
        "Template email 123",
    ):
        assert fragment in message


@pytest.mark.parametrize(
    ("endpoint", "status", "probe"),
    [
        ("emails.publish", 400, "publish_email"),  # HubSpot's usual answer for email 0 is 404
        ("emails.publish", 500, "publish_email"),
        ("subscriptions.v4.batch_write", 400, "batch_write_statuses"),
    ],
)
def test_a_probe_answered_unexpectedly_is_an_inconclusive_warning_not_a_crash(
    seeded, hubspot_conn, capfd, endpoint, status, probe
):
    seeded.admin("POST", "faults", {"endpoint": endpoint, "kind": "error", "status": status})
    result = run_operator(preflight())
    assert result["inconclusive_probes"] == [probe]
    logged = capfd.readouterr()
    warnings = [line for line in (logged.out + logged.err).splitlines() if "Inconclusive" in line]
    assert len(warnings) == 1 and "warning" in warnings[0] and f"answered {status}" in warnings[0]
    calls = seeded.admin("GET", "calls")
    assert calls["emails.publish"]["calls"] == calls["subscriptions.v4.batch_write"]["calls"] == 1  # no retry


def test_a_refused_probe_is_still_a_problem_when_another_is_inconclusive(seeded, hubspot_conn):
    seeded.admin("POST", "faults", {"endpoint": "subscriptions.v4.batch_write", "kind": "error", "status": 400})
    seeded.admin("PUT", "settings", {"tier": "professional"})  # refused at the scope check, before any answer
    with pytest.raises(PreflightFailed, match="cannot publish marketing email"):
        run_operator(preflight())


def test_inactive_subscription_type_is_refused(seeded, hubspot_conn):
    with pytest.raises(PreflightFailed, match="not active"):
        run_operator(preflight(subscription_type="Legacy Newsletter"))


def test_daily_budget_must_cover_the_campaign(seeded, hubspot_conn):
    seeded.admin("PUT", "settings", {"rate_limit": "190/10s,1000/day", "daily_used": 900})
    with pytest.raises(PreflightFailed, match="API calls are left today"):
        run_operator(preflight())


def sensor(sent_at: str, delta: str = "PT1H") -> SendWindowSensor:
    return SendWindowSensor(task_id="wait_for_responses", sent_at=sent_at, delta=delta)


def test_wait_is_measured_from_the_send_not_the_run():
    sent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(sent.isoformat()).execute({})
    assert deferred.value.trigger.moment == sent + dt.timedelta(hours=1)


def test_a_cleared_sensor_waits_only_what_is_left_and_a_finished_window_does_not_wait():
    sent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=59, seconds=50)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(sent.isoformat().replace("+00:00", "Z")).execute({})
    left = deferred.value.trigger.moment - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(0) < left <= dt.timedelta(seconds=10)
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    assert sensor(long_ago.isoformat()).execute({}) is True


def test_a_window_longer_than_a_sensors_default_timeout_is_waited_in_full_in_the_triggerer():
    sent = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(sent.isoformat(), delta="P14D").execute({})
    assert deferred.value.trigger.moment == sent + dt.timedelta(days=14)
    assert deferred.value.timeout is None  # not the sensor's 7-day default, which would end the wait early
    assert type(deferred.value.trigger).__name__ == "DateTimeTrigger"


def test_sensor_without_send_time_fails_clearly():
    with pytest.raises(ValueError, match="no send time"):
        sensor("").execute({})
