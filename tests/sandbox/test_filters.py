"""List filters: each operation against hand-made contacts, IN_LIST chains, and the structure HubSpot enforces."""

from __future__ import annotations

import time

import pytest
from hubspot.crm.lists import ApiException, ListCreateRequest, ListFilterUpdateRequest

from include.hubspot_sandbox import errors, filters

DAY_MS = 86_400_000
MARKETING = 33583163


@pytest.fixture
def portal(sandbox):
    """Five hand-made contacts (plus the seeded subscription types) and lists that process and follow instantly."""
    sandbox.admin("POST", "seed", {"contacts": 0})
    sandbox.admin("PUT", "settings", {"list_processing_seconds": 0, "list_lag_seconds": 0})
    now = int(time.time() * 1000)
    ids = sandbox.admin(
        "POST",
        "contacts",
        {
            "contacts": [
                {
                    "email": "ada@example.com",
                    "firstname": "Ada",
                    "createdate": now - 400 * DAY_MS,
                    "last_open": now - 10 * DAY_MS,
                },
                {
                    "email": "bo@test.org",
                    "firstname": "Bo",
                    "createdate": now - 30 * DAY_MS,
                    "last_open": now - 400 * DAY_MS,
                    "optout": True,
                },
                {"firstname": "", "createdate": now - 800 * DAY_MS},
                {
                    "email": "cy_1%@example.com",
                    "firstname": "Cy",
                    "createdate": now - 5 * DAY_MS,
                    "last_click": now - 2 * DAY_MS,
                },
                {"email": "di@test.org", "createdate": now - 100 * DAY_MS, "last_open": now + 3 * DAY_MS},
            ]
        },
    )["ids"]
    sandbox.ids = dict(zip(("ada", "bo", "blank", "cy", "di"), ids, strict=True))
    return sandbox


def branch(*and_branches):
    children = [
        {"filterBranchType": "AND", "filterBranchOperator": "AND", "filterBranches": [], "filters": list(fs)}
        for fs in and_branches
    ]
    return {"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": children}


def prop(name, operation_type, operator, include=False, **fields):
    return {
        "filterType": "PROPERTY",
        "property": name,
        "operation": {
            "operationType": operation_type,
            "operator": operator,
            "includeObjectsWithNoValueSet": include,
            **fields,
        },
    }


def create_list(client, name, *and_branches, processing_type="DYNAMIC"):
    request = ListCreateRequest(
        name=name, object_type_id="0-1", processing_type=processing_type, filter_branch=branch(*and_branches)
    )
    return client.crm.lists.lists_api.create(request).list.list_id


def member_names(client, portal, list_id) -> set[str]:
    names = {v: k for k, v in portal.ids.items()}
    page = client.crm.lists.memberships_api.get_page(list_id, limit=250)
    return {names[r.record_id] for r in page.results}


