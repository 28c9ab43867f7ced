"""Step 6, second half: opt out the exported list 2 through Communication Preferences.

The hook's batch writes name their v4 paths and send them to the connection's API version.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from airflow.sdk import ObjectStoragePath

from .. import audit, lineage, report
from ..assets import AUDIT_LEDGER, OPT_OUT_RESULTS, describe_events
from ..concurrency import in_order
from ..errors import HubSpotDailyLimitError, OptOutRefused
from ..hook import BATCH_SIZE
from ..ledger import ClickerLedger, email_key
from ..links import ExportFileLink
from ..storage import read_manifest, restrict
from ..transport import batch_errors
from .base import HubSpotOperator, as_outputs
from .lists import read_clickers

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..hook import EmailEventSource
    from ..lineage import Lineage

#: Rows of the export written to the result without any call: why each was not opted out.
SKIPPED, CONFIRMED, NOT_SENT = "SKIPPED", "CONFIRMED", "NOT_SENT"
DRY_RUN = "DRY_RUN"
#: HubSpot's answer for one contact: status, reason, and the legal basis and explanation it recorded.
Answer = tuple[str, str, str, str]
#: Errors of a file that fail the same way on every retry.
BAD_FILE = (report.BadOptOutFile, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)


class OptOutFileRefused(OptOutRefused, report.BadOptOutFile):
    """The opt-out file is not the export as HubSpot wrote it; nobody was opted out."""


@dataclass(frozen=True)
class Audience:
    """Who may be opted out, read from HubSpot right before the first change, as hashes (flat memory at 1M).

    HubSpot recomputes list 2 in the background, so its export can lag behind a late click or a contact
    added to list 1; and a list says nothing about who was actually sent (HubSpot skips some contacts at
    send). The export is therefore narrowed to the contacts with a SENT event of the campaign's emails,
    minus list 1's members and every CTA clicker.

    :param sent: address keys (``ledger.email_key``, sorted, unique) of every SENT recipient.
    :param clickers: address keys of every CTA clicker.
    :param confirmed_ids: contact ids of list 1's members and of the clickers list 1 was given.
    :param unsubscribed: address keys of recipients who unsubscribed themselves (UNSUBSCRIBED events, or
        STATUSCHANGE events of their own doing).
    """

    sent: np.ndarray
    clickers: np.ndarray
    confirmed_ids: np.ndarray
    unsubscribed: np.ndarray

    @classmethod
    def empty(cls) -> Audience:
        nothing = np.empty(0, dtype="S16")
        return cls(sent=nothing, clickers=nothing, confirmed_ids=np.empty(0, dtype=np.int64), unsubscribed=nothing)

    def reasons(self, chunk: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row: why it is spared (``CONFIRMED``, ``NOT_SENT``, or ``""`` to opt out), and whether the
        contact unsubscribed themselves."""
        keys = _keys_of(chunk["email"])
        ids = pd.to_numeric(chunk["contact_id"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
        confirmed = _among(self.clickers, keys) | _among(self.confirmed_ids, ids)
        reasons = np.where(confirmed, CONFIRMED, np.where(_among(self.sent, keys), "", NOT_SENT)).astype(object)
        return reasons, _among(self.unsubscribed, keys)


#: STATUSCHANGE sources that are the recipient's own doing (the unsubscribe link, the mail client's button).
SELF_SOURCES = frozenset({"SOURCE_RECIPIENT", "SOURCE_LIST_UNSUBSCRIBE"})


def unsubscribed_themselves(event: dict[str, Any]) -> bool:
    """A STATUSCHANGE event in which the recipient unsubscribed (from all email or from a subscription type)."""
    if event.get("source") not in SELF_SOURCES:
        return False
    statuses = [event.get("portalSubscriptionStatus")] + [
        s.get("status") for s in event.get("subscriptions") or [] if isinstance(s, dict)
    ]
    return "UNSUBSCRIBED" in statuses


def _keys_of(emails: Iterable[str]) -> np.ndarray:
    return np.frombuffer(b"".join(email_key(e) for e in emails), dtype="S16")


def _among(sorted_unique: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """``probe``'s elements found in a sorted, unique array (a binary search each: no copy of the array)."""
    if not len(sorted_unique) or not len(probe):
        return np.zeros(len(probe), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_unique, probe), len(sorted_unique) - 1)
    return np.asarray(sorted_unique[at] == probe, dtype=bool)


class OptOutOperator(HubSpotOperator):
    """Opt out the contacts of the exported list 2 who were sent the email and did not confirm — the one step
    that cannot be undone.

    The CSV is read twice in chunks: first to check its structure (columns, run id, numeric contact ids,
    duplicates, and that every row is one HubSpot exported: rows may be removed by hand, not changed or
    added), so a hand-edited file fails before anything changes. Then, right before the first change
    (an approval may have waited for days), HubSpot is read again: the SENT and UNSUBSCRIBED events of the
    campaign's emails, every CTA click and list 1's members (see :class:`Audience`). A row whose contact is
    in list 1 or clicked a CTA is spared as ``CONFIRMED``; one HubSpot never sent is spared as ``NOT_SENT``;
    both are written to the result with status ``SKIPPED`` and no call. The rest go in batches of 100 through
    v4 ``batch/unsubscribe-all`` (``all_email``, what HubSpot's opt-out import does) or ``batch/write``
    UNSUBSCRIBED for the mailed subscription type, with the legal basis, a few batches in flight at once
    (``HubSpotHook.in_flight``) under the shared rate limiter. HubSpot answers NO_STATUS_CHANGE for a
    contact already opted out, so a rerun after a crash at any batch changes nothing twice. A file or an
    argument that fails the same way every time raises :class:`~reengagement.errors.OptOutRefused` (no
    retry). ``simulate`` (the campaign's ``dry_run``) writes the would-be result and calls nothing that changes
    HubSpot; it is not called ``dry_run``, which is ``BaseOperator``'s own method.

    :param export_uri: the CSV written by the export task (templated).
    :param emails: outputs of the rounds' email tasks (``campaign_ids`` and ``cta_url`` each), ``None`` for
        rounds that did not run (templated).
    :param confirmed_list_id: list 1, as ``refresh_confirmed_list`` left it (templated).
    :param scope: ``all_email`` or ``subscription_type``.
    :param subscription_id: the mailed subscription type (for ``subscription_type``).
    :param legal_basis: HubSpot legal basis recorded with each change.
    :param legal_basis_explanation: recorded with each change; should name the campaign.
    :param simulate: write the would-be result only (templated; a bool or "true"/"false").
    :param campaign: the campaign id, for the asset events of its ``opt_out_results`` and ``audit_ledger``
        outlets (templated; see :mod:`reengagement.assets`).
    """

    template_fields: Sequence[str] = (
        "export_uri",
        "emails",
        "confirmed_list_id",
        "scope",
        "subscription_id",
        "legal_basis",
        "legal_basis_explanation",
        "simulate",
        "campaign",
    )
    operator_extra_links = (ExportFileLink(),)
    ui_color = "#ffcdd2"

    def __init__(
        self,
        *,
        export_uri: str,
        emails: Any,
        confirmed_list_id: Any,
        scope: str = "all_email",
        subscription_id: str | None = None,
        legal_basis: str = "LEGITIMATE_INTEREST_OTHER",
        legal_basis_explanation: str = "",
        simulate: bool | str = False,
        campaign: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.export_uri = export_uri
        self.campaign = campaign
        self.emails = emails
        self.confirmed_list_id = confirmed_list_id
        self.scope = scope
        self.subscription_id = subscription_id
        self.legal_basis = legal_basis
        self.legal_basis_explanation = legal_basis_explanation
        self.simulate = simulate
        self.file_uri: str | None = None

    @property
    def is_dry_run(self) -> bool:
        return self.simulate is True or str(self.simulate).lower() == "true"

    def execute(self, context: Context) -> dict[str, Any]:
        source = ObjectStoragePath(self.export_uri)
        if self.scope not in ("all_email", "subscription_type"):
            raise OptOutRefused(
                f"scope must be all_email or subscription_type, not {self.scope!r}; nobody was opted out from {source}."
            )
        if self.scope == "subscription_type" and not str(self.subscription_id or "").isdigit():
            raise OptOutRefused(
                f"scope=subscription_type needs the numeric subscription_id, not "
                f"{self.subscription_id!r}; nobody was opted out from {source}."
            )
        run_id = str(context["run_id"])
        try:
            rows = self._check(source, run_id)
        except BAD_FILE as err:
            raise OptOutFileRefused(f"The opt-out file {source} was refused, so nobody was opted out: {err}") from err
        # An empty list 2 needs no reads: there is nobody to narrow down.
        audience = self._audience(source, run_id) if rows else Audience.empty()
        # Each try writes its own result and, for real changes, its own part of the campaign's audit ledger:
        # nothing that records an irreversible change is ever rewritten.
        try_number = int(getattr(context.get("ti"), "try_number", 0) or 0)
        target = audit.fresh_path(
            source.parent, f"{'opt_out_dry_run' if self.is_dry_run else 'opt_out_result'}.try-{try_number}"
        )
        ledger = audit.LedgerPart(
            audit.ledger_folder(source.parent), audit.part_stem(dt.datetime.now(dt.UTC), run_id, try_number)
        )
        self.file_uri = str(target)
        counts = dict.fromkeys(("done", "changed", "already", "errors", "self", CONFIRMED, NOT_SENT), 0)
        self.log.info(
            "%s (%s) those of the %d rows of %s whom HubSpot sent the email and who did not confirm.",
            "Dry run: would opt out" if self.is_dry_run else "Opting out",
            self.scope,
            rows,
            source,
        )
        try:
            with ledger:
                self._write_results(
                    source, target, run_id, rows, audience, counts, None if self.is_dry_run else (ledger, try_number)
                )
        except HubSpotDailyLimitError as err:
            raise HubSpotDailyLimitError(
                f"{err} {counts['done']} of {rows} contacts were processed before the limit ({counts['changed']} "
                f"opted out by this try); the result so far is in {target}. Rerun this task after the reset to "
                "finish the rest: contacts already opted out are not changed twice.",
                status=err.status,
                correlation_id=err.correlation_id,
                body=err.body,
            ) from err
        except BAD_FILE as err:
            raise OptOutFileRefused(
                f"The opt-out file {source} changed after it was checked: {err} {counts['done']} of {rows} rows were "
                f"processed ({counts['changed']} opted out by this try, listed in {target}); the rest were not "
                "opted out."
            ) from err
        summary = {
            "rows": rows,
            "to_opt_out": rows - counts[CONFIRMED] - counts[NOT_SENT],
            "opted_out": counts["changed"],
            "already_opted_out": counts["already"],
            "unsubscribed_themselves": len(audience.unsubscribed),
            "unsubscribed_themselves_in_file": counts["self"],
            "spared_confirmed": counts[CONFIRMED],
            "never_sent": counts[NOT_SENT],
            "errors": counts["errors"],
            "dry_run": self.is_dry_run,
            "result_uri": str(target),
            "ledger_rows": ledger.rows,
            "ledger_uri": str(ledger.path) if ledger.path else None,
        }
        self.log.info("Opt-out finished: %s", summary)
        about = {"campaign": self.campaign or source.parent.parent.name, "run_id": run_id, "try_number": try_number}
        describe_events(
            context,
            self.outlets,
            {
                OPT_OUT_RESULTS: {**about, "uri": str(target), "rows": rows, "dry_run": self.is_dry_run},
                # The ledger's folder (its parts read together are the ledger) and the part this try added, if any.
                AUDIT_LEDGER: {
                    **about,
                    "uri": str(audit.ledger_folder(source.parent)),
                    "part": summary["ledger_uri"],
                    "rows_added": ledger.rows,
                },
            },
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the export read, the result and audit ledger written (see :mod:`reengagement.lineage`)."""
        return lineage.opt_out(self, task_instance)

    def _check(self, source: ObjectStoragePath, run_id: str) -> int:
        """Read the whole file once and refuse it before any change if its structure is wrong.

        Rows must be rows HubSpot exported (the export keeps their hashes): a row changed or added by
        hand would opt out someone HubSpot never put in list 2. Removing rows is allowed.
        """
        exported = _exported_rows(source)
        if exported is None:
            self.log.warning(
                "%s has no row hashes beside it (not written by export_unconfirmed): its rows cannot be "
                "checked against HubSpot's export.",
                source,
            )
        rows, hashes = 0, []
        with source.open("r") as handle:
            for chunk in report.read_opt_out_file(handle, run_id):
                if exported is not None:
                    foreign = ~np.isin(report.row_keys(chunk), exported)
                    if foreign.any():
                        at = int(np.flatnonzero(foreign)[0])
                        raise report.BadOptOutFile(
                            f"Row {rows + at + 2} (contact {chunk['contact_id'].iloc[at]}) is not a row HubSpot "
                            f"exported: {int(foreign.sum())} row(s) in this part of the file were changed or added "
                            "by hand. Only removing rows is allowed."
                        )
                rows += len(chunk)
                hashes.append(report.email_hashes(chunk["email"]))
        duplicates = report.duplicate_emails(np.concatenate(hashes)) if hashes else 0
        if duplicates:
            raise report.BadOptOutFile(
                f"The file repeats {duplicates} email address(es); it was not written by the export task as it is."
            )
        return rows

    def _audience(self, source: ObjectStoragePath, run_id: str) -> Audience:
        """Who was sent, who unsubscribed themselves, who confirmed: paged reads, nothing per contact."""
        emails = [e for e in as_outputs(self.emails) if e]
        campaign_ids = [c for e in emails for c in (e.get("campaign_ids") or [])]
        if not campaign_ids:
            raise OptOutRefused(
                f"No email campaign id was given (emails={self.emails!r}): without HubSpot's SENT "
                f"events nobody can be shown to have been sent the email, so nobody was opted out "
                f"from {source}."
            )
        if not str(self.confirmed_list_id or "").strip():
            raise OptOutRefused(
                f"List 1's id was not given: its members must be spared, so nobody was opted out from {source}."
            )
        list_id = str(self.confirmed_list_id)
        # A recipient's own unsubscribe shows as a STATUSCHANGE event (HubSpot's documented shape) or, per the
        # API's enum, as UNSUBSCRIBED: both are read, for the report only (the opt-out itself is idempotent).
        reads: list[Callable[[], np.ndarray]] = [
            lambda: self._recipients(campaign_ids, "SENT"),
            lambda: self._recipients(campaign_ids, "UNSUBSCRIBED"),
            lambda: self._recipients(campaign_ids, "STATUSCHANGE", keep=unsubscribed_themselves),
            lambda: read_clickers(self.hook, emails, None)[0],  # hashes only: no look-ups here
            lambda: np.fromiter((int(m) for m in self.hook.iter_list_memberships(list_id)), dtype=np.int64),
        ]
        # Each read pages one call after another (a page needs the last one's cursor); they do not depend on one
        # another, so they run side by side and keep the limit busy. Nobody is opted out before all have ended.
        sent, unsubscribed_events, unsubscribed_status, clicked, members = in_order(
            lambda read: read(), reads, in_flight=self.hook.in_flight
        )
        unsubscribed = np.union1d(unsubscribed_events, unsubscribed_status)
        ledger = ClickerLedger(source.parent, list_id, run_id).load()
        audience = Audience(
            sent=sent,
            clickers=np.unique(clicked),
            confirmed_ids=np.union1d(members, ledger.contact_ids).astype(np.int64),
            unsubscribed=unsubscribed,
        )
        self.log.info(
            "HubSpot sent %d address(es) the campaign's %d email campaign(s); %d clicked a CTA; list 1 has "
            "%d member(s); %d unsubscribed themselves.",
            len(sent),
            len(campaign_ids),
            len(clicked),
            len(members),
            len(unsubscribed),
        )
        return audience

    def _recipients(
        self, campaign_ids: list[Any], event_type: str, keep: Callable[[dict[str, Any]], bool] | None = None
    ) -> np.ndarray:
        return recipients_of(self.hook, campaign_ids, event_type, keep)

    def _write_results(
        self,
        source: ObjectStoragePath,
        target: ObjectStoragePath,
        run_id: str,
        rows: int,
        audience: Audience,
        counts: dict[str, int],
        ledger: tuple[audit.LedgerPart, int] | None,
    ) -> None:
        """Opt out batch by batch, a few in flight, writing each answered batch's per-contact result in file order.

        Spared rows ride along with the next batch, so batches stay full and the result keeps the file's
        order. After a failure no new batch starts, but batches already in flight are recorded when HubSpot
        answers them, so the result file holds every change made; then the first failure is raised.
        """
        failed = threading.Event()

        def apply(batch: list[tuple[Any, str, bool]]) -> tuple[list[tuple[Any, str, bool]], Any, str]:
            if failed.is_set():
                return batch, None, ""
            emails = [row.email for row, spared, _ in batch if not spared]
            try:
                answer = self._apply(emails) if emails else {}
                return batch, answer, dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            except Exception as err:  # noqa: BLE001 - raised below, once every answered batch is recorded
                failed.set()
                return batch, err, ""

        first_error: Exception | None = None
        with source.open("r") as handle, target.open("w") as out:
            restrict(target)  # before the first row: it holds email addresses
            out.write(",".join(report.RESULT_COLUMNS) + "\n")
            batches = _batches(report.read_opt_out_file(handle, run_id), audience)
            for batch, outcome, answered_at in in_order(apply, batches, in_flight=self.hook.in_flight):
                if isinstance(outcome, Exception):
                    first_error = first_error or outcome
                if not isinstance(outcome, dict):
                    continue
                results = [
                    (SKIPPED, spared, "", "") if spared else self._result(outcome[row.email], mine)
                    for row, spared, mine in batch
                ]
                if ledger is not None:
                    ledger[0].write(self._ledger_rows(batch, results, run_id, ledger[1], answered_at))
                frame = pd.DataFrame(
                    [
                        (row.contact_id, row.email, *result[:2], run_id)
                        for (row, _, _), result in zip(batch, results, strict=True)
                    ],
                    columns=report.RESULT_COLUMNS,
                )
                _count(frame, [mine for _, spared, mine in batch], counts)
                report.to_csv_rows(frame, out, header=False)
                out.flush()
                counts["done"] += len(batch)
                if counts["done"] % report.CHUNK_ROWS < len(batch) or counts["done"] == rows:
                    self.log.info(
                        "Progress: %d of %d rows (%d changed, %d already opted out, %d spared as confirmed, "
                        "%d never sent, %d errors).",
                        counts["done"],
                        rows,
                        counts["changed"],
                        counts["already"],
                        counts[CONFIRMED],
                        counts[NOT_SENT],
                        counts["errors"],
                    )
        if first_error is not None:
            raise first_error

    def _result(self, answer: Answer, themselves: bool) -> Answer:
        """HubSpot's answer; a dry run also tells apart those who unsubscribed themselves (HubSpot would say so)."""
        return (DRY_RUN, "unsubscribed themselves", "", "") if self.is_dry_run and themselves else answer

    def _ledger_rows(
        self, batch: list[tuple[Any, str, bool]], results: list[Answer], run_id: str, try_number: int, answered_at: str
    ) -> pd.DataFrame:
        """The batch's rows HubSpot was asked about, as audit-ledger rows (spared rows changed nobody)."""
        subscription = str(self.subscription_id or "") if self.scope == "subscription_type" else ""
        return pd.DataFrame(
            [
                (
                    answered_at,
                    run_id,
                    str(try_number),
                    row.contact_id,
                    row.email,
                    self.scope,
                    subscription,
                    str(self.legal_basis or ""),
                    str(self.legal_basis_explanation or ""),
                    basis,
                    explanation,
                    status,
                    reason,
                )
                for (row, spared, _), (status, reason, basis, explanation) in zip(batch, results, strict=True)
                if not spared
            ],
            columns=audit.COLUMNS,
        )

    def _apply(self, emails: list[str]) -> dict[str, Answer]:
        """``email -> (status, reason, legal basis HubSpot recorded, its explanation)`` for one batch of at most 100.

        ``unsubscribe-all`` takes no legal basis, so HubSpot records none for ``all_email``; the ledger
        always holds the campaign's own.
        """
        if self.is_dry_run:
            return {e: (DRY_RUN, "would be opted out", "", "") for e in emails}
        if self.scope == "all_email":
            answer = self.hook.unsubscribe_all(emails)
            results = {str(r["subscriberIdString"]).lower(): _wide_reason(r) for r in answer.get("results", [])}
        else:
            inputs = [
                {
                    "subscriberIdString": e,
                    "subscriptionId": int(str(self.subscription_id)),
                    "statusState": "UNSUBSCRIBED",
                    "channel": "EMAIL",
                    "legalBasis": self.legal_basis,
                    "legalBasisExplanation": self.legal_basis_explanation,
                }
                for e in emails
            ]
            answer = self.hook.write_statuses(inputs)
            results = {
                str(r["subscriberIdString"]).lower(): (
                    r.get("status", ""),
                    r.get("setStatusSuccessReason", ""),
                    *_recorded_basis(r),
                )
                for r in answer.get("results", [])
            }
        failures = _failures(answer)
        return {e: results.get(e) or ("ERROR", failures.get(e, "HubSpot returned no result"), "", "") for e in emails}


def recipients_of(
    hook: EmailEventSource,
    campaign_ids: list[Any],
    event_type: str,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> np.ndarray:
    """Address keys (sorted, unique) of the recipients of one event type (those ``keep`` accepts), 16 bytes each.

    ``hook`` is anything with ``iter_email_events`` (the report hands in one that stops at its cut-off).
    """
    keys = bytearray()
    for campaign_id in campaign_ids:
        for event in hook.iter_email_events(campaign_id, event_type):
            if event.get("recipient") and (keep is None or keep(event)):
                keys += email_key(str(event["recipient"]))
    return np.unique(np.frombuffer(bytes(keys), dtype="S16"))


def _exported_rows(source: ObjectStoragePath) -> np.ndarray | None:
    """The hashes of the rows HubSpot exported, kept beside the export; ``None`` for a file without them."""
    manifest = read_manifest(source)
    name = (manifest or {}).get("row_keys")
    if not name:
        return None
    with (source.parent / name).open("rb") as handle:
        rows: np.ndarray = np.load(handle, allow_pickle=False)
    return rows


def _wide_reason(result: dict[str, Any]) -> Answer:
    statuses = result.get("statuses") or []
    reason = statuses[0].get("setStatusSuccessReason") if statuses else "UNSUBSCRIBE_FROM_ALL_OCCURRED"
    # The statuses listed are the contact's per-type records, not this change: unsubscribe-all takes no basis.
    return "UNSUBSCRIBED", str(reason or ""), "", ""


def _recorded_basis(status: dict[str, Any]) -> tuple[str, str]:
    """The legal basis and explanation HubSpot's answer says it recorded (empty when it recorded none)."""
    return str(status.get("legalBasis") or ""), str(status.get("legalBasisExplanation") or "")


def _failures(answer: dict[str, Any]) -> dict[str, str]:
    """``email -> HubSpot's message`` for the inputs a batch failed (a 207 on v4, a 200 on date-based versions)."""
    failures: dict[str, str] = {}
    for error in batch_errors(answer):
        for subscriber in (error.get("context") or {}).get("subscriberIdString") or []:
            failures[str(subscriber).lower()] = str(error.get("message", "error"))
    return failures


def _batches(chunks: Iterable[pd.DataFrame], audience: Audience) -> Iterator[list[tuple[Any, str, bool]]]:
    """``(row, why spared, unsubscribed themselves)`` in file order, cut after every 100 rows to opt out."""
    batch: list[tuple[Any, str, bool]] = []
    to_change = 0
    for chunk in chunks:
        reasons, unsubscribed = audience.reasons(chunk)
        for row, spared, mine in zip(chunk.itertuples(index=False), reasons, unsubscribed, strict=True):
            batch.append((row, str(spared), bool(mine)))
            to_change += not spared
            if to_change == BATCH_SIZE:
                yield batch
                batch, to_change = [], 0
    if batch:
        yield batch


def _count(frame: pd.DataFrame, themselves: list[bool], counts: dict[str, int]) -> None:
    """Tally one answered batch; a contact who unsubscribed themselves is not counted as opted out by the campaign."""
    own = np.asarray(themselves, dtype=bool) & (frame["status"] != SKIPPED).to_numpy()
    counts["changed"] += int((frame["reason"].isin(audit.CHANGED).to_numpy() & ~own).sum())
    counts["already"] += int(((frame["reason"] == "NO_STATUS_CHANGE").to_numpy() & ~own).sum())
    counts["self"] += int((own & (frame["status"] != "ERROR").to_numpy()).sum())
    counts["errors"] += int((frame["status"] == "ERROR").sum())
    skipped = frame["status"] == SKIPPED
    counts[CONFIRMED] += int((skipped & (frame["reason"] == CONFIRMED)).sum())
    counts[NOT_SENT] += int((skipped & (frame["reason"] == NOT_SENT)).sum())
