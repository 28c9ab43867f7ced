"""The segment filters have HubSpot's enforced shape and say what the campaign means."""

from __future__ import annotations

from reengagement import segments


def only_and_branch(branch):
    assert branch["filterBranchType"] == "OR" and branch["filters"] == []
    (child,) = branch["filterBranches"]
    assert child["filterBranchType"] == "AND" and child["filterBranches"] == []
    return child["filters"]


def test_unengaged_needs_email_excludes_unsubscribed_and_young_and_counts_never_as_inactive():
    filters = {f["property"]: f["operation"] for f in only_and_branch(segments.unengaged("123", 52))}
    assert filters["email"]["operator"] == "IS_KNOWN"
    assert filters["hs_email_optout"]["includeObjectsWithNoValueSet"] is True
    assert filters["hs_email_optout_123"]["operator"] == "IS_NOT_EQUAL_TO"
    assert filters["createdate"]["numberOfDays"] == 364
    assert filters["createdate"]["includeObjectsWithNoValueSet"] is False
    for prop in ("hs_email_last_open_date", "hs_email_last_click_date"):
        assert filters[prop]["operator"] == "IS_MORE_THAN_X_DAYS_AGO"
        assert filters[prop]["includeObjectsWithNoValueSet"] is True


def test_unconfirmed_is_recipients_and_not_in_confirmed():
    filters = only_and_branch(segments.unconfirmed("11", "22"))
    assert filters == [{"filterType": "IN_LIST", "listId": "11", "operator": "IN_LIST"},
                       {"filterType": "IN_LIST", "listId": "22", "operator": "NOT_IN_LIST"}]
