"""One HubSpot API version per connection: every call on its dated path by default, on its legacy path under
``legacy``, and the differences between the two read the same way."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reengagement.api_versions import DATED_PREFIXES, DEFAULT_API_VERSION, LEGACY, LEGACY_ONLY, versioned_path
from reengagement.hook import HubSpotHook
from reengagement.operators.emails import EmailMetricsOperator, SendEmailOperator
from reengagement.operators.lists import (
    BuildConfirmedListOperator,
    EnsureListOperator,
    ExportListOperator,
    ensure_list,
)
from reengagement.operators.settings import PreflightFailed, PreflightOperator, subscription_definitions
from reengagement.operators.subscriptions import OptOutOperator
from reengagement.ratelimit import RollingWindowLimiter
from reengagement.transport import GuardedRest, Transport, batch_errors

from tests.plugins.conftest import SUB, connection_json, contact_ids, create_op, make_list, run_operator

DATED = re.compile(rf"^/[a-z-]+(/[a-z-]+)?/{DEFAULT_API_VERSION}(/|$)")
#: Paths that keep their legacy form whatever the version: no date-based equivalent exists.
KEPT = {entry.path for entry in LEGACY_ONLY} | {"/oauth/v2/private-apps/get/access-token-info"}


def use_version(monkeypatch, sandbox, version: str | None) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sandbox.url, sandbox.token, api_version=version))


def kept(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in KEPT)


@pytest.fixture
def traffic(seeded) -> Callable[[], list[dict[str, Any]]]:
    """The HubSpot requests the sandbox recorded from now on (method, path, endpoint, status)."""
    command = seeded.command()
    record = Path(command[command.index("--record") + 1])
    start = record.stat().st_size if record.exists() else 0

    def since() -> list[dict[str, Any]]:
        with record.open() as handle:
            handle.seek(start)
            return [json.loads(line) for line in handle if line.strip()]

    return since


# -- the connection's version ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (None, DEFAULT_API_VERSION),
        ({"api_version": "legacy"}, LEGACY),
        ({"api_version": " 2026-03 "}, "2026-03"),
        ({"api_version": "LEGACY"}, LEGACY),
    ],
)
def test_the_version_comes_from_the_connection_else_the_default(extra, expected, monkeypatch):
    conn = {"conn_type": "http", "password": "t", **({"extra": extra} if extra else {})}
    monkeypatch.setenv("AIRFLOW_CONN_HS_TEST", json.dumps(conn))
    assert HubSpotHook("hs_test").api_version == expected


@pytest.mark.parametrize("bad", ["v3", "2027-01", "2026-9", 2026, ""])
def test_an_unknown_version_is_refused_naming_the_connection_before_any_call(bad, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HS_TEST",
        json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": 9, "password": "t", "extra": {"api_version": bad}}
        ),
    )
    hook = HubSpotHook("hs_test")
    with pytest.raises(ValueError, match=r"Connection 'hs_test': extra api_version must be one of 2026-03, 2026-09"):
        _ = hook.api_version
    with pytest.raises(ValueError, match="'hs_test'"):
        hook.request("GET", "/account-info/v3/details")  # refused before the unreachable host is tried


# -- routing at the REST layer ------------------------------------------------------------------------------
class RecordingRest:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method, url, *args, **kwargs):
        self.urls.append(url)
        return object()


def hook_on(monkeypatch, version: str | None) -> tuple[HubSpotHook, RecordingRest]:
    """A hook whose REST layer records the URLs it would send instead of sending them."""
    extra = {"extra": {"api_version": version}} if version else {}
    monkeypatch.setenv("AIRFLOW_CONN_HS_TEST", json.dumps({"conn_type": "http", "password": "t", **extra}))
    hook = HubSpotHook("hs_test")
    inner = RecordingRest()
    monkeypatch.setattr(hook._rest, "inner", inner)
    return hook, inner


def test_the_sdk_and_raw_calls_are_routed_in_one_place(monkeypatch):
    hook, inner = hook_on(monkeypatch, None)
    hook._rest.GET("https://api.hubapi.com/crm/v3/lists/7/memberships", query_params=[("limit", 250)])
    hook._rest.POST("https://api.hubapi.com/communication-preferences/v4/statuses/batch/write?x=1")
    hook._rest.GET("https://api.hubapi.com/email/public/v1/events?campaignId=1")
    hook._rest.with_transport(Transport(hook.transport.limiter, max_attempts=1)).GET(
        "https://api.hubapi.com/crm/v3/exports/export/async/tasks/9/status"
    )
    assert inner.urls == [
        "https://api.hubapi.com/crm/lists/2026-09/7/memberships",
        "https://api.hubapi.com/communication-preferences/2026-09/statuses/batch/write?x=1",
        "https://api.hubapi.com/email/public/v1/events?campaignId=1",
        "https://api.hubapi.com/crm/exports/2026-09/export/async/tasks/9/status",
    ]


def test_legacy_sends_every_path_as_written(monkeypatch):
    hook, inner = hook_on(monkeypatch, "legacy")
    for path in ("/crm/v3/lists/search", "/account-info/v3/details", "/communication-preferences/v3/definitions"):
        hook._rest.GET("https://api.hubapi.com" + path)
    assert [url.removeprefix("https://api.hubapi.com") for url in inner.urls] == [
        "/crm/v3/lists/search",
        "/account-info/v3/details",
        "/communication-preferences/v3/definitions",
    ]


def test_a_rest_client_without_a_route_leaves_urls_alone():
    inner = RecordingRest()
    rest = GuardedRest(inner, Transport(RollingWindowLimiter(sleep=lambda s: None)), (1.0, 1.0))
    rest.GET("https://api.hubapi.com/crm/v3/lists/1")
    assert inner.urls == ["https://api.hubapi.com/crm/v3/lists/1"]


# -- what differs between versions, read the same way -----------------------------------------------------------
def test_subscription_definitions_are_read_in_either_shape():
    marketing = {"id": "1", "name": "Marketing Information", "isActive": True}
    assert subscription_definitions({"subscriptionDefinitions": [marketing]}) == [marketing]
    assert subscription_definitions({"status": "COMPLETE", "results": [marketing]}) == [marketing]
    assert subscription_definitions({"results": []}) == []


def test_batch_errors_are_read_from_the_body_whatever_the_status():
    error = {"category": "OBJECT_NOT_FOUND", "context": {"ids": ["x@example.com"]}}
    body = {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [error]}
    assert batch_errors(body) == [error]  # the same body arrives as a 207 (legacy) or a 200 (date-based)
    assert batch_errors({"status": "COMPLETE", "results": []}) == []
    assert batch_errors(None) == []


@pytest.mark.parametrize("version", [None, "legacy"])
def test_contact_lookups_skip_unknown_addresses_on_either_version(version, seeded, traffic, monkeypatch):
    use_version(monkeypatch, seeded, version)
    contacts = [c for c in seeded.admin("GET", "contacts")["results"] if c["email"]][:120]
    found = dict(HubSpotHook().contact_ids_by_email([c["email"] for c in contacts] + ["nobody@example.com"]))
    assert found == {c["email"]: c["id"] for c in contacts}
    statuses = sorted(e["status"] for e in traffic() if e["endpoint"] == "contacts.batch_read")
    assert statuses == ([200, 207] if version else [200, 200])  # the unknown address is in the second batch


@pytest.mark.parametrize("version", [None, "legacy"])
def test_opt_out_failures_are_read_from_the_body_on_either_version(version, seeded, monkeypatch):
    use_version(monkeypatch, seeded, version)
    hook = HubSpotHook()
    email = next(c["email"] for c in seeded.admin("GET", "contacts")["results"] if c["email"])
    op = OptOutOperator(task_id="opt_out", export_uri="file:///unused.csv", emails=[], confirmed_list_id="1")
    op.hook = hook
    answer = op._apply([email.lower(), "ghost@example.com"])
    assert answer[email.lower()][0] == "UNSUBSCRIBED"
    assert answer["ghost@example.com"][0] == "ERROR"


@pytest.mark.parametrize("version", [None, "legacy"])
def test_a_list_lookup_never_searches_so_an_existing_list_is_adopted_on_either_reading(
    version, seeded, traffic, monkeypatch
):
    """Dated list search needs ``listIds``; read strictly, an empty one matches nothing (as the sandbox reads it).
    A look-up by search would call the list missing and create a duplicate; the get-by-name look-up cannot."""
    use_version(monkeypatch, seeded, version)
    hook = HubSpotHook()
    first = ensure_list(hook, "c · confirmed", "MANUAL", None, log=logging.getLogger(__name__))
    again = ensure_list(HubSpotHook(), "c · confirmed", "MANUAL", None, log=logging.getLogger(__name__))
    assert again["listId"] == first["listId"]
    assert "lists.search" not in {e["endpoint"] for e in traffic()}
    if version is None:  # why: a dated search without list ids finds nothing, though the list exists
        found = hook.request(
            "POST",
            "/crm/v3/lists/search",
            json_body={"query": "c · confirmed", "listIds": [], "processingTypes": ["MANUAL"]},
        )
        assert found["lists"] == []


# -- every call the product makes -------------------------------------------------------------------------------
def mini_campaign(sandbox, tmp_path) -> None:
    """Every step of one round and the opt-out, through the product's operators and hook methods."""
    run = {"run_id": "manual__versions"}
    checked = run_operator(
        PreflightOperator(
            task_id="preflight", subscription_type="Marketing Information", confirm_url="https://www.example.com/thanks"
        )
    )
    unengaged = run_operator(
        EnsureListOperator(
            task_id="build_unengaged_list",
            list_name="c · unengaged",
            processing_type="DYNAMIC",
            segment="unengaged",
            segment_args={"subscription_id": SUB, "inactivity_weeks": 52, "property_types": checked["property_types"]},
            poll_interval=0.1,
        )
    )
    recipients = run_operator(
        EnsureListOperator(
            task_id="build_recipients_list",
            list_name="c · r1 · recipients",
            processing_type="SNAPSHOT",
            segment="snapshot_of",
            segment_args={"list_id": unengaged["list_id"]},
            poll_interval=0.1,
        )
    )
    email = run_operator(create_op(recipients["list_id"]))
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=email["cta_url"]))
    sandbox.admin("POST", "clock", {"advance_seconds": 60})
    run_operator(EmailMetricsOperator(task_id="review_metrics", email_id=email["email_id"]))
    emails = [{**email, **sent}]
    confirmed = run_operator(
        BuildConfirmedListOperator(
            task_id="build_confirmed_list",
            list_name="c · confirmed",
            emails=emails,
            campaign="c",
            export_base=f"file://{tmp_path}",
            verify_members=True,
        ),
        run,
    )
    unconfirmed = run_operator(
        EnsureListOperator(
            task_id="build_unconfirmed_list",
            list_name="c · r1 · unconfirmed",
            processing_type="DYNAMIC",
            segment="unconfirmed",
            segment_args={"recipients_list_id": recipients["list_id"], "confirmed_list_id": confirmed["list_id"]},
            poll_interval=0.1,
        )
    )
    exported = run_operator(
        ExportListOperator(
            task_id="export_unconfirmed",
            list_id=unconfirmed["list_id"],
            campaign="c",
            export_base=f"file://{tmp_path}",
            poll_interval=0.1,
        ),
        run,
    )
    run_operator(
        OptOutOperator(
            task_id="opt_out_unconfirmed",
            export_uri=exported["export_uri"],
            emails=emails,
            confirmed_list_id=confirmed["list_id"],
            legal_basis_explanation="versions",
        ),
        run,
    )
    hook = HubSpotHook()
    assert hook.test_connection()[0]
    hook.access_token_info()
    hook.request_with_headers("GET", "/account-info/v3/details")
    make_list(hook, "c · by hand", contact_ids(sandbox)[:3])


