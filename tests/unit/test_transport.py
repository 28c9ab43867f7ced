"""HubSpot's retry rules and error mapping, with fake responses (no network)."""

from __future__ import annotations

import json

import pytest
import urllib3
from reengagement import errors
from reengagement.ratelimit import RollingWindowLimiter
from reengagement.transport import Transport, error_for, is_idempotent

URL = "https://api.hubapi.com/crm/v3/lists/"


class FakeApiException(Exception):
    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = json.dumps(body).encode()
        self.headers = headers or {}


class Ok:
    status = 200
    headers = {
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Remaining": "180",
    }


def transport(attempts: int = 4) -> Transport:
    return Transport(RollingWindowLimiter(sleep=lambda s: None), max_attempts=attempts, sleep=lambda s: None)


def flaky(*failures: BaseException):
    calls = {"n": 0}

    def call():
        calls["n"] += 1
        if calls["n"] <= len(failures):
            raise failures[calls["n"] - 1]
        return Ok()

    return call, calls


def test_429_ten_secondly_is_retried_even_for_a_create():
    call, calls = flaky(FakeApiException(429, {"policyName": "TEN_SECONDLY_ROLLING", "message": "x"}))
    t = transport()
    assert isinstance(t.send("POST", URL, call), Ok)
    assert calls["n"] == 2 and t.rate_limited == 1


def test_429_daily_fails_at_once_with_a_clear_message():
    call, calls = flaky(FakeApiException(429, {"policyName": "DAILY", "message": "daily"}))
    with pytest.raises(errors.HubSpotDailyLimitError, match="daily API limit"):
        transport().send("GET", URL, call)
    assert calls["n"] == 1


def test_5xx_is_retried_for_reads_until_it_works():
    call, calls = flaky(FakeApiException(502, {}), FakeApiException(503, {}))
    assert isinstance(transport().send("GET", URL + "1", call), Ok)
    assert calls["n"] == 3


def test_5xx_on_a_create_is_not_retried_blindly():
    call, calls = flaky(FakeApiException(503, {}))
    with pytest.raises(errors.HubSpotTransientError):
        transport().send("POST", URL, call)
    assert calls["n"] == 1


def test_dropped_connection_on_publish_is_not_retried():
    call, calls = flaky(urllib3.exceptions.ProtocolError("Connection broken"))
    with pytest.raises(errors.HubSpotTransientError, match="No complete answer"):
        transport().send("POST", "https://api.hubapi.com/marketing/v3/emails/1/publish", call)
    assert calls["n"] == 1


def test_connection_refused_is_retried_for_any_method_because_nothing_was_sent():
    refused = urllib3.exceptions.NewConnectionError(None, "refused")
    call, calls = flaky(refused)
    assert isinstance(transport().send("POST", URL, call), Ok)
    assert calls["n"] == 2


def test_4xx_is_never_retried():
    call, calls = flaky(
        FakeApiException(400, {"category": "VALIDATION_ERROR", "message": "bad filter", "correlationId": "c-1"})
    )
    with pytest.raises(errors.HubSpotValidationError, match=r"bad filter.*c-1"):
        transport().send("GET", URL, call)
    assert calls["n"] == 1


def test_retries_stop_after_max_attempts():
    call, calls = flaky(*[FakeApiException(500, {})] * 10)
    with pytest.raises(errors.HubSpotTransientError):
        transport(attempts=3).send("GET", URL, call)
    assert calls["n"] == 3


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"category": "INVALID_AUTHENTICATION", "message": "bad"}, errors.HubSpotAuthError),
        (
            403,
            {
                "category": "MISSING_SCOPES",
                "message": "m",
                "errors": [{"message": "x", "context": {"requiredGranularScopes": ["crm.lists.write"]}}],
            },
            errors.HubSpotScopeError,
        ),
        (403, {"category": "FORBIDDEN", "message": "needs Enterprise"}, errors.HubSpotForbiddenError),
        (404, {"category": "OBJECT_NOT_FOUND", "message": "gone"}, errors.HubSpotNotFound),
        (409, {"category": "CONFLICT", "message": "taken"}, errors.HubSpotConflict),
        (400, {"category": "VALIDATION_ERROR", "message": "no"}, errors.HubSpotValidationError),
    ],
)
def test_error_mapping(status, body, expected):
    err = error_for(status, json.dumps(body), "POST", URL)
    assert type(err) is expected
    assert err.status == status


def test_scope_error_names_the_missing_scopes():
    body = {
        "category": "MISSING_SCOPES",
        "message": "m",
        "errors": [{"message": "x", "context": {"requiredGranularScopes": ["crm.lists.write"]}}],
    }
    err = error_for(403, json.dumps(body), "POST", URL)
    assert err.missing_scopes == ["crm.lists.write"]
    assert "crm.lists.write" in str(err)


def test_permanent_errors_tell_airflow_not_to_retry():
    from airflow.sdk.exceptions import AirflowFailException

    assert isinstance(error_for(401, "{}", "GET", URL), AirflowFailException)
    assert not isinstance(error_for(503, "{}", "GET", URL), AirflowFailException)


def test_a_spent_daily_limit_fails_the_task_at_once_and_says_when_to_rerun():
    from airflow.sdk.exceptions import AirflowFailException

    err = error_for(
        429, json.dumps({"policyName": "DAILY", "message": "You have reached your daily limit."}), "POST", URL
    )
    assert isinstance(err, AirflowFailException)  # Airflow's retries minutes later cannot succeed
    assert "daily API limit" in str(err) and "midnight" in str(err)
    assert not isinstance(
        error_for(429, json.dumps({"policyName": "TEN_SECONDLY_ROLLING"}), "GET", URL), AirflowFailException
    )


@pytest.mark.parametrize(
    ("method", "path", "idempotent"),
    [
        ("GET", "/crm/v3/lists/1", True),
        ("PUT", "/crm/v3/lists/1/memberships/add", True),
        ("POST", "/crm/v3/lists/", False),
        ("POST", "/crm/v3/lists/search", True),
        ("POST", "/marketing/v3/emails/1/publish", False),
        ("POST", "/communication-preferences/v4/statuses/batch/unsubscribe-all", True),
        ("POST", "/communication-preferences/v4/statuses/batch/write", True),
        ("POST", "/crm/v3/objects/contacts/batch/read", True),
        ("POST", "/crm/v3/exports/export/async", False),
    ],
)
def test_idempotency_classification(method, path, idempotent):
    assert is_idempotent(method, "https://api.hubapi.com" + path) is idempotent


def test_a_daily_budget_spent_across_workers_fails_before_anything_is_sent():
    class Spent(RollingWindowLimiter):
        def acquire(self) -> float:
            raise errors.HubSpotDailyLimitError("HubSpot's daily API limit for this portal is spent")

    call, calls = flaky()
    with pytest.raises(errors.HubSpotDailyLimitError):
        Transport(Spent(), sleep=lambda s: None).send("GET", URL, call)
    assert calls["n"] == 0
