"""``make doctor`` against the sandbox configured each way: what it prints, its exit code, and that it only reads."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from include import doctor
from include.hubspot_sandbox.config import ALL_SCOPES, DEFAULT_TOKEN, SERVICE_KEY_PREFIX
from include.hubspot_sandbox.process import PROJECT_ROOT, SandboxProcess
from tests.sandbox.test_emails import land, make_email, make_list, seeded_contacts

#: Every endpoint the doctor may call: GETs and read-only POSTs (token introspection, a batch status read).
READ_ONLY = {
    "account.details",
    "account.api_usage",
    "account.token_info",
    "subscriptions.v4.definitions",
    "subscriptions.v4.batch_read",
    "properties.get",
    "emails.list",
    "events.list",
    "forms.list",
    "lists.get_many",
    "exports.status",
}
#: A Service Key whose creator could not give it crm.export: every other scope the campaign uses.
NO_EXPORT_KEY = "svc-doctor-0001"
STEPS = ("review settings", "build lists", "create/send email", "read events", "export", "opt out")


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A sandbox of its own: the doctor calls HubSpot endpoints outside the OpenAPI files the shared one checks."""
    folder = tmp_path_factory.mktemp("doctor")
    no_export = f"{SERVICE_KEY_PREFIX}{NO_EXPORT_KEY}={','.join(sorted(ALL_SCOPES - {'crm.export'}))}"
    args = ["--response-window-seconds", "3", "--token", DEFAULT_TOKEN, "--token", no_export]
    with SandboxProcess(folder / "portal.db", args=args) as box:
        yield box


@pytest.fixture
def box(portal: SandboxProcess) -> SandboxProcess:
    portal.admin("POST", "reset")
    portal.admin("POST", "seed", {"contacts": 200, "seed": 3})
    return portal


def connection(box: SandboxProcess, token: str | None = None, extra: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": box.port,
            "schema": "http",
            "password": token or box.token,
            "extra": extra or {},
        }
    )


def send_an_email(box: SandboxProcess) -> None:
    """A sent permission-pass email whose clicks have landed: the doctor reads its click URLs."""
    import hubspot

    client = hubspot.Client.create(access_token=box.token, host=box.url, base_url=box.url)
    email = make_email(client, make_list(client, [c["id"] for c in seeded_contacts(box)]), graymail=False)
    client.marketing.emails.marketing_emails_api.publish_or_send(email.id)
    land(box)


def run_doctor(
    box: SandboxProcess, monkeypatch, capsys, tmp_path, token: str | None = None, extra: dict[str, Any] | None = None
) -> tuple[int, dict]:
    """Run the doctor as ``make doctor`` would, with HUBSPOT_CONNECTION; returns (exit code, line by check)."""
    monkeypatch.setenv("HUBSPOT_CONNECTION", connection(box, token, extra))
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", "")  # restored after the test: the doctor sets it
    box.admin("DELETE", "calls")
    code = doctor.main(["--dotenv", str(tmp_path / "absent.env")])
    out = capsys.readouterr().out
    lines: dict[str, str] = {}
    for line in out.splitlines():
        if line[:4] in ("PASS", "WARN", "FAIL"):
            check = line[6:26].strip()
            lines[check] = line
        elif line.lstrip().startswith("->") and lines:
            lines[check] += "\n" + line.strip()  # what the campaign does about it
    return code, lines


def legacy_only_checks() -> list[str]:
    return [doctor._legacy_check_name(endpoint.path) for endpoint in doctor.api_versions.LEGACY_ONLY]


def assert_only_reads(box: SandboxProcess) -> None:
    called = set(box.admin("GET", "calls"))
    assert called and called <= READ_ONLY, f"the doctor called {sorted(called - READ_ONLY)}"


def test_a_strict_enterprise_portal_passes_and_nothing_is_written(box, monkeypatch, capsys, tmp_path):
    send_an_email(box)
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0
    for check in (
        "API version",
        "connection",
        "credentials",
        *STEPS,
        "tier",
        "API limits",
        "subscription types",
        "property types",
        "click URLs",
    ):
        assert lines[check].startswith("PASS"), lines[check]
    assert "2026-09" in lines["API version"] and "/crm/lists/2026-09" in lines["API version"]
    assert "legacy private app token" in lines["credentials"]
    assert "190 calls per 10 s" in lines["API limits"] and "1,000,000" in lines["tier"]
    assert "hs_email_optout_33583163=enumeration" in lines["property types"]
    clicks = lines["click URLs"]
    assert all(name in clicks for name in ("utm_source", "utm_medium", "_hsenc", "_hsmi")), clicks
    assert "the links' own parameters pp\n->" in clicks
    assert lines["exports left today"].startswith("WARN") and "30" in lines["exports left today"]
    assert_only_reads(box)


