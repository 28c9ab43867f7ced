"""The package installs as an Airflow provider: in a fresh virtual environment with only Airflow and the
wheel, ``airflow providers list`` shows it and a ``hubspot`` connection can be added.

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

import airflow
import jsonschema
import pytest
from reengagement.provider import CONNECTION_FIELDS, get_provider_info

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
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
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
    assert "[apache_airflow_provider]" in text and "reengagement.provider:get_provider_info" in text
    assert not any(n.startswith(("tests/", "include/")) for n in names)


def test_a_fresh_airflow_with_the_wheel_lists_the_provider_and_takes_a_hubspot_connection(wheel, tmp_path):
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: make venv installs it")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-c",
            str(ROOT / "constraints.txt"),
            "apache-airflow",
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    # Only this Airflow's own settings: the suite's (its database, connections as AIRFLOW_CONN_*) stay out.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        PYTHONPATH="",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(tmp_path / "no-plugins"),
    )
    airflow = str(venv / "bin" / "airflow")

    def run(*args: str) -> str:
        done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    providers = json.loads(run("providers", "list", "--output", "json"))
    assert {"package_name": "hubspot-reengagement"}.items() <= next(
        p for p in providers if p["package_name"] == "hubspot-reengagement"
    ).items()
    run("db", "migrate")
    run(
        "connections",
        "add",
        "hubspot_packaged",
        "--conn-type",
        "hubspot",
        "--conn-host",
        "api.hubapi.com",
        "--conn-password",
        "svc-test",
        "--conn-extra",
        json.dumps({"in_flight": 4}),
    )
    added = json.loads(run("connections", "get", "hubspot_packaged", "--output", "json"))
    assert added[0]["conn_type"] == "hubspot"
