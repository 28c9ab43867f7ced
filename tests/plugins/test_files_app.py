"""The files app: each route on a real run folder, the names it refuses, the ledger, and Airflow's login."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from fastapi import FastAPI
from fastapi.testclient import TestClient
from reengagement import audit, files_app
from reengagement.links import PREFIX, files_url, ledger_url, served_url

DAG, RUN = "hubspot_reengagement", "manual__2026-12-04T14:00:00+00:00"
ROOT = Path(__file__).resolve().parents[2]
HEADER = ",".join(audit.COLUMNS) + "\n"


def ledger_row(contact: int, try_number: int) -> str:
    return (
        f"2026-12-04T14:0{try_number}:00Z,{RUN},{try_number},{contact},c{contact}@example.com,all_email,,"
        "LEGITIMATE_INTEREST_OTHER,,,,COMPLETE,REQUESTED_CHANGE_OCCURRED\n"
    )


@pytest.fixture
def folder(tmp_path):
    """A run folder as a finished run leaves it, with a hidden file and a sub-folder that must not be served."""
    run = tmp_path / "exports" / "campaign_2026-Q4" / "manual__2026-12-04T14_00_00_00_00"
    run.mkdir(parents=True)
    files = {
        "report.html": "<!doctype html><h1>Permission pass</h1>",
        "report.csv": "round,sent\n1,10\n",
        "unconfirmed.csv": "hs_object_id,email\n1,a@example.com\n",
        "unconfirmed.csv.json": '{"rows": 1}',
        "opt_out_result.try-1.csv": "contact_id,status\n1,COMPLETE\n",
        ".unconfirmed.csv.tmp": "partial",
    }
    for name, text in files.items():
        (run / name).write_text(text)
    (run / "confirmed_clickers.npy").write_bytes(b"\x93NUMPY\x01\x00")
    (run / "scratch").mkdir()
    return run


def write_part(folder, name: str, text: str) -> None:
    ledger = folder.parent / audit.LEDGER_FOLDER
    ledger.mkdir(exist_ok=True)
    (ledger / name).write_text(text)


@pytest.fixture
def lookups(folder):
    """Which runs the folder lookup was asked for: it must not run before the login check passes."""
    asked: list[str] = []

    def lookup(dag_id: str, run_id: str) -> ObjectStoragePath:
        asked.append(run_id)
        if run_id != RUN:
            return files_app.get_run_folder(dag_id, run_id, session=EmptySession())
        return ObjectStoragePath(f"file://{folder}")

    files_app.app.dependency_overrides[files_app.get_run_folder] = lookup
    yield asked
    files_app.app.dependency_overrides.clear()


class EmptySession:
    """A metadata database without any XCom."""

    def scalars(self, query):
        return iter(())


@pytest.fixture
def api(lookups) -> TestClient:
    """The app mounted under its prefix as the api-server mounts it, with a logged-in reader."""
    files_app.app.dependency_overrides[files_app.can_read_runs] = lambda: None
    root = FastAPI()
    root.mount(PREFIX, files_app.app)
    return TestClient(root)


def test_report_is_the_runs_html_page(api):
    response = api.get(served_url(DAG, RUN))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Permission pass</h1>" in response.text
    assert "script-src" not in response.headers["content-security-policy"]  # no scripts run in the report


def test_missing_report_is_404(api, folder):
    (folder / "report.html").unlink()
    response = api.get(served_url(DAG, RUN))
    assert response.status_code == 404
    assert "no report yet" in response.json()["detail"]


def test_index_lists_visible_files_with_sizes_and_links(api, folder):
    write_part(folder, "20261204T140100.000Z__run__try-1.csv", HEADER + ledger_row(1, 1))
    response = api.get(files_url(DAG, RUN))
    assert response.status_code == 200
    page = response.text
    for name in (
        "report.csv",
        "unconfirmed.csv",
        "unconfirmed.csv.json",
        "opt_out_result.try-1.csv",
        "confirmed_clickers.npy",
    ):
        assert f'<a href="{name}">{name}</a>' in page
    assert f"<td>{(folder / 'report.csv').stat().st_size:,}</td>" in page
    assert ".unconfirmed.csv.tmp" not in page and "scratch" not in page
    assert 'href="../ledger.csv"' in page and 'href="../report"' in page


def test_index_without_ledger_says_so(api):
    page = api.get(files_url(DAG, RUN)).text
    assert "ledger.csv" not in page and "no audit ledger yet" in page


@pytest.mark.parametrize(
    ("name", "media_type", "disposition"),
    [
        ("unconfirmed.csv", "text/csv; charset=utf-8", "inline"),
        ("opt_out_result.try-1.csv", "text/csv; charset=utf-8", "inline"),
        ("unconfirmed.csv.json", "application/json", "inline"),
        ("confirmed_clickers.npy", "application/octet-stream", "attachment"),
    ],
)
def test_file_is_served_with_its_type(api, folder, name, media_type, disposition):
    response = api.get(served_url(DAG, RUN, name))
    assert response.status_code == 200
    assert response.content == (folder / name).read_bytes()
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f"{disposition}; filename*=UTF-8''{name}"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "files/..%2F..%2Fsecret.txt",
        "files/%2E%2E",
        "files/scratch%2Freport.csv",
        "files/.unconfirmed.csv.tmp",
        "files/..%5Creport.csv",
    ],
)
def test_paths_and_hidden_names_are_refused(api, folder, path):
    (folder.parents[2] / "secret.txt").write_text("not for the browser")
    response = api.get(f"{PREFIX}/runs/{DAG}/{RUN}/{path}")
    assert response.status_code == 400
    assert "not a file name of the run folder" in response.json()["detail"]


@pytest.mark.parametrize("name", ["nothing.csv", "scratch", "audit_ledger"])
def test_names_not_listed_in_the_folder_are_404(api, name):
    response = api.get(served_url(DAG, RUN, name))
    assert response.status_code == 404
    assert response.json()["detail"] == f"The run folder has no file named {name!r}."


def test_unknown_run_is_404_in_plain_words(api, lookups):
    response = api.get(served_url(DAG, "manual__never"))
    assert response.status_code == 404
    assert "No files are known for run 'manual__never'" in response.json()["detail"]
    assert lookups == ["manual__never"]


def test_ledger_is_the_parts_in_written_order_with_the_header_once(api, folder):
    # Written order: a try's second part (``.2.csv``) after its first and before the next try's; hidden
    # files and other names are not parts.
    write_part(folder, "20261204T140300.000Z__run__try-3.csv", HEADER + ledger_row(4, 3))
    write_part(folder, "20261204T140100.000Z__run__try-1.csv", HEADER + ledger_row(1, 1) + ledger_row(2, 1))
    write_part(folder, "20261204T140100.000Z__run__try-1.2.csv", HEADER + ledger_row(3, 1))
    write_part(folder, ".20261204T140200.000Z__run__try-2.csv", HEADER + ledger_row(9, 2))
    write_part(folder, "notes.txt", "not a part")
    response = api.get(ledger_url(DAG, RUN))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == HEADER + "".join(ledger_row(c, t) for c, t in [(1, 1), (2, 1), (3, 1), (4, 3)])
    frame = audit.read_ledger(ObjectStoragePath(f"file://{folder.parent / audit.LEDGER_FOLDER}"))
    assert list(frame["contact_id"]) == ["1", "2", "3", "4"]  # the same order the campaign reads it in


def test_ledger_without_parts_is_404(api, folder):
    (folder.parent / audit.LEDGER_FOLDER).mkdir()
    response = api.get(ledger_url(DAG, RUN))
    assert response.status_code == 404
    assert "no audit ledger yet" in response.json()["detail"]


def test_ledger_parts_with_different_headers_are_not_glued(api, folder):
    write_part(folder, "a.csv", HEADER + ledger_row(1, 1))
    write_part(folder, "b.csv", "time,contact_id\n2026,2\n")
    response = api.get(ledger_url(DAG, RUN))
    assert response.status_code == 500
    assert "do not share one header" in response.json()["detail"]


def test_ledger_is_streamed_part_by_part_in_chunks(folder, monkeypatch):
    monkeypatch.setattr(files_app, "CHUNK", 64)
    rows = [ledger_row(c, 1) for c in range(40)]
    write_part(folder, "a.csv", HEADER + "".join(rows[:20]))
    write_part(folder, "b.csv", HEADER + "".join(rows[20:]).rstrip("\n"))  # a part without its last newline
    write_part(folder, "c.csv", HEADER + ledger_row(99, 2))
    parts = audit.parts(ObjectStoragePath(f"file://{folder.parent / audit.LEDGER_FOLDER}"))
    stream = files_app.ledger_chunks(parts)
    assert next(stream) == HEADER.encode()
    (folder.parent / audit.LEDGER_FOLDER / "c.csv").write_text(HEADER + ledger_row(7, 3))  # read only when reached
    rest = list(stream)
    assert max(len(chunk) for chunk in rest) <= 64 and len(rest) > 20
    assert b"".join(rest).decode() == "".join(rows) + ledger_row(7, 3)


def test_every_route_needs_airflow_login(folder, lookups):
    """Without a token (no bearer header, no ``_token`` cookie) Airflow's own check answers 401 first."""
    root = FastAPI()
    root.mount(PREFIX, files_app.app)
    api = TestClient(root)
    for url in (served_url(DAG, RUN), files_url(DAG, RUN), served_url(DAG, RUN, "report.csv"), ledger_url(DAG, RUN)):
        response = api.get(url)
        assert response.status_code == 401, url
        assert response.json() == {"detail": "Not authenticated"}
    assert lookups == []  # the folder is not even looked up for a stranger


