"""Extra links from a task in the Airflow UI to the object it made in HubSpot (or the file it wrote).

Operators set the URL on themselves while they run; Airflow stores it with the task instance when
the task finishes, so the UI shows it without calling HubSpot.

The UI opens only http(s) and same-origin links, never ``file://``: the files are linked where the
api-server serves them (``files_app``, mounted at ``PREFIX``), behind Airflow's login.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink, conf

#: Where the plugin mounts the files app on the api-server.
PREFIX = "/reengagement"


def list_url(ui_domain: str, portal_id: int | str, list_id: str) -> str:
    return f"https://{ui_domain}/contacts/{portal_id}/objectLists/{list_id}/filters"


def email_url(ui_domain: str, portal_id: int | str, email_id: str) -> str:
    return f"https://{ui_domain}/email/{portal_id}/details/{email_id}/performance"


def api_base_url() -> str:
    """``[api] base_url`` without its trailing slash; empty when unset (links are then relative to the UI)."""
    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def run_url(dag_id: str, run_id: str) -> str:
    """``<base>/reengagement/runs/<dag id>/<run id>``: the run's root in the files app."""
    return f"{api_base_url()}{PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def served_url(dag_id: str, run_id: str, name: str | None = None) -> str:
    """Where the api-server serves the run's report (``name`` None), or one file of its folder by name."""
    if name is None:
        return f"{run_url(dag_id, run_id)}/report"
    return f"{run_url(dag_id, run_id)}/files/{quote(name, safe='')}"


def files_url(dag_id: str, run_id: str) -> str:
    """The index of the run folder's files."""
    return f"{run_url(dag_id, run_id)}/files/"


def ledger_url(dag_id: str, run_id: str) -> str:
    """The campaign's audit ledger (all its runs' opt-out tries), as one CSV."""
    return f"{run_url(dag_id, run_id)}/ledger.csv"


class HubSpotObjectLink(BaseOperatorLink):
    """The list or email this task made or adopted, in HubSpot's UI."""

    name = "HubSpot"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return getattr(operator, "hubspot_url", None) or ""


class ExportFileLink(BaseOperatorLink):
    """The CSV this task wrote (the export of list 2, or the opt-out result), as the api-server serves it."""

    name = "CSV file"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        uri = getattr(operator, "file_uri", None)
        if not uri:
            return ""
        return served_url(ti_key.dag_id, ti_key.run_id, posixpath.basename(str(uri).rstrip("/")))


class CampaignReportLink(BaseOperatorLink):
    """The run's funnel report, once the task has written it."""

    name = "Report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return served_url(ti_key.dag_id, ti_key.run_id) if getattr(operator, "file_uri", None) else ""