def caught_up(client, portal, list_id, expected: set[str], timeout: float = 10.0) -> set[str]:
    """The members once they equal ``expected``: HubSpot shows a DYNAMIC list's changes after a lag."""
    deadline = time.monotonic() + timeout
    while (found := member_names(client, portal, list_id)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


_counter = iter(range(1_000_000))


def matches(client, portal, *filters_) -> set[str]:
    return member_names(client, portal, create_list(client, f"filter test {next(_counter)}", filters_))


def error_of(client, *and_branches) -> ApiException:
    with pytest.raises(ApiException) as err:
        create_list(client, "bad filters", *and_branches)
    return err.value


# -- property operations ------------------------------------------------------------------------------------


def test_all_property_known_and_unknown(client, portal):
    assert matches(client, portal, prop("email", "ALL_PROPERTY", "IS_KNOWN")) == {"ada", "bo", "cy", "di"}
    assert matches(client, portal, prop("hs_email_last_open_date", "ALL_PROPERTY", "IS_UNKNOWN", True)) == {
        "blank",
        "cy",
    }
    # An empty string is no value, as on HubSpot.
    assert matches(client, portal, prop("firstname", "ALL_PROPERTY", "IS_UNKNOWN")) == {"blank", "di"}


def test_rolling_date_ranges_and_no_value_flag(client, portal):
    last_open = "hs_email_last_open_date"
    rolling = {"requiresTimeZoneConversion": False}
    assert matches(
        client, portal, prop(last_open, "ROLLING_DATE_RANGE", "IS_MORE_THAN_X_DAYS_AGO", numberOfDays=364, **rolling)
    ) == {"bo"}
    assert matches(
        client,
        portal,
        prop(last_open, "ROLLING_DATE_RANGE", "IS_MORE_THAN_X_DAYS_AGO", True, numberOfDays=364, **rolling),
    ) == {"bo", "blank", "cy"}
    assert matches(
        client, portal, prop(last_open, "ROLLING_DATE_RANGE", "IS_LESS_THAN_X_DAYS_AGO", numberOfDays=30, **rolling)
    ) == {"ada"}
    assert matches(
        client, portal, prop(last_open, "ROLLING_DATE_RANGE", "IS_LESS_THAN_X_DAYS_FROM_NOW", numberOfDays=5, **rolling)
    ) == {"di"}
    assert (
        matches(
            client,
            portal,
            prop(last_open, "ROLLING_DATE_RANGE", "IS_MORE_THAN_X_DAYS_FROM_NOW", numberOfDays=5, **rolling),
        )
        == set()
    )


def test_time_point_indexed_and_date(client, portal):
    indexed = {
        "timeType": "INDEXED",
        "timezoneSource": "CUSTOM",
        "zoneId": "Europe/Berlin",
        "indexReference": {"referenceType": "TODAY"},
        "offset": {"weeks": -52},
    }
    before = prop(
        "hs_email_last_open_date",
        "TIME_POINT",
        "IS_BEFORE",
        type="TIME_POINT",
        timePoint=indexed,
        endpointBehavior="EXCLUSIVE",
        propertyParser="VALUE",
    )
    assert matches(client, portal, before) == {"bo"}
    now_point = {"timeType": "INDEXED", "zoneId": "UTC", "indexReference": {"referenceType": "NOW"}}
    after_now = prop("hs_email_last_open_date", "TIME_POINT", "IS_AFTER", type="TIME_POINT", timePoint=now_point)
    assert matches(client, portal, after_now) == {"di"}
    date = {"timeType": "DATE", "zoneId": "UTC", "year": 2000, "month": 1, "day": 1}
    created_after = prop("createdate", "TIME_POINT", "IS_AFTER", type="TIME_POINT", timePoint=date)
    assert matches(client, portal, created_after) == {"ada", "bo", "blank", "cy", "di"}


def test_time_ranged_between_and_not_between(client, portal):
    def point(days):
        return {
            "timeType": "INDEXED",
            "zoneId": "UTC",
            "indexReference": {"referenceType": "NOW"},
            "offset": {"days": days},
        }

    bounds = {"type": "TIME_RANGED", "lowerBoundTimePoint": point(-60), "upperBoundTimePoint": point(0)}
    assert matches(client, portal, prop("createdate", "TIME_RANGED", "IS_BETWEEN", **bounds)) == {"bo", "cy"}
    assert matches(client, portal, prop("createdate", "TIME_RANGED", "IS_NOT_BETWEEN", **bounds)) == {
        "ada",
        "blank",
        "di",
    }


def test_bool_equal_and_not_equal(client, portal):
    assert matches(client, portal, prop("hs_email_optout", "BOOL", "IS_EQUAL_TO", value=True)) == {"bo"}
    assert matches(client, portal, prop("hs_email_optout", "BOOL", "IS_NOT_EQUAL_TO", value=True)) == {
        "ada",
        "blank",
        "cy",
        "di",
    }


def _set_marketing_status(client, email: str, *, subscribed: bool) -> None:
    from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest

    request = PublicUpdateSubscriptionStatusRequest(
        email_address=email,
        subscription_id=str(MARKETING),
        legal_basis="LEGITIMATE_INTEREST_OTHER",
        legal_basis_explanation="filter test",
    )
    api = client.communication_preferences.status_api
    (api.subscribe if subscribed else api.unsubscribe)(request)


def test_per_subscription_optout_has_no_value_until_a_status_exists(client, portal):
    name = f"hs_email_optout_{MARKETING}"
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_NONE_OF", values=["true"])) == set()
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_NONE_OF", True, values=["true"])) == {
        "ada",
        "bo",
        "blank",
        "cy",
        "di",
    }


