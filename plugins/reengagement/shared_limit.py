"""One rate limit per portal across every worker, kept in the deployment's Redis.

HubSpot counts a portal's requests per app, wherever they come from: two Celery workers each under the
limit can trip it together. :class:`RedisWindowLimiter` keeps the rolling window's send times in one Redis
sorted set per portal, and one Lua script per acquisition trims, counts and admits atomically, so every
process and thread takes its turn from the same log. What one process learns is shared too: the limit
adopted from ``X-HubSpot-RateLimit-*`` headers, a pause after a 429, and the daily budget.

The daily budget resets "at midnight based on your time zone setting" (HubSpot, usage details:
https://developers.hubspot.com/docs/api/usage-details), so it is counted per portal-local date, in the
portal's ``timeZone`` from ``/account-info/v3/details``, and each day's counter expires after that midnight.
Times come from Redis's clock, so workers on hosts whose clocks drift still agree on the window.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis

from .errors import HubSpotDailyLimitError
from .ratelimit import DEFAULT_INTERVAL, DEFAULT_MAX, Limiter, RollingWindowLimiter

log = logging.getLogger(__name__)

KEY_PREFIX = "hubspot-reengagement:limit"
#: Once the day's budget looks spent, one call a minute still asks HubSpot (its answer corrects the count, e.g.
#: after an API limit increase was bought); every other call fails at once.
DAILY_PROBE_SECONDS = 60
#: Calls each window keeps back, as a share of the limit (at least ``margin``): a worker's call reaches HubSpot a
#: moment after Redis admits it, and on busy hosts that moment varies from call to call, so admissions spread
#: over a little more than a window can arrive inside one. Three campaigns on three workers of one 2-core host
#: had 190 calls arrive in a 10 s window where 185 were admitted, and now and then a 429; 5 % of the limit
#: (10 of 190) covers about half a second of that spread.
HELD_BACK_SHARE = 0.05
#: Adopted limits and the portal's time zone are forgotten after a day of silence.
SETTINGS_TTL_SECONDS = 86_400
_UTC = dt.timezone.utc

#: KEYS: window, pause, settings, daily max, day's count ("" when the date is unknown), daily probe.
#: ARGV: default limit, default interval (µs), margin, member, day's expiry (epoch s), probe ms.
#: Reply: {status, value, limit, interval µs, daily max}; status 1 admitted (value: time µs), 0 wait
#: (value: µs), 2 the day's budget is spent.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(redis.call('HGET', KEYS[3], 'limit') or ARGV[1])
local interval = tonumber(redis.call('HGET', KEYS[3], 'interval') or ARGV[2])
local daily = tonumber(redis.call('GET', KEYS[4]) or '0')
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {0, paused - now, limit, interval, daily}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - interval)
if redis.call('ZCARD', KEYS[1]) >= math.max(1, limit - tonumber(ARGV[3])) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + interval - now + 1000, limit, interval, daily}
end
if daily > 0 and KEYS[5] ~= '' then
  local used = tonumber(redis.call('GET', KEYS[5]) or '0')
  if used >= daily and not redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[6]) then
    return {2, used, limit, interval, daily}
  end
  if redis.call('INCR', KEYS[5]) >= daily then
    redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[6])
  end
  redis.call('EXPIREAT', KEYS[5], ARGV[5])
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(interval / 1000) + 1000)
return {1, now, limit, interval, daily}
"""

#: Hold every worker until at least now + ARGV[1] µs (the later of this and any pause already set).
_PAUSE = """
local t = redis.call('TIME')
local until_us = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1)
end
return 1
"""

#: HubSpot's word on the day. KEYS: daily max, day's count ("" when the date is unknown), daily probe.
#: ARGV: daily max, used (max - remaining, or -1), day's expiry (epoch s), daily max's TTL (s), probe ms.
#: The count only rises to what HubSpot reports, except when it says calls are left while the count says
#: none are: then HubSpot is right (a limit increase, or a reset the count did not see).
_DAILY = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
local used = tonumber(ARGV[2])
if used < 0 or KEYS[2] == '' then
  return 0
end
local daily = tonumber(ARGV[1])
local counted = tonumber(redis.call('GET', KEYS[2]) or '0')
if used > counted or (counted >= daily and used < daily) then
  redis.call('SET', KEYS[2], used, 'EXAT', ARGV[3])
end
if used >= daily then
  redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[5])
