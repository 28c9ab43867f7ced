"""The campaign's files, served by the Airflow api-server behind Airflow's own login.

The UI does not open ``file://`` links, and the files may sit on any object store; the api-server can read
them through ObjectStoragePath and check the reader's login and read access to the DAG's runs (the UI's
``_token`` cookie counts, so links and the report tab in the UI just work). Mounted at ``/reengagement`` by
the plugin in ``reengagement.plugin``.

The run folder is the one the run itself recorded in XCom, never a path taken from the request, and a file
is served only if it is listed in that folder under exactly the name asked for.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from html import escape
from typing import Annotated, Any, cast
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.models.xcom import XComModel
from airflow.sdk import ObjectStoragePath
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from . import audit

#: Tasks whose ``return_value`` says where the run's files are: preflight's ``folder``, else the report's.
FOLDER_TASK, REPORT_TASK = "preflight", "campaign_report"
CHUNK = 1 << 16
#: Types the browser may show inline; anything else is offered as a download.
INLINE_TYPES = {
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
#: The report and the index are our own pages: no scripts, nothing loaded from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
}

#: Airflow's own check: a logged-in user (bearer token or the UI's cookie) who may read the DAG's runs.
can_read_runs = requires_access_dag("GET", DagAccessEntity.RUN)


def folder_from_xcom(values: dict[str, Any]) -> str | None:
    """The run folder's URI from the ``return_value`` of the tasks in ``FOLDER_TASK``/``REPORT_TASK``."""
    preflight, report = values.get(FOLDER_TASK), values.get(REPORT_TASK)
    if isinstance(preflight, dict) and preflight.get("folder"):
        return str(preflight["folder"])
    if isinstance(report, dict) and report.get("report_uri"):
        return str(ObjectStoragePath(str(report["report_uri"])).parent)
    return None


def read_folder_uri(session: Session, dag_id: str, run_id: str) -> str | None:
    """Read both tasks' ``return_value`` from the metadata database, as the core API's XCom route does."""
    query = XComModel.get_many(
        run_id=run_id, key="return_value", task_ids=[FOLDER_TASK, REPORT_TASK], dag_ids=dag_id, map_indexes=-1
    )
    # Airflow annotates the query in SQLAlchemy 2.0's ``Select[tuple[...]]`` form, which 2.1 reads as one column
    # holding a tuple; the rows are XComModel objects.
    rows = cast("Iterable[XComModel]", session.scalars(query))
    values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return folder_from_xcom(values)


def get_run_folder(dag_id: str, run_id: str, session: SessionDep) -> ObjectStoragePath:
    """The run's folder, or 404: the one dependency tests replace."""
    uri = read_folder_uri(session, dag_id, run_id)
    if uri is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"No files are known for run {run_id!r} of DAG {dag_id!r}: the run does not exist, or "
            "it stopped before preflight recorded its folder.",
        )
    return ObjectStoragePath(uri)


RunFolder = Annotated[ObjectStoragePath, Depends(get_run_folder)]


def listing(folder: ObjectStoragePath) -> dict[str, int]:
    """The folder's visible files (not sub-folders) and their sizes, by name."""
    if not folder.exists():
        return {}
    files: dict[str, int] = {}
    for child in folder.iterdir():
        info = child.stat()
        if info.get("type") == "file" and not child.name.startswith("."):
            files[child.name] = int(info.st_size)
    return dict(sorted(files.items()))


def check_name(name: str) -> None:
    """Only a plain, visible file name: never a path, ``..`` or a hidden file."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{name!r} is not a file name of the run folder: give a plain name such as report.csv.",
        )


def chunks(path: ObjectStoragePath) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def ledger_chunks(parts: list[ObjectStoragePath]) -> Iterator[bytes]:
    """The parts as one CSV: the header once, then every part's rows in order, each part read in chunks."""
    last = b"\n"
    for i, part in enumerate(parts):
        with part.open("rb") as handle:
            header = handle.readline()
            if i == 0:
                yield header
                last = header[-1:]
            first = True
            while block := handle.read(CHUNK):
                if first and last != b"\n":
                    yield b"\n"  # a part that lacks its last newline must not glue its row to the next part's
                first = False
                yield block
                last = block[-1:]


