"""The segment filters have HubSpot's enforced shape, fit the portal's property types, and mean the campaign."""

from __future__ import annotations

import json

import pytest
from reengagement import segments


def only_and_branch(branch):
    assert branch["filterBranchType"] == "OR" and branch["filters"] == []
    (child,) = branch["filterBranches"]
    assert child["filterBranchType"] == "AND" and child["filterBranches"] == []
    return child["filters"]


def operations(branch) -> dict[str, dict]:
    return {f["property"]: f["operation"] for f in only_and_branch(branch)}


def test_unengaged_needs_email_excludes_unsubscribed_and_young_and_counts_never_as_inactive():
    filters = operations(segments.unengaged("123", 52))
    assert filters["email"]["operator"] == "IS_KNOWN"
    assert filters["hs_email_optout"]["includeObjectsWithNoValueSet"] is True
    assert filters["hs_email_optout_123"]["includeObjectsWithNoValueSet"] is True
    assert filters["createdate"]["numberOfDays"] == 364
    assert filters["createdate"]["includeObjectsWithNoValueSet"] is False
    for prop in ("hs_email_last_open_date", "hs_email_last_click_date"):
        assert filters[prop]["operator"] == "IS_MORE_THAN_X_DAYS_AGO"
        assert filters[prop]["includeObjectsWithNoValueSet"] is True


def test_per_subscription_optout_is_an_enumeration_and_all_email_optout_a_boolean_by_default():
    filters = operations(segments.unengaged("123", 52))
    assert filters["hs_email_optout_123"] == {
        "operationType": "ENUMERATION",
        "operator": "IS_NONE_OF",
        "values": ["true"],
        "includeObjectsWithNoValueSet": True,
    }
    assert filters["hs_email_optout"] == {
        "operationType": "BOOL",
        "operator": "IS_NOT_EQUAL_TO",
        "value": True,
        "includeObjectsWithNoValueSet": True,
    }


def test_each_yes_no_filter_follows_the_type_the_portal_reports():
    types = {
        "hs_email_optout": "enumeration",
        "hs_email_optout_123": "bool",
        "hs_marketable_status": "bool",
        "hs_email_quarantined": "enumeration",
    }
    filters = operations(segments.unengaged("123", 52, types))
    assert filters["hs_email_optout"]["operationType"] == "ENUMERATION"
    assert filters["hs_email_optout"]["values"] == ["true"]
    assert filters["hs_email_optout_123"]["operationType"] == "BOOL"
    assert filters["hs_email_optout_123"]["value"] is True
    assert filters["hs_marketable_status"] == {
        "operationType": "BOOL",
        "operator": "IS_NOT_EQUAL_TO",
        "value": False,
        "includeObjectsWithNoValueSet": True,
    }
    assert filters["hs_email_quarantined"]["operationType"] == "ENUMERATION"
    # Templated through XCom, the types arrive as a JSON object.
    assert segments.unengaged("123", "52", json.dumps(types)) == segments.unengaged("123", 52, types)
    assert segments.unengaged("123", 52, "null") == segments.unengaged("123", 52)


def test_contacts_hubspot_would_skip_or_that_confirmed_double_opt_in_are_left_out():
    filters = operations(segments.unengaged("123", 52))
    # Not a marketing contact: out. No marketing status recorded: kept (HubSpot decides at send).
    assert filters["hs_marketable_status"] == {
        "operationType": "ENUMERATION",
        "operator": "IS_NONE_OF",
        "values": ["false"],
        "includeObjectsWithNoValueSet": True,
    }
    # Any double opt-in status, pending or confirmed: out; only contacts that never entered double opt-in stay.
    for prop in ("hs_emailconfirmationstatus", "hs_email_hard_bounce_reason_enum"):
        assert filters[prop]["operationType"] == "ALL_PROPERTY"
        assert filters[prop]["operator"] == "IS_UNKNOWN"
    assert filters["hs_email_quarantined"] == {
        "operationType": "BOOL",
        "operator": "IS_NOT_EQUAL_TO",
        "value": True,
        "includeObjectsWithNoValueSet": True,
    }


def test_every_filtered_property_is_one_preflight_reads():
    filtered = {f["property"] for f in only_and_branch(segments.unengaged("77", 52))}
    assert filtered == set(segments.property_names("77"))


def test_type_problems_name_missing_properties_and_types_no_filter_fits():
    types = dict(segments.hubspot_types("77"))
    assert segments.type_problems("77", types) == []
    assert segments.type_problems("77", {**types, "createdate": "date", "hs_email_optout_77": "bool"}) == []
    del types["hs_email_optout_77"]
    types["createdate"] = "string"
    types["hs_email_quarantined"] = "number"
    problems = segments.type_problems("77", types)
    assert len(problems) == 3
    assert "'hs_email_optout_77' does not exist" in problems[0]
    assert "'createdate' has type 'string'" in problems[1]
    assert "'hs_email_quarantined' has type 'number'" in problems[2]


def test_a_yes_no_filter_on_a_property_of_another_type_is_refused():
    with pytest.raises(ValueError, match="hs_email_optout_5"):
        segments.unengaged("5", 52, {"hs_email_optout_5": "string"})


def test_the_same_types_give_the_same_definition_so_a_rerun_adopts_the_list():
    built = segments.unengaged("123", 52, {"hs_email_optout_123": "enumeration"})
    echoed = json.loads(json.dumps(built))
    for f in echoed["filterBranches"][0]["filters"]:
        f["operation"].setdefault("requiresTimeZoneConversion", False)  # a default HubSpot may add
    assert segments.same_definition(built, echoed)
    other = segments.unengaged("123", 52, {"hs_email_optout_123": "bool"})
    assert not segments.same_definition(other, echoed)


def test_unconfirmed_is_recipients_and_not_in_confirmed():
    filters = only_and_branch(segments.unconfirmed("11", "22"))
    assert filters == [
        {"filterType": "IN_LIST", "listId": "11", "operator": "IN_LIST"},
        {"filterType": "IN_LIST", "listId": "22", "operator": "NOT_IN_LIST"},
    ]
