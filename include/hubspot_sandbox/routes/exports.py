"""CRM exports v3: export a contact list to CSV, poll the task, download the file.

The CSV is a snapshot taken when the export is requested (of the list as HubSpot shows it then: a
DYNAMIC list still behind a recent change exports its old members), so what a caller downloads is who
was in the list at that moment, however long it waits to poll. The rows are streamed from SQLite to
disk in chunks: a million members never sit in memory. The task then reports PROCESSING for
``export_processing_seconds``. As on HubSpot (https://developers.hubspot.com/docs/api/crm/exports):

- column headers are property labels ("Record ID", "Email"), or internal names ("hs_object_id",
  "email") when ``exportInternalValuesOptions`` holds ``NAMES``;
- a CSV over ``export_zip_bytes`` (2 MB), or over ``export_rows_per_file`` rows, comes as a zip of CSVs;
- every COMPLETE status answer hands out a new download URL that needs no bearer token but carries a
  signature, and expires ``export_url_seconds`` (five minutes) later: after that the file host answers
  403 ("Request has expired", as S3 does for a pre-signed URL);
- a portal may start ``exports_per_day`` (30) exports in any rolling 24 hours; more are refused with 429.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import secrets
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response

from .. import errors, properties
from ..portal import Portal, iso, portal_of
from ..routing import Endpoints, json_body, json_object, path_for, path_int

endpoints = Endpoints()

SCOPES = [["crm.export"]]
EXPORT_ID_START = 48_000_000
CONTACT_OBJECT_TYPES = {"CONTACT", "CONTACTS", "0-1"}
REQUIRED = (
    "associatedObjectType",
    "exportInternalValuesOptions",
    "exportName",
    "exportType",
    "format",
    "includeLabeledAssociations",
    "includePrimaryDisplayPropertyForAssociatedObjects",
    "language",
    "listId",
    "objectProperties",
    "objectType",
    "overrideAssociatedObjectsPerDefinitionPerRowLimit",
)
_LANGUAGE = re.compile(r"^[A-Z]{2}(_[A-Z]{2})?$")
_ROWS_PER_CHUNK = 10_000
DAY_MS = 86_400_000
#: The id column's header: its label, and (with NAMES) the internal name of the property it holds.
RECORD_ID = ("Record ID", "hs_object_id")


# -- validation -----------------------------------------------------------------------------------


def _validate(body: dict[str, Any]) -> list[properties.Property]:
    """Check a LIST export request the way HubSpot does; return the properties to export."""
    missing = [key for key in REQUIRED if key not in body]
    if missing:
        raise errors.validation_error(f"Invalid input: missing required fields {', '.join(missing)}.", field=missing[0])
    if body["exportType"] != "LIST":
        raise errors.validation_error("The sandbox exports lists only: exportType must be LIST.", field="exportType")
    if body["format"] != "CSV":
        raise errors.validation_error("The sandbox writes CSV only: format must be CSV.", field="format")
    if not isinstance(body["language"], str) or not _LANGUAGE.match(body["language"]):
        raise errors.validation_error(f"Invalid input: unknown language {body['language']!r}.", field="language")
    if str(body["objectType"]).upper() not in CONTACT_OBJECT_TYPES:
        raise errors.validation_error(
            f"Unsupported objectType {body['objectType']!r}: use CONTACT or 0-1.", field="objectType"
        )
    names = body["objectProperties"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise errors.validation_error(
            "objectProperties must be a non-empty list of property names.", field="objectProperties"
        )
    unknown = [n for n in names if properties.resolve(n) is None]
    if unknown:
        raise errors.validation_error(f"Unknown contact properties: {', '.join(unknown)}.", field="objectProperties")
    return [p for p in properties.known(names) if p.name != "hs_object_id"]


def _list_id(portal: Portal, raw: Any) -> int:
    """The list to export, brought up to date; HubSpot answers 400 for a list that does not exist."""
    from .. import lists_store  # written alongside; imported late so this module loads on its own

    text = str(raw).strip()
    if not text.isdigit():
        raise errors.validation_error(f"listId {raw!r} is not a valid list id.", field="listId")
    try:
        row = lists_store.refresh(portal, int(text))
    except errors.HubSpotError as err:
        raise errors.validation_error(f"List {text} does not exist.", field="listId") from err
    if row["object_type_id"] != "0-1":
        raise errors.validation_error(f"List {text} is not a contact list.", field="listId")
    return int(text)


# -- the CSV snapshot ------------------------------------------------------------------------------


def _exports_dir(portal: Portal) -> Path:
    base = portal.files_dir if portal.files_dir is not None else Path(tempfile.gettempdir()) / "hubspot-sandbox"
    folder = base / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _filename(export_name: str, export_id: int, suffix: str = ".csv") -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", export_name).strip("-.") or "export"
    return f"hubspot-crm-exports-{slug[:80]}-{export_id}{suffix}"


def _headers(props: list[properties.Property], internal_names: bool) -> list[str]:
    """HubSpot's column headers: labels by default, internal property names with ``NAMES``."""
    if internal_names:
        return [RECORD_ID[1]] + [p.name for p in props]
    return [RECORD_ID[0]] + [p.label for p in props]


