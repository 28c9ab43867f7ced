"""A client-side limiter that keeps a process under HubSpot's rolling 10-second limit.

HubSpot counts requests per app in a *rolling* window, so a token bucket (which allows a full burst
plus its refill inside one window) can trip it. This keeps a log of send times instead and never
lets more than ``max - margin`` requests into any window. The limit is read from HubSpot's
``X-HubSpot-RateLimit-*`` headers when they arrive, and the ``Remaining`` header slows the process
down when other processes share the app's budget.

This is the limiter of one process; :mod:`reengagement.shared_limit` shares the same interface across every
worker through Redis, and falls back to this one where no Redis is configured.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX = 100  # the lowest published per-app limit (Starter), until headers say otherwise
DEFAULT_INTERVAL = 10.0


class Limiter(Protocol):
    """What the transport needs of a limiter, in one process or shared by every worker."""

    limit: int
    interval: float
    waited: float

    @property
    def allowance(self) -> int: ...

    def acquire(self) -> float:
        """Block until one more request fits, count it, and return when it was admitted."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the portal's limits from a response's headers."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (after a 429)."""
        ...


class RollingWindowLimiter:
    """At most ``limit - margin`` acquisitions in any ``interval`` seconds, thread-safe."""

    def __init__(
        self,
        limit: int = DEFAULT_MAX,
        interval: float = DEFAULT_INTERVAL,
        *,
        margin: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.interval = interval
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self.waited = 0.0

    @property
    def allowance(self) -> int:
        return max(1, self.limit - self.margin)

    def acquire(self) -> float:
        """Block until one more request fits in the window, then count it; when it was admitted."""
        while True:
            with self._lock:
                now = self._clock()
                horizon = now - self.interval
                while self._sent and self._sent[0] <= horizon:
                    self._sent.popleft()
                wait = max(self._paused_until - now, 0.0)
                if not wait and len(self._sent) < self.allowance:
                    self._sent.append(now)
                    return now
                if not wait:
                    wait = self._sent[0] + self.interval - now + 0.001
            self.waited += wait
            log.debug(
                "Waiting %.2fs for HubSpot's rate limit (%d requests in the last %.0fs)",
                wait,
                len(self._sent),
                self.interval,
            )
            self._sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the portal's limit from response headers; back off when the window is nearly spent."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            limit = int(lowered["x-hubspot-ratelimit-max"])
            interval = int(lowered["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
            remaining = int(lowered["x-hubspot-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        with self._lock:
            if limit > 0 and interval > 0:
                self.limit, self.interval = limit, interval
            if remaining < self.margin:
                # Someone else is spending this app's budget: leave room for the window to roll.
                per_request = self.interval / max(self.limit, 1)
                self._paused_until = max(self._paused_until, self._clock() + per_request * (self.margin - remaining))

    def pause(self, seconds: float) -> None:
        """Hold every request of this process for ``seconds`` (after a 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
