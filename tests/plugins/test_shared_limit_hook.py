"""The hook's limiter shared through Redis (database 13), against the sandbox: the daily budget across workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from reengagement import errors
from reengagement.hook import HubSpotHook
from reengagement.shared_limit import RedisWindowLimiter, forget_limiters

from tests.support.redis_db import empty_redis_db, redis_url

REDIS_URL = redis_url(13)


@pytest.fixture
def shared(monkeypatch) -> Iterator[redis.Redis]:
    """Every hook's limiter lives in Redis database 13, emptied around the test."""
    with empty_redis_db(13) as client:
        monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__RATE_LIMIT_REDIS_URL", REDIS_URL)
        forget_limiters()
        yield client
        forget_limiters()


def details_calls(sandbox) -> dict[str, int]:
    return sandbox.admin("GET", "calls").get("account.details", {"calls": 0})


def test_the_daily_budget_is_spent_for_every_worker_without_hubspot_refusing_a_call(sandbox, hubspot_conn, shared):
    sandbox.admin("PUT", "settings", {"rate_limit": "190/10s,5/day"})
    sandbox.admin("DELETE", "calls")
    hook = HubSpotHook()
    assert isinstance(hook.transport.limiter, RedisWindowLimiter)
    made = 0
    with pytest.raises(errors.HubSpotDailyLimitError) as spent:
        for _ in range(10):
            hook.request("GET", "/account-info/v3/details")
            made += 1
    assert made == 4  # with the portal's time zone look-up, five calls: the day's budget
    assert details_calls(sandbox) == {"calls": 5, "errors": 0, "rateLimited": 0}
    assert "US/Eastern" in str(spent.value) and "UTC)" in str(spent.value)

    forget_limiters()  # another worker: its own limiter and Redis client
    other = HubSpotHook()
    assert other.transport.limiter is not hook.transport.limiter
    with pytest.raises(errors.HubSpotDailyLimitError, match="no call was made"):
        other.request("GET", "/account-info/v3/details")
    assert details_calls(sandbox)["calls"] == 5
