"""The package installs as an Airflow provider: in a fresh virtual environment with only Airflow and the
wheel, ``airflow providers list`` shows it, a ``hubspot`` connection can be added, the plugin loads, and the
campaign DAG runs end to end against the sandbox from a one-line file in the dags folder.

The fresh environment is filled by uv from the cache ``make venv`` left (the same pinned versions), so
this costs seconds, not a download of Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest
from reengagement.provider import CONNECTION_FIELDS, get_provider_info

from include.demo import check_outcome, show_report
from include.hubspot_sandbox.process import SandboxProcess
from tests.support.campaign import CAMPAIGN_SANDBOX

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(airflow.__file__).parent


def test_the_provider_info_is_valid_for_airflow():
    info = get_provider_info()
    schema = json.loads((AIRFLOW / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    (hubspot,) = info["connection-types"]
    assert (hubspot["connection-type"], hubspot["hook-class-name"]) == ("hubspot", "reengagement.hook.HubSpotHook")
    behaviour = hubspot["ui-field-behaviour"]
    form_schema = json.loads((AIRFLOW / "customized_form_field_behaviours.schema.json").read_text())
    jsonschema.validate({k.replace("-", "_"): v for k, v in behaviour.items()}, form_schema)


def test_every_class_and_module_it_names_imports():
    import importlib

    from reengagement.hook import HubSpotHook

    info = get_provider_info()
    for group in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name).name
    assert HubSpotHook.conn_type == "hubspot"


@pytest.mark.parametrize("stored_as", ["in_flight", "extra__hubspot__in_flight"])
def test_the_form_fields_are_the_extras_the_hook_reads(monkeypatch, stored_as):
    from airflow.models.connection import Connection
    from reengagement.hook import HubSpotHook

    assert set(CONNECTION_FIELDS) == {"api_version", "in_flight"}
    extra = {stored_as: 3, stored_as.replace("in_flight", "api_version"): "legacy"}
    conn = Connection(
        conn_id="hubspot_form", conn_type="hubspot", host="api.hubapi.com", password="k", extra=json.dumps(extra)
    )
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_FORM", conn.as_json())
    hook = HubSpotHook("hubspot_form")
    assert (hook.in_flight, hook.api_version) == (3, "legacy")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (setuptools leaves build files where it builds)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(
        ROOT / "plugins" / "reengagement",
        source / "plugins" / "reengagement",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--installer", "uv", "--outdir", str(out), str(source)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_package_and_the_provider_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert {"reengagement/hook.py", "reengagement/provider.py", "reengagement/files_app.py"} <= names
    assert {
        "reengagement/campaign_dag.py",
        "reengagement/plugin.py",
        "reengagement/templates/permission_pass.html",
    } <= names
    assert "[airflow.plugins]" in text
    assert "[apache_airflow_provider]" in text and "reengagement.provider:get_provider_info" in text
    assert not any(n.startswith(("tests/", "include/")) for n in names)


#: Marks where :data:`RUN_COMMANDS` prints the commands' outputs, after whatever Airflow itself printed.
OUTPUTS_MARKER = "@@outputs@@"

#: Runs ``airflow`` commands one after another in one process of the fresh environment (each command as
#: ``airflow`` itself would, by its ``main``), so the seconds of importing Airflow are paid once, not per command.
#: Arguments: the commands as a JSON list of argument lists, then the marker. Exits at the first command that fails.
RUN_COMMANDS = """
import contextlib, io, json, sys
from airflow.__main__ import main

commands, marker = json.loads(sys.argv[1]), sys.argv[2]
outputs = []
for argv in commands:
    sys.argv = ["airflow", *argv]
    captured, status = io.StringIO(), 0
    with contextlib.redirect_stdout(captured):
        try:
            main()
        except SystemExit as done:
            status = done.code
    if status not in (None, 0):
        sys.exit(f"{captured.getvalue()}\\nairflow {' '.join(argv[:2])} exited with {status}")
    outputs.append(captured.getvalue())