def test_every_call_goes_to_the_dated_path_by_default_and_the_legacy_path_under_legacy(
    seeded, traffic, tmp_path, monkeypatch
):
    use_version(monkeypatch, seeded, None)
    mini_campaign(seeded, tmp_path / "dated")
    dated = traffic()
    seeded.admin("POST", "reset")
    seeded.admin("POST", "seed", {"contacts": 300, "seed": 7})
    use_version(monkeypatch, seeded, "legacy")
    mini_campaign(seeded, tmp_path / "legacy")
    legacy = traffic()[len(dated) :]

    assert [e for e in dated + legacy if e["status"] >= 500] == []
    wrong = [e["path"] for e in dated if not (DATED.match(e["path"]) or kept(e["path"]))]
    assert wrong == [], "calls left on legacy paths under the default version"
    assert {e["path"].rstrip("/") for e in dated if kept(e["path"])} >= {entry.path for entry in LEGACY_ONLY}
    assert [e["path"] for e in legacy if "/2026-" in e["path"]] == []
    assert all(any(e["path"].startswith(prefix) for prefix in (*DATED_PREFIXES, *KEPT)) for e in legacy)
    # The same calls, each on its version's path (polls vary in number, so paths are compared as sets).
    assert {e["path"] for e in dated} == {versioned_path(e["path"], DEFAULT_API_VERSION) for e in legacy}


