"""What Airflow learns about this package when it is installed: the ``apache_airflow_provider`` entry point.

Metadata only, so reading it imports nothing heavy: Airflow's "Add connection" form offers the type
``hubspot`` with its fields from here, without importing the hook; the hook and the extra links are
imported when they are used. The plugin (the campaign's files on the api-server, the report tab) has its
own entry point, ``airflow.plugins``.
"""

from __future__ import annotations

from typing import Any

from .api_versions import DATED_VERSIONS, DEFAULT_API_VERSION, LEGACY

PACKAGE = "hubspot-reengagement"
VERSION = "0.3.0"
CONNECTION_TYPE = "hubspot"
#: The hook reads these extras (``HubSpotHook.in_flight``, ``HubSpotHook.api_version``).
CONNECTION_FIELDS: dict[str, dict[str, Any]] = {
    "api_version": {
        "label": "HubSpot API version",
        "description": f"A date-based version, or {LEGACY!r} for the v1-v4 paths HubSpot stops supporting in "
        f"2027. Empty: {DEFAULT_API_VERSION}.",
        "schema": {"type": ["string", "null"], "enum": [None, *DATED_VERSIONS, LEGACY]},
    },
    "in_flight": {
        "label": "Batch calls in flight",
        "description": "Look-ups, list adds and opt-out batches sent at once, all under the portal's rate limit.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20},
    },
}


def get_provider_info() -> dict[str, Any]:
    """The provider's description, in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE,
        "name": "HubSpot re-engagement",
        "description": "HubSpot permission-pass (re-engagement) campaigns: a hook, operators, a sensor, "
        "triggers and the campaign DAG.",
        "versions": [VERSION],
        "integrations": [
            {
                "integration-name": "HubSpot",
                "external-doc-url": "https://developers.hubspot.com/docs/api/overview",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "HubSpot", "python-modules": ["reengagement.hook"]}],
        "operators": [
            {
                "integration-name": "HubSpot",
                "python-modules": [
                    f"reengagement.operators.{name}"
                    for name in (
                        "emails",
                        "flow",
                        "focus",
                        "lists",
                        "reporting",
                        "settings",
                        "signals",
                        "subscriptions",
                    )
                ],
            }
        ],
        "sensors": [{"integration-name": "HubSpot", "python-modules": ["reengagement.sensors"]}],
        "triggers": [{"integration-name": "HubSpot", "python-modules": ["reengagement.triggers"]}],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": "reengagement.hook.HubSpotHook",
                "hook-name": "HubSpot",
                "conn-fields": CONNECTION_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["login"],
                    "relabeling": {
                        "host": "API host",
                        "schema": "Scheme",
                        "password": "Service Key (or legacy private app token)",
                    },
                    "placeholders": {"host": "api.hubapi.com", "schema": "https", "port": "443"},
                },
            }
        ],
        "config": {
            "hubspot_reengagement": {
                "description": "Settings of the campaign DAGs of a deployment.",
                "options": {
                    "schedule": {
                        "description": "When campaigns built without a schedule of their own run (the one-line "
                        "DAG file's): a cron expression or preset. none: only triggered runs (the scheduler still "
                        "runs the DAGs scheduled on the campaign's assets).",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "none",
                        "default": "@quarterly",
                    },
                    "rate_limit_redis_url": {
                        "description": "Redis where every worker shares each HubSpot portal's rate limit (the "
                        "rolling window, pauses after a 429, and the daily budget counted in the portal's time "
                        "zone). Unset: Celery's [celery] broker_url when it is a redis:// or rediss:// URL. Empty or "
                        "none, or no Redis answering: the limit is kept per process, and the log says so.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "redis://redis:6379/0",
                        "default": None,
                    },
                    "campaigns_file": {
                        "description": "The campaigns file (campaigns.yaml) that dags/hubspot_campaigns.py builds "
                        "one DAG per campaign from. Empty: campaigns.yaml in the folder of that dags file; a relative "
                        "path is taken from there too. No such file: no campaign DAGs.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "/opt/airflow/config/campaigns.yaml",
                        "default": "",
                    },
                },
            }
        },
        "extra-links": [
            "reengagement.links.HubSpotObjectLink",
            "reengagement.links.ExportFileLink",
            "reengagement.links.CampaignReportLink",
        ],
    }
