"""Lists: the step-2 segment, each round's recipients, list 1 (confirmed) and list 2 (unconfirmed)."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tenacity

from .. import lineage, report, segments
from ..assets import UNCONFIRMED_EXPORT, describe_events
from ..campaign import is_cta_click, last_done
from ..concurrency import in_background
from ..errors import (
    HubSpotConflict,
    HubSpotDownloadExpired,
    HubSpotExportLimitError,
    HubSpotNotFound,
    HubSpotPermanentError,
    HubSpotTransientError,
)
from ..ledger import ClickerLedger, Clickers, email_key
from ..links import ExportFileLink, HubSpotObjectLink, list_url
from ..storage import read_manifest, restrict, run_folder, write_manifest
from ..triggers import ExportReadyTrigger, ListProcessedTrigger
from .base import HubSpotOperator, as_outputs

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..hook import EmailEventSource, HubSpotHook
    from ..lineage import Lineage

PROCESSING_TYPES = ("DYNAMIC", "SNAPSHOT", "MANUAL")


class ListDefinitionConflict(HubSpotPermanentError):
    """A list with the campaign's name exists but means something else: adopting it would be wrong.

    Permanent: the list stays what it is until someone renames or deletes it, so retrying cannot help.
    """


class EnsureListOperator(HubSpotOperator):
    """Make sure a list with this name and definition exists, and wait until HubSpot has computed it.

    A rerun adopts the list the first try made (same name, same definition); a list of that name with
    another definition fails the task rather than being silently reused. Waiting for
    ``processingStatus`` happens in the triggerer, so no worker slot is held.

    :param list_name: the list's deterministic name (see ``campaign.object_name``).
    :param processing_type: ``DYNAMIC``, ``SNAPSHOT`` or ``MANUAL``.
    :param segment: a segment of :mod:`reengagement.segments` (``None`` for a MANUAL list).
    :param segment_args: the segment's arguments (list ids, subscription id, ...), templated.
    :param poll_interval: seconds between checks while HubSpot processes the list.

    .. seealso:: https://developers.hubspot.com/docs/api/crm/lists
    """

    template_fields: Sequence[str] = ("list_name", "segment_args")
    operator_extra_links = (HubSpotObjectLink(),)
    ui_color = "#ffe0b2"

    def __init__(
        self,
        *,
        list_name: str,
        processing_type: str,
        segment: str | None = None,
        segment_args: dict[str, Any] | None = None,
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if processing_type not in PROCESSING_TYPES:
            raise ValueError(f"processing_type must be one of {PROCESSING_TYPES}, not {processing_type!r}")
        if (segment is None) != (processing_type == "MANUAL"):
            raise ValueError("a MANUAL list has no segment; DYNAMIC and SNAPSHOT lists need one")
        if segment is not None and segment not in segments.SEGMENTS:
            raise ValueError(f"unknown segment {segment!r}; known: {', '.join(segments.SEGMENTS)}")
        self.list_name = list_name
        self.processing_type = processing_type
        self.segment = segment
        self.segment_args = segment_args or {}
        self.poll_interval = poll_interval
        self.hubspot_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        definition = segments.build(self.segment, self.segment_args)
        found = ensure_list(self.hook, self.list_name, self.processing_type, definition, log=self.log)
        self._link(context, found["listId"])
        if found.get("processingStatus") == "PROCESSING":
            self.log.info("List %r (%s) is PROCESSING; waiting in the triggerer.", self.list_name, found["listId"])
            self.defer(
                trigger=ListProcessedTrigger(
                    list_id=str(found["listId"]),
                    hubspot_conn_id=self.hubspot_conn_id,
                    poll_interval=self.poll_interval,
                    caller=self.hook.caller,
                ),
                method_name="execute_complete",
            )
        return self._result(found["listId"], found.get("size"))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "done":
            raise HubSpotTransientError(f"List {self.list_name!r} did not finish processing: {event.get('message')}")
        self._link(context, event["list_id"])
        return self._result(event["list_id"], event.get("size"))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the list made or adopted and the lists it is defined by (see :mod:`reengagement.lineage`)."""
        return lineage.ensure_list(self, task_instance)

    def _result(self, list_id: Any, size: Any) -> dict[str, Any]:
        size = int(size or 0)
        self.log.info("List %r is ready: id %s, %d members.", self.list_name, list_id, size)
        return {"list_id": str(list_id), "size": size}

    def _link(self, context: Context, list_id: Any) -> None:
        portal = self.portal(context)
        self.hubspot_url = list_url(portal["uiDomain"], portal["portalId"], str(list_id))