def test_per_subscription_optout_is_an_enumeration_of_true_and_false(client, portal):
    name = f"hs_email_optout_{MARKETING}"
    _set_marketing_status(client, "bo@test.org", subscribed=False)
    _set_marketing_status(client, "ada@example.com", subscribed=True)
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_ANY_OF", values=["true"])) == {"bo"}
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_NONE_OF", values=["true"])) == {"ada"}
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_NONE_OF", True, values=["TRUE"])) == {
        "ada",
        "blank",
        "cy",
        "di",
    }
    assert matches(client, portal, prop(name, "ENUMERATION", "IS_EXACTLY", values=["false"])) == {"ada"}


def test_a_bool_operation_on_the_per_subscription_enumeration_is_hubspots_400(client, portal):
    err = error_of(client, [prop(f"hs_email_optout_{MARKETING}", "BOOL", "IS_NOT_EQUAL_TO", True, value=True)])
    assert err.status == 400
    assert '"VALIDATION_ERROR"' in err.body
    assert "operationType BOOL cannot be used" in err.body and "enumeration" in err.body
    # Its values are the options "true" and "false", nothing else.
    assert (
        error_of(client, [prop(f"hs_email_optout_{MARKETING}", "ENUMERATION", "IS_ANY_OF", values=["yes"])]).status
        == 400
    )


def test_enumeration_options_match_whatever_their_case(client, portal):
    pending = prop(
        "hs_emailconfirmationstatus",
        "ENUMERATION",
        "IS_ANY_OF",
        values=["Confirmation Pending", "confirmation email sent"],
    )
    assert matches(client, portal, pending) == set()
    assert (
        error_of(client, [prop("hs_emailconfirmationstatus", "ENUMERATION", "IS_ANY_OF", values=["Pending"])]).status
        == 400
    )


def test_string_operators_are_case_insensitive_and_literal(client, portal):
    def string(operator, value, include=False):
        return matches(client, portal, prop("email", "STRING", operator, include, value=value))

    assert string("IS_EQUAL_TO", "ADA@example.com") == {"ada"}
    assert string("IS_NOT_EQUAL_TO", "ada@example.com") == {"bo", "cy", "di"}
    assert string("IS_NOT_EQUAL_TO", "ada@example.com", include=True) == {"bo", "blank", "cy", "di"}
    assert string("CONTAINS", "_1%") == {"cy"}
    assert string("CONTAINS", "a_") == set()  # LIKE wildcards are literal characters here
    assert string("DOES_NOT_CONTAIN", "example") == {"bo", "di"}
    assert string("STARTS_WITH", "B") == {"bo"}
    assert string("ENDS_WITH", "@TEST.ORG") == {"bo", "di"}


def test_multistring_matches_any_value(client, portal):
    assert matches(client, portal, prop("firstname", "MULTISTRING", "IS_EQUAL_TO", values=["ada", "cy"])) == {
        "ada",
        "cy",
    }
    assert matches(client, portal, prop("firstname", "MULTISTRING", "DOES_NOT_CONTAIN", values=["a", "y"])) == {"bo"}