print(marker + json.dumps(outputs))
"""


class FreshAirflow:
    """A virtual environment with only Airflow and the wheel, and a runner for its ``airflow`` commands."""

    def __init__(self, venv: Path, home: Path) -> None:
        self.python = str(venv / "bin" / "python")
        # Only this Airflow's own settings: the suite's (its database, connections as AIRFLOW_CONN_*) stay out,
        # and nothing of this repository is on the path.
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        self.env.update(
            AIRFLOW_HOME=str(home),
            PYTHONPATH="",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        )

    def run(self, *commands: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> list[str]:
        """Each command's standard output; the first that fails fails the test with its output."""
        done = subprocess.run(
            [self.python, "-c", RUN_COMMANDS, json.dumps(commands), OUTPUTS_MARKER],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        ran = "; ".join(" ".join(command[:2]) for command in commands)
        assert done.returncode == 0, f"airflow {ran}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return json.loads(done.stdout.rpartition(OUTPUTS_MARKER)[2])


def json_output(out: str) -> Any:
    """The JSON a command printed after any warnings Airflow logs to stdout."""
    return json.loads(next(line for line in out.splitlines() if line.startswith(("[", "{"))))


@pytest.fixture(scope="module")
def fresh(wheel, airflow_db: Path, tmp_path_factory) -> FreshAirflow:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: make venv installs it")
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    constraints = str(ROOT / "constraints.txt")
    install = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python),
        "-c",
        constraints,
        "apache-airflow",
        str(wheel),
    ]
    subprocess.run(install, check=True, timeout=600)
    home = tmp_path_factory.mktemp("fresh-home")
    # The suite's migrated database (the same Airflow, with the campaign's pool): `airflow db migrate` again
    # would cost its seconds of CPU and show nothing about the package.
    shutil.copyfile(airflow_db, home / "airflow.db")
    return FreshAirflow(venv, home)


def test_the_campaign_runs_end_to_end_from_the_installed_package(fresh, tmp_path):
    """The one-line DAG file in an empty dags folder, a ``hubspot`` connection to the sandbox, and ``airflow
    dags test``: the installed package alone runs the campaign, and opts out exactly the ground truth."""
    dags = Path(fresh.env["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dags" / "hubspot_reengagement.py", dags)
    assert len((dags / "hubspot_reengagement.py").read_text().splitlines()) == 1
    sandbox_args = ["--seed-contacts", "300", "--seed", "3", *CAMPAIGN_SANDBOX]
    with SandboxProcess(tmp_path / "portal.db", args=sandbox_args) as sandbox:
        connection = {"conn_type": "hubspot", "host": "127.0.0.1", "port": sandbox.port, "schema": "http"}
        env = {"AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps({**connection, "password": sandbox.token})}
        exports = tmp_path / "exports"
        conf = {"rounds": 1, "wait": "PT4S", "export_base": f"file://{exports}"}
        _, listing, _ = fresh.run(
            ["dags", "reserialize"],
            ["dags", "list", "--output", "json"],
            ["dags", "test", "hubspot_reengagement", "-c", json.dumps(conf)],
            env=env,
        )
        [listed] = json_output(listing)
        # Airflow binds the DAG to the file in the deployment's dags folder, not to the package's module.
        assert (listed["dag_id"], Path(listed["fileloc"])) == ("hubspot_reengagement", dags / "hubspot_reengagement.py")
        folder = show_report(exports)
        assert check_outcome(sandbox, folder, rounds=1)


# Last, being the shorter: the scheduler hands this worker its next file when the last test starts.
def test_a_fresh_airflow_with_the_wheel_lists_the_provider_and_takes_a_hubspot_connection(fresh):
    extra = json.dumps({"in_flight": 4})
    add = ["connections", "add", "hubspot_packaged", "--conn-type", "hubspot", "--conn-host", "api.hubapi.com"]
    providers, _, added, plugins = fresh.run(
        ["providers", "list", "--output", "json"],
        [*add, "--conn-password", "svc-test", "--conn-extra", extra],
        ["connections", "get", "hubspot_packaged", "--output", "json"],
        ["plugins", "--output", "json"],
    )
    assert {"package_name": "hubspot-reengagement"}.items() <= next(
        p for p in json_output(providers) if p["package_name"] == "hubspot-reengagement"
    ).items()
    assert json_output(added)[0]["conn_type"] == "hubspot"
    assert '"reengagement"' in plugins and "campaign-report" in plugins