def ensure_list(
    hook: HubSpotHook, name: str, processing_type: str, definition: dict[str, Any] | None, *, log: Any
) -> dict[str, Any]:
    """The list called ``name``, created if missing; only ever one per name (see :class:`EnsureListOperator`)."""
    existing = hook.get_list_by_name(name)
    if existing is not None:
        return _adopt(existing, name, processing_type, definition, log=log)

    def create_or_adopt() -> dict[str, Any]:
        try:
            return hook.create_list(name, processing_type, definition)
        except (HubSpotTransientError, HubSpotConflict):
            # The create may have been applied (dropped connection) or raced: look before trying again.
            found = hook.get_list_by_name(name)
            if found is None:
                raise
            return _adopt(found, name, processing_type, definition, log=log)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(4),
        reraise=True,
        retry=tenacity.retry_if_exception_type(HubSpotTransientError),
        wait=tenacity.wait_exponential_jitter(multiplier=1, max=30),
    )
    created = retrying(create_or_adopt)
    log.info("Created %s list %r (id %s).", processing_type, name, created["listId"])
    return created


def _adopt(
    found: dict[str, Any], name: str, processing_type: str, definition: dict[str, Any] | None, *, log: Any
) -> dict[str, Any]:
    same_type = found.get("processingType") == processing_type
    same_filters = definition is None or segments.same_definition(definition, found.get("filterBranch"))
    if not (same_type and same_filters):
        raise ListDefinitionConflict(
            f"A HubSpot list named {name!r} already exists (id {found.get('listId')}) with a different definition "
            f"({found.get('processingType')} vs {processing_type}{'' if same_filters else ', other filters'}). "
            "Rename or delete it, or run the campaign under another 'campaign' id."
        )
    log.info("Adopting the existing list %r (id %s).", name, found.get("listId"))
    return found