def test_number_comparisons_and_ranges(client, portal):
    ada, cy = int(portal.ids["ada"]), int(portal.ids["cy"])

    def number(operator, value):
        return matches(client, portal, prop("hs_object_id", "NUMBER", operator, value=value))

    assert number("IS_EQUAL_TO", ada) == {"ada"}
    assert number("IS_NOT_EQUAL_TO", ada) == {"bo", "blank", "cy", "di"}
    assert number("IS_GREATER_THAN", cy) == {"di"}
    assert number("IS_GREATER_THAN_OR_EQUAL_TO", cy) == {"cy", "di"}
    assert number("IS_LESS_THAN", ada + 1) == {"ada"}
    assert number("IS_LESS_THAN_OR_EQUAL_TO", ada + 1) == {"ada", "bo"}
    ranged = {"lowerBound": ada + 1, "upperBound": cy}
    assert matches(client, portal, prop("hs_object_id", "NUMBER_RANGED", "IS_BETWEEN", **ranged)) == {
        "bo",
        "blank",
        "cy",
    }
    assert matches(client, portal, prop("hs_object_id", "NUMBER_RANGED", "IS_NOT_BETWEEN", **ranged)) == {"ada", "di"}


def test_enumeration_operators_on_a_single_select_property(client, seeded):
    seeded.admin("PUT", "settings", {"list_processing_seconds": 0})
    stage = {"subscriber", "lead", "marketingqualifiedlead", "customer"}
    total = len(seeded.admin("GET", "contacts")["results"])

    def count(operator, values, include=False):
        list_id = create_list(
            client,
            f"enum {operator} {values} {include}",
            [prop("lifecyclestage", "ENUMERATION", operator, include, values=values)],
        )
        return client.crm.lists.lists_api.get_by_id(list_id).list.size

    leads, customers = count("IS_ANY_OF", ["lead"]), count("IS_ANY_OF", ["customer"])
    assert leads > 0 and customers > 0
    assert count("IS_ANY_OF", ["lead", "customer"]) == leads + customers
    assert count("IS_NONE_OF", ["lead"]) == total - leads
    assert count("IS_EXACTLY", ["lead"]) == leads
    assert count("IS_EXACTLY", ["lead", "customer"]) == 0
    assert count("IS_NOT_EXACTLY", ["lead"]) == total - leads
    assert count("CONTAINS_ALL", ["LEAD"]) == leads
    assert count("DOES_NOT_CONTAIN_ALL", ["lead", "customer"]) == total
    assert count("IS_ANY_OF", sorted(stage)) == total


def test_datetime_and_ranged_date_operations(client, portal):
    now = int(time.time() * 1000)
    created = "createdate"
    assert matches(
        client,
        portal,
        prop(created, "DATETIME", "IS_BEFORE_DATE", timestamp=now - 200 * DAY_MS, requiresTimeZoneConversion=False),
    ) == {"ada", "blank"}
    assert matches(
        client,
        portal,
        prop(created, "DATETIME", "IS_AFTER_DATE", timestamp=now - 50 * DAY_MS, requiresTimeZoneConversion=False),
    ) == {"bo", "cy"}
    bounds = {"lowerBound": now - 200 * DAY_MS, "upperBound": now - 20 * DAY_MS, "requiresTimeZoneConversion": False}
    assert matches(client, portal, prop(created, "RANGED_DATE", "IS_BETWEEN", **bounds)) == {"bo", "di"}


def test_and_within_a_branch_or_across_branches(client, portal):
    known_email = prop("email", "ALL_PROPERTY", "IS_KNOWN")
    opted_out = prop("hs_email_optout", "BOOL", "IS_EQUAL_TO", value=True)
    first_cy = prop("firstname", "STRING", "IS_EQUAL_TO", value="Cy")
    list_id = create_list(client, "and-or", [known_email, opted_out], [first_cy])
    assert member_names(client, portal, list_id) == {"bo", "cy"}


