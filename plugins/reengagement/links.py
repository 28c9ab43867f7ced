"""Extra links from a task in the Airflow UI to the object it made in HubSpot (or the file it wrote).

Operators set the URL on themselves while they run; Airflow stores it with the task instance when
the task finishes, so the UI shows it without calling HubSpot.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


def list_url(ui_domain: str, portal_id: int | str, list_id: str) -> str:
    return f"https://{ui_domain}/contacts/{portal_id}/objectLists/{list_id}/filters"


def email_url(ui_domain: str, portal_id: int | str, email_id: str) -> str:
    return f"https://{ui_domain}/email/{portal_id}/details/{email_id}/performance"


class HubSpotObjectLink(BaseOperatorLink):
    """The list or email this task made or adopted, in HubSpot's UI."""

    name = "HubSpot"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return getattr(operator, "hubspot_url", None) or ""


class ExportFileLink(BaseOperatorLink):
    """The CSV this task wrote (the export of list 2, or the opt-out result)."""

    name = "CSV file"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return getattr(operator, "file_uri", None) or ""
