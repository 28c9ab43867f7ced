"""A campaign configured on business unit 1 of a two-unit portal opts out exactly unit 1's ground truth, and
leaves unit 0's subscription statuses as they were."""

from __future__ import annotations

from typing import Any

import pytest

from include.hubspot_sandbox.business_units import marketing_subscription_id
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.e2e.conftest import Campaign, states

BRAND_B = 1
V4 = "/communication-preferences/v4"


@pytest.fixture(scope="session")
def brand_b_dag(airflow_db):
    """The campaign DAG for Brand B, built like a configured second campaign and written to the metadata
    database as the DAG processor would (``dag.test()`` runs only a DAG Airflow has serialized)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session
    from reengagement.campaign_dag import build_campaign_dag

    dag = build_campaign_dag("hubspot_reengagement_brand_b", business_unit_id=BRAND_B)
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = next(iter(manager.get_all_dag_bundles())).name
    with create_session() as session:
        update_dag_parsing_results_in_db(bundle, None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session)
    return dag


@pytest.fixture
def brand_b(brand_b_dag, campaign_sandbox, tmp_path, monkeypatch) -> Campaign:
    campaign_sandbox.admin("POST", "reset")
    return Campaign(brand_b_dag, campaign_sandbox, tmp_path / "exports", monkeypatch)


def unit_statuses(campaign: Campaign, emails: list[str], unit: int) -> dict[str, Any]:
    """Each address's subscription statuses and its unsubscribe-from-all status in ``unit``, by address."""
    found: dict[str, Any] = {}
    url = f"{campaign.sandbox.url}{V4}/statuses/batch"
    params = {"channel": "EMAIL", "businessUnitId": unit}
    for start in range(0, len(emails), 100):
        chunk = {"inputs": emails[start : start + 100]}
        statuses = campaign.sandbox.session.post(f"{url}/read", params=params, json=chunk).json()["results"]
        wide = campaign.sandbox.session.post(f"{url}/unsubscribe-all/read", params=params, json=chunk).json()
        for item in statuses:
            found[item["subscriberIdString"]] = {s["subscriptionId"]: s["status"] for s in item["statuses"]}
        for item in wide["results"]:
            found[item["subscriberIdString"]]["all"] = item["wideStatuses"][0]["status"]
    return found


def test_a_campaign_on_brand_b_opts_out_brand_bs_ground_truth_and_leaves_unit_zero_alone(brand_b):
    brand_b.seed(business_units=[{"id": BRAND_B, "name": "Brand B"}])
    addresses = [c["email"] for c in brand_b.sandbox.admin("GET", "contacts")["results"] if c["email"]]
    unit_zero_before = unit_statuses(brand_b, addresses, 0)

    dag_run = brand_b.run(rounds=1, subscription_type="Brand B Marketing Information")

    assert str(dag_run.state) == "success", states(dag_run)
    truth = {
        key: set(ids)
        for key, ids in brand_b.sandbox.admin("GET", "ground-truth", rounds=1, business_unit=BRAND_B).items()
    }
    assert truth["opt_out"]
    changes = brand_b.status_changes()
    assert {c.get("businessUnitId", 0) for c in changes} == {BRAND_B}
    assert brand_b.opted_out() == truth["opt_out"]
    assert not brand_b.opted_out() & truth["confirmed"]
    (email,) = brand_b.emails()
    assert email["businessUnitId"] == str(BRAND_B)
    assert email["subscriptionDetails"]["subscriptionId"] == str(
        marketing_subscription_id(MARKETING_SUBSCRIPTION_ID, 1)
    )
    assert not set(brand_b.recipients(email["id"])) & truth["never_mailed"]

    assert unit_statuses(brand_b, addresses, 0) == unit_zero_before
    brand_b_after = unit_statuses(brand_b, addresses, BRAND_B)
    by_id = {c["email"]: c["id"] for c in brand_b.sandbox.admin("GET", "contacts")["results"] if c["email"]}
    assert {by_id[a] for a, s in brand_b_after.items() if s["all"] == "UNSUBSCRIBED"} >= truth["opt_out"]