def test_dynamic_list_with_a_rolling_filter_follows_the_clock(client, portal):
    list_id = create_list(
        client,
        "stale opens",
        [
            prop(
                "hs_email_last_open_date",
                "ROLLING_DATE_RANGE",
                "IS_MORE_THAN_X_DAYS_AGO",
                numberOfDays=364,
                requiresTimeZoneConversion=False,
            )
        ],
    )
    assert member_names(client, portal, list_id) == {"bo"}
    portal.admin("POST", "clock", {"advance_seconds": 400 * 86_400})
    assert caught_up(client, portal, list_id, {"ada", "bo", "di"}) == {"ada", "bo", "di"}


# -- IN_LIST ------------------------------------------------------------------------------------------------


def test_in_a_and_not_in_b_follows_changes_of_b(client, portal):
    lists, memberships = client.crm.lists.lists_api, client.crm.lists.memberships_api
    a = lists.create(ListCreateRequest(name="A", object_type_id="0-1", processing_type="MANUAL")).list.list_id
    b = lists.create(ListCreateRequest(name="B", object_type_id="0-1", processing_type="MANUAL")).list.list_id
    ids = portal.ids
    memberships.add(a, [ids["ada"], ids["bo"], ids["cy"]])
    memberships.add(b, [ids["bo"]])
    unconfirmed = create_list(
        client,
        "A minus B",
        [
            {"filterType": "IN_LIST", "listId": a, "operator": "IN_LIST"},
            {"filterType": "IN_LIST", "listId": b, "operator": "NOT_IN_LIST"},
        ],
    )
    assert member_names(client, portal, unconfirmed) == {"ada", "cy"}
    memberships.add(b, [ids["cy"]])
    assert caught_up(client, portal, unconfirmed, {"ada"}) == {"ada"}
    memberships.remove(b, [ids["bo"]])
    assert caught_up(client, portal, unconfirmed, {"ada", "bo"}) == {"ada", "bo"}
    # A chain: a DYNAMIC list over the DYNAMIC one follows too.
    chained = create_list(
        client,
        "chained",
        [
            {"filterType": "IN_LIST", "listId": unconfirmed, "operator": "IN_LIST"},
            prop("hs_email_optout", "BOOL", "IS_EQUAL_TO", value=False),
        ],
    )
    assert member_names(client, portal, chained) == {"ada"}
    memberships.add(b, [ids["ada"]])
    assert caught_up(client, portal, chained, set()) == set()


def test_in_list_to_a_missing_list_self_or_cycle_is_400(client, portal):
    err = error_of(client, [{"filterType": "IN_LIST", "listId": "987654", "operator": "IN_LIST"}])
    assert err.status == 400 and "987654" in err.body
    first = create_list(client, "first", [prop("email", "ALL_PROPERTY", "IS_KNOWN")])
    second = create_list(client, "second", [{"filterType": "IN_LIST", "listId": first, "operator": "IN_LIST"}])
    lists = client.crm.lists.lists_api
    for target in (first, second):
        request = ListFilterUpdateRequest(
            filter_branch=branch([{"filterType": "IN_LIST", "listId": second, "operator": "IN_LIST"}])
        )
        with pytest.raises(ApiException) as cyc:
            lists.update_list_filters(target, request)
        assert cyc.value.status == 400
        assert "itself" in cyc.value.body or "cycle" in cyc.value.body