end
return 1
"""


class PortalClock:
    """The portal's date and next midnight, in its time zone (UTC until it is known)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def now(self, zone: dt.tzinfo) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), tz=zone)

    def today(self, zone: dt.tzinfo) -> str:
        return self.now(zone).date().isoformat()

    def next_midnight(self, zone: dt.tzinfo) -> dt.datetime:
        """The next local midnight, when HubSpot starts the portal's daily budget again."""
        tomorrow = self.now(zone).date() + dt.timedelta(days=1)
        return dt.datetime.combine(tomorrow, dt.time(), tzinfo=zone)


class RedisWindowLimiter:
    """:class:`~reengagement.ratelimit.RollingWindowLimiter`'s interface, shared by every process through Redis.

    :param client: the deployment's Redis.
    :param key: the portal (base URL and token fingerprint, never the token).
    :param time_zone: returns the portal's IANA time zone (``None`` if unknown); called once, when the daily
        budget is first known, and its answer kept in Redis for a day. The call may itself be a HubSpot
        request through this limiter: that one request is admitted without the daily count.
    :param clock: wall-clock seconds, for the portal's date (the window uses Redis's clock).
    :param fallback: the in-process limiter that takes over, with a warning, if Redis fails mid-run.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        margin: int = 5,
        time_zone: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        fallback: RollingWindowLimiter | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.margin = margin
        self.limit = DEFAULT_MAX
        self.interval = DEFAULT_INTERVAL
        self.daily_limit = 0
        self.waited = 0.0
        self.time_zone = time_zone
        self.portal_clock = PortalClock(clock)
        self._sleep = sleep
        self._fallback = fallback
        self._failed = False
        self._daily_checked = False
        self._settings_shared_at = -float(SETTINGS_TTL_SECONDS)  # share the first limit a response names
        self._zone: dt.tzinfo | None = None
        self._zone_lock = threading.Lock()
        self._resolving = threading.local()
        prefix = f"{KEY_PREFIX}:{key}"
        self._window, self._pause, self._settings = f"{prefix}:window", f"{prefix}:pause", f"{prefix}:settings"
        self._daily_max, self._zone_key, self._probe = f"{prefix}:daily-max", f"{prefix}:zone", f"{prefix}:probe"
        self._day_prefix = f"{prefix}:day"
        self._acquire_script = client.register_script(_ACQUIRE)
        self._pause_script = client.register_script(_PAUSE)
        self._daily_script = client.register_script(_DAILY)

    @property
    def held_back(self) -> int:
        """Calls kept out of every window: ``margin``, or :data:`HELD_BACK_SHARE` of the limit when more."""
        return max(self.margin, math.ceil(self.limit * HELD_BACK_SHARE))

    @property
    def allowance(self) -> int:
        return max(1, self.limit - self.held_back)

    # -- the rolling window ------------------------------------------------------------------------------
    def acquire(self) -> float:
        """Block until one more request fits in every worker's window, then count it; its time (Redis's clock).

        :raises HubSpotDailyLimitError: the portal's daily budget is spent (no request is made).
        """
        while True:
            if self._failed and self._fallback is not None:
                return self._fallback.acquire()
            try:
                zone, (status, value, limit, interval, daily) = self._try_acquire()
            except redis.RedisError as err:
                if not self._fail_over(err):
                    raise
                continue
            self.limit, self.interval, self.daily_limit = int(limit), int(interval) / 1e6, int(daily)
            if status == 1:
                return int(value) / 1e6
            if status == 2:
                raise self._spent(zone or _UTC, int(value))
            wait = int(value) / 1e6
            self.waited += wait
            log.debug("Waiting %.2fs for HubSpot's rate limit, shared by every worker", wait)
            self._sleep(wait)

    def _try_acquire(self) -> tuple[dt.tzinfo | None, list[int]]:
        """One go at the script: the zone the day was counted in (``None``: not counted), and its reply."""
        if not self._daily_checked:  # a new worker learns whether the portal has a daily budget before counting
            stored: Any = self.client.get(self._daily_max)
            self.daily_limit = int(stored or 0)
            self._daily_checked = True
        zone = self._day_zone()
        keys = [self._window, self._pause, self._settings, self._daily_max, self._day_key(zone), self._probe]
        args: list[int | str] = [
            self.limit,
            int(self.interval * 1e6),
            self.held_back,
            uuid.uuid4().hex,
            self._day_expiry(zone),
            int(DAILY_PROBE_SECONDS * 1000),
        ]
        return zone, self._acquire_script(keys=keys, args=args)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Share the portal's limits from response headers; hold every worker when the window is nearly spent."""
        if not (self._failed and self._fallback is not None):
            lowered = {k.lower(): v for k, v in headers.items()}
            try:
                self._observe_daily(lowered)
                self._observe_window(lowered)
            except redis.RedisError as err:
                if not self._fail_over(err):
                    raise
        if self._failed and self._fallback is not None:
            self._fallback.observe(headers)

    def pause(self, seconds: float) -> None:
        """Hold every worker's requests to this portal for ``seconds`` (after a 429)."""
        if self._failed and self._fallback is not None:
            self._fallback.pause(seconds)
            return
        try:
            self._pause_script(keys=[self._pause], args=[int(seconds * 1e6)])
        except redis.RedisError as err:
            if not self._fail_over(err):
                raise
            self.pause(seconds)

    def _observe_window(self, lowered: Mapping[str, str]) -> None:
        try:
            limit = int(lowered["x-hubspot-ratelimit-max"])
            interval = int(lowered["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
            remaining = int(lowered["x-hubspot-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        if limit > 0 and interval > 0:
            stale = time.monotonic() - self._settings_shared_at > SETTINGS_TTL_SECONDS / 2
            if (limit, interval) != (self.limit, self.interval) or stale:
                self._settings_shared_at = time.monotonic()
                pipe = self.client.pipeline()
                pipe.hset(self._settings, mapping={"limit": limit, "interval": int(interval * 1e6)})
                pipe.expire(self._settings, SETTINGS_TTL_SECONDS)
                pipe.execute()
            self.limit, self.interval = limit, interval
        if remaining < self.held_back:
            # Someone else is spending this app's budget: leave room for the window to roll.
            per_request = self.interval / max(self.limit, 1)
            self.pause(per_request * (self.held_back - remaining))

    # -- the daily budget -------------------------------------------------------------------------------
    def _observe_daily(self, lowered: Mapping[str, str]) -> None:
        try:
            daily = int(lowered["x-hubspot-ratelimit-daily"])
        except (KeyError, ValueError):
            return  # OAuth apps get no daily figures: HubSpot's own 429 is the only word on them
        if daily <= 0:
            return
        try:
            used = daily - int(lowered["x-hubspot-ratelimit-daily-remaining"])
        except (KeyError, ValueError):
            used = -1
        zone = self._zone
        self._daily_script(
            keys=[self._daily_max, self._day_key(zone), self._probe],
            args=[daily, used, self._day_expiry(zone), 2 * SETTINGS_TTL_SECONDS, int(DAILY_PROBE_SECONDS * 1000)],
        )
        self.daily_limit = daily

    def _day_zone(self) -> dt.tzinfo | None:
        """The portal's time zone once the daily budget is known; ``None`` while it is being looked up."""
        if not self.daily_limit or getattr(self._resolving, "active", False):
            return None
        if self._zone is not None:
            return self._zone
        with self._zone_lock:  # other threads wait for the one look-up rather than count under the wrong date
            if self._zone is None:
                self._resolving.active = True
                try:
                    self._zone = self._resolve_zone()
                finally:
                    self._resolving.active = False
        return self._zone

    def _resolve_zone(self) -> dt.tzinfo:
        stored: Any = self.client.get(self._zone_key)
        name = stored.decode() if isinstance(stored, bytes) else self._look_up_zone()
        if name and stored is None:
            self.client.set(self._zone_key, name, ex=SETTINGS_TTL_SECONDS)
        try:
            return ZoneInfo(name) if name else _UTC
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("HubSpot's time zone %r is unknown here: counting the daily limit in UTC", name)
            return _UTC

    def _look_up_zone(self) -> str | None:
        lookup = self.time_zone
        try:
            name = lookup() if lookup is not None else None
        except Exception as err:  # noqa: BLE001 - a failed look-up leaves UTC; the request goes on
            log.warning("Could not read the portal's time zone (%s): counting the daily limit in UTC", err)
            return None
        if not name:
            log.warning("The portal's time zone is unknown: counting the daily limit in UTC")
        return name

    def _day_key(self, zone: dt.tzinfo | None) -> str:
        """The day's counter in the portal's date; ``""`` (not counted) while the zone is unknown."""
        return f"{self._day_prefix}:{self.portal_clock.today(zone)}" if zone else ""

    def _day_expiry(self, zone: dt.tzinfo | None) -> int:
        """When the day's counter is dropped: a minute after the local midnight (clocks may drift that much)."""
        return int(self.portal_clock.next_midnight(zone).timestamp()) + 60 if zone else 0

    def _spent(self, zone: dt.tzinfo, used: int) -> HubSpotDailyLimitError:
        reset = self.portal_clock.next_midnight(zone)
        when = f"{reset:%Y-%m-%d %H:%M} {reset.tzinfo}"
        if zone is not _UTC:
            when += f" ({reset.astimezone(_UTC):%Y-%m-%d %H:%M} UTC)"
        return HubSpotDailyLimitError(
            f"HubSpot's daily API limit for this portal is spent ({used} of {self.daily_limit} calls today, counted "
            f"across every worker); no call was made. It resets at midnight in the portal's time zone, {when}: "
            "rerun the task after that.",
            status=429,
            body={"policyName": "DAILY", "resetsAt": reset.isoformat()},
        )

    def _fail_over(self, err: redis.RedisError) -> bool:
        """Carry on with the in-process limiter if Redis goes away mid-run (``False``: there is none)."""
        if self._fallback is None:
            return False
        if not self._failed:
            log.warning("Redis failed (%s): HubSpot's rate limit is now kept per process, not across workers", err)
            self._failed = True
            self._fallback.limit, self._fallback.interval = self.limit, self.interval
        return True


#: Limiters by portal key, for this process; each shares its state through Redis when there is one.
_LIMITERS: dict[str, Limiter] = {}
_REGISTRY_LOCK = threading.Lock()
_CLIENT: list[redis.Redis | None] = []  # empty until the first limiter decides, once per process


def limiter_for(key: str, *, time_zone: Callable[[], str | None] | None = None) -> Limiter:
    """The limiter for one app on one portal (keyed without the token itself), shared by every worker through
    Redis when :func:`rate_limit_redis_url` names one that answers, else kept in this process.

    :param time_zone: looks up the portal's time zone, for the shared daily budget (the latest caller's wins).
    """
    with _REGISTRY_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            if not _CLIENT:
                _CLIENT.append(_shared_client())
            client = _CLIENT[0]
            if client is None:
                limiter = RollingWindowLimiter()
            else:
                limiter = RedisWindowLimiter(client, key, time_zone=time_zone, fallback=RollingWindowLimiter())
            _LIMITERS[key] = limiter
    if time_zone is not None and isinstance(limiter, RedisWindowLimiter):
        limiter.time_zone = time_zone
    return limiter


def forget_limiters() -> None:
    """Drop this process's limiters and its Redis decision: the next :func:`limiter_for` reads the configuration
    again (for tests, and for a process whose configuration changed)."""
    with _REGISTRY_LOCK:
        _LIMITERS.clear()
        _CLIENT.clear()


def rate_limit_redis_url() -> str | None:
    """``[hubspot_reengagement] rate_limit_redis_url``; when unset, Celery's broker if it is a Redis.

    Empty or ``none`` keeps the limit per process on purpose.
    """
    from airflow.sdk.configuration import conf

    url = conf.get("hubspot_reengagement", "rate_limit_redis_url", fallback=None)
    if url is None:
        broker = str(conf.get("celery", "broker_url", fallback="") or "").strip()
        return broker if broker.startswith(("redis://", "rediss://")) else None
    url = str(url).strip()
    return None if url.lower() in ("", "none") else url


def _shared_client() -> redis.Redis | None:
    url = rate_limit_redis_url()
    if url is None:
        log.warning(
            "No Redis is configured for HubSpot's rate limit ([hubspot_reengagement] rate_limit_redis_url, or a "
            "redis:// Celery broker): the limit is kept per process, so workers calling one portal at once can "
            "exceed it together"
        )
        return None
    client = redis_client(url)
    if client is None:
        parts = urlsplit(url)
        log.warning(
            "No Redis answers at %s://%s:%s for HubSpot's rate limit: the limit is kept per process, so workers "
            "calling one portal at once can exceed it together",
            parts.scheme,
            parts.hostname,
            parts.port or 6379,
        )
    return client


def redis_client(url: str) -> redis.Redis | None:
    """A client for ``url`` if a Redis answers there, else ``None`` (quickly: this runs before a request)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
        client.ping()
    except (redis.RedisError, ValueError, OSError) as err:
        log.debug("No Redis at the rate limit's URL: %s", err)
        return None
    return client
