"""Telling people when the campaign needs them, failed, or finished: an Airflow notifier over SMTP and Slack.

Who hears about it is read when something happens, never at DAG parse time: the run's ``notify_emails``
param, and the Airflow Variable :data:`VARIABLE` (a JSON object) for what a deployment sets once::

    {"emails": ["data-platform@example.com"], "smtp_conn_id": "smtp_default", "from_email": "airflow@example.com",
     "slack_conn_id": "slack_api_default", "slack_channel": "#marketing-ops"}

Email goes through Airflow's SMTP provider (``apache-airflow-providers-smtp``), Slack through its Slack
provider (the optional ``slack`` extra). A notification that cannot be sent is logged, never raised: it must
not fail the campaign step it reports on, least of all the approval.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

from .links import api_base_url, served_url

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: The Airflow Variable a deployment configures notifications with (JSON).
VARIABLE = "hubspot_reengagement_notifications"
EVENTS = ("failure", "approval", "success")


@dataclass(frozen=True)
class Audience:
    """Where this run's notifications go."""

    emails: tuple[str, ...] = ()
    smtp_conn_id: str | None = None
    from_email: str | None = None
    slack_conn_id: str | None = None
    slack_channel: str | None = None

    @classmethod
    def of(cls, context: Context) -> Audience:
        from airflow.sdk import Variable

        configured = Variable.get(VARIABLE, default=None, deserialize_json=True) or {}
        if not isinstance(configured, dict):
            raise ValueError(f"Airflow Variable {VARIABLE} must be a JSON object, not {type(configured).__name__}")
        params = context.get("params") or {}
        emails = [*(configured.get("emails") or []), *(params.get("notify_emails") or [])]
        return cls(
            emails=tuple(dict.fromkeys(str(e).strip() for e in emails if str(e).strip())),
            smtp_conn_id=configured.get("smtp_conn_id"),
            from_email=configured.get("from_email") or params.get("reply_to"),
            slack_conn_id=configured.get("slack_conn_id"),
            slack_channel=configured.get("slack_channel"),
        )

    def __bool__(self) -> bool:
        return bool(self.emails or self.slack_conn_id)


@dataclass(frozen=True)
class Message:
    subject: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join([self.subject, *self.lines])

    @property
    def html(self) -> str:
        return "<br>\n".join(html.escape(line) for line in [*self.lines])


class CampaignNotifier(BaseNotifier):
    """One kind of campaign news: ``failure`` (a step failed for good), ``approval`` (the opt-out waits for a
    person) or ``success`` (the run finished); each says what happened and links where to act."""

    template_fields = ()

    def __init__(self, event: str) -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}, not {event!r}")
        self.event = event

    def notify(self, context: Context) -> None:
        try:
            audience = Audience.of(context)
            if not audience or (self.event == "success" and _a_step_failed(context)):
                return
            message = compose(self.event, context)
            if audience.emails:
                self._email(audience, message, context)
            if audience.slack_conn_id:
                self._slack(audience, message, context)
        except Exception:
            log.exception("Could not send the campaign's %s notification", self.event)

    @staticmethod
    def _email(audience: Audience, message: Message, context: Context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(
            to=list(audience.emails),
            from_email=audience.from_email,
            subject=message.subject,
            html_content=message.html,
            smtp_conn_id=audience.smtp_conn_id,
        ).notify(context)
        log.info("Sent the %r notification to %d address(es).", message.subject, len(audience.emails))

    @staticmethod
    def _slack(audience: Audience, message: Message, context: Context) -> None:
        try:
            from airflow.providers.slack.notifications.slack import SlackNotifier
        except ImportError:
            log.error("Slack is configured in %s, but apache-airflow-providers-slack is not installed.", VARIABLE)
            return
        channel = {"channel": audience.slack_channel} if audience.slack_channel else {}
        SlackNotifier(slack_conn_id=audience.slack_conn_id, text=message.text, **channel).notify(context)


def _a_step_failed(context: Context) -> bool:
    """Whether any task of the run failed: then the run is not a success, and the failed step has told."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    return any(state in ("failed", "upstream_failed") for state in states.values())


def compose(event: str, context: Context) -> Message:
    """The notification's subject and lines: ids, counts and links only, never contact data."""
    ti = context["ti"]
    dag_id, run_id = ti.dag_id, ti.run_id
    preflight = ti.xcom_pull(task_ids="preflight") or {}
    campaign = preflight.get("campaign") or dag_id
    run_link = f"{api_base_url()}/dags/{dag_id}/runs/{run_id}"
    if event == "failure":
        error = str(context.get("exception") or "unknown error").strip().splitlines() or ["unknown error"]
        return Message(
            f"Campaign {campaign}: step {ti.task_id} failed",
            [f"Step {ti.task_id} of run {run_id} failed: {error[0]}", f"Run: {run_link}"],
        )
    if event == "approval":
        guards = ti.xcom_pull(task_ids="check_guards") or {}
        would = guards.get("would_change", "?")
        return Message(
            f"Campaign {campaign}: approve the opt-out of {would} contacts?",
            [
                f"At most {would} of the {guards.get('to_opt_out', '?')} contacts in list 2 would be opted out; "
                f"{guards.get('sent', '?')} were sent the email.",
                f"Approve or reject: {run_link}",
                f"Report so far: {served_url(dag_id, run_id)}",
            ],
        )
    report = ti.xcom_pull(task_ids="campaign_report") or {}
    summary = (
        f"{report.get('rounds', '?')} round(s), {report.get('sent', '?')} sent, {report.get('confirmed', '?')} "
        f"confirmed, {report.get('opted_out', '?')} opted out"
    )
    return Message(
        f"Campaign {campaign}: finished",
        [f"{campaign}: {summary}.", f"Report: {served_url(dag_id, run_id)}", f"Run: {run_link}"],
    )
