"""The token and the contacts' personal data stay where they belong.

A whole campaign (the fault-free run every reliability test compares against) leaves behind task logs,
XCom values, rendered template fields, exports and reports: the token is in none of them, and XCom holds
no email address or contact property. The files with personal data are owner-only, spreadsheet-safe and
say which run wrote them; the sandbox answers nobody without a token.
"""

from __future__ import annotations

import csv
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from reengagement.hook import HubSpotHook
from reengagement.operators.emails import SendEmailOperator
from reengagement.operators.lists import ExportListOperator
from reengagement.operators.subscriptions import OptOutOperator

from include.hubspot_sandbox.app import create_app
from include.hubspot_sandbox.config import SandboxConfig
from tests.plugins.conftest import create_op, make_list, run_operator

EMAIL_ADDRESS = re.compile(r"[^@\s\"'/]+@[^@\s\"'/]+\.[a-z]{2,}", re.IGNORECASE)
FORMULA_START = ("=", "+", "-", "@")


def test_the_token_is_nowhere_in_what_the_campaigns_leave_behind(lab, baseline):
    token = lab.sandbox.token
    texts = dict(baseline.artefacts)
    # Every run log of the session's reliability runs so far, failed and killed runs included (tracebacks).
    texts.update({str(p): p.read_text(errors="replace") for p in lab.workdir.rglob("*.log")})
    leaks = [where for where, text in texts.items() if token in text]
    assert leaks == []
    kinds = {
        "XCom": 20,
        "rendered fields": 10,
        ".log": 1,
        "report.html": 1,
        "report.csv": 1,
        "unconfirmed.csv": 1,
        "opt_out_result.try-": 1,
    }
    for kind, at_least in kinds.items():  # the scan saw the real thing
        assert sum(kind in where for where in texts) >= at_least, kind


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _contact_values(lab) -> set[str]:
    """Every email, first and last name of the portal (the same seed as the fault-free run: the same people)."""
    values: set[str] = set()
    after = None
    while True:
        page = lab.sandbox.session.get(
            f"{lab.sandbox.url}/crm/v3/objects/contacts",
            params={"limit": 100, "properties": "email,firstname,lastname", **({"after": after} if after else {})},
        ).json()
        for contact in page["results"]:
            values |= {
                str(v).lower()
                for k, v in contact["properties"].items()
                if k in ("email", "firstname", "lastname") and v
            }
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return values


def test_xcom_holds_no_email_address_or_contact_property(lab, baseline):
    personal = _contact_values(lab)
    assert len(personal) > 400
    found = []
    for where, value in baseline.xcom.items():
        found += [f"{where}: {s!r}" for s in _strings(value) if EMAIL_ADDRESS.search(s) or s.lower() in personal]
    assert found == []
    assert len(baseline.xcom) > 20


def test_exports_and_reports_are_owner_only_and_carry_the_run_id(baseline):
    files = [Path(p) for p in baseline.exports]
    assert {p.name for p in files} >= {"unconfirmed.csv", "report.csv", "report.html"}
    assert any(p.name.startswith("opt_out_result.try-") for p in files)
    assert any(p.parent.name == "audit_ledger" for p in files)
    run_ids = set()
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        if path.suffix == ".csv":
            with path.open() as handle:
                rows = list(csv.DictReader(handle))
            assert rows and all(row["run_id"] == rows[0]["run_id"] for row in rows), path
            run_ids.add(rows[0]["run_id"])
    assert run_ids == {baseline.run_id}


def test_formula_like_emails_are_neutralised_in_the_export_and_still_opted_out(lab, tmp_path):
    lab.new_scenario("formula cells")
    emails = ["=1+2@example.com", "+61400@example.com", "-minus@example.com", "plain@example.com"]
    contacts = [{"email": e, "profile": "never_confirm"} for e in emails]
    ids = lab.sandbox.admin("POST", "contacts", {"contacts": contacts})["ids"]
    list_id = make_list(HubSpotHook(), "formula cells", ids)
    export = run_operator(
        ExportListOperator(
            task_id="export_unconfirmed",
            list_id=list_id,
            campaign="c",
            export_base=f"file://{tmp_path}",
            poll_interval=0.1,
        )
    )
    path = ObjectStoragePath(export["export_uri"]).path
    cells = [cell for line in Path(path).read_text().splitlines()[1:] for cell in next(csv.reader([line]))]
    assert not [cell for cell in cells if cell.startswith(FORMULA_START)]
    assert {"'=1+2@example.com", "'+61400@example.com", "'-minus@example.com", "plain@example.com"} <= set(cells)
    email = run_operator(create_op(list_id, email_name="formula cells · email"))
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=email["cta_url"]))
    lab.sandbox.admin("POST", "clock", {"advance_seconds": 60})
    confirmed = make_list(HubSpotHook(), "formula cells · confirmed", [])
    result = run_operator(
        OptOutOperator(
            task_id="opt_out_unconfirmed",
            export_uri=export["export_uri"],
            emails=[{**email, **sent}],
            confirmed_list_id=confirmed,
        )
    )
    assert result["opted_out"] == 4
    changed = {c["email"] for c in lab.sandbox.admin("GET", "status-changes")["results"]}
    assert changed == set(emails)


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory) -> list[tuple[str, str]]:
    app = create_app(SandboxConfig(db_path=str(tmp_path_factory.mktemp("routes") / "p.db")))
    routes = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or []):
            routes.append((method, re.sub(r"\{[^}]+\}", "1", route.path)))
    return routes


#: Like HubSpot's pre-signed S3 links, an export's download URL needs no token but carries a secret.
PRE_SIGNED = "/_sandbox/downloads/"


def test_the_sandbox_answers_no_request_without_a_valid_token(lab, app_routes):
    assert len(app_routes) > 60 and any(path.startswith("/_sandbox/") for _, path in app_routes)
    answers = {}
    for method, path in app_routes:
        if path.startswith(PRE_SIGNED):
            # Without the export's secret there is nothing to download.
            assert (
                lab.sandbox.session.request(
                    method, lab.sandbox.url + path, timeout=10, headers={"Authorization": None}
                ).status_code
                == 404
            )
            continue
        for authorization in (None, "Bearer not-a-token", lab.sandbox.token):  # none, unknown, without "Bearer"
            response = lab.sandbox.session.request(
                method, lab.sandbox.url + path, timeout=10, headers={"Authorization": authorization}
            )
            answers[(method, path, authorization)] = response.status_code
    assert set(answers.values()) == {401}, {k: v for k, v in answers.items() if v != 401}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from the kernel's table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_sandbox_listens_on_loopback_only(lab):
    addresses = _listening_addresses(lab.sandbox.port)
    if not addresses:
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    assert addresses == {"0100007F"}  # 127.0.0.1, little-endian hex
