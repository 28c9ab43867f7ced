"""One limit per portal across workers, through a real Redis (database 14, emptied around each test).

Limiters with their own Redis clients stand in for separate workers (one test uses real processes). Send
times are the admission times the limiter reports, on Redis's clock, so no assertion depends on how fast
this machine runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
import redis
from reengagement.errors import HubSpotDailyLimitError
from reengagement.ratelimit import RollingWindowLimiter
from reengagement.shared_limit import KEY_PREFIX, RedisWindowLimiter, forget_limiters, limiter_for

from tests.support.redis_db import empty_redis_db, redis_url

REDIS_URL = redis_url(14)
UNUSED_URL = "redis://127.0.0.1:1/14"
PORTAL = "https://api.hubapi.com|0123456789abcdef"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with empty_redis_db(14) as connection:
        yield connection


class WallClock:
    """A settable wall clock for the portal's date."""

    def __init__(self, local: dt.datetime) -> None:
        self.now = local.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, local: dt.datetime) -> None:
        self.now = local.timestamp()


def worker(limit: int = 11, interval: float = 1.0, *, margin: int = 1, **kwargs: object) -> RedisWindowLimiter:
    """A limiter with its own Redis client, as another process would have."""
    limiter = RedisWindowLimiter(redis.Redis.from_url(REDIS_URL), PORTAL, margin=margin, **kwargs)  # type: ignore[arg-type]
    limiter.limit, limiter.interval = limit, interval
    return limiter


def most_in_any_window(times: list[float], interval: float) -> int:
    return max(sum(1 for t in times if start <= t < start + interval) for start in times)


def headers(**fields: int) -> dict[str, str]:
    names = {
        "max": "X-HubSpot-RateLimit-Max",
        "interval_ms": "X-HubSpot-RateLimit-Interval-Milliseconds",
        "remaining": "X-HubSpot-RateLimit-Remaining",
        "daily": "X-HubSpot-RateLimit-Daily",
        "daily_remaining": "X-HubSpot-RateLimit-Daily-Remaining",
    }
    return {names[name]: str(value) for name, value in fields.items()}


def run_in_threads(jobs: list[Callable[[], None]], timeout: float = 30.0) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a limiter is stuck"


# -- the rolling window, shared --------------------------------------------------------------------------------
def test_workers_together_never_exceed_the_allowance_in_any_window(client):
    workers = [worker(limit=11, margin=1) for _ in range(3)]  # 10 per second between them
    sent: list[float] = []
    lock = threading.Lock()

    def send(limiter: RedisWindowLimiter) -> None:
        for _ in range(10):
            admitted = limiter.acquire()
            with lock:
                sent.append(admitted)

    run_in_threads([lambda w=w: send(w) for w in workers])
    assert len(sent) == 30
    assert most_in_any_window(sorted(sent), 1.0) <= 10  # each alone would have let 10 through per window
    assert sum(w.waited for w in workers) > 0


class Waited(Exception):
    """The limiter asked to sleep: the window is full."""


def _refuse_to_wait(seconds: float) -> None:
    raise Waited(seconds)


def test_a_high_limit_keeps_back_five_percent_so_late_arrivals_do_not_tip_a_window(client):
    """At HubSpot's 190, a margin of 5 admitted 185 calls in 10 s that busy workers delivered as 190."""
    limiter = worker(limit=190, interval=60.0, margin=5, sleep=_refuse_to_wait)  # nothing rolls out meanwhile
    for _ in range(180):
        limiter.acquire()
    with pytest.raises(Waited):
        limiter.acquire()
    assert (limiter.held_back, limiter.allowance) == (10, 180)
    assert worker(limit=100, margin=5).allowance == 95  # at 100, the margin itself is the larger


def _acquire_in_a_process(times: multiprocessing.Queue, count: int) -> None:
    limiter = worker(limit=9, margin=1)
    times.put([limiter.acquire() for _ in range(count)])


def test_separate_processes_share_one_window(client):
    context = multiprocessing.get_context("fork")  # as Celery's prefork pool starts its workers
    times: multiprocessing.Queue = context.Queue()
    processes = [context.Process(target=_acquire_in_a_process, args=(times, 8)) for _ in range(3)]
    for process in processes:
        process.start()
    sent = sorted(t for _ in processes for t in times.get(timeout=60))
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert len(sent) == 24
    assert most_in_any_window(sent, 1.0) <= 8


def test_a_pause_by_one_worker_holds_the_others(client):
    first, second = worker(), worker()
    seconds, micros = client.time()
    paused_at = seconds + micros / 1e6
    first.pause(0.3)
    assert second.acquire() >= paused_at + 0.3
    assert second.waited >= 0.2


