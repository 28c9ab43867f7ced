"""CRM exports v3: export a contact list to CSV, poll the task, download the file.

The CSV is a snapshot taken when the export is requested (the list is brought up to date first), so
what a caller downloads is exactly who was in the list at that moment, however long it waits to poll.
The rows are streamed from SQLite to disk in chunks: a million members never sit in memory. The task
then reports PROCESSING for ``export_processing_seconds`` before handing out a download URL that, like
HubSpot's pre-signed S3 links, needs no bearer token but carries an unguessable secret.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse

from .. import errors, properties
from ..portal import Portal, iso, portal_of
from ..routing import Endpoints, json_body, json_object, path_int

endpoints = Endpoints()

SCOPES = [["crm.export"]]
EXPORT_ID_START = 48_000_000
CONTACT_OBJECT_TYPES = {"CONTACT", "CONTACTS", "0-1"}
REQUIRED = (
    "associatedObjectType", "exportInternalValuesOptions", "exportName", "exportType", "format",
    "includeLabeledAssociations", "includePrimaryDisplayPropertyForAssociatedObjects", "language", "listId",
    "objectProperties", "objectType", "overrideAssociatedObjectsPerDefinitionPerRowLimit",
)
_LANGUAGE = re.compile(r"^[A-Z]{2}(_[A-Z]{2})?$")
_ROWS_PER_CHUNK = 10_000


# -- validation -----------------------------------------------------------------------------------


def _validate(body: dict[str, Any]) -> list[properties.Property]:
    """Check a LIST export request the way HubSpot does; return the properties to export."""
    missing = [key for key in REQUIRED if key not in body]
    if missing:
        raise errors.validation_error(f"Invalid input: missing required fields {', '.join(missing)}.",
                                      field=missing[0])
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
        raise errors.validation_error("objectProperties must be a non-empty list of property names.",
                                      field="objectProperties")
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


def _filename(export_name: str, export_id: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", export_name).strip("-.") or "export"
    return f"hubspot-crm-exports-{slug[:80]}-{export_id}.csv"


def _write_csv(portal: Portal, path: Path, list_id: int, props: list[properties.Property]) -> int:
    """Stream the list's members, ordered by record id, into ``path``; returns the row count."""
    columns = ", ".join(["c.id"] + [p.sql for p in props])
    sql = (
        f"SELECT {columns} FROM memberships m JOIN contacts c ON c.id = m.record_id "  # noqa: S608 - trusted SQL
        "WHERE m.list_id = ? ORDER BY m.record_id"
    )
    partial = path.with_suffix(".partial")
    count = 0
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Record ID"] + [p.label for p in props])
        cursor = portal.db.execute(sql, (list_id,))
        while rows := cursor.fetchmany(_ROWS_PER_CHUNK):
            writer.writerows(
                [[row[0]] + [p.to_hubspot(row[i + 1]) or "" for i, p in enumerate(props)] for row in rows]
            )
            count += len(rows)
    partial.replace(path)
    return count


# -- HubSpot endpoints ------------------------------------------------------------------------------


@endpoints.post("/crm/v3/exports/export/async", name="exports.start", scopes=SCOPES, status_code=202)
async def start(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    props = _validate(body)
    list_id = _list_id(portal, body["listId"])
    export_id = portal.next_id("export", EXPORT_ID_START)
    secret = secrets.token_urlsafe(24)
    path = _exports_dir(portal) / _filename(str(body["exportName"]), export_id)
    rows = _write_csv(portal, path, list_id, props)
    now = portal.now_ms()
    portal.db.execute(
        "INSERT INTO exports (id, name, list_id, request, created_at, ready_at, path, secret, rows) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (export_id, str(body["exportName"]), list_id, json.dumps(body), now,
         now / 1000 + portal.config.export_processing_seconds, str(path), secret, rows),
    )
    return {"id": str(export_id), "links": {"status": _status_url(request, export_id)}}


def _status_url(request: Request, export_id: int) -> str:
    return f"{_base(request)}/crm/v3/exports/export/async/tasks/{export_id}/status"


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
    result = f"{_base(request)}/_sandbox/downloads/exports/{row['id']}/{row['secret']}/{filename}"
    return {"status": "COMPLETE", "result": result, "numErrors": 0, "errors": [], **body}


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


# -- the "pre-signed" download (no bearer token, a secret in the path) -------------------------------


@endpoints.router.get("/_sandbox/downloads/exports/{export_id}/{secret}/{filename}", include_in_schema=False)
async def download(request: Request, export_id: str, secret: str, filename: str) -> FileResponse:
    portal = portal_of(request)
    row = portal.db.one("SELECT path, secret FROM exports WHERE id = ?", (int(export_id),)) if (
        export_id.isdigit()) else None
    path = Path(row["path"]) if row is not None else None
    if (
        row is None or path is None or not secrets.compare_digest(secret, row["secret"])
        or filename != path.name or not path.exists()
    ):
        raise errors.not_found("The requested file does not exist.")
    return FileResponse(path, media_type="text/csv", filename=path.name)
