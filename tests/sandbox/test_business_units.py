"""Business units (brands): subscription types, statuses and opt-outs per unit, and unknown units refused.

Every exchange these tests make is checked against HubSpot's contract by the ``sandbox`` fixture.
"""

from __future__ import annotations

import pytest

from include.hubspot_sandbox.business_units import marketing_subscription_id
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID, SEND_BLOCKERS, SUBSCRIPTION_TYPES

V4 = "/communication-preferences/v4"
EMAILS = "/marketing/v3/emails"
BRAND_B = 1
BRAND_B_MARKETING = marketing_subscription_id(MARKETING_SUBSCRIPTION_ID, BRAND_B)
HTML = '<p>Still interested? <a href="https://www.example.com/yes">Yes</a></p>'


@pytest.fixture
def brands(sandbox):
    """A small seeded portal with the default unit 0 and "Brand B" (unit 1)."""
    answer = sandbox.admin(
        "POST", "seed", {"contacts": 200, "seed": 7, "business_units": [{"id": BRAND_B, "name": "Brand B"}]}
    )
    assert answer["businessUnits"] == {"1": "Brand B"}
    return sandbox


def v4(sandbox, method, path, json=None, **params):
    return sandbox.session.request(method, f"{sandbox.url}{V4}{path}", json=json, params=params or None)


def mailable(sandbox, n):
    """Seeded contacts HubSpot mails, opted out of nothing in any unit."""
    skipped = ("subscription_optout", "already_unsubscribed", *SEND_BLOCKERS)
    rows = [
        c
        for c in sandbox.admin("GET", "contacts")["results"]
        if c["email"] and not c["optout"] and c["profile"] not in skipped
    ]
    return rows[:n]


def statuses(sandbox, email, unit):
    answer = v4(sandbox, "GET", f"/statuses/{email}", channel="EMAIL", businessUnitId=unit)
    assert answer.status_code == 200, answer.text
    return {s["subscriptionId"]: s for s in answer.json()["results"]}