class BuildConfirmedListOperator(HubSpotOperator):
    """List 1: contacts who clicked the CTA of any permission-pass email of the campaign so far.

    Clicks come from HubSpot's email events (bot-filtered ones excluded) and must match a CTA URL
    exactly: a click on the unsubscribe or preferences link is not a confirmation. Every read takes
    every click again, not only those since the last read: a click HubSpot shows late still counts.
    The list is a MANUAL list found (or created) by name. Clickers are looked up and added once: the
    run's :class:`~reengagement.ledger.ClickerLedger` remembers them, so later reads look up only new
    clickers. Adding is idempotent, so a rerun changes nothing, and members marketing added by hand stay.

    :param list_name: the campaign's "confirmed" list name (templated); or give ``list_id``.
    :param emails: outputs of the rounds' ``send_email`` tasks (email campaign ids of the published email and
        the CTA link), ``None`` for skipped rounds (templated).
    :param campaign: the campaign id, for the run's folder that holds the ledger (templated). Without
        it (or ``export_base``'s default), every clicker is looked up on every read.
    :param export_base: ObjectStoragePath URI of the exports folder (templated; default in AIRFLOW_HOME).
    :param verify_members: also page through list 1 and add back every clicker missing from it (one
        call per 250 members). Set on the last read before the opt-out: a clicker removed from list 1
        by hand would otherwise be opted out.
    """

    template_fields: Sequence[str] = ("list_name", "list_id", "emails", "campaign", "export_base")
    operator_extra_links = (HubSpotObjectLink(),)
    ui_color = "#c8e6c9"

    def __init__(
        self,
        *,
        emails: Any,
        list_name: str | None = None,
        list_id: str | None = None,
        campaign: str | None = None,
        export_base: str | None = None,
        verify_members: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (list_name or list_id):
            raise ValueError("give the confirmed list's list_name or list_id")
        self.list_name = list_name
        self.list_id = list_id
        self.emails = emails
        self.campaign = campaign
        self.export_base = export_base
        self.verify_members = verify_members
        self.hubspot_url: str | None = None

    def _list(self) -> dict[str, Any]:
        """List 1 as HubSpot describes it (found by id or name, or created)."""
        if self.list_id:
            return self.hook.get_list(str(self.list_id))
        return ensure_list(self.hook, str(self.list_name), "MANUAL", None, log=self.log)

    def _size_when_processed(self, found: dict[str, Any]) -> int:
        """List 1's size once HubSpot has processed it (a list just created takes seconds)."""
        if found.get("processingStatus") == "PROCESSING":
            return wait_processed(self.hook, str(found["listId"]))
        return int(found.get("size") or 0)

    def _ledger(self, context: Context, list_id: str) -> ClickerLedger | None:
        if not self.campaign:
            return None
        run_id = str(context["run_id"])
        return ClickerLedger(run_folder(self.export_base, str(self.campaign), run_id), list_id, run_id)

    def execute(self, context: Context) -> dict[str, Any]:
        found_list = self._list()
        list_id = str(found_list["listId"])
        emails = [e for e in as_outputs(self.emails) if e]
        ledger = self._ledger(context, list_id)
        known = ledger.load() if ledger else Clickers.empty()
        # One stream, so that HubSpot's limit never sits idle: click pages are read one after another (each needs
        # the last one's cursor), look-ups start with the first page, adds with the first hundred contacts found,
        # and a list 1 just created is waited out in the background while all that is under way.
        keys = bytearray()
        found_keys, found_ids = bytearray(), []

        def new_contact_ids() -> Iterator[str]:
            queued: set[int] = set()
            for email, contact_id in self.hook.contact_ids_by_email(iter_new_clickers(self.hook, emails, known, keys)):
                found_keys.extend(email_key(email))
                found_ids.append(int(contact_id))
                if int(contact_id) not in queued:
                    queued.add(int(contact_id))
                    yield contact_id

        processed = in_background(self._size_when_processed, found_list)
        added = self.hook.add_to_list(list_id, new_contact_ids(), when_ready=processed.result)
        size = processed.result()
        clicked = np.unique(np.frombuffer(bytes(keys), dtype="S16"))
        handled = known.among(clicked)
        found = Clickers.of(np.frombuffer(bytes(found_keys), dtype="S16"), np.array(found_ids, dtype=np.int64))
        self.log.info(
            "%d contacts clicked a CTA of %d email(s): %d already in list 1, %d new found in HubSpot and added.",
            len(clicked),
            len(emails),
            len(handled),
            len(found.contact_ids),
        )
        if self.verify_members:
            members = np.fromiter(self.hook.iter_list_memberships(list_id), dtype=np.int64)
            gone = np.setdiff1d(handled.contact_ids, members)
            if len(gone):
                self.log.warning(
                    "%d clicker(s) were removed from list 1 since they were added; adding them back, "
                    "so that they are not opted out.",
                    len(gone),
                )
                added += self.hook.add_to_list(list_id, (str(contact_id) for contact_id in gone))
        confirmed_now = handled.plus(found)
        if ledger is not None:
            ledger.save(confirmed_now)
        portal = self.portal(context)
        self.hubspot_url = list_url(portal["uiDomain"], portal["portalId"], list_id)
        confirmed = len(np.unique(confirmed_now.contact_ids))
        size += added
        self.log.info("List 1 (%s): %d CTA clickers, %d added now, %d members in all.", list_id, confirmed, added, size)
        return {"list_id": list_id, "confirmed": confirmed, "added": added, "size": size}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the emails whose clicks were read, and list 1 (see :mod:`reengagement.lineage`)."""
        return lineage.build_confirmed_list(self, task_instance)


def wait_processed(hook: HubSpotHook, list_id: str, *, timeout: float = 300.0, interval: float = 1.0) -> int:
    """Block briefly until a MANUAL list leaves PROCESSING (it only takes seconds); its size then.

    Called right after HubSpot said PROCESSING, so it waits before each read rather than after.
    """
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(interval)
        found = hook.get_list(list_id)
        if found.get("processingStatus") != "PROCESSING":
            return int(found.get("size") or 0)
        if time.monotonic() > deadline:
            raise HubSpotTransientError(f"List {list_id} is still PROCESSING after {timeout:.0f}s")


def iter_new_clickers(
    hook: EmailEventSource, emails: Iterable[dict[str, Any]], known: Clickers | None, keys: bytearray
) -> Iterator[str]:
    """Page through every non-filtered CLICK on one of the emails' CTA URLs, adding each clicker's address hash
    to ``keys``; yield the address of each clicker not ``known`` yet, once, as soon as its page is read (none
    when ``known`` is ``None``). Memory: 16 bytes a click, plus the hashes of the addresses yielded."""
    yielded: set[bytes] = set()
    for email in emails:
        cta = {email["cta_url"]}
        for campaign_id in email.get("campaign_ids") or []:
            for event in hook.iter_email_events(campaign_id, "CLICK", exclude_filtered=True):
                if event.get("filteredEvent") or not is_cta_click(event.get("url"), cta):
                    continue
                address = str(event["recipient"]).strip().lower()
                key = email_key(address)
                keys += key
                if known is not None and key not in yielded and key not in known:
                    yielded.add(key)
                    yield address


def read_clickers(
    hook: EmailEventSource, emails: Iterable[dict[str, Any]], known: Clickers | None
) -> tuple[np.ndarray, dict[bytes, str]]:
    """Every CTA clicker of the emails (see :func:`iter_new_clickers`), read to the end: the clickers' address
    hashes (unique), and the addresses of those not ``known`` yet, by hash."""
    keys = bytearray()
    new = {email_key(address): address for address in iter_new_clickers(hook, emails, known, keys)}
    return np.unique(np.frombuffer(bytes(keys), dtype="S16")), new


class ExportListOperator(HubSpotOperator):
    """Step 6, first half: export list 2 as CSV, the audit record written before anything changes.

    HubSpot's export runs asynchronously (the wait is deferred to the triggerer); its file is then
    streamed into ``<export_base>/<campaign>/<run id>/unconfirmed.csv`` with columns
    ``contact_id, email, run_id``, cells a spreadsheet would execute neutralised, owner-only on local
    disks. A hash of each row is kept beside it, so the opt-out can refuse rows changed or added by hand.

    What HubSpot's exports demand (https://developers.hubspot.com/docs/api/crm/exports):

    - headers: the export asks for internal names (``NAMES``), the columns it reads;
    - a file over 2 MB comes as a zip of CSVs: it is spooled to a temporary file and each CSV read as a
      stream, in chunks, so memory stays flat at a million rows;
    - a download URL lasts five minutes: the task's status is read again for a new one right before the
      download, and again after an expiry answer;
    - a portal may start only 30 exports a day: the task id is kept beside the target file
      (``unconfirmed.csv.task.json``), so a rerun waits for or downloads the export already started rather
      than starting a second; running out is a permanent error that says nobody was changed.

    A rerun after a complete download reuses the file (its manifest), so the opt-out always works from
    the list as it was first exported.

    :param list_id: list 2 of the last round (templated); or the outputs of every round's
        ``build_unconfirmed_list``, of which the last round that ran is exported.
    :param campaign: the campaign id, for the folder name (templated).
    :param export_base: ObjectStoragePath URI of the exports folder (templated; default in AIRFLOW_HOME).
    :param poll_interval: the longest pause between checks while HubSpot prepares the file.
    """

    template_fields: Sequence[str] = ("list_id", "campaign", "export_base")
    operator_extra_links = (ExportFileLink(),)
    ui_color = "#fff9c4"
    #: Fresh URLs tried when HubSpot answers a download with "expired".
    download_attempts = 3

    def __init__(
        self, *, list_id: str, campaign: str, export_base: str | None = None, poll_interval: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.list_id = list_id
        self.campaign = campaign
        self.export_base = export_base
        self.poll_interval = poll_interval
        self.file_uri: str | None = None

    @property
    def source_list_id(self) -> str:
        if isinstance(self.list_id, (list, tuple)) or str(self.list_id).lstrip().startswith("["):
            return str(last_done(as_outputs(self.list_id))["list_id"])
        return str(self.list_id)

    def _target(self, context: Context) -> Any:
        return run_folder(self.export_base, self.campaign, context["run_id"]) / "unconfirmed.csv"

    @staticmethod
    def _task_file(target: Any) -> Any:
        return target.parent / (target.name + ".task.json")

    def execute(self, context: Context) -> dict[str, Any]:
        target = self._target(context)
        self.file_uri = str(target)
        done = read_manifest(target)
        if done is not None:
            self.log.info("Reusing the complete export %s (%s rows).", target, done["rows"])
            return self._exported(context, target, int(done["rows"]))
        started = self._started_export(target)
        if started is not None:
            task_id, state = started
            if state == "COMPLETE":
                return self._download(context, task_id)
            self.log.info(
                "HubSpot export %s of list %s, started by an earlier try, is %s; waiting for it.",
                task_id,
                self.source_list_id,
                state,
            )
        else:
            task_id = self._start(context, target)
        self.defer(
            trigger=ExportReadyTrigger(
                task_id=task_id,
                hubspot_conn_id=self.hubspot_conn_id,
                poll_interval=self.poll_interval,
                caller=self.hook.caller,
            ),
            method_name="execute_complete",
        )
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "done":
            raise HubSpotTransientError(
                f"HubSpot's export of list {self.source_list_id} failed: {event.get('message')}"
            )
        task_id = event.get("task_id") or self._remembered(self._target(context))
        if not task_id:
            raise HubSpotTransientError(f"The export of list {self.source_list_id} finished but its task id is lost.")
        return self._download(context, str(task_id))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the list exported and the CSV written (see :mod:`reengagement.lineage`)."""
        return lineage.export_list(self, task_instance)

    # -- the export task ----------------------------------------------------------------------------------

    def _remembered(self, target: Any) -> str | None:
        """The task id an earlier try started for this list, if any."""
        task_file = self._task_file(target)
        if not task_file.exists():
            return None
        with task_file.open("r") as handle:
            state = json.load(handle)
        return str(state["task_id"]) if state.get("list_id") == self.source_list_id else None

    def _started_export(self, target: Any) -> tuple[str, str] | None:
        """``(task id, status)`` of an export an earlier try started that HubSpot can still deliver, else None."""
        task_id = self._remembered(target)
        if task_id is None:
            return None
        try:
            state = str(self.hook.export_status(task_id).get("status"))
        except HubSpotNotFound:
            state = "GONE"
        if state in ("CANCELED", "FAILED", "GONE"):
            self.log.warning("HubSpot export %s, started by an earlier try, is %s; starting another.", task_id, state)
            return None
        return task_id, state

    def _start(self, context: Context, target: Any) -> str:
        request = {
            "exportType": "LIST",
            "listId": self.source_list_id,
            "objectType": "CONTACT",
            "objectProperties": ["email"],
            "format": "CSV",
            "language": "EN",
            "exportName": target.name + " " + str(context["run_id"]),
            "exportInternalValuesOptions": ["NAMES"],
            "associatedObjectType": [],
            "includeLabeledAssociations": False,
            "includePrimaryDisplayPropertyForAssociatedObjects": False,
            "overrideAssociatedObjectsPerDefinitionPerRowLimit": False,
        }
        try:
            task_id = self.hook.start_export(request)
        except HubSpotExportLimitError as err:
            raise HubSpotExportLimitError(
                f"{err} HubSpot allows 30 exports per portal in a rolling 24 hours, and list {self.source_list_id} "
                "must be exported before the opt-out. Nobody was opted out and nothing was changed in HubSpot. "
                "Rerun this task once the portal's oldest export of the last 24 hours is a day old (at the latest "
                "24 hours from now).",
                status=err.status,
                correlation_id=err.correlation_id,
                body=err.body,
            ) from err
        task_file = self._task_file(target)
        with task_file.open("w") as out:
            json.dump({"task_id": task_id, "list_id": self.source_list_id, "run_id": str(context["run_id"])}, out)
        restrict(task_file)
        self.log.info("Started HubSpot export %s of list %s; waiting in the triggerer.", task_id, self.source_list_id)
        return task_id

    # -- the download -------------------------------------------------------------------------------------

    def _download(self, context: Context, task_id: str) -> dict[str, Any]:
        """Download the export through a URL read just now, and again through a new one if it has expired."""
        target = self._target(context)
        self.file_uri = str(target)
        for attempt in range(1, self.download_attempts + 1):
            url = self.hook.export_status(task_id).get("result")
            if not url:
                raise HubSpotTransientError(f"HubSpot's export {task_id} gives no download URL.")
            try:
                with self.hook.open_download(url) as download:
                    rows = self._write(context, target, _csv_chunks(download))
            except HubSpotDownloadExpired:
                if attempt == self.download_attempts:
                    raise
                self.log.warning("HubSpot's download URL for export %s has expired; asking for a new one.", task_id)
                continue
            self.log.info("Exported list %s: %d contacts to %s.", self.source_list_id, rows, target)
            return self._exported(context, target, rows)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _exported(self, context: Context, target: Any, rows: int) -> dict[str, Any]:
        """The task's result; the ``unconfirmed_export`` asset event says the same (see :mod:`reengagement.assets`)."""
        facts = {"campaign": self.campaign, "run_id": str(context["run_id"]), "uri": str(target), "rows": rows}
        describe_events(context, self.outlets, {UNCONFIRMED_EXPORT: facts})
        return {"export_uri": str(target), "rows": rows}

    def _write(self, context: Context, target: Any, chunks: Iterable[pd.DataFrame]) -> int:
        rows, keys = 0, []
        with target.open("w") as out:
            restrict(target)  # before the first row: it holds email addresses
            out.write(",".join(report.OPT_OUT_COLUMNS) + "\n")
            for frame in report.from_hubspot_export(chunks, str(context["run_id"])):
                report.to_csv_rows(frame, out, header=False)
                keys.append(report.row_keys(frame))
                rows += len(frame)
        row_keys = target.parent / (target.name + ".rows.npy")
        with row_keys.open("wb") as out:
            restrict(row_keys)
            np.save(out, np.sort(np.concatenate(keys)) if keys else np.empty(0, dtype=np.uint64))
        write_manifest(
            target, rows=rows, list_id=self.source_list_id, run_id=str(context["run_id"]), row_keys=row_keys.name
        )
        return rows


_ZIP_MAGIC = b"PK\x03\x04"


def _csv_chunks(download: Any) -> Iterator[pd.DataFrame]:
    """HubSpot's export as frames of at most ``report.CHUNK_ROWS`` rows, whether it came as a CSV or a zip of CSVs.

    A zip needs its directory at the end, so it is spooled to a temporary file first (its size, not its rows,
    on disk); each CSV in it is then read as a stream. Nothing holds more than one chunk in memory.
    """
    if hasattr(download, "auto_close"):
        download.auto_close = False  # urllib3 would close itself at the end, which the buffer reads as an error
    stream = io.BufferedReader(download, buffer_size=1 << 20)
    if stream.peek(len(_ZIP_MAGIC))[: len(_ZIP_MAGIC)] != _ZIP_MAGIC:
        yield from pd.read_csv(stream, dtype="string", keep_default_na=False, chunksize=report.CHUNK_ROWS)
        return
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        with zipfile.ZipFile(spool) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if not members:
                raise HubSpotTransientError(f"HubSpot's export zip holds no CSV file (it has {archive.namelist()}).")
            for name in members:
                with archive.open(name) as member:
                    yield from pd.read_csv(member, dtype="string", keep_default_na=False, chunksize=report.CHUNK_ROWS)
