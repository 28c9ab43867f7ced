"""The campaign report: the funnel per round as CSV, as an HTML page with a chart, and in the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import report
from ..links import ExportFileLink
from ..storage import restrict, run_folder

if TYPE_CHECKING:
    from airflow.sdk import Context

from airflow.sdk import BaseOperator


class CampaignReportOperator(BaseOperator):
    """Step-by-step outcome of the run, written next to the exports; runs whatever happened before.

    Every input is the output of an earlier task (``None`` when it was skipped or failed), so the
    report also explains a campaign that stopped early: nobody unengaged, a guard, a rejection.

    :param campaign: the campaign id (templated).
    :param unengaged: output of ``build_unengaged_list``.
    :param rounds: per round, ``{"recipients", "metrics", "confirmed", "unconfirmed"}`` outputs.
    :param export: output of ``export_unconfirmed``.
    :param opt_out: output of ``opt_out_unconfirmed``.
    :param approval_task_id: the approval task, read at run time: a rejection skips the approval's direct
        downstream tasks, so the report must not be one of them.
    :param export_base: ObjectStoragePath URI of the exports folder (templated).
    """

    template_fields: Sequence[str] = ("campaign", "unengaged", "rounds", "export", "opt_out", "export_base")
    operator_extra_links = (ExportFileLink(),)
    ui_color = "#dcedc8"

    def __init__(self, *, campaign: Any, unengaged: Any, rounds: Any, export: Any = None, opt_out: Any = None,
                 approval_task_id: str | None = None, export_base: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign, self.unengaged, self.rounds = campaign, unengaged, rounds
        self.export, self.opt_out, self.export_base = export, opt_out, export_base
        self.approval_task_id = approval_task_id
        self.rejected = False
        self.file_uri: str | None = None

    def _round_rows(self) -> list[dict[str, int]]:
        """The funnel of each round that ran; "confirmed" counts the round's new confirmations."""
        rows: list[dict[str, int]] = []
        confirmed_before = 0
        for r in self.rounds or []:
            if not r.get("recipients"):
                continue
            metrics = r.get("metrics") or {}
            confirmed_so_far = int((r.get("confirmed") or {}).get("size", 0))
            rows.append({"cohort": int(rows[-1]["unconfirmed"]) if rows else int((self.unengaged or {}).get("size", 0)),
                         "recipients": int(r["recipients"].get("size", 0)),
                         "sent": int(metrics.get("sent", 0)), "delivered": int(metrics.get("delivered", 0)),
                         "opened": int(metrics.get("open", 0)), "confirmed": confirmed_so_far - confirmed_before,
                         "unconfirmed": int((r.get("unconfirmed") or {}).get("size", 0))})
            confirmed_before = confirmed_so_far
        return rows

    def summary(self, rows: list[dict[str, int]]) -> str:
        campaign = self.campaign or "campaign"
        if self.unengaged is not None and int(self.unengaged.get("size", 0)) == 0:
            return f"{campaign}: nobody is unengaged; nothing was sent and nobody was opted out."
        sent = rows[0]["sent"] if rows else 0
        if self.opt_out:
            o = self.opt_out
            verb = "would opt out" if o.get("dry_run") else "opted out"
            count = o.get("to_opt_out", o["rows"]) if o.get("dry_run") else o["opted_out"]
            return (f"{campaign}: {len(rows)} round(s), {sent:,} sent, {rows[-1]['unconfirmed'] if rows else 0:,} "
                    f"unconfirmed; the campaign {verb} {count:,} ({o.get('already_opted_out', 0):,} already, "
                    f"{o.get('errors', 0):,} errors); {o.get('unsubscribed_themselves', 0):,} unsubscribed "
                    f"themselves; {o.get('never_sent', 0):,} never sent and {o.get('spared_confirmed', 0):,} "
                    "confirmed late were not opted out.")
        if self.rejected:
            return f"{campaign}: the opt-out was rejected at the approval step; nobody was opted out."
        return f"{campaign}: {len(rows)} round(s), {sent:,} sent; the opt-out did not run, nobody was opted out."

    def execute(self, context: Context) -> dict[str, Any]:
        if self.approval_task_id:
            # A rejection leaves no result, only the list of tasks the approval skipped.
            skipped = context["ti"].xcom_pull(task_ids=self.approval_task_id, key="skipmixin_key") or {}
            self.rejected = bool(skipped.get("skipped"))
        rows = self._round_rows()
        opted = int((self.opt_out or {}).get("opted_out", 0))
        errors = int((self.opt_out or {}).get("errors", 0))
        frame = report.funnel(rows, self.opt_out, rejected=self.rejected)
        summary = self.summary(rows)
        folder = run_folder(self.export_base, str(self.campaign), str(context["run_id"]))
        with (folder / "report.csv").open("w") as out:
            frame.assign(run_id=str(context["run_id"])).to_csv(out, index=False)
        page = folder / "report.html"
        with page.open("w") as out:
            out.write(report.html_page(f"Permission pass {self.campaign}", summary, frame))
        for path in (folder / "report.csv", page):
            restrict(path)
        self.file_uri = str(page)
        self.log.info("Campaign funnel:\n%s", report.text_table(frame))
        self.log.info("Report: %s", page)
        self.log.info("%s", summary)
        return {"report_uri": str(page), "rounds": len(rows), "opted_out": opted, "errors": errors,
                "opt_out": report.opt_out_state(self.opt_out, rejected=self.rejected)}

