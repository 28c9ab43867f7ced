"""Seeded cohort signals (deliveries, recent sessions and form submissions, lifecycle stage), the seeded focus
email ("received it and did not open it") and the ground truth each of them narrows."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from itertools import count

import pytest
from hubspot.crm.lists import ListCreateRequest
from reengagement import segments

from include.hubspot_sandbox.seeding import (
    DRAFT_EMAIL_NAME,
    FOCUS_EMAIL_NAME,
    MARKETING_SUBSCRIPTION_ID,
    PROFILES,
    SEND_BLOCKERS,
    SIGNAL_ROLES,
)

WEEK_MS = 7 * 86_400_000
EVENTS = "/email/public/v1/events"
NEW_DATETIMES = {
    "hs_analytics_last_visit_timestamp": ("Time of last session", "lastVisit"),
    "recent_conversion_date": ("Recent conversion date", "lastForm"),
}
_names = count()


@pytest.fixture
def portal(seeded):
    """The seeded portal (300 contacts, every profile), with lists that process and follow at once."""
    seeded.admin("PUT", "settings", {"list_processing_seconds": 0, "list_lag_seconds": 0})
    return seeded


def ms(stamp: str | None) -> int | None:
    if stamp is None:
        return None
    return int(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def admin_contacts(sandbox) -> list[dict]:
    return sandbox.admin("GET", "contacts")["results"]


def read_properties(sandbox, ids: list[str], names: list[str]) -> dict[str, dict]:
    """Each contact's properties as the contacts API (batch read) answers them."""
    found: dict[str, dict] = {}
    for start in range(0, len(ids), 100):
        response = sandbox.session.post(
            f"{sandbox.url}/crm/v3/objects/contacts/batch/read",
            json={
                "inputs": [{"id": i} for i in ids[start : start + 100]],
                "properties": names,
                "propertiesWithHistory": [],
            },
        )
        assert response.status_code == 200, response.text
        found.update({r["id"]: r["properties"] for r in response.json()["results"]})
    return found


def ground_truth(sandbox, **params) -> dict:
    return sandbox.admin("GET", "ground-truth", **params)


def base_cohort(contacts: list[dict]) -> set[str]:
    return {c["id"] for c in contacts if c["profile"] and PROFILES[c["profile"]].unengaged}


def list_members(client, sandbox, filter_branch: dict) -> set[str]:
    """The members of a new DYNAMIC list with this filter branch, once HubSpot's recomputation has caught up."""
    request = ListCreateRequest(
        name=f"signal test {next(_names)}", object_type_id="0-1", processing_type="DYNAMIC", filter_branch=filter_branch
    )
    list_id = client.crm.lists.lists_api.create(request).list.list_id
    sandbox.admin("POST", "lists/settle")
    ids, after = set(), None
    while True:
        page = client.crm.lists.memberships_api.get_page(list_id, after=after, limit=250)
        ids.update(r.record_id for r in page.results)
        if not page.paging or not page.paging.next:
            return ids
        after = page.paging.next.after


def all_events(sandbox, **params) -> list[dict]:
    events, offset = [], None
    while True:
        query = {**params, "limit": 1000, **({"offset": offset} if offset else {})}
        response = sandbox.session.get(f"{sandbox.url}{EVENTS}", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["events"])
        if not page["hasMore"]:
            return events
        offset = page["offset"]


def focus_email(sandbox) -> dict:
    return sandbox.admin("GET", "seeded-emails")["focus_email"]


# -- the seeded signals ------------------------------------------------------------------------------------


def test_every_signal_role_is_seeded_on_unengaged_contacts_and_reads_back_as_seeded(portal):
    contacts = admin_contacts(portal)
    now = int(time.time() * 1000)
    roles = Counter(c["signalRole"] for c in contacts)
    assert all(roles[role] >= 1 for role in SIGNAL_ROLES), roles
    assert set(roles) <= {None, *SIGNAL_ROLES}
    assert all(PROFILES[c["profile"]].unengaged for c in contacts if c["signalRole"])
    unengaged = [c for c in contacts if PROFILES[c["profile"]].unengaged]
    assert "customer" in {c["lifecycleStage"] for c in unengaged}

    names = ["hs_email_delivered", "lifecyclestage", *NEW_DATETIMES]
    api = read_properties(portal, [c["id"] for c in contacts], names)
    assert set(api) == {c["id"] for c in contacts}
    for c in contacts:
        values = api[c["id"]]
        assert int(values["hs_email_delivered"]) == c["deliveredBefore"] + c["emailsReceived"] - c["bounced"], c
        assert values["lifecyclestage"] == c["lifecycleStage"]
        for name, (_, field) in NEW_DATETIMES.items():
            assert ms(values.get(name)) == ms(c[field]), (c["id"], name)

    for c in unengaged:
        delivered, role = int(api[c["id"]]["hs_email_delivered"]), c["signalRole"]
        assert (1 <= delivered <= 9) if role == "few_deliveries" else (10 <= delivered <= 80), c
        for field, own_role in (("lastVisit", "recent_visit"), ("lastForm", "recent_form")):
            at = ms(c[field])
            if role == own_role:
                assert now - 21 * WEEK_MS <= at <= now - WEEK_MS + 60_000, c
            else:
                assert at is None or at < now - 60 * WEEK_MS, c
    assert any(c["lastVisit"] is None for c in unengaged) and any(
        c["lastVisit"] is not None and c["signalRole"] != "recent_visit" for c in unengaged
    )