def test_a_low_remaining_seen_by_one_worker_slows_the_others(client):
    first, second = worker(), worker()
    seconds, micros = client.time()
    first.observe(headers(max=10, interval_ms=1000, remaining=0))
    assert second.acquire() >= seconds + micros / 1e6 + 0.1 * 0.99  # one request's share of the window per missing one
    assert second.waited > 0


def test_adopted_limits_are_shared(client):
    first, second = worker(limit=100, interval=10.0), worker(limit=100, interval=10.0)
    first.observe(headers(max=190, interval_ms=2000, remaining=150))
    second.acquire()
    assert (second.limit, second.interval) == (190, 2.0)


def test_every_key_a_portal_leaves_in_redis_expires(client):
    limiter = worker(time_zone=lambda: "Europe/Berlin")
    limiter.observe(headers(max=10, interval_ms=1000, remaining=2, daily=1000, daily_remaining=900))
    limiter.acquire()
    limiter.observe(headers(max=12, interval_ms=1000, remaining=8, daily=1000, daily_remaining=899))
    limiter.pause(5)
    keys = {key.decode(): client.ttl(key) for key in client.scan_iter(f"{KEY_PREFIX}:*")}
    assert {key.rsplit(":", 1)[-1] for key in keys} >= {"window", "pause", "settings", "daily-max", "zone"}
    assert any(":day:" in key for key in keys)
    assert all(ttl > 0 for ttl in keys.values()), keys
    assert all(PORTAL in key for key in keys)  # keyed by the portal, never by a token


# -- the daily budget ------------------------------------------------------------------------------------------
def daily_worker(clock: WallClock, zone: str | None = "America/New_York", **kwargs: object) -> RedisWindowLimiter:
    return worker(limit=50, time_zone=lambda: zone, clock=clock, **kwargs)


def test_a_spent_daily_budget_raises_without_a_call_and_says_when_it_resets(client):
    clock = WallClock(dt.datetime(2030, 6, 30, 19, 0, tzinfo=NEW_YORK))
    first, second = daily_worker(clock), daily_worker(clock)
    first.observe(headers(daily=3, daily_remaining=3))
    first.acquire()
    second.acquire()
    first.acquire()
    with pytest.raises(HubSpotDailyLimitError) as spent:
        second.acquire()
    message = str(spent.value)
    assert "2030-07-01 00:00 America/New_York (2030-07-01 04:00 UTC)" in message
    assert "3 of 3" in message and "no call was made" in message
    assert spent.value.body["policyName"] == "DAILY"


def test_the_daily_budget_resets_at_the_portals_midnight_not_utcs(client):
    clock = WallClock(dt.datetime(2030, 6, 30, 19, 0, tzinfo=NEW_YORK))
    limiter = daily_worker(clock)
    limiter.observe(headers(daily=2, daily_remaining=1))
    limiter.acquire()  # the first call counted, once the portal's zone is known
    limiter.observe(headers(daily=2, daily_remaining=0))
    with pytest.raises(HubSpotDailyLimitError):
        limiter.acquire()
    clock.set(dt.datetime(2030, 6, 30, 21, 0, tzinfo=NEW_YORK))  # 01:00 UTC on 1 July: still 30 June in New York
    with pytest.raises(HubSpotDailyLimitError):
        limiter.acquire()
    clock.set(dt.datetime(2030, 7, 1, 0, 0, 1, tzinfo=NEW_YORK))
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(HubSpotDailyLimitError, match="2030-07-02 00:00 America/New_York"):
        limiter.acquire()


def test_fewer_calls_left_at_hubspot_raise_the_shared_count(client):
    clock = WallClock(dt.datetime(2030, 6, 30, 9, 0, tzinfo=NEW_YORK))
    first, second = daily_worker(clock), daily_worker(clock)
    first.observe(headers(daily=1000, daily_remaining=1000))
    first.acquire()
    first.observe(headers(daily=1000, daily_remaining=2))  # another app spent the rest
    second.acquire()
    second.acquire()
    with pytest.raises(HubSpotDailyLimitError, match="1000 of 1000"):
        first.acquire()


def test_one_call_a_minute_still_asks_hubspot_once_the_budget_looks_spent(client):
    clock = WallClock(dt.datetime(2030, 6, 30, 9, 0, tzinfo=NEW_YORK))
    limiter = daily_worker(clock)
    limiter.observe(headers(daily=1, daily_remaining=1))
    limiter.acquire()
    with pytest.raises(HubSpotDailyLimitError):
        limiter.acquire()
    probe = f"{KEY_PREFIX}:{PORTAL}:probe"
    client.delete(probe)  # as if the probe interval had passed
    limiter.acquire()  # the probe call
    limiter.observe(headers(daily=1000, daily_remaining=990))  # an API limit increase: HubSpot is right
    limiter.acquire()


