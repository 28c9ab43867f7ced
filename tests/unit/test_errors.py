"""HubSpot's failures as exceptions: permanent ones fail the task without retries, transient ones get them."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from reengagement import errors
from reengagement.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitError,
    HubSpotDownloadExpired,
    HubSpotError,
    HubSpotExportLimitError,
    HubSpotForbiddenError,
    HubSpotNotFound,
    HubSpotPermanentError,
    HubSpotRateLimited,
    HubSpotScopeError,
    HubSpotTransientError,
    HubSpotValidationError,
    OptOutRefused,
)

#: Refused again if repeated unchanged: Airflow must not spend retries on them.
PERMANENT = [
    HubSpotAuthError,
    HubSpotForbiddenError,
    HubSpotNotFound,
    HubSpotValidationError,
    HubSpotConflict,
    OptOutRefused,
    HubSpotExportLimitError,
]
#: May pass on a later try: the task's retries apply.
TRANSIENT = [HubSpotTransientError, HubSpotRateLimited, HubSpotDownloadExpired]


def make(cls: type[HubSpotError], message: str = "it failed", **kw: object) -> HubSpotError:
    if cls is HubSpotScopeError:
        return cls(message, missing_scopes=["crm.lists.write"], **kw)  # type: ignore[call-arg]
    return cls(message, **kw)  # type: ignore[arg-type]


def every_error_class() -> list[type[HubSpotError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, HubSpotError) and value.__module__ == errors.__name__
    ]


def test_every_error_is_classified_as_permanent_or_transient():
    classified = {*PERMANENT, *TRANSIENT, HubSpotScopeError, HubSpotDailyLimitError, HubSpotPermanentError}
    assert set(every_error_class()) - {HubSpotError} == classified


@pytest.mark.parametrize("cls", [*PERMANENT, HubSpotScopeError, HubSpotPermanentError])
def test_permanent_errors_fail_the_task_without_retries(cls):
    error = make(cls)
    assert isinstance(error, HubSpotPermanentError)
    assert isinstance(error, AirflowFailException)
    assert isinstance(error, HubSpotError) and isinstance(error, AirflowException)


@pytest.mark.parametrize("cls", TRANSIENT)
def test_transient_errors_get_the_tasks_retries(cls):
    error = make(cls)
    assert isinstance(error, AirflowException) and isinstance(error, HubSpotError)
    assert not isinstance(error, AirflowFailException)
    assert not isinstance(error, HubSpotPermanentError)


def test_a_spent_daily_limit_fails_the_task_but_is_not_a_refused_request():
    """Retries minutes apart cannot outlast a budget that returns at midnight; the same call works after it."""
    error = HubSpotDailyLimitError("daily limit spent", status=429)
    assert isinstance(error, AirflowFailException) and isinstance(error, HubSpotError)
    assert not isinstance(error, HubSpotPermanentError)


def test_a_conflict_is_a_validation_error():
    assert issubclass(HubSpotConflict, HubSpotValidationError)
    with pytest.raises(HubSpotValidationError):
        raise HubSpotConflict("the list name is taken", status=409)


@pytest.mark.parametrize("cls", every_error_class())
def test_every_error_carries_status_correlation_id_and_body(cls):
    body = {"category": "VALIDATION_ERROR", "correlationId": "abc-123"}
    error = make(cls, "HubSpot refused it", status=400, correlation_id="abc-123", body=body)
    assert str(error) == "HubSpot refused it"
    assert (error.status, error.correlation_id, error.body) == (400, "abc-123", body)


@pytest.mark.parametrize("cls", every_error_class())
def test_the_facts_are_optional_and_bodies_are_not_shared(cls):
    first, second = make(cls), make(cls)
    assert (first.status, first.correlation_id, first.body) == (None, None, {})
    first.body["seen"] = True
    assert second.body == {}


def test_a_scope_error_names_the_missing_scopes():
    error = HubSpotScopeError(
        "The token lacks the scopes crm.lists.read, crm.lists.write",
        missing_scopes=["crm.lists.read", "crm.lists.write"],
        status=403,
        correlation_id="c-1",
    )
    assert error.missing_scopes == ["crm.lists.read", "crm.lists.write"]
    assert (error.status, error.correlation_id) == (403, "c-1")
    assert isinstance(error, AirflowFailException)
    with pytest.raises(TypeError):
        HubSpotScopeError("no scopes named")  # type: ignore[call-arg]