# -- preflight says which version it speaks --------------------------------------------------------------------
def preflight() -> PreflightOperator:
    return PreflightOperator(
        task_id="preflight", subscription_type="Marketing Information", confirm_url="https://www.example.com/thanks"
    )


@pytest.mark.parametrize("version", [None, "legacy"])
def test_preflight_logs_the_version_and_each_legacy_only_endpoint_with_its_end_date(
    version, seeded, monkeypatch, capsys
):
    use_version(monkeypatch, seeded, version)
    capsys.readouterr()
    result = run_operator(preflight())
    lines = capsys.readouterr().out.splitlines()
    expected = "HubSpot API version: 2026-09 (date-based paths)." if version is None else "HubSpot API version: legacy"
    assert any(expected in line for line in lines)
    for entry in LEGACY_ONLY:
        mentions = [line for line in lines if entry.path in line]
        assert len(mentions) == 1 and entry.unsupported_from in mentions[0]
    assert result["subscription_id"] == SUB  # found in the definitions whichever shape they came in
    assert not any("version" in key for key in result)


def test_preflight_refuses_an_unknown_version_at_once(seeded, monkeypatch):
    use_version(monkeypatch, seeded, "2025-01")
    seeded.admin("DELETE", "calls")
    with pytest.raises(PreflightFailed, match="'hubspot_default': extra api_version"):
        run_operator(preflight())
    assert seeded.admin("GET", "calls") == {}
