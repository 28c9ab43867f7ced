"""HubSpot's per-app rolling 10-second limit and per-account daily limit, with its headers."""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import RateLimit


@dataclass
class Decision:
    allowed: bool
    policy: str | None
    headers: dict[str, str]


class RateLimiter:
    """Counts requests per token in a rolling window and per account per day.

    The daily count is kept in memory and mirrored to the store by the caller; the rolling window
    is memory-only, as a restart of HubSpot's edge would not remember it either. The day (UTC)
    follows the portal clock, so moving the clock past midnight through the admin API starts a new
    daily budget, as the next day would.

    :param clock: the portal clock, in milliseconds since the epoch.
    """

    def __init__(self, limits: RateLimit, *, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._clock = clock or (lambda: time.time() * 1000)
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.daily_used = 0
        self.day = self.today()
        self.forced: collections.deque[str] = collections.deque()

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock() / 1000, tz=dt.timezone.utc)

    def today(self) -> str:
        """The portal's current date, e.g. ``2026-11-28``."""
        return self._now().date().isoformat()

    def set_limits(self, limits: RateLimit) -> None:
        self.limits = limits

    def reset(self) -> None:
        self._windows.clear()
        self.daily_used = 0
        self.day = self.today()

    def check(self, token: str, *, exempt_interval: bool = False) -> Decision:
        """Count one request; say whether it may proceed, and with which headers."""
        now = time.monotonic()
        if self.today() != self.day:
            self.day, self.daily_used = self.today(), 0
        window = self._windows[token]
        horizon = now - self.limits.interval_ms / 1000
        while window and window[0] <= horizon:
            window.popleft()
        policy = None
        if self.daily_used >= self.limits.daily:
            policy = "DAILY"
        elif not exempt_interval and len(window) >= self.limits.per_interval:
            policy = "TEN_SECONDLY_ROLLING"
        if policy is None:
            window.append(now)
            self.daily_used += 1
        return Decision(policy is None, policy, self.headers(token))

    def headers(self, token: str) -> dict[str, str]:
        used = len(self._windows[token])
        return {
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - self.daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.limits.per_interval),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limits.per_interval - used)),
        }

    def daily_reset_at(self) -> dt.datetime:
        """The next midnight of the portal clock, when the daily budget starts again."""
        tomorrow = self._now().date() + dt.timedelta(days=1)
        return dt.datetime.combine(tomorrow, dt.time(), tzinfo=dt.timezone.utc)
