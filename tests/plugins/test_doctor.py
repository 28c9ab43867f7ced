"""``make doctor`` against the sandbox configured each way: what it prints, its exit code, and that it only reads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from include import doctor
from include.hubspot_sandbox.process import PROJECT_ROOT, SandboxProcess
from tests.sandbox.test_emails import land, make_email, make_list, seeded_contacts

#: Every endpoint the doctor may call: GETs and read-only POSTs (token introspection, a batch status read).
READ_ONLY = {"account.details", "account.api_usage", "account.token_info", "subscriptions.v4.definitions",
             "subscriptions.v4.batch_read", "properties.get", "emails.list", "events.list"}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox of its own: the doctor calls HubSpot endpoints outside the OpenAPI files the shared one checks."""
    folder = tmp_path_factory.mktemp("doctor")
    with SandboxProcess(folder / "portal.db", args=["--response-window-seconds", "3"]) as box:
        yield box


@pytest.fixture
def box(portal: SandboxProcess) -> SandboxProcess:
    portal.admin("POST", "reset")
    portal.admin("POST", "seed", {"contacts": 200, "seed": 3})
    return portal


def connection(box: SandboxProcess, token: str | None = None) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": box.port, "schema": "http",
                       "password": token or box.token})


def send_an_email(box: SandboxProcess) -> None:
    """A sent permission-pass email whose clicks have landed: the doctor reads its click URLs."""
    import hubspot

    client = hubspot.Client.create(access_token=box.token, host=box.url, base_url=box.url)
    email = make_email(client, make_list(client, [c["id"] for c in seeded_contacts(box)]), graymail=False)
    client.marketing.emails.marketing_emails_api.publish_or_send(email.id)
    land(box)


def run_doctor(box: SandboxProcess, monkeypatch, capsys, tmp_path, token: str | None = None) -> tuple[int, dict]:
    """Run the doctor as ``make doctor`` would, with HUBSPOT_CONNECTION; returns (exit code, status by check)."""
    monkeypatch.setenv("HUBSPOT_CONNECTION", connection(box, token))
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", "")  # restored after the test: the doctor sets it
    box.admin("DELETE", "calls")
    code = doctor.main(["--dotenv", str(tmp_path / "absent.env")])
    out = capsys.readouterr().out
    lines = {line[6:26].strip(): line for line in out.splitlines() if line[:4] in ("PASS", "WARN", "FAIL")}
    return code, lines


def assert_only_reads(box: SandboxProcess) -> None:
    called = set(box.admin("GET", "calls"))
    assert called and called <= READ_ONLY, f"the doctor called {sorted(called - READ_ONLY)}"


def test_a_strict_enterprise_portal_passes_and_nothing_is_written(box, monkeypatch, capsys, tmp_path):
    send_an_email(box)
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0
    for check in ("connection", "scopes", "tier", "API limits", "subscription types", "property types",
                  "click URLs"):
        assert lines[check].startswith("PASS"), lines[check]
    assert "190 calls per 10 s" in lines["API limits"] and "1,000,000" in lines["tier"]
    assert "hs_email_optout_33583163=enumeration" in lines["property types"]
    clicks = lines["click URLs"]
    assert all(name in clicks for name in ("utm_source", "utm_medium", "_hsenc", "_hsmi")), clicks
    assert clicks.endswith("the links' own parameters pp")
    assert lines["exports left today"].startswith("WARN") and "30" in lines["exports left today"]
    assert_only_reads(box)


def test_a_professional_portal_without_tracking_parameters_warns(box, monkeypatch, capsys, tmp_path):
    box.admin("PUT", "sending", {"trackingParameters": False})
    send_an_email(box)
    box.admin("PUT", "settings", {"tier": "professional"})
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0  # warnings only
    assert lines["scopes"].startswith("WARN") and "marketing-email" in lines["scopes"]
    assert "statuses.batch.write" in lines["scopes"]
    assert lines["tier"].startswith("WARN") and "625,000" in lines["tier"] and "refused" in lines["tier"]
    assert lines["click URLs"].startswith("PASS") and "tracking parameters none" in lines["click URLs"]
    assert lines["connection"].startswith("PASS") and lines["property types"].startswith("PASS")
    assert_only_reads(box)


def test_a_portal_with_no_sent_email_warns_about_click_urls(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0 and lines["click URLs"].startswith("WARN") and "no sent marketing email" in lines["click URLs"]


def test_a_refused_token_fails(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path, token="pat-wrong-0000")
    assert code == 1 and list(lines) == ["connection"] and lines["connection"].startswith("FAIL")
    assert "refused the token" in lines["connection"]


def test_without_a_connection_it_says_how_to_give_one(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "include.doctor", "--dotenv", str(tmp_path / "absent.env")],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "HUBSPOT_CONNECTION" in done.stdout and ".env" in done.stdout