def test_a_professional_portal_without_tracking_parameters_warns(box, monkeypatch, capsys, tmp_path):
    box.admin("PUT", "sending", {"trackingParameters": False})
    send_an_email(box)
    box.admin("PUT", "settings", {"tier": "professional"})
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 1  # Enterprise-only scopes vanish below Enterprise: two steps cannot run
    assert lines["create/send email"].startswith("FAIL") and "marketing-email" in lines["create/send email"]
    assert lines["opt out"].startswith("FAIL") and "statuses.batch.write" in lines["opt out"]
    assert all(lines[step].startswith("PASS") for step in STEPS if step not in ("create/send email", "opt out"))
    assert lines["tier"].startswith("WARN") and "625,000" in lines["tier"] and "refused" in lines["tier"]
    assert lines["click URLs"].startswith("PASS") and "tracking parameters none" in lines["click URLs"]
    assert lines["connection"].startswith("PASS") and lines["property types"].startswith("PASS")
    assert_only_reads(box)


def test_a_portal_with_no_sent_email_warns_about_click_urls(box, monkeypatch, capsys, tmp_path):
    box.admin("POST", "reset")
    box.admin("POST", "seed", {"contacts": 0})  # no seeded newsletter either
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0 and lines["click URLs"].startswith("WARN") and "no sent marketing email" in lines["click URLs"]
    assert lines["machine opens"].startswith("WARN") and "cannot be told yet" in lines["machine opens"]


def test_machine_opens_marked_as_filtered_show_that_bot_filtering_is_on(box, monkeypatch, capsys, tmp_path):
    """The seeded newsletter was opened by people and, for some unengaged recipients, by machines."""
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path)
    assert code == 0
    opens = lines["machine opens"]
    assert opens.startswith("PASS") and "'Spring newsletter 2026'" in opens and "bot filtering is on" in opens
    filtered, total = (int(n) for n in re.search(r"(\d+) of (\d+) opens are marked", opens).groups())
    assert 0 < filtered < total
    assert "Email Bot filtering" in opens and "CTA clicks" in opens
    assert_only_reads(box)


def test_a_service_key_without_introspection_names_the_step_its_missing_scope_stops(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path, token=NO_EXPORT_KEY)
    assert code == 1
    assert lines["credentials"].startswith("PASS") and "Service Key" in lines["credentials"]
    assert lines["export"].startswith("FAIL") and "crm.export" in lines["export"], lines["export"]
    assert "Development > Keys > Service keys" in lines["export"]
    for step in ("build lists", "create/send email", "opt out"):  # their write scopes only a write could prove
        assert lines[step].startswith("WARN") and doctor.ONLY_A_WRITE in lines[step], lines[step]
    assert lines["review settings"].startswith("PASS") and lines["read events"].startswith("PASS")
    assert lines["connection"].startswith("PASS") and lines["tier"].startswith("PASS")
    calls = box.admin("GET", "calls")
    assert calls["account.token_info"]["errors"] == 1  # HubSpot introspects private app tokens only
    assert "exports.status" in calls
    assert_only_reads(box)


def test_the_api_version_and_the_legacy_only_endpoints_are_printed(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path, extra={"api_version": "legacy"})
    assert code == 0
    assert lines["API version"].startswith("WARN") and "legacy" in lines["API version"]
    assert "30 March 2027" in lines["API version"] and '"2026-09"' in lines["API version"]
    for endpoint, check in zip(doctor.api_versions.LEGACY_ONLY, legacy_only_checks(), strict=True):
        assert endpoint.path in lines[check] and endpoint.purpose in lines[check], lines[check]
        assert f"HubSpot's support ends {endpoint.unsupported_from}" in lines[check]
    assert legacy_only_checks() == ["legacy events v1", "legacy forms v3"]
    assert_only_reads(box)


def test_a_legacy_only_endpoint_warns_within_a_year_of_its_end():
    far, near = doctor.legacy_only_lines(dt.date(2026, 8, 31)), doctor.legacy_only_lines(dt.date(2026, 12, 4))
    assert [line.status for line in far] == ["PASS", "PASS"]  # September 2027 is more than 12 months away
    assert [line.status for line in near] == ["WARN", "WARN"]
    assert all("September 2027" in line.found for line in near)
    assert "date-based Forms are in beta only" in near[1].action


def test_an_unknown_api_version_fails_before_any_call(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path, extra={"api_version": "2025-01"})
    assert code == 1 and list(lines) == ["API version"] and lines["API version"].startswith("FAIL")
    assert "2026-09" in lines["API version"]
    assert box.admin("GET", "calls") == {}


def test_a_refused_token_fails(box, monkeypatch, capsys, tmp_path):
    code, lines = run_doctor(box, monkeypatch, capsys, tmp_path, token="pat-wrong-0000")
    assert code == 1 and list(lines) == ["API version", *legacy_only_checks(), "connection"]
    assert lines["connection"].startswith("FAIL")
    assert "refused the token" in lines["connection"]


def test_without_a_connection_it_says_how_to_give_one(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "include.doctor", "--dotenv", str(tmp_path / "absent.env")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "HUBSPOT_CONNECTION" in done.stdout and ".env" in done.stdout
