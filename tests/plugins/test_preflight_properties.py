"""Preflight reads the types of the properties the unengaged list filters on, and the list is built to fit them."""

from __future__ import annotations

import json

import pytest
from reengagement import segments
from reengagement.operators.lists import EnsureListOperator
from reengagement.operators.settings import PreflightFailed, PreflightOperator

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import calls, run_operator

SUB = str(MARKETING_SUBSCRIPTION_ID)
OPTOUT = f"hs_email_optout_{SUB}"


def preflight() -> PreflightOperator:
    return PreflightOperator(
        task_id="preflight",
        subscription_type="Marketing Information",
        confirm_url="https://www.example.com/thanks",
        rounds=1,
    )


def unengaged(property_types) -> EnsureListOperator:
    return EnsureListOperator(
        task_id="build_unengaged_list",
        list_name="c · unengaged",
        processing_type="DYNAMIC",
        segment="unengaged",
        poll_interval=0.1,
        segment_args={"subscription_id": SUB, "inactivity_weeks": "52", "property_types": property_types},
    )


def test_preflight_returns_the_type_of_every_filtered_property_reading_each_once(seeded, hubspot_conn):
    seeded.admin("DELETE", "calls")
    types = run_operator(preflight())["property_types"]
    assert types == {
        "email": "string",
        "hs_email_optout": "bool",
        OPTOUT: "enumeration",
        "createdate": "datetime",
        "hs_email_last_open_date": "datetime",
        "hs_email_last_click_date": "datetime",
        "hs_marketable_status": "enumeration",
        "hs_emailconfirmationstatus": "enumeration",
        "hs_email_hard_bounce_reason_enum": "enumeration",
        "hs_email_quarantined": "bool",
    }
    assert calls(seeded, "properties.get") == len(segments.property_names(SUB))


#: Dormant contacts the campaign must not ask: HubSpot would skip them at send, or they confirmed already.
LEFT_OUT = ("non_marketing", "doi_pending", "hard_bounced", "quarantined", "doi_confirmed")


def members(sandbox, list_id: str) -> set[str]:
    found, after = set(), None
    while True:
        page = sandbox.session.get(
            f"{sandbox.url}/crm/v3/lists/{list_id}/memberships",
            params={"limit": 250, **({"after": after} if after else {})},
        ).json()
        found |= {m["recordId"] for m in page["results"]}
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return found


def test_the_unengaged_list_built_from_those_types_is_accepted_and_adopted_on_a_rerun(seeded, hubspot_conn):
    types = json.dumps(run_operator(preflight())["property_types"])  # as the DAG templates it
    first = run_operator(unengaged(types))
    found = members(seeded, first["list_id"])
    assert found == set(seeded.admin("GET", "ground-truth", rounds=1)["unengaged"])
    for profile in LEFT_OUT:
        ids = {c["id"] for c in seeded.admin("GET", "contacts", profile=profile)["results"]}
        assert ids and not ids & found, profile
    assert run_operator(unengaged(types))["list_id"] == first["list_id"]


def test_a_property_the_portal_lacks_is_a_preflight_problem(seeded, hubspot_conn):
    # The third property read is the subscription type's opt-out property.
    assert segments.property_names(SUB)[2] == OPTOUT
    seeded.admin(
        "POST", "faults", {"endpoint": "properties.get", "kind": "error", "status": 404, "skip": 2, "count": 1}
    )
    with pytest.raises(PreflightFailed, match=f"'{OPTOUT}' does not exist"):
        run_operator(preflight())
