"""docker-compose.yaml describes the stack ``make up`` runs: same processes, same settings, real mounts.

No Docker engine runs in CI, so the file is checked against ``include/airflow_stack/shape.py``, which the
native stack (and its integration tests) start from.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.airflow_stack.shape import (
    COMPONENTS,
    DEPLOYMENT_SETTINGS,
    INIT_COMMANDS,
    LOCATED_SETTINGS,
    SANDBOX_ARGS,
    SANDBOX_TOKEN,
    Location,
    sandbox_connection,
)
from include.airflow_stack.stack import SANDBOX, LocalStack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
SERVICE_OF = {
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
    "worker": "airflow-worker",
}
SECRETS = {
    "fernet_key": "AIRFLOW__CORE__FERNET_KEY",
    "jwt_secret": "AIRFLOW__API_AUTH__JWT_SECRET",
    "secret_key": "AIRFLOW__API__SECRET_KEY",
}
#: Where the parts live inside compose: its service names and the image's paths.
COMPOSE_LOCATION = Location(
    database_url="postgresql+psycopg2://airflow:airflow@postgres/airflow",
    broker_url="redis://redis:6379/0",
    api_url="http://airflow-apiserver:8080",
    passwords_file="/opt/airflow/config/passwords.json",
    hubspot_connection="${HUBSPOT_CONNECTION:-" + sandbox_connection("hubspot-sandbox") + "}",
    warehouse_path="/opt/airflow/warehouse/reengagement.db",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> LocalStack:
    """The native stack's definition (nothing is started)."""
    return LocalStack(tmp_path_factory.mktemp("native"), StackConfig())


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_file_has_the_official_services_and_the_sandbox(compose):
    assert set(compose["services"]) == {"postgres", "redis", "airflow-init", SANDBOX, *SERVICE_OF.values()}


@pytest.mark.parametrize("component", list(COMPONENTS))
def test_each_airflow_service_runs_the_command_the_native_stack_runs(compose, native, component):
    service = compose["services"][SERVICE_OF[component]]
    assert tuple(argv(service["command"])) == COMPONENTS[component]
    assert native.command(component)[1:] == list(COMPONENTS[component])
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", ["airflow-init", *SERVICE_OF.values()])
def test_every_airflow_service_shares_the_native_settings(compose, native, service):
    env = {k: str(v) for k, v in compose["services"][service]["environment"].items()}
    native_env = native.environment()
    for key, value in DEPLOYMENT_SETTINGS.items():
        assert env[key] == value == native_env[key], key
    secrets = {name: env[key] for name, key in SECRETS.items()}
    expected = COMPOSE_LOCATION.settings(secrets)
    for key in LOCATED_SETTINGS:
        assert env[key] == expected[key], key
        assert key in native_env, key
    for key in SECRETS.values():  # taken from .env, never written in the file
        assert re.fullmatch(rf"\$\{{{key}:\?.+\}}", env[key]), key


def test_init_runs_the_native_init_commands_in_order(compose):
    script = compose["services"]["airflow-init"]["command"][-1]
    lines = [argv(line) for line in script.splitlines() if line.startswith("airflow ")]
    assert [tuple(line[1:]) for line in lines] == list(INIT_COMMANDS)
    assert '{"admin": "admin"}' in script  # the login the README gives


def test_the_sandbox_service_serves_the_native_sandbox_settings(compose, native):
    service = compose["services"][SANDBOX]
    compose_args, native_args = argv(service["command"]), native.command(SANDBOX)
    assert compose_args[compose_args.index("--db") + 2 :] == list(SANDBOX_ARGS)
    assert native_args[native_args.index("--db") + 2 :] == list(SANDBOX_ARGS)
    assert service["ports"] == ["127.0.0.1:8099:8099"]  # published on loopback only
    assert SANDBOX_TOKEN in " ".join(service["healthcheck"]["test"])


def test_every_mounted_path_exists_and_the_image_installs_the_requirements_and_the_provider(compose):
    mounts = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert {"./dags", "./include"} <= set(mounts)
    # Airflow's processes run the installed provider; the sandbox alone reads include/.
    assert "./plugins" not in mounts
    readers = [
        name for name, s in compose["services"].items() if "./include:/opt/airflow/include" in s.get("volumes", [])
    ]
    assert readers == [SANDBOX]
    for source in mounts:
        assert (ROOT / source).exists(), source
    dockerfile = (ROOT / "Dockerfile").read_text()
    airflow_pin = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"ARG AIRFLOW_VERSION={airflow_pin}" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile
    assert "-r /requirements.txt" in dockerfile
    assert "COPY --chown=airflow:0 plugins/reengagement /opt/hubspot-reengagement/plugins/reengagement" in dockerfile
    assert re.search(r"^RUN pip install .* /opt/hubspot-reengagement$", dockerfile, re.M)
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (ROOT / "docker-compose.yaml").read_text()


def test_the_ui_and_the_sandbox_are_published_on_loopback_only(compose):
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published)
