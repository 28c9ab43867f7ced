"""Who is in each segment of the campaign, as HubSpot list filters (ARCHITECTURE.md §3).

HubSpot evaluates these filters itself, so building a segment costs one call however large the portal
is. Filter branches follow HubSpot's enforced shape: an OR root holding AND branches.
"""

from __future__ import annotations

from typing import Any

DAYS_PER_WEEK = 7


def _branch(filters: list[dict[str, Any]]) -> dict[str, Any]:
    """HubSpot's required shape: an OR root with one AND branch holding ``filters``."""
    return {
        "filterBranchType": "OR",
        "filterBranchOperator": "OR",
        "filters": [],
        "filterBranches": [
            {"filterBranchType": "AND", "filterBranchOperator": "AND", "filters": filters, "filterBranches": []}
        ],
    }


def _not_true(prop: str) -> dict[str, Any]:
    # "is not true" must let contacts with no value through: most contacts never set these properties.
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {"operationType": "BOOL", "operator": "IS_NOT_EQUAL_TO", "value": True,
                      "includeObjectsWithNoValueSet": True},
    }


def _older_than(prop: str, days: int, *, or_never: bool) -> dict[str, Any]:
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {"operationType": "ROLLING_DATE_RANGE", "operator": "IS_MORE_THAN_X_DAYS_AGO",
                      "numberOfDays": days, "requiresTimeZoneConversion": False,
                      "includeObjectsWithNoValueSet": or_never},
    }


def in_list(list_id: str, *, negate: bool = False) -> dict[str, Any]:
    return {"filterType": "IN_LIST", "listId": str(list_id), "operator": "NOT_IN_LIST" if negate else "IN_LIST"}


def unengaged(subscription_id: str, inactivity_weeks: int | str) -> dict[str, Any]:
    """Step 2: mailable contacts with no marketing-email open or click for ``inactivity_weeks`` (or never).

    Contacts younger than the window are left out: they have not had the chance to open anything.
    Contacts already unsubscribed, from all email or from the subscription type, are left out too:
    mailing them would itself be a violation.
    """
    days = int(inactivity_weeks) * DAYS_PER_WEEK  # templated values arrive as strings
    return _branch([
        {"filterType": "PROPERTY", "property": "email",
         "operation": {"operationType": "ALL_PROPERTY", "operator": "IS_KNOWN", "includeObjectsWithNoValueSet": False}},
        _not_true("hs_email_optout"),
        _not_true(f"hs_email_optout_{subscription_id}"),
        _older_than("createdate", days, or_never=False),
        _older_than("hs_email_last_open_date", days, or_never=True),
        _older_than("hs_email_last_click_date", days, or_never=True),
    ])


def snapshot_of(list_id: str) -> dict[str, Any]:
    """The recipients of a round: a SNAPSHOT of its audience, so who was sent stays inspectable."""
    return _branch([in_list(list_id)])


def unconfirmed(recipients_list_id: str, confirmed_list_id: str) -> dict[str, Any]:
    """List 2: the round's recipients not in list 1. DYNAMIC, so a late confirmation removes a contact."""
    return _branch([in_list(recipients_list_id), in_list(confirmed_list_id, negate=True)])


def same_definition(requested: Any, existing: Any) -> bool:
    """Whether a list HubSpot already has matches the definition we would create.

    HubSpot echoes filters back normalised (defaults filled in, ids as strings), so every value we
    asked for must be there, equal; keys HubSpot added are ignored, extra filters are not.
    """
    if isinstance(requested, dict):
        return isinstance(existing, dict) and all(
            same_definition(value, existing.get(key)) for key, value in requested.items()
        )
    if isinstance(requested, list):
        return (isinstance(existing, list) and len(existing) == len(requested)
                and all(same_definition(a, b) for a, b in zip(requested, existing, strict=True)))
    if isinstance(requested, (int, str)) and not isinstance(requested, bool) and isinstance(existing, (int, str)):
        return str(requested) == str(existing)
    return bool(requested == existing)


SEGMENTS = {"unengaged": unengaged, "snapshot_of": snapshot_of, "unconfirmed": unconfirmed}


def build(segment: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """The filter branch of a named segment (``None`` for a MANUAL list)."""
    if segment is None:
        return None
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}; known: {', '.join(SEGMENTS)}")
    return SEGMENTS[segment](**args)
