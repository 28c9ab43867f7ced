"""A campaign run tells Airflow what it wrote, as asset events a warehouse load can be scheduled on.

The scheduler starting the consumer DAG is checked in the deployment (tests/integration); here, the events
a real run records, and the example consumer's load from them.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pandas as pd
import sqlalchemy
from airflow.sdk import ObjectStoragePath
from reengagement import audit
from reengagement.assets import KINDS

from tests.conftest import ROOT
from tests.e2e.conftest import states


def asset_events(run_id: str) -> dict[str, dict[str, Any]]:
    """The extra of each asset event the run emitted, by asset name."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == run_id)
        ).all()
    found: dict[str, dict[str, Any]] = {}
    for name, extra in rows:
        assert name not in found, f"two events for {name} in one run"
        found[name] = dict(extra)
    return found


def consumer_module() -> Any:
    spec = importlib.util.spec_from_file_location("ledger_consumer", ROOT / "dags" / "hubspot_ledger_to_warehouse.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_announces_its_export_results_and_ledger_and_the_example_loads_the_ledger_once(campaign, tmp_path):
    campaign.seed()
    dag_run = campaign.run(rounds=1, campaign="assets-q4")
    assert str(dag_run.state) == "success", states(dag_run)

    events = asset_events(dag_run.run_id)
    assert set(events) == {f"hubspot_reengagement.{kind}" for kind in KINDS}
    export = events["hubspot_reengagement.unconfirmed_export"]
    results = events["hubspot_reengagement.opt_out_results"]
    ledger = events["hubspot_reengagement.audit_ledger"]
    for extra in (export, results, ledger):
        assert (extra["campaign"], extra["run_id"]) == ("assets-q4", dag_run.run_id)
    with ObjectStoragePath(export["uri"]).open("r") as handle:
        assert len(pd.read_csv(handle)) == export["rows"] == results["rows"]
    assert ObjectStoragePath(results["uri"]).exists() and results["dry_run"] is False
    written = audit.read_ledger(ObjectStoragePath(ledger["uri"]))
    assert ledger["rows_added"] == len(written) > 0
    assert audit.changed_ids(written) == campaign.opted_out() == campaign.truth(1)["opt_out"]
    assert ledger["part"] in {str(p) for p in audit.parts(ObjectStoragePath(ledger["uri"]))}
    # Ids, counts and URIs only: no address in any event.
    assert "@" not in repr(events).replace("file://", "")

    consumer = consumer_module()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with engine.begin() as connection:
        assert consumer.load_new_parts(connection, ledger["uri"], "assets-q4") == (1, len(written))
    with engine.begin() as connection:  # a cleared or repeated load adds nothing
        assert consumer.load_new_parts(connection, ledger["uri"], "assets-q4") == (0, 0)
    table = pd.read_sql_table(consumer.TABLE, engine)
    assert set(table["contact_id"].astype(str)) == set(written["contact_id"])
    assert set(table["campaign"]) == {"assets-q4"} and len(table) == len(written)
