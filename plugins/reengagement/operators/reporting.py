"""The campaign report: the funnel per round as CSV, as an HTML page with a chart, and in the log.

The report is a function of facts a rerun does not move: HubSpot's email events and the rounds' snapshot
lists, the run's audit ledger, and the results of tasks that find their objects by name. It never counts
from the size of a dynamic list or from the opt-out's summary, which a cleared and rerun task rewrites
(a rerun of the opt-out finds everybody already opted out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk.exceptions import AirflowException

from .. import audit, history, lineage, report
from ..links import CampaignReportLink
from ..storage import restrict, run_folder
from .base import HubSpotOperator, as_outputs
from .lists import read_clickers
from .subscriptions import recipients_of, unsubscribed_themselves

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from ..hook import HubSpotHook
    from ..lineage import Lineage


class EventsUntil:
    """The hook, with email events only up to a cut-off: HubSpot filters by ``endTimestamp``, each event is
    checked again. Handed to the readers the list 1 and opt-out tasks use, so all count events alike."""

    def __init__(self, hook: HubSpotHook, end_ms: int) -> None:
        self.hook, self.end_ms = hook, end_ms

    def iter_email_events(
        self, campaign_id: str | int, event_type: str, *, exclude_filtered: bool = True
    ) -> Iterator[dict[str, Any]]:
        events = self.hook.iter_email_events(
            campaign_id, event_type, exclude_filtered=exclude_filtered, end_ms=self.end_ms
        )
        for event in events:
            if int(event.get("created") or 0) <= self.end_ms:
                yield event


class CampaignReportOperator(HubSpotOperator):
    """Step-by-step outcome of the run, written next to the exports; runs whatever happened before.

    Reads, for each round that was sent: the size of its recipients snapshot list, the SENT, CTA CLICK and
    self-unsubscribe events of its email, and HubSpot's statistics as ``review_metrics`` read them; then the
    run's audit ledger. Clicks and unsubscribes count up to the run's first opt-out change in the ledger
    (else up to now), so the report reads the same after any rerun. Every figure is defined in
    :func:`reengagement.report.funnel` and in the page's footnote (``report.DEFINITIONS``):

    - recipients = size of the round's snapshot list; sent = distinct SENT recipients of its email;
      never sent = recipients - sent;
    - confirmed = distinct contacts sent this round or earlier who clicked this round's CTA up to the cut-off,
      not counted in an earlier round; unconfirmed = sent so far - confirmed so far;
    - cohort = the unengaged list's size (round 1), else the previous round's unconfirmed;
    - unsubscribed themselves = distinct recipients who unsubscribed through the campaign's emails;
    - opted out = contacts a try of this run changed (ledger), less those who unsubscribed themselves;
      already opted out = NO_STATUS_CHANGE answers for contacts no try changed; errors = contacts whose
      latest answer is ERROR. A dry run changes nobody: its would-be figures come from its summary.
    - rates: confirmed and opted out over the distinct contacts sent any round's email.

    Campaign history: the run's outcome (cohort, sent, confirmed, opted out, how the opt-out ended, dated by
    the run's logical date) is written as ``outcome.json`` in the run folder; the page then charts the
    outcomes of every run of the same HubSpot portal found under ``export_base``, up to this run's date (so
    an old report reads the same after later campaigns), also written as ``history.csv``. Only runs under
    the same export base are seen; see :mod:`reengagement.history`.

    :param campaign: the campaign id (templated).
    :param unengaged: output of ``build_unengaged_list`` (its ``size`` is the first cohort).
    :param recipients: outputs of every round's ``build_recipients_list`` (``list_id``), a list or the JSON
        list of the ``outputs_of`` macro; ``None`` for a round that did not run (templated).
    :param emails: outputs of every round's ``send_email`` (``campaign_ids``, ``cta_url``); a round is in the
        report when its email was sent (templated).
    :param metrics: outputs of every round's ``review_metrics`` (templated).
    :param opt_out: output of ``opt_out_unconfirmed``: whether it ran, and a dry run's figures (templated).
    :param approval_task_id: the approval task; a rejection skips the approval's direct downstream tasks (the
        opt-out, ``opt_out_task_id``), so the report must not be one of them, and tells it from the two states.
    :param opt_out_task_id: the opt-out task.
    :param export_base: ObjectStoragePath URI of the exports folder (templated).
    """

    template_fields: Sequence[str] = (
        "campaign",
        "unengaged",
        "recipients",
        "emails",
        "metrics",
        "opt_out",
        "export_base",
    )
    operator_extra_links = (CampaignReportLink(),)
    ui_color = "#dcedc8"

    def __init__(
        self,
        *,
        campaign: Any,
        unengaged: Any,
        recipients: Any,
        emails: Any,
        metrics: Any = None,
        opt_out: Any = None,
        approval_task_id: str | None = None,
        opt_out_task_id: str = "opt_out_unconfirmed",
        export_base: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign, self.unengaged = campaign, unengaged
        self.recipients, self.emails, self.metrics = recipients, emails, metrics
        self.opt_out, self.export_base = opt_out, export_base
        self.approval_task_id, self.opt_out_task_id = approval_task_id, opt_out_task_id
        self.file_uri: str | None = None

    def _rejected(self, context: Context) -> bool:
        if not self.approval_task_id:
            return False
        # A rejection leaves the approval succeeded and the opt-out after it skipped (no result is kept).
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, task_ids=[self.approval_task_id, self.opt_out_task_id], run_ids=[ti.run_id]
        ).get(ti.run_id, {})
        return (states.get(self.approval_task_id), states.get(self.opt_out_task_id)) == ("success", "skipped")

    def _rounds(self, events: EventsUntil) -> list[report.RoundFacts]:
        """The facts of each round whose email was sent: paged reads, address keys only."""
        recipients, emails, metrics = (as_outputs(x) for x in (self.recipients, self.emails, self.metrics))
        found = []
        for number, email in enumerate(emails, start=1):
            if not email:
                continue
            lists = recipients[number - 1] if number <= len(recipients) else None
            stats = (metrics[number - 1] if number <= len(metrics) else None) or {}
            campaign_ids = list(email.get("campaign_ids") or [])
            clicked, _ = read_clickers(events, [email], None)
            unsubscribed = np.union1d(
                recipients_of(events, campaign_ids, "UNSUBSCRIBED"),
                recipients_of(events, campaign_ids, "STATUSCHANGE", unsubscribed_themselves),
            )
            found.append(
                report.RoundFacts(
                    number=number,
                    recipients=self._list_size(lists),
                    sent=recipients_of(events, campaign_ids, "SENT"),
                    clickers=clicked,
                    unsubscribed=unsubscribed,
                    delivered=stats.get("delivered") if stats else None,
                    opened=stats.get("open") if stats else None,
                )
            )
        return found

    def _list_size(self, found: dict[str, Any] | None) -> int:
        """The size of a round's recipients list: a snapshot, so HubSpot's figure is fixed."""
        if not found or not found.get("list_id"):
            return 0
        return int(self.hook.get_list(str(found["list_id"])).get("size") or 0)

    def execute(self, context: Context) -> dict[str, Any]:
        run_id = str(context["run_id"])
        campaign = str(self.campaign or "campaign")
        folder = run_folder(self.export_base, campaign, run_id)
        ledger = audit.read_ledger(audit.ledger_folder(folder), run_id)
        opt_out = self.opt_out if isinstance(self.opt_out, dict) else None
        state = report.opt_out_state(opt_out, rejected=self._rejected(context), ledger_rows=len(ledger))
        until, from_ledger = report.cut_off(audit.first_change_at(ledger), dt.datetime.now(dt.UTC))
        rounds = self._rounds(EventsUntil(self.hook, report.epoch_ms(until)))
        if state in (report.DONE, report.UNFINISHED):
            themselves = np.unique(np.concatenate([r.unsubscribed for r in rounds])) if rounds else np.empty(0, "S16")
            figures: dict[str, int] | None = report.ledger_figures(ledger, themselves)
        else:
            figures = report.dry_run_figures(opt_out) if state == report.DRY_RUN and opt_out else None
        cohort = int(self.unengaged.get("size") or 0) if isinstance(self.unengaged, dict) else None
        frame, totals = report.funnel(cohort or 0, rounds, figures, state)
        summary = report.summary(campaign, cohort, frame, totals, state)
        lines = report.header_lines(_run_date(context), until, from_ledger, totals, state)
        portal_id = self._portal_id(context)
        history_html = (
            self._history(
                folder,
                history.outcome(
                    portal_id=portal_id,
                    dag_id=str(self.dag_id),
                    campaign=campaign,
                    run_id=run_id,
                    when=_filed_under(context),
                    cohort=cohort,
                    totals=totals,
                    state=state,
                ),
            )
            if portal_id
            else "<p>Campaign history left out: the HubSpot portal of this run is unknown.</p>"
        )

        table = folder / "report.csv"
        with table.open("w") as out:
            frame.assign(run_id=run_id).to_csv(out, index=False, lineterminator="\n")
        page = folder / "report.html"
        with page.open("w") as out:
            out.write(
                report.html_page(
                    f"Permission pass {campaign}",
                    summary,
                    frame,
                    lines=lines,
                    params=report.shown_params(dict(context.get("params") or {})),
                    history_html=history_html,
                )
            )
        for path in (table, page):
            restrict(path)
        self.file_uri = str(page)
        self.log.info("Campaign funnel (events counted up to %s):\n%s", until.isoformat(), report.text_table(frame))
        self.log.info("Report: %s", page)
        self.log.info("%s", summary)
        return {
            "report_uri": str(page),
            "csv_uri": str(table),
            "rounds": len(frame),
            "sent": totals.sent,
            "confirmed": totals.confirmed,
            "opted_out": totals.opted_out,
            "errors": int(figures["errors"]) if figures else None,
            "opt_out": state,
        }

    def _portal_id(self, context: Context) -> str | None:
        """From preflight's result; looked up when preflight did not run. The report is written either way."""
        try:
            return str(self.portal(context)["portalId"])
        except (AirflowException, OSError) as error:
            self.log.warning("Campaign history left out: the portal is unknown (%s)", error)
            return None

    def _history(self, folder: ObjectStoragePath, outcome: dict[str, Any]) -> str:
        """Write this run's ``outcome.json``, read the portal's history beside it: the page's section."""
        history.write_outcome(folder, outcome)
        portal_id, run_id = outcome["portal_id"], outcome["run_id"]
        past = history.read_history(folder.parent.parent, portal_id, dt.datetime.fromisoformat(outcome["date"]))
        history.write_history(folder, past, run_id)
        earlier = past[past["run_id"] != run_id]
        self.log.info(
            "Campaign history of portal %s: %d earlier run(s) under this export base", portal_id, len(earlier)
        )
        for _, row in earlier.iterrows():
            self.log.info("Earlier run: %s", history.describe(row))
        return history.history_html(past, portal_id)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the lists and emails read, the report files written (see :mod:`reengagement.lineage`)."""
        return lineage.campaign_report(self, task_instance)


def _filed_under(context: Context) -> dt.datetime:
    """The date the run's outcome is filed under in the campaign history."""
    dag_run = context.get("dag_run")
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    return history.run_date(logical, getattr(dag_run, "run_after", None), dt.datetime.now(dt.UTC))


def _run_date(context: Context) -> str:
    """The run's logical date, and when it was due to run (Airflow 3 runs may have no logical date)."""
    dag_run = context.get("dag_run")
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    after = getattr(dag_run, "run_after", None)
    parts = [f"logical date {logical.isoformat()}" if logical else "no logical date"]
    if after:
        parts.append(f"run after {after.isoformat()}")
    return ", ".join(parts)