def test_in_list_with_a_bad_operator_is_400(client, portal):
    first = create_list(client, "first", [prop("email", "ALL_PROPERTY", "IS_KNOWN")])
    assert error_of(client, [{"filterType": "IN_LIST", "listId": first, "operator": "IN"}]).status == 400


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_branch", "needle"),
    [
        ({"filterBranchType": "AND", "filterBranchOperator": "AND", "filters": [], "filterBranches": []}, "OR"),
        (
            {
                "filterBranchType": "OR",
                "filterBranchOperator": "OR",
                "filterBranches": [],
                "filters": [
                    {
                        "filterType": "PROPERTY",
                        "property": "email",
                        "operation": {"operationType": "ALL_PROPERTY", "operator": "IS_KNOWN"},
                    }
                ],
            },
            "root",
        ),
        ({"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": []}, "at least one"),
        (
            {
                "filterBranchType": "OR",
                "filterBranchOperator": "OR",
                "filters": [],
                "filterBranches": [
                    {"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": []}
                ],
            },
            "AND",
        ),
        (
            {"filterBranchType": "OR", "filterBranchOperator": "AND", "filters": [], "filterBranches": []},
            "filterBranchOperator",
        ),
        (
            {
                "filterBranchType": "OR",
                "filterBranchOperator": "OR",
                "filters": [],
                "filterBranches": [
                    {"filterBranchType": "AND", "filterBranchOperator": "AND", "filters": [], "filterBranches": []}
                ],
            },
            "at least one filter",
        ),
        ("OR", "JSON object"),
    ],
)
def test_filter_structure_other_than_or_of_ands_is_400(client, portal, filter_branch, needle):
    request = ListCreateRequest(
        name="bad", object_type_id="0-1", processing_type="DYNAMIC", filter_branch=filter_branch
    )
    with pytest.raises(ApiException) as err:
        client.crm.lists.lists_api.create(request)
    assert err.value.status == 400
    assert '"VALIDATION_ERROR"' in err.value.body
    assert needle in err.value.body


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        (prop("no_such_property", "ALL_PROPERTY", "IS_KNOWN"), "does not exist"),
        (prop("email", "NUMBER", "IS_EQUAL_TO", value=1), "cannot be used"),
        (
            prop(
                "email",
                "ROLLING_DATE_RANGE",
                "IS_MORE_THAN_X_DAYS_AGO",
                numberOfDays=1,
                requiresTimeZoneConversion=False,
            ),
            "cannot be used",
        ),
        (prop("hs_email_optout", "ENUMERATION", "IS_NONE_OF", values=["true"]), "cannot be used"),
        (prop("hs_marketable_status", "BOOL", "IS_EQUAL_TO", value=True), "cannot be used"),
        (prop("email", "STRING", "IS_GREATER_THAN", value="a"), "not valid"),
        (prop("hs_email_optout", "BOOL", "IS_EQUAL_TO", value="yes"), "boolean"),
        (prop("lifecyclestage", "ENUMERATION", "IS_ANY_OF", values=["vip"]), "options"),
        (
            prop(
                "createdate",
                "ROLLING_DATE_RANGE",
                "IS_MORE_THAN_X_DAYS_AGO",
                numberOfDays=-1,
                requiresTimeZoneConversion=False,
            ),
            "numberOfDays",
        ),
        (prop("createdate", "CALENDAR_DATE", "IS_EQUAL_TO", timeUnit="DAY"), "not supported"),
        (
            prop(
                "createdate",
                "TIME_POINT",
                "IS_BEFORE",
                type="TIME_POINT",
                timePoint={"timeType": "INDEXED", "zoneId": "UTC", "indexReference": {"referenceType": "WEEK"}},
            ),
            "not supported",
        ),
        (
            prop(
                "createdate",
                "TIME_POINT",
                "IS_BEFORE",
                type="TIME_POINT",
                timePoint={"timeType": "DATE", "zoneId": "Mars/Base", "year": 2020, "month": 1, "day": 1},
            ),
            "zoneId",
        ),
        (
            prop(
                "createdate",
                "TIME_POINT",
                "IS_BEFORE",
                type="TIME_POINT",
                timePoint={"timeType": "DATE", "zoneId": "UTC", "year": 2020, "month": 13, "day": 1},
            ),
            "valid date",
        ),
        (
            {
                "filterType": "EMAIL_EVENT",
                "level": "EMAIL_API_CAMPAIGN",
                "emailId": "1",
                "appId": "2",
                "operator": "OPENED",
            },
            "not supported by the sandbox",
        ),
        ({"property": "email"}, "filterType"),
    ],
)
def test_invalid_filters_are_400_with_a_clear_message(client, portal, item, needle):
    err = error_of(client, [item])
    assert err.status == 400
    assert needle in err.body