class _Parts:
    """CSV files of at most ``per_file`` rows each, every one with the header row."""

    def __init__(self, base: Path, header: list[str], per_file: int) -> None:
        self.base, self.header, self.per_file = base, header, max(1, per_file)
        self.paths: list[Path] = []
        self._fh: Any = None
        self._writer: Any = None
        self._rows = 0

    def _next(self) -> None:
        self.close()
        self.paths.append(self.base.with_name(f"{self.base.stem}-part{len(self.paths) + 1}.partial"))
        self._fh = self.paths[-1].open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(self.header)
        self._rows = 0

    def write(self, rows: list[list[Any]]) -> None:
        if self._fh is None:
            self._next()
        while rows:
            if self._rows >= self.per_file:
                self._next()
            room = self.per_file - self._rows
            self._writer.writerows(rows[:room])
            self._rows += len(rows[:room])
            rows = rows[room:]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _write_parts(
    portal: Portal, base: Path, list_id: int, props: list[properties.Property], header: list[str]
) -> tuple[list[Path], int]:
    """Stream the list's members, ordered by record id, into CSV files of at most ``export_rows_per_file`` rows."""
    columns = ", ".join(["c.id"] + [p.sql for p in props])
    sql = (
        f"SELECT {columns} FROM memberships m JOIN contacts c ON c.id = m.record_id "  # noqa: S608 - trusted SQL
        "WHERE m.list_id = ? ORDER BY m.record_id"
    )
    parts = _Parts(base, header, int(portal.config.export_rows_per_file))
    count = 0
    try:
        parts.write([])  # an empty list still exports a file with the header
        cursor = portal.db.execute(sql, (list_id,))
        while rows := cursor.fetchmany(_ROWS_PER_CHUNK):
            parts.write([[row[0]] + [p.to_hubspot(row[i + 1]) or "" for i, p in enumerate(props)] for row in rows])
            count += len(rows)
    finally:
        parts.close()
    return parts.paths, count


def _write_export(
    portal: Portal,
    folder: Path,
    export_id: int,
    export_name: str,
    list_id: int,
    props: list[properties.Property],
    internal_names: bool,
) -> tuple[Path, int]:
    """The export's file: one CSV, or a zip of CSVs when it is large; returns its path and the row count."""
    csv_name = _filename(export_name, export_id)
    parts, count = _write_parts(portal, folder / csv_name, list_id, props, _headers(props, internal_names))
    if len(parts) == 1 and parts[0].stat().st_size <= portal.config.export_zip_bytes:
        path = folder / csv_name
        parts[0].replace(path)
        return path, count
    path = folder / _filename(export_name, export_id, ".zip")
    partial = path.with_suffix(".zip-partial")
    stem = Path(csv_name).stem
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number, part in enumerate(parts, start=1):
            member = f"{stem}.csv" if len(parts) == 1 else f"{stem}-{number}.csv"
            archive.write(part, arcname=member)
            part.unlink()
    partial.replace(path)
    return path, count


def _check_daily_limit(portal: Portal) -> None:
    """HubSpot allows ``exports_per_day`` exports in a rolling 24 hours; the next one is refused."""
    limit = portal.config.exports_per_day
    since = portal.now_ms() - DAY_MS
    started = int(portal.db.scalar("SELECT COUNT(*) FROM exports WHERE created_at > ?", (since,)))
    if started < limit:
        return
    oldest = portal.db.scalar("SELECT MIN(created_at) FROM exports WHERE created_at > ?", (since,))
    # A limit of 0 (a test's "no exports left today") has no export in the window to wait for.
    when = f" The next export can start at {iso(int(oldest) + DAY_MS)}." if oldest is not None else ""
    raise errors.HubSpotError(
        429,
        "RATE_LIMITS",
        f"You have reached the limit of {limit} exports in a rolling 24 hours.{when}",
        extra={"errorType": "EXPORT_LIMIT"},
    )


# -- HubSpot endpoints ------------------------------------------------------------------------------