def test_the_new_properties_are_defined_as_hubspot_types_them(portal):
    for name, (label, _) in NEW_DATETIMES.items():
        response = portal.session.get(f"{portal.url}/crm/v3/properties/contacts/{name}")
        assert response.status_code == 200, response.text
        assert (response.json()["type"], response.json()["label"]) == ("datetime", label)
    delivered = portal.session.get(f"{portal.url}/crm/v3/properties/contacts/hs_email_delivered").json()
    assert (delivered["type"], delivered["label"]) == ("number", "Marketing emails delivered")


def test_seeding_the_same_seed_again_gives_the_same_roles_and_focus_cohort(portal):
    first = {c["id"]: (c["profile"], c["signalRole"], c["deliveredBefore"]) for c in admin_contacts(portal)}
    truth = ground_truth(portal, focus_email_id=focus_email(portal)["id"])
    portal.admin("POST", "seed", {"contacts": 300, "seed": 7})
    again = {c["id"]: (c["profile"], c["signalRole"], c["deliveredBefore"]) for c in admin_contacts(portal)}
    assert again == first
    assert ground_truth(portal, focus_email_id=focus_email(portal)["id"])["unengaged"] == truth["unengaged"]


# -- the ground truth --------------------------------------------------------------------------------------


def test_the_default_ground_truth_is_the_unengaged_profiles_and_explicit_defaults_change_nothing(portal):
    contacts = admin_contacts(portal)
    for rounds in (1, 3):
        plain = ground_truth(portal, rounds=rounds)
        explicit = ground_truth(
            portal,
            rounds=rounds,
            min_emails_delivered=0,
            spare_recent_activity="false",
            exclude_lifecycle_stages="",
            inactivity_weeks=52,
        )
        assert explicit == plain
        assert plain["removed_by"] == dict.fromkeys(
            ("min_emails_delivered", "spare_recent_activity", "exclude_lifecycle_stages", "focus_email"), 0
        )
        assert set(plain["unengaged"]) == base_cohort(contacts)
        assert set(plain["never_mailed"]) == {c["id"] for c in contacts} - base_cohort(contacts)
        assert set(plain["confirmed"]) | set(plain["opt_out"]) | set(plain["unsubscribed_themselves"]) == set(
            plain["unengaged"]
        )


def _delivered_at_least(n: int) -> dict:
    return {
        "filterType": "PROPERTY",
        "property": "hs_email_delivered",
        "operation": {
            "operationType": "NUMBER",
            "operator": "IS_GREATER_THAN_OR_EQUAL_TO",
            "value": n,
            "includeObjectsWithNoValueSet": False,
        },
    }


def _no_activity_for(prop: str, days: int) -> dict:
    return {
        "filterType": "PROPERTY",
        "property": prop,
        "operation": {
            "operationType": "ROLLING_DATE_RANGE",
            "operator": "IS_MORE_THAN_X_DAYS_AGO",
            "numberOfDays": days,
            "requiresTimeZoneConversion": False,
            "includeObjectsWithNoValueSet": True,
        },
    }


def _stage_none_of(stages: list[str]) -> dict:
    return {
        "filterType": "PROPERTY",
        "property": "lifecyclestage",
        "operation": {
            "operationType": "ENUMERATION",
            "operator": "IS_NONE_OF",
            "values": stages,
            "includeObjectsWithNoValueSet": True,
        },
    }


SIGNAL_CASES = {
    "min_emails_delivered": ({"min_emails_delivered": 10}, [_delivered_at_least(10)]),
    "spare_recent_activity": (
        {"spare_recent_activity": "true", "inactivity_weeks": 52},
        [_no_activity_for("hs_analytics_last_visit_timestamp", 364), _no_activity_for("recent_conversion_date", 364)],
    ),
    "exclude_lifecycle_stages": (
        {"exclude_lifecycle_stages": "customer,lead"},
        [_stage_none_of(["customer", "lead"])],
    ),
}


