"""The campaign's assets: spelled the same by producer and consumer, and only their own events described."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset
from reengagement.assets import (
    AUDIT_LEDGER,
    KINDS,
    OPT_OUT_RESULTS,
    UNCONFIRMED_EXPORT,
    campaign_asset,
    campaign_assets,
    describe_events,
    kind_of,
)


class Event:
    def __init__(self) -> None:
        self.extra: dict = {}


class Events(dict):
    """Airflow's ``outlet_events``: an event per outlet, made on first use."""

    def __missing__(self, key: Asset) -> Event:
        self[key] = Event()
        return self[key]


def test_each_campaign_dag_has_one_asset_per_kind_named_by_the_dag_and_the_kind():
    assets = campaign_assets("emea")
    assert set(assets) == set(KINDS)
    ledger = assets[AUDIT_LEDGER]
    assert (ledger.name, ledger.uri, ledger.group) == (
        "emea.audit_ledger",
        "hubspot-reengagement://emea/audit_ledger",
        "hubspot-reengagement",
    )
    assert ledger == campaign_asset("emea", AUDIT_LEDGER)  # a consumer's spelling is the producer's asset
    assert campaign_asset("apac", AUDIT_LEDGER) != ledger


def test_an_unknown_kind_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown kind of campaign asset 'ledger'.*audit_ledger"):
        campaign_asset("emea", "ledger")


def test_only_campaign_assets_have_a_kind():
    assert kind_of(campaign_asset("emea", OPT_OUT_RESULTS)) == OPT_OUT_RESULTS
    assert kind_of(Asset(uri="s3://bucket/ledger", extra={"kind": AUDIT_LEDGER})) is None
    assert kind_of("not an asset") is None


def test_each_outlet_event_gets_the_facts_of_its_kind_and_other_outlets_are_left_alone():
    assets = campaign_assets("emea")
    other = Asset(uri="s3://bucket/elsewhere")
    events = Events()
    facts = {"campaign": "q4", "run_id": "r1", "uri": "file:///x/unconfirmed.csv", "rows": 3}
    outlets = [assets[UNCONFIRMED_EXPORT], assets[AUDIT_LEDGER], other]
    describe_events({"outlet_events": events}, outlets, {UNCONFIRMED_EXPORT: facts})  # type: ignore[arg-type]
    assert events[assets[UNCONFIRMED_EXPORT]].extra == facts
    assert events[assets[UNCONFIRMED_EXPORT]].extra is not facts  # a copy, not the caller's dict
    assert set(events) == {assets[UNCONFIRMED_EXPORT]}  # no facts for the ledger, nothing for the other outlet
