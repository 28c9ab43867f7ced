"""Business units: the hook names the campaign's unit on every call that takes one, and only there; preflight
checks the subscription type in that unit and stops, nobody changed, for a unit or type the portal lacks."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from reengagement.hook import HubSpotHook
from reengagement.operators.base import HubSpotOperator
from reengagement.operators.settings import PreflightFailed, PreflightOperator

from include.hubspot_sandbox.business_units import marketing_subscription_id
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import run_operator
from tests.support.contract import Exchange, read_exchanges

BRAND_B = 1
BRAND_B_MARKETING = marketing_subscription_id(MARKETING_SUBSCRIPTION_ID, BRAND_B)
#: The endpoints that take a ``businessUnitId`` (HubSpot's v4 and marketing email OpenAPI files) that the hook calls.
TAKES_THE_UNIT_IN_THE_QUERY = {"subscriptions.v4.definitions", "subscriptions.v4.batch_unsubscribe_all"}
TAKES_THE_UNIT_IN_THE_BODY = {"emails.create", "emails.update"}


@pytest.fixture
def brands(sandbox, hubspot_conn):
    """A seeded portal with units 0 and 1 ("Brand B"), ``hubspot_default`` pointing at it."""
    sandbox.admin("POST", "seed", {"contacts": 300, "seed": 7, "business_units": [{"id": BRAND_B, "name": "Brand B"}]})
    return sandbox


@pytest.fixture
def exchanges(brands):
    """The exchanges the sandbox recorded from now on."""
    command = brands.command()
    record = Path(command[command.index("--record") + 1])
    start = record.stat().st_size if record.exists() else 0
    return lambda: read_exchanges(record, start)[0]


def unit_in(exchange: Exchange) -> list[str]:
    """Every ``businessUnitId`` the request carried, in its query or its JSON body."""
    found = parse_qs(exchange.query).get("businessUnitId", [])
    body = json.loads(exchange.request_body) if exchange.request_body else None
    if isinstance(body, dict) and "businessUnitId" in body:
        found.append(str(body["businessUnitId"]))
    return found


def mailable(sandbox, n):
    return [
        c
        for c in sandbox.admin("GET", "contacts")["results"]
        if c["email"] and not c["optout"] and c["profile"] in ("engaged", "never_confirm")
    ][:n]


def test_the_hook_sends_the_unit_on_every_call_that_takes_it_and_nowhere_else(brands, exchanges):
    hook = HubSpotHook(business_unit_id=BRAND_B)
    first, second = mailable(brands, 2)

    definitions = hook.subscription_definitions()["results"]
    hook.unsubscribe_all([first["email"]])
    hook.write_statuses(
        [
            {
                "subscriberIdString": second["email"],
                "subscriptionId": BRAND_B_MARKETING,
                "statusState": "UNSUBSCRIBED",
                "channel": "EMAIL",
            }
        ]
    )
    email = hook.create_email({"name": "Brand B · r1 · email"})
    hook.update_email(email["id"], {"subject": "Still with us?"})
    hook.get_email(email["id"])
    assert hook.find_email_by_name("Brand B · r1 · email")["businessUnitId"] == str(BRAND_B)
    hook.count_contacts()

    assert {d["businessUnitId"] for d in definitions} == {BRAND_B}
    calls = exchanges()
    assert {e.endpoint.split("@")[0] for e in calls} >= TAKES_THE_UNIT_IN_THE_QUERY | TAKES_THE_UNIT_IN_THE_BODY
    for exchange in calls:
        endpoint = exchange.endpoint.split("@")[0]
        expected = [str(BRAND_B)] if endpoint in TAKES_THE_UNIT_IN_THE_QUERY | TAKES_THE_UNIT_IN_THE_BODY else []
        assert unit_in(exchange) == expected, exchange.describe()
        assert exchange.status < 400, exchange.describe()
    # Unit 1's opt-out and status changed, unit 0's did not.
    changes = brands.admin("GET", "status-changes")["results"]
    assert {(c["contactId"], c.get("businessUnitId", 0)) for c in changes} == {
        (first["id"], BRAND_B),
        (second["id"], BRAND_B),
    }


def test_a_hook_without_a_unit_names_the_default_unit(brands, exchanges):
    definitions = HubSpotHook().subscription_definitions()["results"]
    assert {d["businessUnitId"] for d in definitions} == {0}
    (call,) = exchanges()
    assert unit_in(call) == ["0"]


def test_operators_build_their_hook_for_their_unit():
    class Probe(HubSpotOperator):
        def execute(self, context):  # pragma: no cover - never run
            return None

    assert Probe(task_id="probe").hook.business_unit_id == 0
    assert Probe(task_id="probe", business_unit_id=BRAND_B).hook.business_unit_id == BRAND_B


def test_the_campaign_dag_gives_every_hubspot_task_its_unit():
    from reengagement.campaign_dag import build_campaign_dag

    dag = build_campaign_dag("hubspot_reengagement_brand_b_parse", business_unit_id=BRAND_B)
    hubspot_tasks = [t for t in dag.tasks if isinstance(t, HubSpotOperator)]
    assert hubspot_tasks
    assert {t.business_unit_id for t in hubspot_tasks} == {BRAND_B}


# -- preflight ----------------------------------------------------------------------------------------------
def preflight(**kw) -> PreflightOperator:
    return PreflightOperator(task_id="preflight", confirm_url="https://www.example.com/thanks", **kw)


def test_preflight_finds_the_subscription_type_in_the_campaigns_unit_and_logs_the_unit(brands, capsys):
    capsys.readouterr()
    result = run_operator(preflight(subscription_type="Brand B Marketing Information", business_unit_id=BRAND_B))
    assert result["subscription_id"] == str(BRAND_B_MARKETING)
    (passed,) = [line for line in capsys.readouterr().out.splitlines() if "Preflight passed" in line]
    assert f"business unit {BRAND_B}," in passed


@pytest.mark.parametrize("wanted", ["Marketing Information", str(MARKETING_SUBSCRIPTION_ID)])
def test_preflight_refuses_another_units_subscription_type(brands, wanted):
    with pytest.raises(PreflightFailed, match=f"does not exist in the portal's business unit {BRAND_B}") as err:
        run_operator(preflight(subscription_type=wanted, business_unit_id=BRAND_B))
    assert "Brand B Marketing Information" in str(err.value)  # it names the unit's own types


def test_preflight_refuses_a_unit_the_portal_lacks_and_changes_nothing(brands, exchanges):
    with pytest.raises(PreflightFailed, match="Business unit 7 is not one of this portal's business units"):
        run_operator(preflight(subscription_type="Marketing Information", business_unit_id=7))
    assert brands.admin("GET", "status-changes")["results"] == []
    # Only reads and the capability probes (which change nothing) were sent.
    sent = {e.endpoint.split("@")[0] for e in exchanges() if e.method != "GET"}
    assert sent <= {"emails.publish", "subscriptions.v4.batch_write", "contacts.search"}, sent
