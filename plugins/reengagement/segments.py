"""Who is in each segment of the campaign, as HubSpot list filters (ARCHITECTURE.md §3).

HubSpot evaluates these filters itself, so building a segment costs one call however large the portal
is. Filter branches follow HubSpot's enforced shape: an OR root holding AND branches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DAYS_PER_WEEK = 7

BOOL, ENUMERATION, STRING, DATETIME, DATE, NUMBER = "bool", "enumeration", "string", "datetime", "date", "number"
#: Contacts HubSpot skips at send, or that already confirmed through double opt-in, are not asked.
MARKETABLE = "hs_marketable_status"
CONFIRMATION = "hs_emailconfirmationstatus"
HARD_BOUNCE = "hs_email_hard_bounce_reason_enum"
QUARANTINED = "hs_email_quarantined"
DATES = ("createdate", "hs_email_last_open_date", "hs_email_last_click_date")
#: The optional engagement signals' properties (HubSpot's default contact properties).
DELIVERED = "hs_email_delivered"
LAST_VISIT = "hs_analytics_last_visit_timestamp"
LAST_FORM = "recent_conversion_date"
STAGE = "lifecyclestage"


@dataclass(frozen=True)
class Signals:
    """Optional narrowing of "unengaged" beyond the inactivity rule; every one off by default.

    :param min_emails_delivered: at least this many marketing emails delivered (``hs_email_delivered``).
    :param spare_recent_activity: no website visit nor form submission within the inactivity window.
    :param exclude_lifecycle_stages: not in these lifecycle stages (a contact with none stays).
    :param focus_list_id: in this list (the focus email's non-openers).
    """

    min_emails_delivered: int = 0
    spare_recent_activity: bool = False
    exclude_lifecycle_stages: tuple[str, ...] = ()
    focus_list_id: str | None = None

    @classmethod
    def of(
        cls,
        min_emails_delivered: int | str | None = 0,
        spare_recent_activity: bool | str | None = False,
        exclude_lifecycle_stages: Sequence[str] | str | None = (),
        focus_list_id: str | int | None = None,
    ) -> Signals:
        """From task arguments, which arrive as rendered text (``"0"``, ``"False"``, a JSON list, ``"None"``)."""
        stages = exclude_lifecycle_stages
        if isinstance(stages, str):
            stages = json.loads(stages) if stages.strip() else []
        focus = None if focus_list_id in (None, "", "None") else str(focus_list_id)
        spare = spare_recent_activity
        return cls(
            min_emails_delivered=int(min_emails_delivered or 0),
            spare_recent_activity=spare.strip().lower() == "true" if isinstance(spare, str) else bool(spare),
            exclude_lifecycle_stages=tuple(str(s) for s in stages or ()),
            focus_list_id=focus,
        )

    def properties(self) -> list[str]:
        """The contact properties the signals that are on read."""
        return [
            *([DELIVERED] if self.min_emails_delivered else []),
            *([LAST_VISIT, LAST_FORM] if self.spare_recent_activity else []),
            *([STAGE] if self.exclude_lifecycle_stages else []),
        ]

    def filters(self, days: int) -> dict[str, list[dict[str, Any]]]:
        """Each signal that is on, as the list filters it adds (by signal name)."""
        found: dict[str, list[dict[str, Any]]] = {}
        if self.min_emails_delivered:
            operation = {
                "operationType": "NUMBER",
                "operator": "IS_GREATER_THAN_OR_EQUAL_TO",
                "value": self.min_emails_delivered,
                "includeObjectsWithNoValueSet": False,
            }
            found["min_emails_delivered"] = [{"filterType": "PROPERTY", "property": DELIVERED, "operation": operation}]
        if self.spare_recent_activity:
            found["spare_recent_activity"] = [
                _older_than(LAST_VISIT, days, or_never=True),
                _older_than(LAST_FORM, days, or_never=True),
            ]
        if self.exclude_lifecycle_stages:
            operation = {
                "operationType": "ENUMERATION",
                "operator": "IS_NONE_OF",
                "values": list(self.exclude_lifecycle_stages),
                "includeObjectsWithNoValueSet": True,
            }
            found["exclude_lifecycle_stages"] = [{"filterType": "PROPERTY", "property": STAGE, "operation": operation}]
        if self.focus_list_id:
            found["focus_email"] = [in_list(self.focus_list_id)]
        return found


def optout_property(subscription_id: str | int) -> str:
    """The contact property HubSpot keeps per subscription type: "Opted out of email: <type>"."""
    return f"hs_email_optout_{subscription_id}"


def property_names(subscription_id: str | int, signals: Signals | None = None) -> list[str]:
    """Every contact property the unengaged filter reads (preflight reads their types)."""
    return [
        *(signals.properties() if signals else []),
        "email",
        "hs_email_optout",
        optout_property(subscription_id),
        *DATES,
        MARKETABLE,
        CONFIRMATION,
        HARD_BOUNCE,
        QUARANTINED,
    ]


def hubspot_types(subscription_id: str | int) -> dict[str, str]:
    """The types HubSpot gives these properties (contact property definitions of real portals)."""
    return {
        "email": STRING,
        "hs_email_optout": BOOL,
        optout_property(subscription_id): ENUMERATION,
        **dict.fromkeys(DATES, DATETIME),
        MARKETABLE: ENUMERATION,
        CONFIRMATION: ENUMERATION,
        HARD_BOUNCE: ENUMERATION,
        QUARANTINED: BOOL,
        DELIVERED: NUMBER,
        LAST_VISIT: DATETIME,
        LAST_FORM: DATETIME,
        STAGE: ENUMERATION,
    }


def _fitting_types(subscription_id: str | int) -> dict[str, tuple[str, ...]]:
    """Types a filter can be built for, per property; the others are only tested for a value (any type)."""
    yes_no = (BOOL, ENUMERATION)
    return {
        "hs_email_optout": yes_no,
        optout_property(subscription_id): yes_no,
        MARKETABLE: yes_no,
        QUARANTINED: yes_no,
        **dict.fromkeys((*DATES, LAST_VISIT, LAST_FORM), (DATETIME, DATE)),
        DELIVERED: (NUMBER,),
        STAGE: (ENUMERATION,),
    }


def type_problems(
    subscription_id: str | int, types: Mapping[str, str | None], signals: Signals | None = None
) -> list[str]:
    """What keeps the unengaged filter from being built on a portal with these property types."""
    fitting = _fitting_types(subscription_id)
    problems = []
    for name in property_names(subscription_id, signals):
        kind = types.get(name)
        if kind is None:
            problems.append(
                f"Contact property {name!r} does not exist in the portal; the unengaged list filters on it."
            )
        elif name in fitting and kind not in fitting[name]:
            problems.append(
                f"Contact property {name!r} has type {kind!r}; the unengaged list needs one of "
                f"{', '.join(fitting[name])}."
            )
    return problems


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


def _is_not(prop: str, value: bool, kind: str) -> dict[str, Any]:
    """``prop`` is not ``value``; a contact with no value passes (most contacts never set these properties).

    HubSpot refuses an operation that does not fit the property's type: a ``bool`` property takes BOOL,
    an ``enumeration`` of "true"/"false" (such as the per-subscription opt-out) takes ENUMERATION.
    """
    if kind == BOOL:
        operation = {"operationType": "BOOL", "operator": "IS_NOT_EQUAL_TO", "value": value}
    elif kind == ENUMERATION:
        operation = {"operationType": "ENUMERATION", "operator": "IS_NONE_OF", "values": [str(value).lower()]}
    else:
        raise ValueError(f"contact property {prop!r} has type {kind!r}; a yes/no filter needs bool or enumeration")
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {**operation, "includeObjectsWithNoValueSet": True},
    }


def _unknown(prop: str) -> dict[str, Any]:
    """``prop`` has no value, whatever its type."""
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {"operationType": "ALL_PROPERTY", "operator": "IS_UNKNOWN", "includeObjectsWithNoValueSet": True},
    }


def _older_than(prop: str, days: int, *, or_never: bool) -> dict[str, Any]:
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {
            "operationType": "ROLLING_DATE_RANGE",
            "operator": "IS_MORE_THAN_X_DAYS_AGO",
            "numberOfDays": days,
            "requiresTimeZoneConversion": False,
            "includeObjectsWithNoValueSet": or_never,
        },
    }


def in_list(list_id: str, *, negate: bool = False) -> dict[str, Any]:
    return {"filterType": "IN_LIST", "listId": str(list_id), "operator": "NOT_IN_LIST" if negate else "IN_LIST"}


def unengaged(
    subscription_id: str,
    inactivity_weeks: int | str,
    property_types: Mapping[str, str] | str | None = None,
    **signals: Any,
) -> dict[str, Any]:
    """Step 2: mailable contacts with no marketing-email open or click for ``inactivity_weeks`` (or never).

    Contacts younger than the window are left out: they have not had the chance to open anything.
    Contacts already unsubscribed, from all email or from the subscription type, are left out too:
    mailing them would itself be a violation. So are those HubSpot would not send to (non-marketing,
    double opt-in pending, hard-bounced, quarantined) and those who already confirmed through double
    opt-in: HubSpot's procedure asks only contacts who have not. A contact with no confirmation status
    never entered double opt-in; one with no marketing status is kept (HubSpot decides at send, and a
    contact it does not send to is never opted out).

    ``property_types`` (name -> HubSpot type, as preflight read them; a JSON object when templated)
    decides each filter's operation; without it, HubSpot's usual types are assumed. ``signals`` are the
    optional :class:`Signals` (as keyword arguments), each adding its filters to the same AND branch.
    """
    days = int(inactivity_weeks) * DAYS_PER_WEEK  # templated values arrive as strings
    extra = [f for found in Signals.of(**signals).filters(days).values() for f in found]
    types = {**hubspot_types(subscription_id), **_types(property_types)}
    optout = optout_property(subscription_id)
    return _branch(
        [
            {
                "filterType": "PROPERTY",
                "property": "email",
                "operation": {
                    "operationType": "ALL_PROPERTY",
                    "operator": "IS_KNOWN",
                    "includeObjectsWithNoValueSet": False,
                },
            },
            _is_not("hs_email_optout", True, types["hs_email_optout"]),
            _is_not(optout, True, types[optout]),
            _is_not(MARKETABLE, False, types[MARKETABLE]),
            _unknown(CONFIRMATION),
            _unknown(HARD_BOUNCE),
            _is_not(QUARANTINED, True, types[QUARANTINED]),
            _older_than("createdate", days, or_never=False),
            _older_than("hs_email_last_open_date", days, or_never=True),
            _older_than("hs_email_last_click_date", days, or_never=True),
            *extra,
        ]
    )


def _types(property_types: Mapping[str, str] | str | None) -> dict[str, str]:
    if not property_types:
        return {}
    if isinstance(property_types, str):
        property_types = json.loads(property_types) or {}
    if not isinstance(property_types, Mapping):
        raise ValueError(f"property_types must map property names to types, not {property_types!r}")
    return {str(name): str(kind) for name, kind in property_types.items() if kind}


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
        return (
            isinstance(existing, list)
            and len(existing) == len(requested)
            and all(same_definition(a, b) for a, b in zip(requested, existing, strict=True))
        )
    if isinstance(requested, (int, str)) and not isinstance(requested, bool) and isinstance(existing, (int, str)):
        return str(requested) == str(existing)
    return bool(requested == existing)


SEGMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "unengaged": unengaged,
    "snapshot_of": snapshot_of,
    "unconfirmed": unconfirmed,
}


def build(segment: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """The filter branch of a named segment (``None`` for a MANUAL list)."""
    if segment is None:
        return None
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}; known: {', '.join(SEGMENTS)}")
    return SEGMENTS[segment](**args)
