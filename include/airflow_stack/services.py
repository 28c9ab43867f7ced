"""The two services the stack uses but does not run: the PostgreSQL server and the Redis broker."""

from __future__ import annotations

from sqlalchemy.engine import make_url


class ServiceUnavailable(RuntimeError):
    """PostgreSQL or Redis is not reachable where the stack expects it."""


def ensure_database(database_url: str, *, fresh: bool = False) -> None:
    """Create the metadata database if it does not exist; with ``fresh``, drop it first."""
    import psycopg2
    from psycopg2 import sql

    url = make_url(database_url)
    try:
        conn = psycopg2.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname="postgres",
            connect_timeout=5,
        )
    except psycopg2.OperationalError as err:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {url.host}:{url.port or 5432} as {url.username!r} ({err}); "
            "start it, or pass --database-url"
        ) from err
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            name = sql.Identifier(url.database)
            if fresh:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(name))
    finally:
        conn.close()


def flush_broker(broker_url: str) -> None:
    """Empty the broker's database: messages of killed workers stay unacknowledged there for a day."""
    _broker(broker_url, "flushdb")


def check_broker(broker_url: str) -> None:
    _broker(broker_url, "ping")


def _broker(broker_url: str, command: str) -> None:
    import redis

    try:
        getattr(redis.Redis.from_url(broker_url, socket_connect_timeout=5), command)()
    except redis.RedisError as err:
        raise ServiceUnavailable(
            f"Redis is not reachable at {broker_url} ({err}); start it, or pass --broker-url"
        ) from err