def test_the_time_zone_is_looked_up_once_through_the_limiter_itself_without_deadlock(client):
    clock = WallClock(dt.datetime(2030, 6, 30, 9, 0, tzinfo=NEW_YORK))
    lookups: list[str] = []
    limiter = worker(limit=50, clock=clock)

    def look_up() -> str:  # as the hook does: a HubSpot call, through the same limiter
        limiter.acquire()
        lookups.append("Asia/Tokyo")
        return "Asia/Tokyo"

    limiter.time_zone = look_up
    limiter.observe(headers(daily=1000, daily_remaining=1000))
    limiter.acquire()
    run_in_threads([limiter.acquire for _ in range(4)])
    other = worker(limit=50, clock=clock, time_zone=look_up)
    other.acquire()
    assert lookups == ["Asia/Tokyo"]  # the other worker read it from Redis
    day = f"{KEY_PREFIX}:{PORTAL}:day:2030-06-30"  # 22:00 in Tokyo
    assert int(client.get(day) or 0) == 6  # every call but the look-up's own


def test_an_unknown_time_zone_counts_in_utc_and_says_so_once(client, caplog):
    clock = WallClock(dt.datetime(2030, 6, 30, 23, 0, tzinfo=dt.timezone.utc))
    limiter = daily_worker(clock, zone=None)
    limiter.observe(headers(daily=1, daily_remaining=1))
    with caplog.at_level(logging.WARNING, logger="reengagement.shared_limit"):
        limiter.acquire()
        with pytest.raises(HubSpotDailyLimitError, match=r"2030-07-01 00:00 UTC: rerun"):
            limiter.acquire()
        with pytest.raises(HubSpotDailyLimitError):
            limiter.acquire()
    assert [r.getMessage() for r in caplog.records].count(
        "The portal's time zone is unknown: counting the daily limit in UTC"
    ) == 1


def test_without_daily_headers_there_is_no_daily_budget(client):
    limiter = daily_worker(WallClock(dt.datetime(2030, 6, 30, 9, 0, tzinfo=NEW_YORK)))
    limiter.observe(headers(max=50, interval_ms=1000, remaining=40))  # OAuth apps get no daily figures
    for _ in range(3):
        limiter.acquire()
    assert limiter.daily_limit == 0
    assert not list(client.scan_iter(f"{KEY_PREFIX}:*:day:*"))


# -- which limiter -------------------------------------------------------------------------------------------
@pytest.fixture
def registry(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("AIRFLOW__HUBSPOT_REENGAGEMENT__RATE_LIMIT_REDIS_URL", raising=False)
    forget_limiters()
    yield
    forget_limiters()


def test_the_configured_redis_is_shared(registry, client, monkeypatch):
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__RATE_LIMIT_REDIS_URL", REDIS_URL)
    assert isinstance(limiter_for(PORTAL), RedisWindowLimiter)
    assert limiter_for(PORTAL) is limiter_for(PORTAL)


def test_celerys_redis_broker_is_the_default(registry, client, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", REDIS_URL)
    assert isinstance(limiter_for(PORTAL), RedisWindowLimiter)


@pytest.mark.parametrize(
    ("option", "broker", "warning"),
    [
        ("", REDIS_URL, "No Redis is configured"),
        ("none", REDIS_URL, "No Redis is configured"),
        (None, "amqp://guest@127.0.0.1//", "No Redis is configured"),
        (UNUSED_URL, REDIS_URL, "No Redis answers at redis://127.0.0.1:1"),
    ],
)
def test_without_a_reachable_redis_the_limit_is_per_process_and_says_so_once(
    registry, monkeypatch, caplog, option, broker, warning
):
    if option is not None:
        monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__RATE_LIMIT_REDIS_URL", option)
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", broker)
    with caplog.at_level(logging.WARNING, logger="reengagement.shared_limit"):
        first, other = limiter_for(PORTAL), limiter_for("http://127.0.0.1:8099|fedcba9876543210")
    assert isinstance(first, RollingWindowLimiter) and isinstance(other, RollingWindowLimiter)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith(warning) and "kept per process" in messages[0]


def test_redis_going_away_mid_run_falls_back_to_the_process_limiter(caplog):
    gone = redis.Redis.from_url(UNUSED_URL, socket_connect_timeout=1)
    limiter = RedisWindowLimiter(gone, PORTAL, fallback=RollingWindowLimiter(10, 1.0, margin=1))
    with caplog.at_level(logging.WARNING, logger="reengagement.shared_limit"):
        limiter.acquire()
        limiter.pause(0.01)
        limiter.observe(headers(max=10, interval_ms=1000, remaining=9))
        limiter.acquire()
    assert [r.getMessage() for r in caplog.records if "Redis failed" in r.getMessage()] != []
    assert len(caplog.records) == 1