@pytest.mark.parametrize("signal", sorted(SIGNAL_CASES))
def test_the_base_list_plus_one_signal_filter_holds_exactly_the_ground_truths_cohort(portal, client, signal):
    params, extra = SIGNAL_CASES[signal]
    base_truth = ground_truth(portal)["unengaged"]
    truth = ground_truth(portal, **params)
    branch = segments.unengaged(str(MARKETING_SUBSCRIPTION_ID), 52)
    branch["filterBranches"][0]["filters"].extend(extra)
    assert list_members(client, portal, branch) == set(truth["unengaged"])
    removed = truth["removed_by"]
    assert removed[signal] > 0 and len(base_truth) - removed[signal] == len(truth["unengaged"])
    assert all(n == 0 for name, n in removed.items() if name != signal)
    assert set(truth["never_mailed"]) >= set(base_truth) - set(truth["unengaged"])


def test_min_emails_delivered_keeps_a_contact_with_exactly_that_many(portal, client):
    unengaged = [c for c in admin_contacts(portal) if PROFILES[c["profile"]].unengaged]
    at_median = sorted(unengaged, key=lambda c: c["deliveredBefore"])[len(unengaged) // 2]
    threshold = at_median["deliveredBefore"]
    truth = ground_truth(portal, min_emails_delivered=threshold)
    assert at_median["id"] in truth["unengaged"]
    assert set(truth["unengaged"]) == {c["id"] for c in unengaged if c["deliveredBefore"] >= threshold}
    branch = segments.unengaged(str(MARKETING_SUBSCRIPTION_ID), 52)
    branch["filterBranches"][0]["filters"].append(_delivered_at_least(threshold))
    assert list_members(client, portal, branch) == set(truth["unengaged"])


def test_the_roles_are_what_the_signals_remove(portal):
    contacts = admin_contacts(portal)
    by_role = Counter(c["signalRole"] for c in contacts)
    removed = ground_truth(portal, min_emails_delivered=10, spare_recent_activity="true")["removed_by"]
    assert removed["min_emails_delivered"] == by_role["few_deliveries"]
    assert removed["spare_recent_activity"] == by_role["recent_visit"] + by_role["recent_form"]
    narrower = ground_truth(portal, spare_recent_activity="true", inactivity_weeks=10)["removed_by"]
    assert 0 < narrower["spare_recent_activity"] < removed["spare_recent_activity"]


def test_signals_combine_and_never_touch_the_contacts_outside_the_cohort(portal):
    contacts = admin_contacts(portal)
    focus_id = focus_email(portal)["id"]
    every = ground_truth(
        portal,
        rounds=2,
        focus_email_id=focus_id,
        min_emails_delivered=10,
        spare_recent_activity="true",
        exclude_lifecycle_stages="customer",
    )
    alone = [
        set(ground_truth(portal, rounds=2, **params)["unengaged"])
        for params in (
            {"focus_email_id": focus_id},
            {"min_emails_delivered": 10},
            {"spare_recent_activity": "true"},
            {"exclude_lifecycle_stages": "customer"},
        )
    ]
    assert set(every["unengaged"]) == set.intersection(*alone)
    assert set(every["unengaged"]) | set(every["never_mailed"]) == {c["id"] for c in contacts}
    plain = ground_truth(portal, rounds=2)
    for key in ("not_sendable", "double_opt_in_confirmed"):
        assert every[key] == plain[key]
    for key in ("confirmed", "opt_out", "unsubscribed_themselves"):
        assert set(every[key]) == set(plain[key]) & set(every["unengaged"])


@pytest.mark.parametrize(
    "params",
    [
        {"rounds": "0"},
        {"focus_email_id": "abc"},
        {"focus_email_id": "999"},
        {"min_emails_delivered": "-1"},
        {"min_emails_delivered": "many"},
        {"spare_recent_activity": "maybe"},
        {"inactivity_weeks": "0"},
        {"inactivity_weeks": "1.5"},
    ],
)
def test_bad_ground_truth_parameters_are_400(portal, params):
    response = portal.session.get(f"{portal.url}/_sandbox/ground-truth", params=params)
    assert response.status_code == 400
    assert response.json()["message"]


# -- the focus email ---------------------------------------------------------------------------------------


def test_the_focus_and_draft_emails_are_seeded_and_readable(portal):
    seeded = portal.admin("GET", "seeded-emails")
    assert seeded["focus_email"]["name"] == FOCUS_EMAIL_NAME and seeded["draft_email"]["name"] == DRAFT_EMAIL_NAME
    focus = portal.session.get(f"{portal.url}/marketing/v3/emails/{seeded['focus_email']['id']}").json()
    assert focus["state"] == "PUBLISHED" and focus["isPublished"] is True
    assert focus["allEmailCampaignIds"] == [focus["primaryEmailCampaignId"]]
    published = ms(focus["publishedAt"])
    assert abs(published - (int(time.time() * 1000) - 30 * WEEK_MS)) < 3_600_000
    draft = portal.session.get(f"{portal.url}/marketing/v3/emails/{seeded['draft_email']['id']}").json()
    assert draft["state"] == "DRAFT" and draft["allEmailCampaignIds"] == [] and "primaryEmailCampaignId" not in draft
    draft_campaign = int(focus["primaryEmailCampaignId"]) + 1  # reserved for the draft, never sent
    assert all_events(portal, campaignId=draft_campaign) == []


def test_the_focus_email_events_give_the_ground_truths_focus_cohort(portal):
    contacts = admin_contacts(portal)
    by_email = {c["email"]: c for c in contacts if c["email"]}
    seeded = focus_email(portal)
    campaign = portal.session.get(f"{portal.url}/marketing/v3/emails/{seeded['id']}").json()["primaryEmailCampaignId"]
    events = all_events(portal, campaignId=campaign)
    ids = {
        kind: {by_email[e["recipient"]]["id"] for e in events if e["type"] == kind}
        for kind in ("SENT", "DELIVERED", "BOUNCE", "OPEN")
    }
    real_opens = all_events(portal, campaignId=campaign, eventType="OPEN", excludeFilteredEvents="true")
    opened = {by_email[e["recipient"]]["id"] for e in real_opens}
    machine = {by_email[e["recipient"]]["id"] for e in events if e["type"] == "OPEN" and e["filteredEvent"]}
    assert all(e["filteredEvent"] is False for e in real_opens)
    assert machine and opened and not machine & opened and ids["OPEN"] == machine | opened

    profile = {c["id"]: c["profile"] for c in contacts}
    assert ids["SENT"] == ids["DELIVERED"] | ids["BOUNCE"] and not ids["DELIVERED"] & ids["BOUNCE"]
    sent = {e["recipient"]: e for e in events if e["type"] == "SENT"}
    for event in events:
        origin = sent[event["recipient"]]
        assert event["sentBy"] == {"id": origin["id"], "created": origin["created"]}
        assert event["created"] >= origin["created"]
    assert {profile[i] for i in opened} == {"engaged"}
    assert all(PROFILES[profile[i]].unengaged for i in machine)
    never = {"no_email", "already_unsubscribed", "subscription_optout", "recently_created"}
    assert not {profile[i] for i in ids["SENT"]} & (never | set(SEND_BLOCKERS) - {"hard_bounced"})
    sendable = [c for c in contacts if c["profile"] not in never | set(SEND_BLOCKERS)]
    assert 0.4 < len(ids["SENT"]) / len(sendable) < 0.8

    truth = ground_truth(portal, focus_email_id=seeded["id"])
    base = set(ground_truth(portal)["unengaged"])
    focus = ids["DELIVERED"] - opened
    assert focus >= set(truth["unengaged"]) and focus & base == set(truth["unengaged"])
    assert truth["removed_by"]["focus_email"] == len(base - focus) > 0
    assert machine & set(truth["unengaged"]), "a machine open must not take a contact out of the focus cohort"


def test_real_opens_move_last_open_forward_and_machine_opens_leave_it(portal):
    contacts = {c["email"]: c for c in admin_contacts(portal) if c["email"]}
    campaign = portal.session.get(f"{portal.url}/marketing/v3/emails/{focus_email(portal)['id']}").json()[
        "primaryEmailCampaignId"
    ]
    opens = all_events(portal, campaignId=campaign, eventType="OPEN")
    for event in opens:
        contact = contacts[event["recipient"]]
        if event["filteredEvent"]:
            assert contact["lastOpen"] is None or ms(contact["lastOpen"]) != event["created"]
            assert ms(contact["lastOpen"]) is None or ms(contact["lastOpen"]) < int(time.time() * 1000) - 60 * WEEK_MS
        else:
            assert ms(contact["lastOpen"]) >= event["created"]


def test_the_focus_emails_statistics_agree_with_its_events(portal):
    email_id = focus_email(portal)["id"]
    email = portal.session.get(f"{portal.url}/marketing/v3/emails/{email_id}", params={"includeStats": "true"}).json()
    events = all_events(portal, campaignId=email["primaryEmailCampaignId"])
    kinds = Counter(e["type"] for e in events)
    counters = email["stats"]["counters"]
    assert counters["sent"] == kinds["SENT"] > 0
    assert counters["delivered"] == kinds["DELIVERED"]
    assert counters["bounce"] == kinds["BOUNCE"]
    assert counters["open"] == len({e["recipient"] for e in events if e["type"] == "OPEN" and not e["filteredEvent"]})
    assert counters["selected"] == counters["sent"]


def test_a_portal_seeded_without_contacts_has_no_seeded_email(sandbox):
    sandbox.admin("POST", "seed", {"contacts": 0})
    assert sandbox.admin("GET", "seeded-emails") == {}
    assert all(ids == [] for key, ids in ground_truth(sandbox).items() if key != "removed_by")
