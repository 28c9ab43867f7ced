"""OpenLineage: each operator reports the HubSpot objects and files it read and wrote, by id and URI only."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from airflow.sdk import ObjectStoragePath
from openlineage.client.event_v2 import Dataset
from reengagement import audit, lineage, storage
from reengagement.operators.base import HubSpotOperator
from reengagement.operators.emails import CreatePermissionEmailOperator, EmailMetricsOperator, SendEmailOperator
from reengagement.operators.focus import FocusNonOpenersOperator
from reengagement.operators.lists import BuildConfirmedListOperator, EnsureListOperator, ExportListOperator
from reengagement.operators.reporting import CampaignReportOperator
from reengagement.operators.subscriptions import OptOutOperator

ROOT = Path(__file__).resolve().parents[2]
PORTAL = "4471"
HUBSPOT = f"hubspot://{PORTAL}"
RUN_ID = "manual__2026-12-04T14:00:00+00:00"
PREFLIGHT = {"portal_id": PORTAL, "ui_domain": "app.hubspot.com", "subscription_id": "301"}
SENT_1 = {"email_id": "9001", "campaign_ids": ["611"], "sent_at": "2026-12-01T09:00:00Z", "cta_url": "https://x/1"}
SENT_2 = {"email_id": "9002", "campaign_ids": ["612"], "sent_at": "2026-12-08T09:00:00Z", "cta_url": "https://x/2"}


class FakeTaskInstance:
    """Results by task id, as ``xcom_pull(task_ids=...)`` returns them; records every pull."""

    def __init__(self, results: dict[str, object]) -> None:
        self.results = results
        self.pulled: list[str] = []

    def xcom_pull(self, task_ids: str, **_: object) -> object:
        self.pulled.append(task_ids)
        return self.results.get(task_ids)


def ti(own_task: str, result: object, **others: object) -> FakeTaskInstance:
    return FakeTaskInstance({"preflight": PREFLIGHT, own_task: result, **others})


def names(datasets: list[Dataset]) -> list[tuple[str, str]]:
    assert all(type(d) is Dataset for d in datasets), datasets
    return [(d.namespace, d.name) for d in datasets]


def hubspot(*names_: str) -> list[tuple[str, str]]:
    return [(HUBSPOT, n) for n in names_]


def facets(operator: HubSpotOperator, task_instance: FakeTaskInstance) -> OperatorLineage:
    found = operator.get_openlineage_facets_on_complete(task_instance)
    assert isinstance(found, OperatorLineage)
    assert found.run_facets == {}
    assert found.job_facets == {}
    return found


# -- naming files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/c/r/unconfirmed.csv", ("file", "/data/c/r/unconfirmed.csv")),
        ("/data/c/r/unconfirmed.csv", ("file", "/data/c/r/unconfirmed.csv")),
        ("file://localhost/data/x.csv", ("file", "/data/x.csv")),
        ("file://files.example.com/data/x.csv", ("file://files.example.com", "/data/x.csv")),
        (
            "s3://exports-bucket/reengagement/c/r/unconfirmed.csv",
            ("s3://exports-bucket", "reengagement/c/r/unconfirmed.csv"),
        ),
        ("s3://aws_default@exports-bucket/c/x.csv", ("s3://exports-bucket", "c/x.csv")),
        ("s3a://user:secret@exports-bucket/c/x.csv", ("s3://exports-bucket", "c/x.csv")),
        ("gs://exports/c/x.csv", ("gs://exports", "c/x.csv")),
        ("gcs://google_cloud_default@exports/c/x.csv", ("gs://exports", "c/x.csv")),
        (
            "abfss://exports@acct.dfs.core.windows.net/c/x.csv",
            ("abfss://exports@acct.dfs.core.windows.net", "c/x.csv"),
        ),
        ("hdfs://namenode:8020/exports/x.csv", ("hdfs://namenode:8020", "/exports/x.csv")),
        ("memory://bucket/c/x.csv", ("memory://bucket", "/c/x.csv")),
    ],
)
def test_files_are_named_as_the_openlineage_naming_spec_says(uri, expected):
    assert lineage.file_dataset(uri) == expected


def test_a_relative_local_path_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lineage.file_dataset("exports/x.csv") == ("file", str(tmp_path / "exports" / "x.csv"))


def test_object_storage_paths_are_named_by_their_uri(tmp_path, memory):
    local = storage.run_folder(f"file://{tmp_path}", "c", RUN_ID) / "unconfirmed.csv"
    assert lineage.file_dataset(str(local)) == ("file", f"{tmp_path}/c/{storage.slug(RUN_ID)}/unconfirmed.csv")
    remote = storage.run_folder(str(memory), "c", RUN_ID) / "unconfirmed.csv"
    bucket, _, rest = str(memory).removeprefix("memory://").partition("/")
    assert lineage.file_dataset(str(remote)) == (
        f"memory://{bucket}",
        f"/{rest}/c/{storage.slug(RUN_ID)}/unconfirmed.csv",
    )


# -- HubSpot objects ---------------------------------------------------------------------------------------


def test_ensure_list_outputs_its_list_and_inputs_the_lists_it_is_defined_by():
    op = EnsureListOperator(
        task_id="round_1.build_unconfirmed_list",
        list_name="c · unconfirmed 1",
        processing_type="DYNAMIC",
        segment="unconfirmed",
        segment_args={"recipients_list_id": "11", "confirmed_list_id": "12"},
        portal_from="preflight",
    )
    found = facets(op, ti(op.task_id, {"list_id": "13", "size": 40}))
    assert names(found.inputs) == hubspot("lists/11", "lists/12")
    assert names(found.outputs) == hubspot("lists/13")


def test_the_unengaged_list_has_the_focus_list_as_input_only_when_there_is_one():
    def unengaged(focus_list_id):
        return EnsureListOperator(
            task_id="build_unengaged_list",
            list_name="c · unengaged",
            processing_type="DYNAMIC",
            segment="unengaged",
            segment_args={"subscription_id": "301", "inactivity_weeks": "52", "focus_list_id": focus_list_id},
            portal_from="preflight",
        )

    without = facets(unengaged("None"), ti("build_unengaged_list", {"list_id": "20", "size": 9}))
    assert (names(without.inputs), names(without.outputs)) == ([], hubspot("lists/20"))
    focused = facets(unengaged("19"), ti("build_unengaged_list", {"list_id": "20", "size": 9}))
    assert (names(focused.inputs), names(focused.outputs)) == (hubspot("lists/19"), hubspot("lists/20"))


def test_build_confirmed_list_inputs_the_sent_emails_and_outputs_list_1():
    op = BuildConfirmedListOperator(
        task_id="refresh_confirmed_list",
        list_name="c · confirmed",
        # What the outputs_of macro renders: every round's send_email result, None for skipped rounds.
        emails=json.dumps([SENT_1, None, SENT_2]),
        portal_from="preflight",
    )
    found = facets(op, ti(op.task_id, {"list_id": "77", "confirmed": 3, "added": 1, "size": 3}))
    assert names(found.inputs) == hubspot("emails/9001", "emails/9002")
    assert names(found.outputs) == hubspot("lists/77")


def test_focus_non_openers_inputs_the_focus_email_and_outputs_the_focus_list():
    op = FocusNonOpenersOperator(task_id="build_focus_list", list_name="c · focus", portal_from="preflight")
    focus = {**PREFLIGHT, "focus_email_id": "8123", "focus_campaign_ids": ["501"]}
    task_instance = FakeTaskInstance(
        {"preflight": focus, op.task_id: {"list_id": "31", "received": 5, "opened": 2, "non_openers": 3}}
    )
    found = facets(op, task_instance)
    assert (names(found.inputs), names(found.outputs)) == (hubspot("emails/8123"), hubspot("lists/31"))


def test_focus_non_openers_without_a_focus_email_reports_nothing():
    op = FocusNonOpenersOperator(task_id="build_focus_list", list_name="c · focus", portal_from="preflight")
    found = facets(op, ti(op.task_id, {"list_id": None, "received": 0, "opened": 0, "non_openers": 0}))
    assert (found.inputs, found.outputs) == ([], [])


def email_op(template_email_id: str = "") -> CreatePermissionEmailOperator:
    return CreatePermissionEmailOperator(
        task_id="round_1.create_email",
        email_name="c · email 1",
        subject="Still want our emails?",
        from_name="Team",
        reply_to="team@example.com",
        confirm_url="https://x/1",
        recipients_list_id="11",
        subscription_id="301",
        template_email_id=template_email_id,
        portal_from="preflight",
    )


def test_create_email_outputs_the_email():
    op = email_op()
    found = facets(op, ti(op.task_id, {"email_id": "9001", "cta_url": "https://x/1"}))
    assert (names(found.inputs), names(found.outputs)) == ([], hubspot("emails/9001"))


def test_create_email_from_a_template_inputs_the_template_email():
    op = email_op(template_email_id="7000")
    found = facets(op, ti(op.task_id, {"email_id": "9001", "cta_url": "https://x/1"}))
    assert (names(found.inputs), names(found.outputs)) == (hubspot("emails/7000"), hubspot("emails/9001"))


def test_send_email_and_metrics_input_the_email():
    send = SendEmailOperator(task_id="round_1.send_email", email_id="9001", portal_from="preflight")
    found = facets(send, ti(send.task_id, SENT_1))
    assert (names(found.inputs), found.outputs) == (hubspot("emails/9001"), [])
    metrics = EmailMetricsOperator(task_id="round_1.review_metrics", email_id="9001", portal_from="preflight")
    found = facets(metrics, ti(metrics.task_id, {"email_id": "9001", "sent": 10, "open": 2}))
    assert (names(found.inputs), found.outputs) == (hubspot("emails/9001"), [])


# -- files -------------------------------------------------------------------------------------------------


def test_export_inputs_the_last_list_2_and_outputs_the_csv_by_its_uri(tmp_path):
    op = ExportListOperator(
        task_id="export_unconfirmed",
        # Every round's build_unconfirmed_list: the last round that ran is exported.
        list_id=json.dumps([{"list_id": "41", "size": 5}, {"list_id": "42", "size": 3}, None]),
        campaign="c",
        export_base=f"file://{tmp_path}",
        portal_from="preflight",
    )
    target = storage.run_folder(op.export_base, "c", RUN_ID) / "unconfirmed.csv"
    found = facets(op, ti(op.task_id, {"export_uri": str(target), "rows": 3}))
    assert names(found.inputs) == hubspot("lists/42")
    assert names(found.outputs) == [("file", f"{tmp_path}/c/{storage.slug(RUN_ID)}/unconfirmed.csv")]


def test_the_provider_reads_the_lineage_through_its_own_extractor(tmp_path):
    op = ExportListOperator(task_id="export_unconfirmed", list_id="42", campaign="c", export_base=f"file://{tmp_path}")
    op.portal_from = "preflight"
    target = f"file://{tmp_path}/c/r/unconfirmed.csv"
    found = DefaultExtractor(op).extract_on_complete(ti(op.task_id, {"export_uri": target, "rows": 3}))
    assert found is not None
    assert names(found.inputs) == hubspot("lists/42")
    assert names(found.outputs) == [("file", f"{tmp_path}/c/r/unconfirmed.csv")]


def opt_out_op(export_uri: str, **kwargs) -> OptOutOperator:
    return OptOutOperator(
        task_id="opt_out_unconfirmed",
        export_uri=export_uri,
        emails=[SENT_1, SENT_2, None],
        confirmed_list_id="77",
        subscription_id="301",
        portal_from="preflight",
        **kwargs,
    )


def opt_out_result(folder: ObjectStoragePath, *, dry_run: bool) -> dict:
    """What the opt-out returns, its paths made as it makes them."""
    result = audit.fresh_path(folder, f"{'opt_out_dry_run' if dry_run else 'opt_out_result'}.try-1")
    stem = audit.part_stem(dt.datetime(2026, 12, 15, 9, 30, tzinfo=dt.UTC), RUN_ID, 1)
    ledger = None if dry_run else audit.ledger_folder(folder) / f"{stem}.csv"
    return {"rows": 3, "dry_run": dry_run, "result_uri": str(result), "ledger_uri": str(ledger) if ledger else None}


def test_opt_out_by_subscription_type_reports_the_export_result_ledger_and_subscription(memory):
    folder = storage.run_folder(str(memory), "c", RUN_ID)
    op = opt_out_op(str(folder / "unconfirmed.csv"), scope="subscription_type")
    result = opt_out_result(folder, dry_run=False)
    found = facets(op, ti(op.task_id, result))
    bucket, _, root = str(memory).removeprefix("memory://").partition("/")
    store, run = f"memory://{bucket}", f"/{root}/c/{storage.slug(RUN_ID)}"
    assert names(found.inputs) == [
        *hubspot("lists/77", "emails/9001", "emails/9002"),
        (store, f"{run}/unconfirmed.csv"),
    ]
    assert names(found.outputs) == [
        *hubspot("subscriptions/301"),
        (store, f"{run}/opt_out_result.try-1.csv"),
        (store, f"/{root}/c/{audit.LEDGER_FOLDER}/{result['ledger_uri'].rpartition('/')[2]}"),
    ]


def test_opt_out_of_all_email_changes_no_subscription_type(tmp_path):
    folder = storage.run_folder(f"file://{tmp_path}", "c", RUN_ID)
    op = opt_out_op(str(folder / "unconfirmed.csv"), scope="all_email")
    result = opt_out_result(folder, dry_run=False)
    found = facets(op, ti(op.task_id, result))
    run = f"{tmp_path}/c/{storage.slug(RUN_ID)}"
    assert names(found.inputs)[-1] == ("file", f"{run}/unconfirmed.csv")
    assert names(found.outputs) == [
        ("file", f"{run}/opt_out_result.try-1.csv"),
        ("file", f"{tmp_path}/c/{audit.LEDGER_FOLDER}/{Path(result['ledger_uri']).name}"),
    ]


def test_a_dry_run_outputs_only_its_would_be_result(tmp_path):
    folder = storage.run_folder(f"file://{tmp_path}", "c", RUN_ID)
    op = opt_out_op(str(folder / "unconfirmed.csv"), scope="subscription_type", simulate="true")
    found = facets(op, ti(op.task_id, opt_out_result(folder, dry_run=True)))
    assert names(found.outputs) == [("file", f"{tmp_path}/c/{storage.slug(RUN_ID)}/opt_out_dry_run.try-1.csv")]


def test_the_report_outputs_its_csv_and_html_and_inputs_what_it_read(tmp_path):
    folder = storage.run_folder(f"file://{tmp_path}", "c", RUN_ID)
    op = CampaignReportOperator(
        task_id="campaign_report",
        campaign="c",
        unengaged={"list_id": "20", "size": 9},
        recipients=json.dumps([{"list_id": "21", "size": 9}, {"list_id": "22", "size": 4}, None]),
        emails=json.dumps([SENT_1, SENT_2, None]),
        export_base=f"file://{tmp_path}",
        portal_from="preflight",
    )
    result = {"report_uri": str(folder / "report.html"), "csv_uri": str(folder / "report.csv"), "rounds": 2}
    found = facets(op, ti(op.task_id, result))
    assert names(found.inputs) == hubspot("lists/21", "lists/22", "emails/9001", "emails/9002")
    run = f"{tmp_path}/c/{storage.slug(RUN_ID)}"
    assert names(found.outputs) == [("file", f"{run}/report.csv"), ("file", f"{run}/report.html")]


# -- without a portal, a result, or OpenLineage ------------------------------------------------------------


def test_without_a_portal_id_hubspot_objects_are_left_out_and_files_kept(tmp_path):
    send = SendEmailOperator(task_id="round_1.send_email", email_id="9001")  # no portal_from
    found = facets(send, ti(send.task_id, SENT_1))
    assert (found.inputs, found.outputs) == ([], [])
    export = ExportListOperator(task_id="export_unconfirmed", list_id="42", campaign="c", portal_from="preflight")
    target = f"file://{tmp_path}/unconfirmed.csv"
    task_instance = FakeTaskInstance(
        {"preflight": {"ui_domain": "app.hubspot.com"}, export.task_id: {"export_uri": target}}
    )
    found = facets(export, task_instance)
    assert (found.inputs, names(found.outputs)) == ([], [("file", f"{tmp_path}/unconfirmed.csv")])


def test_a_task_without_a_result_reports_nothing(tmp_path):
    op = opt_out_op(f"file://{tmp_path}/unconfirmed.csv", scope="all_email")
    found = facets(op, ti(op.task_id, None))
    assert (found.inputs, found.outputs) == ([], [])


def every_operator(tmp_path: Path) -> list[tuple[HubSpotOperator, FakeTaskInstance]]:
    base = f"file://{tmp_path}"
    ops = [
        (
            EnsureListOperator(
                task_id="build_recipients_list",
                list_name="c · recipients 1",
                processing_type="SNAPSHOT",
                segment="snapshot_of",
                segment_args={"list_id": "20"},
            ),
            {"list_id": "21", "size": 9},
        ),
        (BuildConfirmedListOperator(task_id="build_confirmed_list", list_name="c", emails=[SENT_1]), {"list_id": "77"}),
        (FocusNonOpenersOperator(task_id="build_focus_list", list_name="c · focus"), {"list_id": "31"}),
        (email_op(), {"email_id": "9001"}),
        (SendEmailOperator(task_id="send_email", email_id="9001"), SENT_1),
        (EmailMetricsOperator(task_id="review_metrics", email_id="9001"), {"email_id": "9001"}),
        (
            ExportListOperator(task_id="export_unconfirmed", list_id="42", campaign="c", export_base=base),
            {"export_uri": f"{base}/unconfirmed.csv"},
        ),
        (opt_out_op(f"{base}/unconfirmed.csv"), {"result_uri": f"{base}/r.csv", "ledger_uri": f"{base}/l.csv"}),
        (
            CampaignReportOperator(
                task_id="campaign_report", campaign="c", unengaged=None, recipients=[{"list_id": "21"}], emails=[SENT_1]
            ),
            {"report_uri": f"{base}/report.html", "csv_uri": f"{base}/report.csv"},
        ),
    ]
    for op, _ in ops:
        op.portal_from = "preflight"
    preflight = {**PREFLIGHT, "focus_email_id": "8123"}
    return [(op, FakeTaskInstance({"preflight": preflight, op.task_id: result})) for op, result in ops]


def test_no_lineage_method_calls_hubspot(tmp_path, monkeypatch):
    def no_hook(self):
        raise AssertionError(f"{self.task_id} asked for its HubSpot hook while reporting lineage")

    monkeypatch.setattr(HubSpotOperator, "hook", property(no_hook))
    for op, task_instance in every_operator(tmp_path):
        found = facets(op, task_instance)
        assert found.inputs or found.outputs, op.task_id
        # Only results are read: the portal's, its own, and (the focus list) the focus email's.
        assert set(task_instance.pulled) <= {"preflight", op.task_id}, task_instance.pulled


def test_without_openlineage_every_method_returns_none_quietly(tmp_path, monkeypatch, caplog):
    blocked = ("openlineage", "airflow.providers.openlineage")
    for name in list(sys.modules):
        if name.startswith(blocked):
            monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def import_(name, *args, **kwargs):
        if name.startswith(blocked):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_)
    caplog.set_level(logging.DEBUG)
    for op, task_instance in every_operator(tmp_path):
        assert op.get_openlineage_facets_on_complete(task_instance) is None, op.task_id
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_operators_import_and_run_without_the_openlineage_packages():
    """In a fresh interpreter that cannot import OpenLineage's client nor the provider's code, as in a deployment
    without the extra. (The provider's metadata stays importable: Airflow reads it from the installed package.)"""
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        def blocked(name):
            provider = name.startswith("airflow.providers.openlineage.") and not name.endswith(".get_provider_info")
            return name.split(".")[0] == "openlineage" or provider

        class NoOpenLineage(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if blocked(name):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoOpenLineage())
        from reengagement import lineage
        from reengagement.operators import emails, focus, lists, reporting, subscriptions

        class TI:
            def xcom_pull(self, task_ids, **_):
                return {"portal_id": "4471", "email_id": "9001"}

        send = emails.SendEmailOperator(task_id="send_email", email_id="9001", portal_from="preflight")
        print(send.get_openlineage_facets_on_complete(TI()))
        print(sorted(name for name in sys.modules if blocked(name)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["None", "[]"]