@endpoints.post("/crm/v3/exports/export/async", name="exports.start", scopes=SCOPES, status_code=202)
async def start(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    props = _validate(body)
    list_id = _list_id(portal, body["listId"])
    _check_daily_limit(portal)
    export_id = portal.next_id("export", EXPORT_ID_START)
    secret = secrets.token_urlsafe(24)
    internal_names = "NAMES" in (body.get("exportInternalValuesOptions") or [])
    path, rows = _write_export(
        portal, _exports_dir(portal), export_id, str(body["exportName"]), list_id, props, internal_names
    )
    now = portal.now_ms()
    portal.db.execute(
        "INSERT INTO exports (id, name, list_id, request, created_at, ready_at, path, secret, rows) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            export_id,
            str(body["exportName"]),
            list_id,
            json.dumps(body),
            now,
            now / 1000 + portal.config.export_processing_seconds,
            str(path),
            secret,
            rows,
        ),
    )
    return {"id": str(export_id), "links": {"status": _status_url(request, export_id)}}


def _status_url(request: Request, export_id: int) -> str:
    return _base(request) + path_for(request, f"/crm/v3/exports/export/async/tasks/{export_id}/status")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _export(portal: Portal, raw_id: str, what: str) -> Any:
    export_id = path_int(raw_id, what)
    row = portal.db.one("SELECT * FROM exports WHERE id = ?", (export_id,))
    if row is None:
        raise errors.not_found(f"Export {export_id} does not exist.")
    return row


def _ready(portal: Portal, row: Any) -> bool:
    return portal.now_ms() / 1000 >= row["ready_at"]


@endpoints.get("/crm/v3/exports/export/async/tasks/{taskId}/status", name="exports.status", scopes=SCOPES)
async def status(request: Request, taskId: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    row = _export(portal, taskId, "taskId")
    ready_ms = int(row["ready_at"] * 1000)
    body: dict[str, Any] = {
        "requestedAt": iso(row["created_at"]),
        "startedAt": iso(row["created_at"]),
        "completedAt": iso(ready_ms),
        "links": {"self": _status_url(request, row["id"])},
    }
    if not _ready(portal, row):
        return {"status": "PROCESSING", **body}
    filename = Path(row["path"]).name
    expires = portal.now_ms() + int(portal.config.export_url_seconds * 1000)
    token = f"{expires}.{_signature(row, expires)}"
    result = f"{_base(request)}/_sandbox/downloads/exports/{row['id']}/{token}/{filename}"
    return {"status": "COMPLETE", "result": result, "numErrors": 0, "errors": [], **body}


def _signature(row: Any, expires: int) -> str:
    """What makes a download URL unguessable and its expiry unforgeable: an HMAC under the export's secret."""
    message = f"{row['id']}.{expires}".encode()
    return hmac.new(str(row["secret"]).encode(), message, hashlib.sha256).hexdigest()[:32]


@endpoints.get("/crm/v3/exports/export/{exportId}", name="exports.get", scopes=SCOPES)
async def get_export(request: Request, exportId: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    row = _export(portal, exportId, "exportId")
    requested = json.loads(row["request"])
    ready = _ready(portal, row)
    return {
        "id": str(row["id"]),
        "exportName": row["name"],
        "exportType": "LIST",
        "exportState": "DONE" if ready else "PROCESSING",
        "objectType": "CONTACT",
        "objectProperties": list(requested["objectProperties"]),
        "recordCount": row["rows"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(int(row["ready_at"] * 1000) if ready else row["created_at"]),
    }


# -- the "pre-signed" download (no bearer token, a signed expiry in the path) -----------------------------

_EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>"
)


@endpoints.router.get("/_sandbox/downloads/exports/{export_id}/{token}/{filename}", include_in_schema=False)
async def download(request: Request, export_id: str, token: str, filename: str) -> Response:
    portal = portal_of(request)
    row = (
        portal.db.one("SELECT id, path, secret FROM exports WHERE id = ?", (int(export_id),))
        if (export_id.isdigit())
        else None
    )
    expires_text, _, signature = token.partition(".")
    valid = (
        row is not None
        and expires_text.isdigit()
        and secrets.compare_digest(signature, _signature(row, int(expires_text)))
    )
    path = Path(row["path"]) if row is not None else None
    if not valid or path is None or filename != path.name or not path.exists():
        raise errors.not_found("The requested file does not exist.")
    if portal.now_ms() > int(expires_text):
        return Response(_EXPIRED, status_code=403, media_type="application/xml")
    media_type = "application/zip" if path.suffix == ".zip" else "text/csv"
    return FileResponse(path, media_type=media_type, filename=path.name)