def wide(sandbox, email, unit):
    answer = v4(sandbox, "GET", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", businessUnitId=unit)
    assert answer.status_code == 200, answer.text
    (status,) = answer.json()["results"]
    return status


def refused(answer, field="businessUnitId"):
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["category"] == "VALIDATION_ERROR" and "does not exist" in body["message"]
    assert body["errors"][0]["in"] == field


# -- definitions --------------------------------------------------------------------------------------------
def test_each_unit_lists_only_its_own_subscription_types(brands):
    default = v4(brands, "GET", "/definitions").json()["results"]
    unit_zero = v4(brands, "GET", "/definitions", businessUnitId=0).json()["results"]
    brand_b = v4(brands, "GET", "/definitions", businessUnitId=BRAND_B).json()["results"]
    assert default == unit_zero
    assert {int(d["id"]) for d in unit_zero} == {sub[0] for sub in SUBSCRIPTION_TYPES}
    assert {d["businessUnitId"] for d in unit_zero} == {0}
    assert {int(d["id"]) for d in brand_b} == {marketing_subscription_id(sub[0], BRAND_B) for sub in SUBSCRIPTION_TYPES}
    assert {d["businessUnitId"] for d in brand_b} == {BRAND_B}
    assert {d["name"] for d in brand_b if int(d["id"]) == BRAND_B_MARKETING} == {"Brand B Marketing Information"}
    # v3 takes no businessUnitId: it lists every unit's types, each naming its unit.
    v3 = brands.session.get(f"{brands.url}/communication-preferences/v3/definitions").json()
    assert {d["businessUnitId"] for d in v3["subscriptionDefinitions"]} == {0, BRAND_B}


def test_a_portal_without_business_units_has_unit_zero_only(seeded):
    assert v4(seeded, "GET", "/definitions", businessUnitId=0).status_code == 200
    refused(v4(seeded, "GET", "/definitions", businessUnitId=1))


# -- unknown units are refused, and change nothing ----------------------------------------------------------
def test_every_call_for_a_unit_the_portal_lacks_is_refused_and_changes_nothing(brands):
    (contact,) = mailable(brands, 1)
    email = contact["email"]
    refused(v4(brands, "GET", "/definitions", businessUnitId=7))
    refused(v4(brands, "GET", f"/statuses/{email}", channel="EMAIL", businessUnitId=7))
    refused(v4(brands, "POST", "/statuses/batch/read", {"inputs": [email]}, channel="EMAIL", businessUnitId=7))
    refused(v4(brands, "GET", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", businessUnitId=7))
    refused(
        v4(
            brands,
            "POST",
            "/statuses/batch/unsubscribe-all/read",
            {"inputs": [email]},
            channel="EMAIL",
            businessUnitId=7,
        )
    )
    refused(v4(brands, "POST", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", businessUnitId=7))
    refused(
        v4(brands, "POST", "/statuses/batch/unsubscribe-all", {"inputs": [email]}, channel="EMAIL", businessUnitId=7)
    )
    refused(brands.session.post(f"{brands.url}{EMAILS}", json={"name": "Brand Z", "businessUnitId": 7}))
    assert brands.admin("GET", "status-changes")["results"] == []
    assert {s["status"] for s in statuses(brands, email, 0).values()} <= {"SUBSCRIBED", "NOT_SPECIFIED"}


# -- statuses per unit --------------------------------------------------------------------------------------
def test_a_status_belongs_to_its_subscription_types_unit(brands):
    (contact,) = mailable(brands, 1)
    email = contact["email"]
    write = {"subscriptionId": BRAND_B_MARKETING, "statusState": "UNSUBSCRIBED", "channel": "EMAIL"}
    answer = v4(brands, "POST", f"/statuses/{email}", write)
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["businessUnitId"] == BRAND_B and result["status"] == "UNSUBSCRIBED"

    brand_b = statuses(brands, email, BRAND_B)
    assert brand_b[BRAND_B_MARKETING]["status"] == "UNSUBSCRIBED"
    assert {s["businessUnitId"] for s in brand_b.values()} == {BRAND_B}
    unit_zero = statuses(brands, email, 0)
    assert set(unit_zero) == {sub[0] for sub in SUBSCRIPTION_TYPES}
    assert unit_zero[MARKETING_SUBSCRIPTION_ID]["status"] != "UNSUBSCRIBED"
    batch = v4(brands, "POST", "/statuses/batch/read", {"inputs": [email]}, channel="EMAIL", businessUnitId=BRAND_B)
    (read,) = batch.json()["results"]
    assert {s["subscriptionId"]: s["status"] for s in read["statuses"]}[BRAND_B_MARKETING] == "UNSUBSCRIBED"


def test_unsubscribe_all_in_a_unit_leaves_the_other_unit_subscribed(brands):
    first, second = mailable(brands, 2)
    before = statuses(brands, first["email"], 0)
    answer = v4(
        brands,
        "POST",
        "/statuses/batch/unsubscribe-all",
        {"inputs": [first["email"], second["email"]]},
        channel="EMAIL",
        businessUnitId=BRAND_B,
        verbose="true",
    )
    assert answer.status_code == 200, answer.text
    for result in answer.json()["results"]:
        assert {s["status"] for s in result["statuses"]} == {"UNSUBSCRIBED"}
        assert {s["businessUnitId"] for s in result["statuses"]} == {BRAND_B}
        assert {s["setStatusSuccessReason"] for s in result["statuses"]} == {"UNSUBSCRIBE_FROM_ALL_OCCURRED"}

    brand_b_wide = wide(brands, first["email"], BRAND_B)
    assert (brand_b_wide["status"], brand_b_wide["wideStatusType"]) == ("UNSUBSCRIBED", "BUSINESS_UNIT_WIDE")
    assert brand_b_wide["businessUnitId"] == BRAND_B
    unit_zero_wide = wide(brands, first["email"], 0)
    assert (unit_zero_wide["status"], unit_zero_wide["wideStatusType"]) == ("SUBSCRIBED", "PORTAL_WIDE")
    after = statuses(brands, first["email"], 0)
    assert {i: s["status"] for i, s in after.items()} == {i: s["status"] for i, s in before.items()}
    contact = brands.session.get(
        f"{brands.url}/crm/v3/objects/contacts/{first['id']}", params={"properties": "hs_email_optout"}
    ).json()
    assert contact["properties"]["hs_email_optout"] == "false"

    changes = brands.admin("GET", "status-changes")["results"]
    assert [(c["contactId"], c["to"], c["businessUnitId"]) for c in changes] == [
        (first["id"], "UNSUBSCRIBED", BRAND_B),
        (second["id"], "UNSUBSCRIBED", BRAND_B),
    ]
    again = v4(
        brands,
        "POST",
        f"/statuses/{first['email']}/unsubscribe-all",
        channel="EMAIL",
        businessUnitId=BRAND_B,
        verbose="true",
    )
    assert {s["setStatusSuccessReason"] for s in again.json()["results"]} == {"NO_STATUS_CHANGE"}
    assert len(brands.admin("GET", "status-changes")["results"]) == 2


def test_resubscribing_in_a_unit_lifts_only_that_units_opt_out(brands):
    (contact,) = mailable(brands, 1)
    email = contact["email"]
    for unit in (0, BRAND_B):
        v4(brands, "POST", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", businessUnitId=unit)
    write = {"subscriptionId": BRAND_B_MARKETING, "statusState": "SUBSCRIBED", "channel": "EMAIL"}
    (result,) = v4(brands, "POST", f"/statuses/{email}", write).json()["results"]
    assert result["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert wide(brands, email, BRAND_B)["status"] == "SUBSCRIBED"
    assert wide(brands, email, 0)["status"] == "UNSUBSCRIBED"


def test_seeded_opt_outs_hold_in_every_unit(brands):
    contacts = brands.admin("GET", "contacts")["results"]
    gone = next(c for c in contacts if c["profile"] == "already_unsubscribed")
    typed = next(c for c in contacts if c["profile"] == "subscription_optout")
    for unit, marketing in ((0, MARKETING_SUBSCRIPTION_ID), (BRAND_B, BRAND_B_MARKETING)):
        assert wide(brands, gone["email"], unit)["status"] == "UNSUBSCRIBED"
        assert statuses(brands, typed["email"], unit)[marketing]["status"] == "UNSUBSCRIBED"


# -- emails and the ground truth ----------------------------------------------------------------------------
def _email(sandbox, name, unit, subscription_id, list_id):
    body = {
        "name": name,
        "subject": "Still with us?",
        "from": {"fromName": "Brand B", "replyTo": "news@brand-b.example"},
        "to": {"contactIlsLists": {"include": [list_id], "exclude": []}, "suppressGraymail": False},
        "subscriptionDetails": {"subscriptionId": str(subscription_id)},
        "content": {"widgets": {"module-1": {"body": {"html": HTML}, "order": 1}}},
        "businessUnitId": unit,
    }
    answer = sandbox.session.post(f"{sandbox.url}{EMAILS}", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _list(sandbox, ids):
    made = sandbox.session.post(
        f"{sandbox.url}/crm/v3/lists",
        json={"name": "brand b recipients", "objectTypeId": "0-1", "processingType": "MANUAL"},
    ).json()["list"]
    sandbox.session.put(f"{sandbox.url}/crm/v3/lists/{made['listId']}/memberships/add", json=ids).raise_for_status()
    return made["listId"]


def test_an_email_carries_its_unit_and_skips_only_that_units_opt_outs(brands):
    first, second, third = mailable(brands, 3)
    v4(brands, "POST", f"/statuses/{first['email']}/unsubscribe-all", channel="EMAIL", businessUnitId=BRAND_B)
    v4(brands, "POST", f"/statuses/{second['email']}/unsubscribe-all", channel="EMAIL", businessUnitId=0)
    list_id = _list(brands, [first["id"], second["id"], third["id"]])
    email = _email(brands, "Brand B pass", BRAND_B, BRAND_B_MARKETING, list_id)
    assert email["businessUnitId"] == str(BRAND_B)
    published = brands.session.post(f"{brands.url}{EMAILS}/{email['id']}/publish")
    assert published.status_code == 204, published.text
    sent = {r["contactId"] for r in brands.admin("GET", f"emails/{email['id']}/recipients")["recipients"]}
    assert sent == {second["id"], third["id"]}


def test_an_email_cannot_be_sent_under_another_units_subscription_type(brands):
    (contact,) = mailable(brands, 1)
    email = _email(brands, "Mixed", BRAND_B, MARKETING_SUBSCRIPTION_ID, _list(brands, [contact["id"]]))
    answer = brands.session.post(f"{brands.url}{EMAILS}/{email['id']}/publish")
    assert answer.status_code == 400
    assert "belongs to business unit 0" in answer.json()["message"]


def test_the_ground_truth_answers_per_unit_and_refuses_an_unknown_one(brands):
    unit_zero = brands.admin("GET", "ground-truth", rounds=2)
    brand_b = brands.admin("GET", "ground-truth", rounds=2, business_unit=BRAND_B)
    assert brand_b == unit_zero and brand_b["opt_out"]
    answer = brands.session.get(f"{brands.url}/_sandbox/ground-truth", params={"rounds": 2, "business_unit": 4})
    assert answer.status_code == 400 and "business_unit 4" in answer.json()["message"]


def test_a_seed_with_a_bad_business_unit_is_refused(sandbox):
    for bad in ([0], [{"id": "x"}], [-2]):
        answer = sandbox.session.post(f"{sandbox.url}/_sandbox/seed", json={"contacts": 5, "business_units": bad})
        assert answer.status_code == 400, bad
