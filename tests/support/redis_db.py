"""An emptied database of the machine's Redis for one test: each test file that shares limits in Redis takes
its own database number, as the suite's workers run files at the same time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


def redis_url(db: int) -> str:
    return f"redis://127.0.0.1:6379/{db}"


@contextmanager
def empty_redis_db(db: int) -> Iterator[redis.Redis]:
    """The database, emptied before and after; no Redis is a failure (the machine and CI have one)."""
    client = redis.Redis.from_url(redis_url(db))
    try:
        client.ping()
    except redis.ConnectionError as err:
        raise AssertionError(f"these tests need Redis at {redis_url(db)}: {err}") from err
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
