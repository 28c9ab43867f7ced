"""Every HubSpot HTTP request of the project passes through here: limiter, retries, error mapping.

The SDK's generated clients and the raw helper share one urllib3 pool wrapped by :class:`GuardedRest`,
so there is one HTTP client, one rate limiter and one way errors surface. Retries follow what is safe:
a 429 was never applied, so it is always retried; a 5xx, a timeout or a dropped connection may have
been applied, so only idempotent requests are retried here — creates and sends are retried by their
callers behind a look-up, never blindly. The API version is applied here too: :class:`GuardedRest` routes the
path of every URL (the SDK only builds legacy ones) to the connection's version just before sending.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tenacity
import urllib3

from .errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotForbiddenError,
    HubSpotNotFound,
    HubSpotRateLimited,
    HubSpotScopeError,
    HubSpotTransientError,
    HubSpotValidationError,
)
from .ratelimit import Limiter

log = logging.getLogger(__name__)

#: POSTs that read, or that set a state and report NO_STATUS_CHANGE on a repeat: safe to resend.
_IDEMPOTENT_POST = re.compile(
    r"(/search|/batch/read|/statuses/batch/write|/statuses/batch/unsubscribe-all(/read)?"
    r"|/statuses/[^/]+(/unsubscribe-all)?|/(v3|\d{4}-\d{2})/(un)?subscribe)/?$"
)
_NOT_SENT = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.NameResolutionError,
)


def is_idempotent(method: str, url: str) -> bool:
    path = urllib3.util.parse_url(url).path or ""
    return method.upper() in ("GET", "HEAD", "PUT", "DELETE", "PATCH") or bool(_IDEMPOTENT_POST.search(path))


def _body(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:500]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:500]}


def _missing_scopes(body: Mapping[str, Any]) -> list[str]:
    scopes: list[str] = []
    for detail in body.get("errors") or []:
        context = detail.get("context") or {}
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
            scopes.extend(context.get(key) or [])
    return sorted(set(scopes))


def error_for(status: int, raw_body: Any, method: str, url: str) -> HubSpotError:
    """HubSpot's error response as the exception that says what to do about it."""
    body = _body(raw_body)
    where = f"{method.upper()} {urllib3.util.parse_url(url).path}"
    message = body.get("message") or f"HTTP {status}"
    kw: dict[str, Any] = {"status": status, "correlation_id": body.get("correlationId"), "body": body}
    suffix = f" (correlationId {body['correlationId']})" if body.get("correlationId") else ""
    if status == 401:
        return HubSpotAuthError(
            f"HubSpot rejected the token ({where}): {message} Check the Service Key (or legacy "
            f"private app token) in the connection's password.{suffix}",
            **kw,
        )
    if status == 403 and body.get("category") == "MISSING_SCOPES":
        scopes = _missing_scopes(body)
        return HubSpotScopeError(
            f"The token lacks the scopes {', '.join(scopes) or '(unnamed)'} needed for "
            f"{where}. Grant them to the Service Key (Development > Keys > Service keys) or, "
            f"for a legacy private app token, in the private app's settings.{suffix}",
            missing_scopes=scopes,
            **kw,
        )
    if status == 403:
        return HubSpotForbiddenError(f"HubSpot refused {where}: {message}{suffix}", **kw)
    if status == 404:
        return HubSpotNotFound(f"Not found in HubSpot ({where}): {message}{suffix}", **kw)
    if status == 429:
        if body.get("policyName") == "DAILY":
            return HubSpotDailyLimitError(
                f"HubSpot's daily API limit is spent ({where}). It resets at midnight in the portal's time zone; "
                f"rerun the task after that.{suffix}",
                **kw,
            )
        return HubSpotRateLimited(f"HubSpot's rolling rate limit was hit ({where}).{suffix}", **kw)
    if status >= 500 or status == 0:
        return HubSpotTransientError(f"HubSpot failed {where} with {status}: {message}{suffix}", **kw)
    if status == 409:
        return HubSpotConflict(f"HubSpot reports a conflict for {where}: {message}{suffix}", **kw)
    return HubSpotValidationError(
        f"HubSpot refused {where} ({status} {body.get('category', '')}): {message}{suffix}", **kw
    )


