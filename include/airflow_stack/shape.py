"""The deployment's shape, written once: which processes run, and the settings they share.

``docker-compose.yaml`` describes this stack for Docker; ``make up`` and ``tests/integration`` start it as
native processes. ``tests/integration/test_compose_file.py`` holds the compose file to what is here, so the
two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from include.hubspot_sandbox.config import DEFAULT_TOKEN
from include.hubspot_sandbox.process import PROJECT_ROOT

#: ``airflow <args>`` per long-running component, as the official compose file names its services.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
    "worker": ("celery", "worker"),
}

#: ``airflow <args>`` run once, in order, before the components start (``airflow-init`` in compose).
INIT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("db", "migrate"),
    ("pools", "set", "hubspot_api", "4", "HubSpot API calls of the campaign"),
)

#: The sandbox's timings in a deployment: processing like a small portal, opens and clicks within a minute.
SANDBOX_ARGS: tuple[str, ...] = (
    "--seed-contacts",
    "5000",
    "--seed",
    "1",
    "--list-processing-seconds",
    "1",
    "--export-processing-seconds",
    "1",
    "--response-window-seconds",
    "20",
)
SANDBOX_PORT = 8099
SANDBOX_TOKEN = DEFAULT_TOKEN  # the sandbox's built-in development token, not a secret
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"

#: Identical in every deployment of this project, wherever it runs.
DEPLOYMENT_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
    # HubSpot outages are short: retry a failed HubSpot task after 30 s, then 60 s, then 120 s.
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "30",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
    # The worker imports the campaign once, before it forks a process per task (reengagement/celery_worker.py).
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "reengagement.celery_worker.CELERY_CONFIG",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
    # A worker that dies mid-task is noticed within a minute instead of five.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
}

#: Settings every deployment sets, to values that depend on where its parts live.
LOCATED_SETTINGS: tuple[str, ...] = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW_CONN_HUBSPOT_DEFAULT",
    "AIRFLOW_CONN_REENGAGEMENT_WAREHOUSE",
)


def single_process_settings(home: Path) -> dict[str, str]:
    """Airflow in one process on SQLite (``airflow dags test``, ``dag.test()``): the demo, tests and benchmarks."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(home) / 'airflow.db'}",
        # The campaign's code is the installed provider (``pip install -e .`` in ``make venv``), not a folder on
        # the path; the project root is there for the sandbox (``include``).
        "PYTHONPATH": str(PROJECT_ROOT),
    }


def sandbox_connection(host: str, port: int = SANDBOX_PORT) -> str:
    """The ``hubspot_default`` connection for a sandbox at ``host``, as an Airflow connection URI.

    The URI's path is the connection's schema, which the hook uses as the URL scheme of the API.
    """
    return f"http://:{SANDBOX_TOKEN}@{host}:{port}/http"


def warehouse_connection(path: str) -> str:
    """The ``reengagement_warehouse`` connection of the example ledger load: a SQLite file at ``path``."""
    return json.dumps({"conn_type": "sqlite", "host": path})


@dataclass(frozen=True)
class Location:
    """Where the parts of one deployment live: the only thing that differs between deployments."""

    database_url: str  # SQLAlchemy URL of the metadata database, driver spelled out
    broker_url: str
    api_url: str  # the api-server's base URL, as workers reach it
    passwords_file: str
    hubspot_connection: str
    warehouse_path: str  # the example ledger load's SQLite file (dags/hubspot_ledger_to_warehouse.py)

    def settings(self, secrets: dict[str, str]) -> dict[str, str]:
        """Every ``LOCATED_SETTINGS`` value for this location; ``secrets`` holds the three shared keys."""
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.database_url}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": self.passwords_file,
            "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": secrets["secret_key"],
            "AIRFLOW_CONN_HUBSPOT_DEFAULT": self.hubspot_connection,
            "AIRFLOW_CONN_REENGAGEMENT_WAREHOUSE": warehouse_connection(self.warehouse_path),
        }


def new_secrets() -> dict[str, str]:
    """Fresh shared secrets: the JWT secret signs task tokens (≥ 64 bytes for HS512), the secret key log fetches."""
    import secrets

    from cryptography.fernet import Fernet

    return {
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": secrets.token_urlsafe(64),
        "secret_key": secrets.token_urlsafe(32),
    }