def test_folder_comes_from_preflight_else_from_the_report():
    folder = "s3://bucket/exports/c/run"
    assert files_app.folder_from_xcom({"preflight": {"folder": folder, "contacts": 3}}) == folder
    report = {"campaign_report": {"report_uri": f"{folder}/report.html"}}
    assert files_app.folder_from_xcom(report) == folder
    assert files_app.folder_from_xcom({"preflight": {"folder": folder}, **report}) == folder
    assert files_app.folder_from_xcom({"preflight": None, "campaign_report": "failed"}) is None
    assert files_app.folder_from_xcom({}) is None


def test_folder_is_read_from_the_runs_xcom_in_the_metadata_database(tmp_path):
    """``read_folder_uri`` against Airflow's real tables (created from its models, not migrated)."""
    from airflow.models.base import Base
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    Base.metadata.create_all(engine, tables=[DagRun.__table__, XComModel.__table__])
    now = dt.datetime(2026, 12, 4, 14, tzinfo=dt.UTC)
    with Session(engine) as session:
        for number, (run_id, values) in enumerate(
            [
                (RUN, {"preflight": {"folder": "file:///exports/c/a"}, "campaign_report": {"report_uri": "x"}}),
                ("manual__b", {"campaign_report": {"report_uri": "file:///exports/c/b/report.html"}}),
                ("manual__c", {"build_unengaged_list": {"folder": "file:///elsewhere"}}),
            ],
            start=1,
        ):
            session.execute(
                insert(DagRun.__table__).values(
                    id=number,
                    dag_id=DAG,
                    run_id=run_id,
                    run_after=now,
                    run_type="manual",
                    state="success",
                    clear_number=0,
                    log_template_id=None,
                    span_status="not_started",
                )
            )
            for task_id, value in values.items():
                session.execute(
                    insert(XComModel.__table__).values(
                        dag_run_id=number,
                        dag_id=DAG,
                        run_id=run_id,
                        task_id=task_id,
                        map_index=-1,
                        key="return_value",
                        value=XComModel.serialize_value(value),
                        timestamp=now,
                    )
                )
        session.commit()
        assert files_app.read_folder_uri(session, DAG, RUN) == "file:///exports/c/a"
        assert files_app.read_folder_uri(session, DAG, "manual__b") == "file:///exports/c/b"
        assert files_app.read_folder_uri(session, DAG, "manual__c") is None
        assert files_app.read_folder_uri(session, "other_dag", RUN) is None
        assert files_app.read_folder_uri(session, DAG, "manual__none") is None