def batch_errors(answer: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The per-input errors of a batch answer, however HubSpot delivered them.

    v3 and v4 batch calls answer 207 Multi-Status when some inputs failed; date-based versions answer 200
    with the same ``errors`` (and ``numErrors``) in the body. Both are successes to the transport (any 2xx
    is), so every batch caller reads the body, never the status, to find what failed.
    """
    errors = (answer or {}).get("errors") or []
    return [error for error in errors if isinstance(error, dict)]


def _headers(response: Any) -> dict[str, str]:
    """Headers of a generated client's RESTResponse or of a raw urllib3 response."""
    raw = getattr(response, "urllib3_response", response)
    return dict(getattr(raw, "headers", None) or {})


class Transport:
    """Runs one HTTP request under the limiter with HubSpot's retry rules.

    The limiter may be this process's or shared by every worker (:mod:`reengagement.shared_limit`); a spent
    daily budget raises :class:`~reengagement.errors.HubSpotDailyLimitError` from it before anything is sent.
    """

    def __init__(
        self,
        limiter: Limiter,
        *,
        max_attempts: int = 6,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(multiplier=0.5, max=max_wait, jitter=0.5)
        self.retries = 0
        self.rate_limited = 0
        self._counting = threading.Lock()  # requests of one task may be in flight on several threads

    def send(self, method: str, url: str, call: Callable[[], Any]) -> Any:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda err: self._retryable(err, method, url)),
            before_sleep=self._before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._attempt, method, url, call)

    def _attempt(self, method: str, url: str, call: Callable[[], Any]) -> Any:
        self.limiter.acquire()
        try:
            response = call()
        except urllib3.exceptions.HTTPError as err:
            sent = not isinstance(err, _NOT_SENT)
            parsed = urllib3.util.parse_url(url)
            what = "No complete answer from" if sent else "Could not connect to"
            error = HubSpotTransientError(
                f"{what} {parsed.scheme}://{parsed.netloc} for {method.upper()} {parsed.path} "
                f"({type(err).__name__}); check the connection's host and that HubSpot is reachable."
            )
            error.not_sent = not sent  # type: ignore[attr-defined]
            raise error from err
        except HubSpotError:
            raise
        except Exception as err:
            status = getattr(err, "status", None)
            if not isinstance(status, int):
                raise
            self.limiter.observe(dict(getattr(err, "headers", None) or {}))
            raise error_for(status, getattr(err, "body", None), method, url) from err
        self.limiter.observe(_headers(response))
        return response

    def _retryable(self, err: BaseException, method: str, url: str) -> bool:
        if isinstance(err, HubSpotRateLimited):
            with self._counting:
                self.rate_limited += 1
            # Never applied; hold every request to the portal (every worker's, when shared) so the window can roll.
            self.limiter.pause(self.limiter.interval / 2)
            return True
        if isinstance(err, HubSpotTransientError):
            return bool(getattr(err, "not_sent", False)) or is_idempotent(method, url)
        return False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, HubSpotRateLimited):
            return 0.0  # the limiter's pause does the waiting
        return self._backoff(state)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        with self._counting:
            self.retries += 1
        err = state.outcome.exception() if state.outcome else None
        log.warning(
            "Retrying HubSpot request (attempt %d of %d) after: %s", state.attempt_number + 1, self.max_attempts, err
        )


class GuardedRest:
    """Stands in for the SDK's ``RESTClientObject``: same methods, every call through :class:`Transport`.

    Every request carries ``user_agent`` (the SDK's generated clients would send their own), and its URL's
    path goes through ``route`` first (e.g. a legacy path to its date-based equivalent): SDK calls and raw
    ones alike, so no request can miss the connection's API version.
    """

    def __init__(
        self,
        inner: Any,
        transport: Transport,
        timeout: tuple[float, float],
        *,
        user_agent: str | None = None,
        route: Callable[[str], str] | None = None,
    ) -> None:
        self.inner = inner
        self.transport = transport
        self.timeout = timeout
        self.user_agent = user_agent
        self.route = route

    def with_transport(self, transport: Transport) -> GuardedRest:
        """The same client, pool, User-Agent and route under other retry rules (e.g. a single attempt)."""
        return GuardedRest(self.inner, transport, self.timeout, user_agent=self.user_agent, route=self.route)

    def routed(self, url: str) -> str:
        """``url`` with its path as ``route`` names it (query and host unchanged)."""
        if self.route is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=self.route(parts.path)))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = self.routed(url)
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = self.timeout
        if self.user_agent:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "User-Agent": self.user_agent}

        def call() -> Any:
            response = self.inner.request(method, url, *args, **kwargs)
            if kwargs.get("_preload_content") is False:
                _ = response.data  # read the body now, so a connection cut mid-body meets the retry rules
            return response

        return self.transport.send(method, url, call)

    def GET(self, url: str, **kwargs: Any) -> Any:  # noqa: N802 - the SDK's method names
        return self.request("GET", url, **kwargs)

    def HEAD(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("HEAD", url, **kwargs)

    def OPTIONS(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("OPTIONS", url, **kwargs)

    def POST(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("POST", url, **kwargs)

    def PUT(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("PUT", url, **kwargs)

    def PATCH(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("PATCH", url, **kwargs)

    def DELETE(self, url: str, **kwargs: Any) -> Any:  # noqa: N802
        return self.request("DELETE", url, **kwargs)
