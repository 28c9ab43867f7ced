"""Extra links and served URLs: the files are linked where the api-server serves them, never as file://."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from reengagement.links import (
    CampaignReportLink,
    ExportFileLink,
    HubSpotObjectLink,
    files_url,
    ledger_url,
    served_url,
)

DAG, RUN = "hubspot_reengagement", "manual__2026-12-04T14:00:00+00:00"
QUOTED = "/reengagement/runs/hubspot_reengagement/manual__2026-12-04T14%3A00%3A00%2B00%3A00"
KEY = TaskInstanceKey(dag_id=DAG, task_id="export_unconfirmed", run_id=RUN, try_number=1)


@pytest.fixture
def no_base_url(monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)


def test_without_base_url_the_urls_are_relative_to_the_ui(no_base_url):
    assert served_url(DAG, RUN) == f"{QUOTED}/report"
    assert served_url(DAG, RUN, "unconfirmed.csv") == f"{QUOTED}/files/unconfirmed.csv"
    assert files_url(DAG, RUN) == f"{QUOTED}/files/"
    assert ledger_url(DAG, RUN) == f"{QUOTED}/ledger.csv"


@pytest.mark.parametrize("base", ["https://airflow.example.com/", "https://airflow.example.com"])
def test_base_url_is_prefixed_once(monkeypatch, base):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base)
    assert served_url(DAG, RUN, "report.csv") == f"https://airflow.example.com{QUOTED}/files/report.csv"


def test_base_url_with_a_path_keeps_it(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://example.com/airflow/")
    assert ledger_url(DAG, RUN) == f"https://example.com/airflow{QUOTED}/ledger.csv"


def test_ids_and_names_cannot_leave_their_path_segment(no_base_url):
    assert served_url("a/b", "../x", "c d?.csv") == "/reengagement/runs/a%2Fb/..%2Fx/files/c%20d%3F.csv"


def test_export_link_is_the_served_file_named_like_the_uri(no_base_url):
    operator = SimpleNamespace(file_uri="s3://bucket/exports/c/manual__2026/opt_out_result.try-2.csv")
    assert ExportFileLink().get_link(operator, ti_key=KEY) == f"{QUOTED}/files/opt_out_result.try-2.csv"
    assert ExportFileLink().get_link(SimpleNamespace(file_uri=None), ti_key=KEY) == ""
    assert ExportFileLink().get_link(object(), ti_key=KEY) == ""


def test_report_link_appears_once_the_report_is_written(no_base_url):
    written = SimpleNamespace(file_uri="file:///exports/c/run/report.html")
    assert CampaignReportLink().get_link(written, ti_key=KEY) == f"{QUOTED}/report"
    assert CampaignReportLink().get_link(SimpleNamespace(file_uri=None), ti_key=KEY) == ""
    assert CampaignReportLink().name == "Report"


def test_hubspot_link_is_unchanged():
    assert HubSpotObjectLink().name == "HubSpot"
    assert (
        HubSpotObjectLink().get_link(SimpleNamespace(hubspot_url="https://app.hubspot.com/x"), ti_key=KEY)
        == "https://app.hubspot.com/x"
    )
    assert HubSpotObjectLink().get_link(object(), ti_key=KEY) == ""
