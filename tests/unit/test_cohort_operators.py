"""Step 2's optional parts, each operator on its own against an in-memory HubSpot: the focus email's
non-openers as a MANUAL list, and the counts of what each engagement signal leaves out."""

from __future__ import annotations

from typing import Any

import pytest
from reengagement import segments
from reengagement.operators.focus import FocusNonOpenersOperator
from reengagement.operators.signals import SignalEffectsOperator

PORTAL = {"portalId": "42", "uiDomain": "app.hubspot.com"}


class FakeHubSpot:
    """Lists by name (sizes from a function of the definition), email events, contacts by address."""

    def __init__(self, events: dict[str, list[dict[str, Any]]] | None = None, size_of=None) -> None:
        self.events = events or {}
        self.contacts = {f"c{i}@example.com": str(100 + i) for i in range(10)}
        self.lists: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}
        self.size_of = size_of or (lambda definition: 0)
        self.portal = PORTAL
        self.created = 0

    def iter_email_events(self, campaign_id, event_type, *, exclude_filtered=True, **_):
        assert exclude_filtered
        return iter([e for e in self.events.get(event_type, []) if e["campaign"] == campaign_id])

    def contact_ids_by_email(self, emails):
        for email in dict.fromkeys(e.lower() for e in emails):
            if email in self.contacts:
                yield email, self.contacts[email]

    def add_to_list(self, list_id, record_ids):
        before = len(self.members[list_id])
        self.members[list_id] |= set(record_ids)
        return len(self.members[list_id]) - before

    def get_list_by_name(self, name):
        return self.lists.get(name)

    def create_list(self, name, processing_type, definition):
        self.created += 1
        list_id = str(1000 + len(self.lists))
        size = 0 if definition is None else self.size_of(definition)
        found = {"listId": list_id, "name": name, "processingType": processing_type, "size": size}
        if definition is not None:
            found["filterBranch"] = definition
        self.lists[name], self.members[list_id] = found, set()
        return found


class Ti:
    def __init__(self, preflight: dict[str, Any]) -> None:
        self.preflight = preflight

    def xcom_pull(self, task_ids: str) -> dict[str, Any]:
        assert task_ids == "preflight"
        return self.preflight


def event(campaign: str, address: str, **extra: Any) -> dict[str, Any]:
    return {"campaign": campaign, "recipient": address, **extra}


def focus_operator(hook: FakeHubSpot) -> FocusNonOpenersOperator:
    op = FocusNonOpenersOperator(task_id="build_focus_list", list_name="c · focus", portal_from="preflight")
    op.__dict__["hook"] = hook
    return op


def test_the_focus_list_holds_who_received_the_email_and_did_not_open_it_and_a_rerun_adds_nobody():
    hook = FakeHubSpot(
        events={
            "DELIVERED": [event("7", f"C{i}@example.com") for i in range(6)] + [event("8", "c6@example.com")],
            "OPEN": [
                event("7", "c0@example.com"),
                event("8", "c6@example.com"),
                event("7", "c1@example.com", filteredEvent=True),  # a machine open: c1 stays a non-opener
                event("9", "c2@example.com"),  # another email's open
            ],
        }
    )
    preflight = {
        "focus_email_id": "55",
        "focus_campaign_ids": ["7", "8"],
        **PORTAL,
        "portal_id": "42",
        "ui_domain": "x",
    }
    op = focus_operator(hook)
    first = op.execute({"ti": Ti(preflight)})
    assert first == {"list_id": "1000", "received": 7, "opened": 2, "non_openers": 5}
    assert hook.members["1000"] == {"101", "102", "103", "104", "105"}
    assert op.execute({"ti": Ti(preflight)}) == first  # adopted by name, nothing added twice
    assert hook.created == 1


def test_without_a_focus_email_the_focus_task_calls_nothing():
    hook = FakeHubSpot()
    op = focus_operator(hook)
    assert op.execute({"ti": Ti({"portal_id": "42"})})["list_id"] is None
    assert hook.lists == {}


