"""
### Load the campaign's audit ledger into the warehouse

An example of a DAG downstream of the campaign, scheduled on its `audit_ledger` asset: every time an opt-out
try of `hubspot_reengagement` adds to the audit ledger, this loads the new parts of that campaign's ledger
into the table `hubspot_audit_ledger` of the connection `reengagement_warehouse`.

The ledger is append-only and made of parts that are never rewritten, so the load is incremental and
idempotent: a part already in the table (by its URI) is not loaded again, and a cleared or retried run
loads nothing twice. The table is SQLite here; a warehouse with an SQLAlchemy-capable hook (Postgres,
Snowflake, BigQuery, ...) takes the same code with its own hook.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import dag, task
from reengagement.assets import AUDIT_LEDGER, campaign_asset
from reengagement.campaign_dag import DEFAULT_DAG_ID

LEDGER = campaign_asset(DEFAULT_DAG_ID, AUDIT_LEDGER)
WAREHOUSE_CONN_ID = "reengagement_warehouse"
TABLE = "hubspot_audit_ledger"
log = logging.getLogger(__name__)


def load_new_parts(connection: Any, uri: str, campaign: str | None) -> tuple[int, int]:
    """Append the parts of the ledger at ``uri`` that the table does not hold yet; (parts, rows) loaded."""
    from airflow.sdk import ObjectStoragePath
    from reengagement import audit
    from sqlalchemy import column, distinct, inspect, select, table

    known: set[str] = set()
    if inspect(connection).has_table(TABLE):
        loaded = table(TABLE, column("ledger"), column("part"))
        known = set(connection.scalars(select(distinct(loaded.c.part)).where(loaded.c.ledger == uri)))
    parts = rows = 0
    for part in audit.parts(ObjectStoragePath(uri)):
        if str(part) in known:
            continue
        frame = next(audit.read_parts_of([part])).assign(campaign=campaign, ledger=uri, part=str(part))
        frame.to_sql(TABLE, connection, if_exists="append", index=False)
        log.info("Loaded %d rows of %s (%s) into %s.", len(frame), part, campaign, TABLE)
        parts, rows = parts + 1, rows + len(frame)
    return parts, rows


@dag(
    schedule=[LEDGER],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one writer at a time
    doc_md=__doc__,
    tags=["hubspot", "warehouse", "example"],
)
def hubspot_ledger_to_warehouse() -> None:
    @task(retries=2)
    def load_ledger(triggering_asset_events: Any = None) -> dict[str, int]:
        """Every part of each triggering campaign's ledger that the table does not hold yet, with pandas."""
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        # Several events of one campaign (a rerun's tries) name the same ledger: it is read once.
        ledgers = {str(event.extra["uri"]): event.extra.get("campaign") for event in triggering_asset_events[LEDGER]}
        engine = SqliteHook(sqlite_conn_id=WAREHOUSE_CONN_ID).get_sqlalchemy_engine()
        totals = {"ledgers": len(ledgers), "parts": 0, "rows": 0}
        with engine.begin() as connection:  # all or nothing
            for uri, campaign in sorted(ledgers.items()):
                parts, rows = load_new_parts(connection, uri, campaign)
                totals["parts"] += parts
                totals["rows"] += rows
        log.info("%(parts)d new part(s) of %(ledgers)d ledger(s), %(rows)d rows.", totals)
        return totals

    load_ledger()


hubspot_ledger_to_warehouse()