def test_plugin_loads_from_the_installed_package_and_declares_the_app_and_the_report_tab():
    """As the api-server does it: the package's ``airflow.plugins`` entry point, then the app mounted."""
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse
    from starlette.routing import Mount

    plugins, errors = plugins_manager._get_plugins()
    assert errors == {}
    [plugin] = [p for p in plugins if p.name == "reengagement"]
    assert str(plugin.source).startswith("hubspot-reengagement==")
    assert str(plugin.source).endswith("reengagement.plugin:ReengagementPlugin', group='airflow.plugins')")
    server = FastAPI()
    init_plugins(server)
    assert any(isinstance(r, Mount) and r.path == PREFIX and r.app is files_app.app for r in server.routes)

    [info] = [i for i in plugins_manager.get_plugin_info() if i["name"] == "reengagement"]
    [view] = PluginResponse.model_validate(info).external_views  # what the UI reads from /api/v2/plugins
    assert view.destination == "dag_run" and view.url_route == "campaign-report"
    assert view.href == f"{PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}/report"
    assert plugin.external_views[0] in plugins_manager._get_ui_plugins()[0]  # its route clashes with no other


def test_workers_load_the_plugin_without_the_api_server_modules():
    """Every component imports the plugins folder; only the api-server should pay for the app's imports."""
    code = (
        "import sys, reengagement.plugin; reengagement.plugin.ReengagementPlugin.external_views; "
        "print(sorted(m for m in sys.modules if m.endswith(('files_app', 'core_api.security'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_api_server_serves_a_run_to_its_logged_in_users_only(airflow_db, folder, monkeypatch):
    """Airflow's own app, as ``airflow api-server`` builds it: the UI's ``_token`` cookie or a bearer token
    opens the run's files; the folder comes from preflight's XCom in the metadata database."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.configuration import conf
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import create_engine, delete, insert

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "files-app-test-secret-of-enough-length")
    dag_id, now = "files_app_test", dt.datetime.now(dt.UTC)
    # Rows only, without the task instances they belong to: a plain engine, not Airflow's, which checks keys.
    engine = create_engine(conf.get("database", "sql_alchemy_conn"))
    with engine.begin() as db:
        db.execute(delete(XComModel.__table__).where(XComModel.dag_id == dag_id))
        db.execute(delete(DagRun.__table__).where(DagRun.dag_id == dag_id))
        run_pk = db.execute(
            insert(DagRun.__table__).values(
                dag_id=dag_id,
                run_id=RUN,
                run_after=now,
                run_type="manual",
                state="success",
                clear_number=0,
                span_status="not_started",
            )
        ).inserted_primary_key[0]
        db.execute(
            insert(XComModel.__table__).values(
                dag_run_id=run_pk,
                dag_id=dag_id,
                run_id=RUN,
                task_id="preflight",
                map_index=-1,
                key="return_value",
                value=XComModel.serialize_value({"folder": f"file://{folder}"}),
                timestamp=now,
            )
        )
    api = TestClient(create_app())
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))

    assert api.get(served_url(dag_id, RUN)).status_code == 401
    page = api.get(served_url(dag_id, RUN), cookies={"_token": token})
    assert page.status_code == 200 and "<h1>Permission pass</h1>" in page.text
    csv = api.get(served_url(dag_id, RUN, "unconfirmed.csv"), headers={"Authorization": f"Bearer {token}"})
    assert csv.status_code == 200 and csv.text == (folder / "unconfirmed.csv").read_text()
    assert api.get(served_url(dag_id, "manual__other"), cookies={"_token": token}).status_code == 404
    assert api.get(served_url(dag_id, RUN), headers={"Authorization": "Bearer forged"}).status_code == 403


def test_any_export_base_objectstoragepath_reads_is_served(lookups):
    """Not only local folders: the same routes over an fsspec object store (here fsspec's in-memory one,
    attached as a provider attaches S3 or GCS)."""
    import fsspec
    from airflow.sdk.io import attach

    attach("memory", fs=fsspec.filesystem("memory"))
    run = ObjectStoragePath("memory://exports/campaign_2026-Q4/run-in-memory")
    run.mkdir(parents=True, exist_ok=True)
    with (run / "report.html").open("w") as out:
        out.write("<!doctype html><h1>Permission pass in memory</h1>")
    with (run / "unconfirmed.csv").open("w") as out:
        out.write("contact_id,email,run_id\n1,a@example.com,r\n")
    part = audit.LedgerPart(audit.ledger_folder(run), "20261204T140000.000Z__r__try-1")
    with part:
        part.write(pd.DataFrame([ledger_row(1, 1).rstrip("\n").split(",")], columns=audit.COLUMNS))
    files_app.app.dependency_overrides[files_app.get_run_folder] = lambda dag_id, run_id: run
    files_app.app.dependency_overrides[files_app.can_read_runs] = lambda: None
    root = FastAPI()
    root.mount(PREFIX, files_app.app)
    client = TestClient(root)
    base = f"{PREFIX}/runs/{DAG}/{RUN}"
    assert "in memory" in client.get(f"{base}/report").text
    assert client.get(f"{base}/files/unconfirmed.csv").text.startswith("contact_id,email,run_id")
    ledger = client.get(f"{base}/ledger.csv").text.splitlines()
    assert ledger[0] == ",".join(audit.COLUMNS) and ledger[1].split(",")[3] == "1"