def test_update_filters_bumps_version_and_reprocesses(client, portal):
    list_id = create_list(client, "opens", [prop("email", "STRING", "ENDS_WITH", value="test.org")])
    assert member_names(client, portal, list_id) == {"bo", "di"}
    updated = client.crm.lists.lists_api.update_list_filters(
        list_id,
        ListFilterUpdateRequest(
            filter_branch=branch([prop("email", "STRING", "IS_EQUAL_TO", value="ada@example.com")])
        ),
    )
    assert updated.updated_list.list_version == 2
    assert updated.updated_list.filter_branch.filter_branches[0].filters[0].operation.value == "ada@example.com"
    assert member_names(client, portal, list_id) == {"ada"}


def test_snapshot_is_evaluated_once_dynamic_keeps_following(client, portal):
    rule = [prop("email", "STRING", "ENDS_WITH", value="@test.org")]
    snapshot = create_list(client, "snap", rule, processing_type="SNAPSHOT")
    dynamic = create_list(client, "dyn", rule)
    new_id = portal.admin("POST", "contacts", {"contacts": [{"email": "eve@test.org"}]})["ids"][0]
    portal.ids["eve"] = new_id
    assert member_names(client, portal, snapshot) == {"bo", "di"}
    assert caught_up(client, portal, dynamic, {"bo", "di", "eve"}) == {"bo", "di", "eve"}


# -- the pure module ----------------------------------------------------------------------------------------


def test_normalise_fills_hubspots_defaults():
    raw = {
        "filterBranchType": "OR",
        "filterBranches": [
            {
                "filterBranchType": "AND",
                "filters": [
                    {
                        "filterType": "PROPERTY",
                        "property": "hs_email_last_open_date",
                        "operation": {
                            "operationType": "ROLLING_DATE_RANGE",
                            "operator": "IS_MORE_THAN_X_DAYS_AGO",
                            "numberOfDays": 364,
                        },
                    },
                    {
                        "filterType": "PROPERTY",
                        "property": "createdate",
                        "operation": {
                            "operationType": "TIME_POINT",
                            "operator": "IS_BEFORE",
                            "timePoint": {"timeType": "INDEXED", "indexReference": {"referenceType": "TODAY"}},
                        },
                    },
                    {"filterType": "IN_LIST", "listId": 12, "operator": "NOT_IN_LIST"},
                ],
            }
        ],
    }
    result = filters.normalise(raw, "Europe/Berlin")
    root = result.branch
    assert root["filterBranchOperator"] == "OR" and root["filters"] == []
    child = root["filterBranches"][0]
    assert child["filterBranchOperator"] == "AND" and child["filterBranches"] == []
    rolling, point, in_list = child["filters"]
    assert rolling["operation"]["includeObjectsWithNoValueSet"] is False
    assert rolling["operation"]["requiresTimeZoneConversion"] is False
    assert point["operation"]["type"] == "TIME_POINT"
    assert point["operation"]["timePoint"]["zoneId"] == "Europe/Berlin"
    assert in_list["listId"] == "12"
    assert result.list_ids == {12}
    assert result.clock_dependent is True


def test_indexed_time_points_use_calendar_arithmetic_in_the_zone():
    now = 1_700_000_000_000  # 2023-11-14T22:13:20Z = 2023-11-14 23:13:20 in Berlin
    today = {"timeType": "INDEXED", "zoneId": "Europe/Berlin", "indexReference": {"referenceType": "TODAY"}}
    assert filters.time_point_ms(today, now) == 1_699_916_400_000  # 2023-11-14T00:00 Berlin
    month_back = {**today, "offset": {"months": -1}}
    assert filters.time_point_ms(month_back, now) == 1_697_234_400_000  # 2023-10-14T00:00 Berlin (summer time)


def test_normalise_rejects_a_non_object():
    with pytest.raises(errors.HubSpotError) as err:
        filters.normalise([])
    assert err.value.status_code == 400
