"""The Airflow plugin that serves the campaign's files from the api-server (``reengagement.files_app``).

The package's ``airflow.plugins`` entry point names it, so an installed package brings it: nothing goes into
a deployment's ``plugins/`` folder. (Not the provider metadata's ``plugins``: Airflow loads those only when
providers load eagerly, and as classes, which would lose the app's lazy import below.)

It also adds a "Campaign report" tab to the DAG run page: the UI shows the run's report there in a frame,
filling in ``{DAG_ID}`` and ``{RUN_ID}``. Every Airflow component loads plugins, workers too; the app (and
the api-server modules it needs) is imported only when ``fastapi_apps`` is read, which only the
api-server and ``airflow plugins`` do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin

from .links import PREFIX, api_base_url


class ReengagementPlugin(AirflowPlugin):
    name = "reengagement"
    # A path, not a full URL: the frame then loads from whatever host the UI was opened on, with its login.
    external_views = [
        {
            "name": "Campaign report",
            "href": f"{urlsplit(api_base_url()).path.rstrip('/')}{PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}/report",
            "destination": "dag_run",
            "url_route": "campaign-report",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from .files_app import app

        return [{"app": app, "url_prefix": PREFIX, "name": "Campaign files"}]