def disposition(kind: str, name: str) -> str:
    return f"{kind}; filename*=UTF-8''{quote(name, safe='')}"


def file_response(path: ObjectStoragePath, name: str) -> StreamingResponse:
    media_type = INLINE_TYPES.get(posixpath.splitext(name)[1].lower())
    headers = {**PAGE_HEADERS, "Content-Disposition": disposition("inline" if media_type else "attachment", name)}
    return StreamingResponse(chunks(path), media_type=media_type or "application/octet-stream", headers=headers)


def index_page(dag_id: str, run_id: str, files: dict[str, int], has_ledger: bool) -> str:
    rows = "".join(
        f'<tr><td><a href="{escape(quote(name))}">{escape(name)}</a></td><td>{size:,}</td></tr>'
        for name, size in files.items()
    )
    ledger = (
        '<a href="../ledger.csv">the campaign\'s audit ledger</a> (every opt-out try of the campaign, one CSV)'
        if has_ledger
        else "no audit ledger yet: no opt-out of this campaign has changed anybody"
    )
    report = '<a href="../report">report</a>' if "report.html" in files else "no report yet"
    table = (
        f"<table><tr><th>file</th><th>bytes</th></tr>{rows}</table>"
        if files
        else "<p>The run folder has no files yet.</p>"
    )
    title = f"Files of {dag_id} / {run_id}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + escape(title) + "</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}td,th{padding:3px 10px;text-align:left}"
        "td+td{text-align:right}</style></head><body><h1>" + escape(title) + "</h1>"
        f"<p>{report} · {ledger}</p>{table}</body></html>"
    )


router = APIRouter(prefix="/runs/{dag_id}/{run_id}", dependencies=[Depends(can_read_runs)])


@router.get("/report", response_class=HTMLResponse)
def get_report(folder: RunFolder) -> StreamingResponse:
    """The run's ``report.html``."""
    page = folder / "report.html"
    if not page.exists():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "This run has no report yet: campaign_report writes it when the run ends."
        )
    return StreamingResponse(chunks(page), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/files/", response_class=HTMLResponse)
def get_index(dag_id: str, run_id: str, folder: RunFolder) -> HTMLResponse:
    """A page listing the run folder's files, with links to each, the report and the campaign's ledger."""
    has_ledger = bool(audit.parts(audit.ledger_folder(folder)))
    return HTMLResponse(index_page(dag_id, run_id, listing(folder), has_ledger), headers=PAGE_HEADERS)


@router.get("/files/{name:path}")
def get_file(name: str, folder: RunFolder) -> StreamingResponse:
    """One file of the run folder, by its plain name as listed."""
    check_name(name)
    if name not in listing(folder):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"The run folder has no file named {name!r}.")
    return file_response(folder / name, name)


@router.get("/ledger.csv")
def get_ledger(folder: RunFolder) -> StreamingResponse:
    """The campaign's audit ledger: its parts in written order as one CSV, the header once."""
    parts = audit.parts(audit.ledger_folder(folder))
    if not parts:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "This campaign has no audit ledger yet: no opt-out try has changed anybody."
        )
    headers = set()
    for part in parts:
        with part.open("rb") as handle:
            headers.add(handle.readline().rstrip(b"\r\n"))
    if len(headers) > 1:
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "The parts of the audit ledger do not share one header; read them one by one.",
        )
    return StreamingResponse(
        ledger_chunks(parts),
        media_type="text/csv; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff", "Content-Disposition": disposition("inline", "audit_ledger.csv")},
    )


app = FastAPI(title="Campaign files", description="The files of each campaign run, behind Airflow's login.")
app.include_router(router)
