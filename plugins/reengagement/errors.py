"""What can go wrong when talking to HubSpot, as exceptions that say what to do about it.

Permanent problems (bad token, missing scopes, bad input) subclass ``AirflowFailException`` so Airflow
does not retry a task that cannot succeed; transient ones are plain ``AirflowException`` and get the
task's retries.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class HubSpotError(AirflowException):
    """Base class: every HubSpot failure carries the HTTP status and HubSpot's correlation id."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        correlation_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.correlation_id = correlation_id
        self.body = body or {}


class HubSpotPermanentError(HubSpotError, AirflowFailException):
    """A request HubSpot will refuse again if repeated unchanged."""


class HubSpotAuthError(HubSpotPermanentError):
    """401: the token is wrong, expired or revoked."""


class HubSpotScopeError(HubSpotPermanentError):
    """403 MISSING_SCOPES: the Service Key (or private app) lacks scopes; ``missing_scopes`` names them."""

    def __init__(self, message: str, *, missing_scopes: list[str], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.missing_scopes = missing_scopes


class HubSpotForbiddenError(HubSpotPermanentError):
    """403 for another reason, e.g. the portal's tier lacks the feature."""


class HubSpotNotFound(HubSpotPermanentError):
    """404: the object does not exist (or was deleted)."""


class HubSpotValidationError(HubSpotPermanentError):
    """400/409/422: HubSpot refused the input; its message and correlation id are kept."""


class HubSpotConflict(HubSpotValidationError):
    """409: the object exists already (e.g. a list name is taken)."""


class HubSpotDailyLimitError(HubSpotError, AirflowFailException):
    """429 DAILY: the portal's daily API budget is spent; the task can be rerun after the reset.

    Fails the task without Airflow's retries: they come minutes apart, the budget returns only at
    the portal's midnight, and each retry would spend the task's retries for nothing.
    """


class HubSpotTransientError(HubSpotError):
    """5xx, a timeout or a dropped connection that retries did not overcome.

    For a request that changes HubSpot (a create, a publish), the change may or may not have been
    applied: callers look the object up before trying again.
    """


class HubSpotRateLimited(HubSpotError):
    """429 TEN_SECONDLY_ROLLING; retried internally, surfaces only when retries are exhausted."""


class OptOutRefused(HubSpotPermanentError):
    """The opt-out stopped before its first change (a bad file, a bad argument): nobody was opted out.

    Permanent: the same file and arguments fail the same way on every retry.
    """


class HubSpotExportLimitError(HubSpotPermanentError):
    """HubSpot refused to start an export: the portal has used its exports of the last 24 hours.

    Permanent: HubSpot allows 30 exports in a rolling 24 hours, so Airflow's retries minutes apart would
    only be refused again; the task can be rerun once the oldest of those exports is a day old.
    """


class HubSpotDownloadExpired(HubSpotError):
    """A download URL HubSpot handed out was refused (403/410): it expired. A new status call gives a new one."""
