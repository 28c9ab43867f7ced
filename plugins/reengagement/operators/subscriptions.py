"""Step 6, second half: opt out the exported list 2 through Communication Preferences v4."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from airflow.sdk import ObjectStoragePath

from .. import report
from ..concurrency import in_order
from ..errors import HubSpotDailyLimitError
from ..hook import BATCH_SIZE, chunked
from ..links import ExportFileLink
from ..storage import read_manifest, restrict
from .base import HubSpotOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

CHANGED = frozenset({"REQUESTED_CHANGE_OCCURRED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"})
UNSUBSCRIBE_ALL = "/communication-preferences/v4/statuses/batch/unsubscribe-all"
BATCH_WRITE = "/communication-preferences/v4/statuses/batch/write"


class OptOutOperator(HubSpotOperator):
    """Opt out every contact of the exported list 2 — the one step that cannot be undone.

    The CSV is read twice in chunks: first to check its whole shape (columns, emails, duplicates, run
    id, and that every row is one HubSpot exported: rows may be removed by hand, not changed or added)
    so a hand-edited file fails before anything changes; then to write batches of 100 through
    v4 ``batch/unsubscribe-all`` (``all_email``, what HubSpot's opt-out import does) or ``batch/write``
    UNSUBSCRIBED for the mailed subscription type, with the legal basis, a few batches in flight at once
    (``HubSpotHook.in_flight``) under the shared rate limiter. HubSpot answers
    NO_STATUS_CHANGE for a contact already opted out, so a rerun after a crash at any batch changes
    nothing twice. The per-contact result is written next to the export. ``dry_run`` writes the
    would-be result and calls nothing that changes HubSpot.

    :param export_uri: the CSV written by the export task (templated).
    :param scope: ``all_email`` or ``subscription_type``.
    :param subscription_id: the mailed subscription type (for ``subscription_type``).
    :param legal_basis: HubSpot legal basis recorded with each change.
    :param legal_basis_explanation: recorded with each change; should name the campaign.
    :param dry_run: write the would-be result only.
    """

    template_fields: Sequence[str] = ("export_uri", "scope", "subscription_id", "legal_basis",
                                      "legal_basis_explanation", "dry_run")
    operator_extra_links = (ExportFileLink(),)
    ui_color = "#ffcdd2"

    def __init__(self, *, export_uri: str, scope: str = "all_email", subscription_id: str | None = None,
                 legal_basis: str = "LEGITIMATE_INTEREST_OTHER", legal_basis_explanation: str = "",
                 dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.export_uri = export_uri
        self.scope = scope
        self.subscription_id = subscription_id
        self.legal_basis = legal_basis
        self.legal_basis_explanation = legal_basis_explanation
        self.dry_run = dry_run
        self.file_uri: str | None = None

    @property
    def is_dry_run(self) -> bool:
        return self.dry_run is True or str(self.dry_run).lower() == "true"

    def execute(self, context: Context) -> dict[str, Any]:
        if self.scope not in ("all_email", "subscription_type"):
            raise ValueError(f"scope must be all_email or subscription_type, not {self.scope!r}")
        if self.scope == "subscription_type" and not self.subscription_id:
            raise ValueError("scope=subscription_type needs the subscription_id")
        source = ObjectStoragePath(self.export_uri)
        run_id = str(context["run_id"])
        rows = self._check(source, run_id)
        target = source.parent / ("opt_out_dry_run.csv" if self.is_dry_run else "opt_out_result.csv")
        self.file_uri = str(target)
        counts = {"done": 0, "changed": 0, "already": 0, "errors": 0}
        self.log.info("%s %d contacts (%s) from %s.", "Dry run: would opt out" if self.is_dry_run else "Opting out",
                      rows, self.scope, source)
        try:
            self._write_results(source, target, run_id, rows, counts)
        except HubSpotDailyLimitError as err:
            raise HubSpotDailyLimitError(
                f"{err} {counts['done']} of {rows} contacts were processed before the limit ({counts['changed']} "
                f"opted out by this try); the result so far is in {target}. Rerun this task after the reset to "
                "finish the rest: contacts already opted out are not changed twice.",
                status=err.status, correlation_id=err.correlation_id, body=err.body) from err
        summary = {"rows": rows, "opted_out": counts["changed"], "already_opted_out": counts["already"],
                   "errors": counts["errors"], "dry_run": self.is_dry_run, "result_uri": str(target)}
        self.log.info("Opt-out finished: %s", summary)
        return summary

    def _check(self, source: ObjectStoragePath, run_id: str) -> int:
        """Read the whole file once and refuse it before any change if its shape is wrong.

        Rows must be rows HubSpot exported (the export keeps their hashes): a row changed or added by
        hand would opt out someone HubSpot never put in list 2. Removing rows is allowed.
        """
        exported = _exported_rows(source)
        if exported is None:
            self.log.warning("%s has no row hashes beside it (not written by export_unconfirmed): its rows cannot be "
                             "checked against HubSpot's export.", source)
        rows, hashes = 0, []
        with source.open("r") as handle:
            for chunk in report.read_opt_out_file(handle, run_id):
                if exported is not None:
                    foreign = ~np.isin(report.row_keys(chunk), exported)
                    if foreign.any():
                        at = int(np.flatnonzero(foreign)[0])
                        raise report.BadOptOutFile(
                            f"Row {rows + at + 2} of {source} (contact {chunk['contact_id'].iloc[at]}) is not a row "
                            f"HubSpot exported: {int(foreign.sum())} row(s) in this part of the file were changed or "
                            "added by hand. Only removing rows is allowed. Nothing was opted out.")
                rows += len(chunk)
                hashes.append(report.email_hashes(chunk["email"]))
        duplicates = report.duplicate_emails(np.concatenate(hashes)) if hashes else 0
        if duplicates:
            raise report.BadOptOutFile(f"{source} repeats {duplicates} email address(es); it was not written by "
                                       "the export task as it is. Nothing was opted out.")
        return rows

    def _write_results(self, source: ObjectStoragePath, target: ObjectStoragePath, run_id: str, rows: int,
                       counts: dict[str, int]) -> None:
        """Opt out batch by batch, a few in flight, writing each answered batch's per-contact result in file order.

        After a failure no new batch starts, but batches already in flight are recorded when HubSpot
        answers them, so the result file holds every change made; then the first failure is raised.
        """
        failed = threading.Event()

        def apply(batch: list[Any]) -> tuple[list[Any], dict[str, tuple[str, str]] | Exception | None]:
            if failed.is_set():
                return batch, None
            try:
                return batch, self._apply([row.email for row in batch])
            except Exception as err:  # noqa: BLE001 - raised below, once every answered batch is recorded
                failed.set()
                return batch, err

        first_error: Exception | None = None
        with source.open("r") as handle, target.open("w") as out:
            restrict(target)  # before the first row: it holds email addresses
            out.write(",".join(report.RESULT_COLUMNS) + "\n")
            batches = (batch for chunk in report.read_opt_out_file(handle, run_id)
                       for batch in chunked(chunk.itertuples(index=False), BATCH_SIZE))
            for batch, outcome in in_order(apply, batches, in_flight=self.hook.in_flight):
                if isinstance(outcome, Exception):
                    first_error = first_error or outcome
                if not isinstance(outcome, dict):
                    continue
                frame = pd.DataFrame([(row.contact_id, row.email, *outcome[row.email], run_id) for row in batch],
                                     columns=report.RESULT_COLUMNS)
                _count(frame, counts)
                report.to_csv_rows(frame, out, header=False)
                out.flush()
                counts["done"] += len(batch)
                if counts["done"] % report.CHUNK_ROWS < len(batch) or counts["done"] == rows:
                    self.log.info("Progress: %d of %d contacts (%d changed, %d already opted out, %d errors).",
                                  counts["done"], rows, counts["changed"], counts["already"], counts["errors"])
        if first_error is not None:
            raise first_error

    def _apply(self, emails: list[str]) -> dict[str, tuple[str, str]]:
        """``email -> (status, reason)`` for one batch of at most 100."""
        if self.is_dry_run:
            return {e: ("DRY_RUN", "would be opted out") for e in emails}
        if self.scope == "all_email":
            answer = self.hook.request("POST", UNSUBSCRIBE_ALL, params={"channel": "EMAIL", "verbose": True},
                                       json_body={"inputs": emails})
            results = {str(r["subscriberIdString"]).lower(): _wide_reason(r) for r in answer.get("results", [])}
        else:
            inputs = [{"subscriberIdString": e, "subscriptionId": int(str(self.subscription_id)),
                       "statusState": "UNSUBSCRIBED", "channel": "EMAIL", "legalBasis": self.legal_basis,
                       "legalBasisExplanation": self.legal_basis_explanation} for e in emails]
            answer = self.hook.request("POST", BATCH_WRITE, json_body={"inputs": inputs})
            results = {str(r["subscriberIdString"]).lower(): (r.get("status", ""), r.get("setStatusSuccessReason", ""))
                       for r in answer.get("results", [])}
        failures = _failures(answer)
        return {e: results.get(e) or ("ERROR", failures.get(e, "HubSpot returned no result")) for e in emails}


def _exported_rows(source: ObjectStoragePath) -> np.ndarray | None:
    """The hashes of the rows HubSpot exported, kept beside the export; ``None`` for a file without them."""
    manifest = read_manifest(source)
    name = (manifest or {}).get("row_keys")
    if not name:
        return None
    with (source.parent / name).open("rb") as handle:
        return np.load(handle, allow_pickle=False)


def _wide_reason(result: dict[str, Any]) -> tuple[str, str]:
    statuses = result.get("statuses") or []
    reason = statuses[0].get("setStatusSuccessReason") if statuses else "UNSUBSCRIBE_FROM_ALL_OCCURRED"
    return "UNSUBSCRIBED", str(reason or "")


def _failures(answer: dict[str, Any]) -> dict[str, str]:
    failures: dict[str, str] = {}
    for error in answer.get("errors") or []:
        for subscriber in (error.get("context") or {}).get("subscriberIdString") or []:
            failures[str(subscriber).lower()] = str(error.get("message", "error"))
    return failures


def _count(frame: pd.DataFrame, counts: dict[str, int]) -> None:
    counts["changed"] += int(frame["reason"].isin(CHANGED).sum())
    counts["already"] += int((frame["reason"] == "NO_STATUS_CHANGE").sum())
    counts["errors"] += int((frame["status"] == "ERROR").sum())

