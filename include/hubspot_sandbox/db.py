"""The sandbox's SQLite store: one file per portal, so state survives a restart."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    email TEXT,
    firstname TEXT,
    lastname TEXT,
    lifecyclestage TEXT,
    createdate INTEGER NOT NULL,
    lastmodifieddate INTEGER NOT NULL,
    last_open INTEGER,
    last_click INTEGER,
    optout INTEGER NOT NULL DEFAULT 0,
    bounced INTEGER NOT NULL DEFAULT 0,
    profile TEXT,
    sends INTEGER NOT NULL DEFAULT 0,
    marketable INTEGER NOT NULL DEFAULT 1,
    confirmation TEXT,
    hard_bounce_reason TEXT,
    quarantined INTEGER NOT NULL DEFAULT 0,
    quarantined_reason TEXT,
    delivered_before INTEGER NOT NULL DEFAULT 0,
    last_visit INTEGER,
    last_form INTEGER,
    signal_role TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS contacts_email ON contacts (email COLLATE NOCASE);

CREATE TABLE IF NOT EXISTS subscription_types (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    purpose TEXT NOT NULL,
    communication_method TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    is_default INTEGER NOT NULL,
    is_internal INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    business_unit_id INTEGER NOT NULL DEFAULT 0
);

-- Business units (brands) besides the default unit 0, which every portal has; empty without the add-on.
CREATE TABLE IF NOT EXISTS business_units (id INTEGER PRIMARY KEY, name TEXT NOT NULL);

-- "Unsubscribed from all email" in a business unit other than 0 (unit 0's is contacts.optout).
CREATE TABLE IF NOT EXISTS unit_optouts (
    contact_id INTEGER NOT NULL,
    business_unit_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, business_unit_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS subscription_status (
    contact_id INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    legal_basis TEXT,
    legal_basis_explanation TEXT,
    source TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, subscription_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS status_changes (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    subscription_id INTEGER,
    old_status TEXT NOT NULL,
    new_status TEXT NOT NULL,
    source TEXT NOT NULL,
    legal_basis TEXT,
    legal_basis_explanation TEXT,
    endpoint TEXT NOT NULL,
    business_unit_id INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS lists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    object_type_id TEXT NOT NULL,
    processing_type TEXT NOT NULL,
    filter_branch TEXT,
    list_version INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    filters_updated_at INTEGER,
    processing_until REAL NOT NULL DEFAULT 0,
    evaluated_version INTEGER NOT NULL DEFAULT -1,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS lists_name ON lists (name COLLATE NOCASE) WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS memberships (
    list_id INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, record_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    campaign_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    published_at INTEGER,
    archived INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sends (
    email_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    PRIMARY KEY (email_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS not_sent (
    email_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (email_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    email_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    url TEXT,
    filtered INTEGER NOT NULL DEFAULT 0,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_campaign ON events (campaign_id, type, created, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (created, id);
CREATE INDEX IF NOT EXISTS events_pending ON events (created) WHERE applied = 0;

CREATE TABLE IF NOT EXISTS exports (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    list_id INTEGER NOT NULL,
    request TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ready_at REAL NOT NULL,
    path TEXT NOT NULL,
    secret TEXT NOT NULL,
    rows INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS forms (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, data TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS call_counts (
    endpoint TEXT PRIMARY KEY,
    calls INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS api_usage (day TEXT PRIMARY KEY, calls INTEGER NOT NULL);
"""

#: Columns added to ``contacts`` after the first release: a store written by an older sandbox gains them on open.
_ADDED_CONTACT_COLUMNS = {
    "marketable": "INTEGER NOT NULL DEFAULT 1",
    "confirmation": "TEXT",
    "hard_bounce_reason": "TEXT",
    "quarantined": "INTEGER NOT NULL DEFAULT 0",
    "quarantined_reason": "TEXT",
    "delivered_before": "INTEGER NOT NULL DEFAULT 0",
    "last_visit": "INTEGER",
    "last_form": "INTEGER",
    "signal_role": "TEXT",
}
#: Columns other tables gained after the first release, by table.
_ADDED_COLUMNS = {
    "contacts": _ADDED_CONTACT_COLUMNS,
    "subscription_types": {"business_unit_id": "INTEGER NOT NULL DEFAULT 0"},
    "status_changes": {"business_unit_id": "INTEGER NOT NULL DEFAULT 0"},
}


class Database:
    """A single SQLite connection used from the server's event-loop thread only.

    All request handlers are ``async`` and run on one thread, so requests are naturally serialised:
    no locks, and every handler sees a consistent store.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.execute("PRAGMA cache_size=-200000")
        self.conn.executescript(SCHEMA)
        self._add_missing_columns()
        self._depth = 0

    def _add_missing_columns(self) -> None:
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, spec in columns.items():
                if name not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {spec}")

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def get_meta(self, key: str, default: Any = None) -> Any:
        value = self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return default if value is None else json.loads(value)

    def set_meta(self, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def reset(self) -> None:
        """Drop every row (the admin reset); the schema stays."""
        with self.tx():
            tables = [r[0] for r in self.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                self.execute(f"DELETE FROM {table}")  # noqa: S608 - names come from sqlite_master
