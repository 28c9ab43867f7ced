"""The state of one sandbox portal: its store, its clock and its settings, shared by every route."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .db import Database
from .faults import FaultInjector
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from fastapi import Request

    from .config import SandboxConfig, TokenGrant


def iso(ms: int | float | None) -> str | None:
    """HubSpot's timestamp format: ISO 8601, UTC, milliseconds, ``Z``."""
    if ms is None:
        return None
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def parse_iso(text: str) -> int:
    """Milliseconds since the epoch from an ISO 8601 timestamp (``Z`` or an offset)."""
    stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return int(stamp.timestamp() * 1000)


class Portal:
    """One HubSpot account as the sandbox sees it."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.initial_config = config
        self.db = Database(config.db_path)
        self._clock_offset_ms = int(self.db.get_meta("clock_offset_ms", 0))
        self.limiter = RateLimiter(config.limits, clock=self.now_ms)
        self.faults = FaultInjector()
        self.files_dir = Path(config.db_path + ".files") if config.db_path != ":memory:" else None
        self.base_url = f"http://{config.host}:{config.port}"
        self._data_version = int(self.db.get_meta("data_version", 0))
        self._grants = {grant.token: grant for grant in config.tokens}
        self.limiter.daily_used = int(
            self.db.scalar("SELECT calls FROM api_usage WHERE day = ?", (self.limiter.day,)) or 0
        )
        #: Callables run before every HubSpot request (e.g. landing email events whose time came).
        self.background_jobs: list[Callable[[Portal], None]] = []

    # -- time ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """The portal's clock: wall time plus an offset the admin API can move forward."""
        return int(time.time() * 1000) + self._clock_offset_ms

    def advance_clock(self, ms: int) -> int:
        self._clock_offset_ms += int(ms)
        self.db.set_meta("clock_offset_ms", self._clock_offset_ms)
        return self._clock_offset_ms

    # -- change tracking for DYNAMIC lists -----------------------------------------------------------
    @property
    def data_version(self) -> int:
        return self._data_version

    def touch(self) -> None:
        """Record that contact data or memberships changed, so DYNAMIC lists re-evaluate when read."""
        self._data_version += 1
        self.db.set_meta("data_version", self._data_version)

    # -- ids ---------------------------------------------------------------------------------------
    def next_id(self, kind: str, start: int) -> int:
        """Monotonic ids per kind that are never reused, even after a delete."""
        value = int(self.db.get_meta(f"next_id:{kind}", start))
        self.db.set_meta(f"next_id:{kind}", value + 1)
        return value

    # -- requests --------------------------------------------------------------------------------
    def grant_for(self, authorization: str) -> TokenGrant | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self._grants.get(token.strip())

    def count_call(self, endpoint: str) -> None:
        self.db.execute(
            "INSERT INTO call_counts (endpoint, calls) VALUES (?, 1) "
            "ON CONFLICT (endpoint) DO UPDATE SET calls = calls + 1",
            (endpoint,),
        )

    def count_error(self, endpoint: str) -> None:
        self.db.execute("UPDATE call_counts SET errors = errors + 1 WHERE endpoint = ?", (endpoint,))

    def count_rate_limited(self, endpoint: str) -> None:
        self.db.execute("UPDATE call_counts SET rate_limited = rate_limited + 1 WHERE endpoint = ?", (endpoint,))

    def record_usage(self) -> None:
        """Mirror the day's request count to the store: the daily limit survives a restart."""
        self.db.execute(
            "INSERT INTO api_usage (day, calls) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET calls = excluded.calls",
            (self.limiter.day, self.limiter.daily_used),
        )

    def before_request(self) -> None:
        """Work HubSpot does in the background, done lazily before each request is answered."""
        for hook in self.background_jobs:
            hook(self)

    def reset(self) -> None:
        """Empty the portal and undo setting changes made through the admin API."""
        self.db.reset()
        self.config = self.initial_config
        self._clock_offset_ms = 0
        self.limiter.set_limits(self.config.limits)
        self.limiter.reset()
        self.faults.clear()
        self._data_version = 0


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal
