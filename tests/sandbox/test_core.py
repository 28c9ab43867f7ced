"""The sandbox's cross-cutting behaviour: auth, scopes, errors, rate limits, faults, restarts."""

from __future__ import annotations

import time

import pytest
import requests

from include.hubspot_sandbox.__main__ import build_parser, config_from_args, main
from include.hubspot_sandbox.config import RateLimit, SandboxConfig, TokenGrant
from include.hubspot_sandbox.process import SandboxProcess
from tests.support.contract import read_exchanges

DETAILS = "/account-info/v3/details"


def test_unknown_token_gets_hubspot_401(sandbox):
    response = requests.get(f"{sandbox.url}{DETAILS}", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert response.status_code == 401
    body = response.json()
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["status"] == "error" and body["correlationId"]


def test_request_without_token_is_refused_everywhere(sandbox):
    for path in (DETAILS, "/crm/v3/lists/1", "/_sandbox/calls"):
        assert requests.get(f"{sandbox.url}{path}", timeout=5).status_code == 401, path


def test_an_exchange_is_recorded_whole_before_its_answer_arrives(sandbox):
    """Whoever reads the recording right after an answer finds that exchange, complete."""
    from pathlib import Path

    record = Path(sandbox.command()[sandbox.command().index("--record") + 1])
    offset = record.stat().st_size if record.exists() else 0
    for list_id in range(900_001, 900_041):
        assert sandbox.session.get(f"{sandbox.url}/crm/v3/lists/{list_id}").status_code == 404
        exchanges, offset = read_exchanges(record, offset)
        assert [e.path for e in exchanges] == [f"/crm/v3/lists/{list_id}"]


def test_every_response_carries_rate_limit_headers(sandbox):
    response = sandbox.session.get(f"{sandbox.url}{DETAILS}")
    assert response.ok
    assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(response.headers["X-HubSpot-RateLimit-Remaining"]) == 189
    assert response.headers["X-HubSpot-RateLimit-Daily"] == "1000000"
    missing = sandbox.session.get(f"{sandbox.url}/crm/v3/lists/999999")
    assert missing.status_code == 404
    assert "X-HubSpot-RateLimit-Remaining" in missing.headers


def test_burst_over_the_ten_second_limit_gets_429_with_policy_name(sandbox):
    sandbox.admin("PUT", "settings", {"rate_limit": "5/10s,1000/day"})
    statuses = [sandbox.session.get(f"{sandbox.url}{DETAILS}").status_code for _ in range(5)]
    assert statuses == [200] * 5
    blocked = sandbox.session.get(f"{sandbox.url}{DETAILS}")
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert blocked.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert sandbox.admin("GET", "calls")["account.details"]["rateLimited"] == 1


def test_daily_limit_gets_429_daily_until_the_day_resets(sandbox):
    sandbox.admin("PUT", "settings", {"rate_limit": "100/10s,50/day", "daily_used": 50})
    blocked = sandbox.session.get(f"{sandbox.url}{DETAILS}")
    assert blocked.status_code == 429
    assert blocked.json()["policyName"] == "DAILY"
    assert blocked.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_daily_limit_resets_when_the_portal_clock_passes_midnight(sandbox):
    sandbox.admin("PUT", "settings", {"rate_limit": "100/10s,50/day", "daily_used": 50})
    assert sandbox.session.get(f"{sandbox.url}{DETAILS}").status_code == 429
    sandbox.admin("POST", "clock", {"advance_seconds": 86_400})
    answer = sandbox.session.get(f"{sandbox.url}{DETAILS}")
    assert answer.status_code == 200
    assert answer.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "49"
    assert sandbox.admin("GET", "settings")["daily_used"] == 1


def test_other_tokens_have_their_own_ten_second_window(tmp_path):
    args = ["--token", "pat-a", "--token", "pat-b", "--rate-limit", "2/10s"]
    with SandboxProcess(tmp_path / "p.db", args=args, token="pat-a") as sb:
        a = [sb.session.get(f"{sb.url}{DETAILS}").status_code for _ in range(3)]
        b = requests.get(f"{sb.url}{DETAILS}", headers={"Authorization": "Bearer pat-b"}, timeout=5)
    assert a == [200, 200, 429]
    assert b.status_code == 200


def test_token_without_the_scope_gets_403_naming_it(tmp_path):
    args = ["--token", "pat-read=crm.lists.read"]
    with SandboxProcess(tmp_path / "p.db", args=args, token="pat-read") as sb:
        response = sb.session.post(
            f"{sb.url}/crm/v3/lists", json={"name": "x", "objectTypeId": "0-1", "processingType": "MANUAL"}
        )
    assert response.status_code == 403
    body = response.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.lists.write"]


def test_malformed_json_gets_validation_error_not_500(sandbox):
    response = sandbox.session.post(
        f"{sandbox.url}/crm/v3/lists", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_plain_and_trailing_slash_paths_are_both_served(sandbox):
    assert sandbox.session.get(f"{sandbox.url}{DETAILS}").ok
    assert sandbox.session.get(f"{sandbox.url}{DETAILS}/").ok


def test_error_fault_fires_the_given_number_of_times_then_stops(sandbox):
    sandbox.admin("POST", "faults", {"endpoint": "account.*", "kind": "error", "status": 502, "count": 2})
    statuses = [sandbox.session.get(f"{sandbox.url}{DETAILS}").status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    calls = sandbox.admin("GET", "calls")["account.details"]
    assert calls == {"calls": 3, "errors": 2, "rateLimited": 0}


def test_probabilistic_faults_repeat_exactly_with_the_same_seed(sandbox):
    def run() -> list[int]:
        sandbox.admin("DELETE", "faults")
        sandbox.admin("POST", "faults", {"endpoint": "*", "kind": "error", "probability": 0.3, "seed": 42})
        return [sandbox.session.get(f"{sandbox.url}{DETAILS}").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(503) < 30


def test_injected_429_burst_looks_like_hubspots(sandbox):
    sandbox.admin("POST", "faults", {"endpoint": "account.details", "kind": "rate_limit", "count": 1})
    response = sandbox.session.get(f"{sandbox.url}{DETAILS}")
    assert response.status_code == 429
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_latency_fault_delays_the_answer(sandbox):
    sandbox.admin("POST", "faults", {"endpoint": "account.details", "kind": "latency", "seconds": 1.0, "count": 1})
    with pytest.raises(requests.Timeout):
        sandbox.session.get(f"{sandbox.url}{DETAILS}", timeout=0.3)
    assert sandbox.session.get(f"{sandbox.url}{DETAILS}", timeout=5).ok


def test_dropped_connection_after_the_work_was_done_still_applies_it(sandbox):
    sandbox.admin("POST", "faults", {"endpoint": "lists.create", "kind": "drop_after", "count": 1})
    body = {"name": "dropped but created", "objectTypeId": "0-1", "processingType": "MANUAL"}
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        sandbox.session.post(f"{sandbox.url}/crm/v3/lists", json=body)
    found = sandbox.session.get(f"{sandbox.url}/crm/v3/lists/object-type-id/0-1/name/dropped but created")
    assert found.status_code == 200


def test_dropped_connection_before_the_work_applies_nothing(sandbox):
    sandbox.admin("POST", "faults", {"endpoint": "lists.create", "kind": "drop_before", "count": 1})
    body = {"name": "never created", "objectTypeId": "0-1", "processingType": "MANUAL"}
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        sandbox.session.post(f"{sandbox.url}/crm/v3/lists", json=body)
    missing = sandbox.session.get(f"{sandbox.url}/crm/v3/lists/object-type-id/0-1/name/never created")
    assert missing.status_code == 404


def test_state_and_daily_usage_survive_a_restart(tmp_path):
    db = tmp_path / "portal.db"
    with SandboxProcess(db, args=["--seed-contacts", "50"]) as sb:
        created = sb.session.post(
            f"{sb.url}/crm/v3/lists", json={"name": "kept", "objectTypeId": "0-1", "processingType": "MANUAL"}
        ).json()
        contacts = sb.admin("GET", "contacts")["results"]
        used = sb.admin("GET", "settings")["daily_used"]
    with SandboxProcess(db, args=["--seed-contacts", "50"]) as sb:
        again = sb.session.get(f"{sb.url}/crm/v3/lists/{created['list']['listId']}")
        assert again.json()["list"]["name"] == "kept"
        assert sb.admin("GET", "contacts")["results"] == contacts
        assert sb.admin("GET", "settings")["daily_used"] == used + 1


def test_clock_moves_forward_on_request(sandbox):
    before = time.time()
    moved = sandbox.admin("POST", "clock", {"advance_seconds": 3600})
    assert moved["offsetSeconds"] == 3600
    assert moved["now"] > time.strftime("%Y-%m-%dT%H", time.gmtime(before + 3500))


def test_binds_to_loopback_by_default():
    assert SandboxConfig().host == "127.0.0.1"
    assert config_from_args(build_parser().parse_args(["serve"])).host == "127.0.0.1"


def test_token_and_rate_limit_options_parse():
    assert TokenGrant.parse("pat-x=crm.lists.read, forms").scopes == frozenset({"crm.lists.read", "forms"})
    assert RateLimit.parse("190/10s,1000000/day") == RateLimit(190, 10_000, 1_000_000)
    assert RateLimit.parse("100 per 1s") == RateLimit(100, 1_000, 1_000_000)


@pytest.mark.parametrize("bad", [["--rate-limit", "lots"], ["--token", "=scope"]])
def test_bad_options_exit_with_a_message(bad, capsys):
    assert main(["serve", *bad]) == 2
    assert "error:" in capsys.readouterr().err


def test_unknown_tier_is_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--tier", "free"])
    with pytest.raises(ValueError, match="tier"):
        SandboxConfig(tier="free")


def test_latency_holds_hubspot_answers_only_and_they_overlap(tmp_path):
    """``--latency-ms`` stands in for a real portal's answer time; answers in flight together wait together."""
    from concurrent.futures import ThreadPoolExecutor

    with SandboxProcess(tmp_path / "p.db", args=["--seed-contacts", "5", "--latency-ms", "400"]) as sb:

        def timed(url: str) -> float:
            started = time.perf_counter()
            sb.session.get(url, timeout=30).raise_for_status()
            return time.perf_counter() - started

        assert timed(f"{sb.url}/account-info/v3/details") >= 0.4
        assert timed(f"{sb.url}/_sandbox/settings") < 0.4
        with ThreadPoolExecutor(4) as pool:
            started = time.perf_counter()
            list(pool.map(timed, [f"{sb.url}/account-info/v3/details"] * 4))
            together = time.perf_counter() - started
        assert together < 4 * 0.4  # not one after another
    with pytest.raises(ValueError, match="cannot be negative"):
        SandboxConfig(response_latency_seconds=-1)