def test_signals_arrive_as_rendered_text_and_turn_into_their_filters():
    signals = segments.Signals.of("10", "True", '["customer", "lead"]', "None")
    assert signals == segments.Signals(10, True, ("customer", "lead"), None)
    assert segments.Signals.of("0", "False", "[]", "") == segments.Signals()
    filters = signals.filters(days=364)
    assert list(filters) == ["min_emails_delivered", "spare_recent_activity", "exclude_lifecycle_stages"]
    (delivered,) = filters["min_emails_delivered"]
    assert delivered["operation"]["operator"] == "IS_GREATER_THAN_OR_EQUAL_TO" and delivered["operation"]["value"] == 10
    assert {f["property"] for f in filters["spare_recent_activity"]} == {segments.LAST_VISIT, segments.LAST_FORM}
    assert all(f["operation"]["includeObjectsWithNoValueSet"] for f in filters["spare_recent_activity"])
    (stages,) = filters["exclude_lifecycle_stages"]
    assert stages["operation"] == {
        "operationType": "ENUMERATION",
        "operator": "IS_NONE_OF",
        "values": ["customer", "lead"],
        "includeObjectsWithNoValueSet": True,
    }
    assert segments.Signals.of(focus_list_id="77").filters(364) == {"focus_email": [segments.in_list("77")]}


def test_the_unengaged_list_is_unchanged_with_every_signal_off_and_gains_their_filters_when_on():
    base = segments.unengaged("33583163", 52)
    assert segments.unengaged("33583163", "52", None, min_emails_delivered="0", exclude_lifecycle_stages="[]") == base
    narrowed = segments.unengaged("33583163", 52, None, min_emails_delivered=10, focus_list_id="77")
    base_filters = base["filterBranches"][0]["filters"]
    assert narrowed["filterBranches"][0]["filters"][: len(base_filters)] == base_filters
    assert len(narrowed["filterBranches"][0]["filters"]) == len(base_filters) + 2


def test_preflight_checks_the_signal_properties_only_when_their_signal_is_on():
    names = segments.property_names("1")
    assert segments.DELIVERED not in names
    signals = segments.Signals(min_emails_delivered=10, exclude_lifecycle_stages=("customer",))
    assert {segments.DELIVERED, segments.STAGE} <= set(segments.property_names("1", signals))
    types = {**segments.hubspot_types("1"), segments.DELIVERED: "string"}
    problems = segments.type_problems("1", types, signals)
    assert problems == [
        "Contact property 'hs_email_delivered' has type 'string'; the unengaged list needs one of number."
    ]


def signal_args(**signals: Any) -> dict[str, Any]:
    return {"subscription_id": "1", "inactivity_weeks": "52", "property_types": "{}", **signals}


def test_each_signal_is_counted_alone_against_the_cohort_before_signals():
    def size_of(definition):
        filters = definition["filterBranches"][0]["filters"]
        props = {f.get("property") for f in filters}
        return 1000 - 120 * (segments.DELIVERED in props) - 95 * (segments.LAST_VISIT in props)

    hook = FakeHubSpot(size_of=size_of)
    op = SignalEffectsOperator(
        task_id="count_signal_effects",
        list_name="c · unengaged",
        segment_args=signal_args(min_emails_delivered="10", spare_recent_activity="True", focus_list_id="None"),
        cohort={"list_id": "9", "size": 785},
    )
    op.__dict__["hook"] = hook
    result = op.execute({})
    assert result == {
        "before_signals": 1000,
        "removed_by": {"min_emails_delivered": 120, "spare_recent_activity": 95},
        "cohort": 785,
    }
    assert sorted(hook.lists) == [
        "c · unengaged before signals",
        "c · unengaged with min_emails_delivered only",
        "c · unengaged with spare_recent_activity only",
    ]
    assert op.execute({}) == result and hook.created == 3  # a rerun adopts the lists


@pytest.mark.parametrize("stages", ["[]", []])
def test_with_every_signal_off_nothing_is_counted_or_created(stages):
    hook = FakeHubSpot()
    op = SignalEffectsOperator(
        task_id="count_signal_effects",
        list_name="c · unengaged",
        segment_args=signal_args(min_emails_delivered="0", exclude_lifecycle_stages=stages),
        cohort={"size": 12},
    )
    op.__dict__["hook"] = hook
    assert op.execute({}) == {"cohort": 12, "removed_by": {}}
    assert hook.lists == {}
