"""Communication preferences v3 (through the SDK) and v4 (raw requests): definitions, statuses, opt-outs."""

from __future__ import annotations

import time

import pytest
from hubspot.communication_preferences import ApiException, PublicUpdateSubscriptionStatusRequest
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID

V4 = "/communication-preferences/v4"
OPTOUT_PROPERTY = f"hs_email_optout_{MARKETING_SUBSCRIPTION_ID}"


@pytest.fixture
def restore_tier(sandbox):
    yield
    sandbox.admin("PUT", "settings", {"tier": "enterprise"})


def _mailable(sandbox, n=None):
    """Seeded contacts with an email that are not opted out of anything yet."""
    rows = [
        c
        for c in sandbox.admin("GET", "contacts")["results"]
        if c["email"] and not c["optout"] and c["profile"] != "subscription_optout"
    ]
    return rows[:n] if n else rows


def _v4(sandbox, method, path, json=None, **params):
    return sandbox.session.request(method, f"{sandbox.url}{V4}{path}", json=json, params=params or None)


def _changes(sandbox):
    return sandbox.admin("GET", "status-changes")["results"]


def _contact_properties(client, emails, names):
    batch = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=e) for e in emails],
        properties=["email", *names],
        properties_with_history=[],
        id_property="email",
    )
    results = client.crm.contacts.batch_api.read(batch).results
    return {r.properties["email"]: r.properties for r in results}


def _write(email, state="UNSUBSCRIBED", subscription_id=MARKETING_SUBSCRIPTION_ID, **extra):
    return {
        "subscriberIdString": email,
        "subscriptionId": subscription_id,
        "statusState": state,
        "channel": "EMAIL",
        **extra,
    }


# -- v3 through the SDK ------------------------------------------------------------------------------


def test_v3_definitions_list_the_portals_subscription_types(seeded, client):
    definitions = client.communication_preferences.definition_api.get_page().subscription_definitions
    by_id = {d.id: d for d in definitions}
    marketing = by_id[str(MARKETING_SUBSCRIPTION_ID)]
    assert marketing.name == "Marketing Information"
    assert marketing.is_default is True and marketing.is_active is True
    assert len(definitions) == 4


def test_v3_unsubscribe_sets_the_subscription_property_and_logs_one_change(seeded, client):
    email = _mailable(seeded, 1)[0]["email"]
    request = PublicUpdateSubscriptionStatusRequest(
        email_address=email,
        subscription_id=str(MARKETING_SUBSCRIPTION_ID),
        legal_basis="LEGITIMATE_INTEREST_OTHER",
        legal_basis_explanation="Permission pass: no answer",
    )
    status = client.communication_preferences.status_api.unsubscribe(request)
    assert status.id == str(MARKETING_SUBSCRIPTION_ID)
    assert status.status == "NOT_SUBSCRIBED" and status.source_of_status == "SUBSCRIPTION_STATUS"
    client.communication_preferences.status_api.unsubscribe(request)

    statuses = client.communication_preferences.status_api.get_email_status(email).subscription_statuses
    marketing = next(s for s in statuses if s.id == str(MARKETING_SUBSCRIPTION_ID))
    assert marketing.status == "NOT_SUBSCRIBED" and marketing.legal_basis == "LEGITIMATE_INTEREST_OTHER"
    props = _contact_properties(client, [email], [OPTOUT_PROPERTY, "hs_email_optout"])[email]
    assert props[OPTOUT_PROPERTY] == "true" and props["hs_email_optout"] == "false"
    changes = _changes(seeded)
    assert len(changes) == 1
    assert changes[0] | {"at": None, "seq": None} == {
        "seq": None,
        "at": None,
        "contactId": changes[0]["contactId"],
        "email": email,
        "subscriptionId": MARKETING_SUBSCRIPTION_ID,
        "from": "NOT_SPECIFIED",
        "to": "UNSUBSCRIBED",
        "source": "Public status API",
        "legalBasis": "LEGITIMATE_INTEREST_OTHER",
        "legalBasisExplanation": "Permission pass: no answer",
        "endpoint": "subscriptions.v3.unsubscribe",
    }


def test_v3_subscribe_cannot_resubscribe_a_contact_opted_out_of_all(seeded, client):
    email = next(c["email"] for c in seeded.admin("GET", "contacts", profile="already_unsubscribed")["results"])
    request = PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id=str(MARKETING_SUBSCRIPTION_ID))
    with pytest.raises(ApiException) as err:
        client.communication_preferences.status_api.subscribe(request)
    assert err.value.status == 400
    statuses = client.communication_preferences.status_api.get_email_status(email).subscription_statuses
    assert {s.source_of_status for s in statuses} == {"PORTAL_WIDE_STATUS"}
    assert _changes(seeded) == []


def test_v3_unknown_email_or_subscription_is_an_error_not_a_crash(seeded, client):
    email = _mailable(seeded, 1)[0]["email"]
    api = client.communication_preferences.status_api
    with pytest.raises(ApiException) as err:
        api.get_email_status("nobody@example.com")
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        api.unsubscribe(PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="123"))
    assert err.value.status == 400 and '"VALIDATION_ERROR"' in err.value.body


# -- v4 single subscriber ------------------------------------------------------------------------------


def test_v4_definitions_wrap_the_subscription_types(seeded, sandbox):
    body = _v4(sandbox, "GET", "/definitions").json()
    assert body["status"] == "COMPLETE"
    assert str(MARKETING_SUBSCRIPTION_ID) in {d["id"] for d in body["results"]}


def test_v4_single_write_changes_once_and_repeats_as_no_status_change(seeded, sandbox, client):
    email = _mailable(seeded, 1)[0]["email"]
    body = {
        "subscriptionId": MARKETING_SUBSCRIPTION_ID,
        "statusState": "UNSUBSCRIBED",
        "channel": "EMAIL",
        "legalBasis": "NON_GDPR",
        "legalBasisExplanation": "campaign PP-2026Q3",
    }
    first = _v4(sandbox, "POST", f"/statuses/{email}", body)
    assert first.status_code == 200
    result = first.json()["results"][0]
    assert result["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
    assert result["status"] == "UNSUBSCRIBED" and result["subscriptionId"] == MARKETING_SUBSCRIPTION_ID
    again = _v4(sandbox, "POST", f"/statuses/{email}", body).json()["results"][0]
    assert again["setStatusSuccessReason"] == "NO_STATUS_CHANGE"

    statuses = _v4(sandbox, "GET", f"/statuses/{email}", channel="EMAIL").json()["results"]
    by_id = {s["subscriptionId"]: s["status"] for s in statuses}
    assert by_id[MARKETING_SUBSCRIPTION_ID] == "UNSUBSCRIBED"
    assert by_id[33583164] == "NOT_SPECIFIED"
    assert _contact_properties(client, [email], [OPTOUT_PROPERTY])[email][OPTOUT_PROPERTY] == "true"
    assert len(_changes(sandbox)) == 1


def test_v4_unsubscribe_all_then_resubscribe(seeded, sandbox, client):
    email = _mailable(seeded, 1)[0]["email"]
    quiet = _v4(sandbox, "POST", f"/statuses/{email}/unsubscribe-all", channel="EMAIL")
    assert quiet.status_code == 200 and quiet.json()["results"] == []
    repeat = _v4(sandbox, "POST", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", verbose="true").json()
    assert {s["setStatusSuccessReason"] for s in repeat["results"]} == {"NO_STATUS_CHANGE"}
    assert {s["status"] for s in repeat["results"]} == {"UNSUBSCRIBED"}
    wide = _v4(sandbox, "GET", f"/statuses/{email}/unsubscribe-all", channel="EMAIL").json()["results"]
    assert [(w["wideStatusType"], w["status"]) for w in wide] == [("PORTAL_WIDE", "UNSUBSCRIBED")]
    assert _contact_properties(client, [email], ["hs_email_optout"])[email]["hs_email_optout"] == "true"

    resubscribe = _v4(
        sandbox,
        "POST",
        f"/statuses/{email}",
        {
            "subscriptionId": MARKETING_SUBSCRIPTION_ID,
            "statusState": "SUBSCRIBED",
            "channel": "EMAIL",
            "legalBasis": "CONSENT_WITH_NOTICE",
            "legalBasisExplanation": "asked to come back",
        },
    ).json()["results"][0]
    assert resubscribe["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert _contact_properties(client, [email], ["hs_email_optout"])[email]["hs_email_optout"] == "false"
    assert [(c["subscriptionId"], c["from"], c["to"]) for c in _changes(sandbox)] == [
        (None, "SUBSCRIBED", "UNSUBSCRIBED"),
        (None, "UNSUBSCRIBED", "SUBSCRIBED"),
        (MARKETING_SUBSCRIPTION_ID, "NOT_SPECIFIED", "SUBSCRIBED"),
    ]


def test_v4_single_endpoints_reject_bad_input_with_hubspot_errors(seeded, sandbox):
    email = _mailable(seeded, 1)[0]["email"]
    good = {"subscriptionId": MARKETING_SUBSCRIPTION_ID, "statusState": "UNSUBSCRIBED", "channel": "EMAIL"}
    cases = [
        ("POST", f"/statuses/{email}", {**good, "statusState": "NOT_SUBSCRIBED"}, {}, 400),
        ("POST", f"/statuses/{email}", {**good, "legalBasis": "BECAUSE"}, {}, 400),
        ("POST", f"/statuses/{email}", {**good, "channel": "SMS"}, {}, 400),
        ("POST", f"/statuses/{email}", {**good, "subscriptionId": 1}, {}, 400),
        ("POST", "/statuses/nobody@example.com", good, {}, 404),
        ("GET", f"/statuses/{email}", None, {}, 400),
        ("GET", "/statuses/nobody@example.com", None, {"channel": "EMAIL"}, 404),
        ("POST", "/statuses/nobody@example.com/unsubscribe-all", None, {"channel": "EMAIL"}, 404),
    ]
    for method, path, body, params, status in cases:
        response = _v4(sandbox, method, path, body, **params)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["category"] in ("VALIDATION_ERROR", "OBJECT_NOT_FOUND")
    assert _changes(sandbox) == []


# -- v4 batches ------------------------------------------------------------------------------------------


def test_v4_batch_unsubscribe_all_of_100_is_idempotent(seeded, sandbox, client):
    emails = [c["email"] for c in _mailable(seeded, 100)]
    assert len(emails) == 100
    started = time.perf_counter()
    first = _v4(sandbox, "POST", "/statuses/batch/unsubscribe-all", {"inputs": emails}, channel="EMAIL", verbose="true")
    assert time.perf_counter() - started < 2
    assert first.status_code == 200
    results = first.json()["results"]
    assert sorted(r["subscriberIdString"] for r in results) == sorted(emails)
    assert {s["setStatusSuccessReason"] for r in results for s in r["statuses"]} == {"UNSUBSCRIBE_FROM_ALL_OCCURRED"}

    second = _v4(
        sandbox, "POST", "/statuses/batch/unsubscribe-all", {"inputs": emails}, channel="EMAIL", verbose="true"
    ).json()
    assert {s["setStatusSuccessReason"] for r in second["results"] for s in r["statuses"]} == {"NO_STATUS_CHANGE"}
    assert "errors" not in second

    changes = _changes(sandbox)
    assert sorted(c["email"] for c in changes) == sorted(emails)
    assert {(c["subscriptionId"], c["from"], c["to"], c["endpoint"]) for c in changes} == {
        (None, "SUBSCRIBED", "UNSUBSCRIBED", "subscriptions.v4.batch_unsubscribe_all")
    }
    optouts = _contact_properties(client, emails, ["hs_email_optout"])
    assert {p["hs_email_optout"] for p in optouts.values()} == {"true"}
    wide = _v4(sandbox, "POST", "/statuses/batch/unsubscribe-all/read", {"inputs": emails[:5]}, channel="EMAIL")
    assert {w["status"] for r in wide.json()["results"] for w in r["wideStatuses"]} == {"UNSUBSCRIBED"}


def test_v4_batch_write_per_subscription_reports_bad_inputs_as_errors(seeded, sandbox, client):
    emails = [c["email"] for c in _mailable(seeded, 3)]
    inputs = [_write(e, legalBasis="LEGITIMATE_INTEREST_OTHER", legalBasisExplanation="no answer") for e in emails]
    inputs += [_write("ghost@example.com"), _write(emails[0], subscription_id=42)]
    body = _v4(sandbox, "POST", "/statuses/batch/write", {"inputs": inputs}).json()
    assert [r["setStatusSuccessReason"] for r in body["results"]] == ["REQUESTED_CHANGE_OCCURRED"] * 3
    assert body["numErrors"] == 2
    assert [e["category"] for e in body["errors"]] == ["OBJECT_NOT_FOUND", "VALIDATION_ERROR"]
    assert body["errors"][0]["context"] == {"subscriberIdString": ["ghost@example.com"]}

    props = _contact_properties(client, emails, [OPTOUT_PROPERTY, "hs_email_optout"])
    assert {(p[OPTOUT_PROPERTY], p["hs_email_optout"]) for p in props.values()} == {("true", "false")}
    changes = _changes(sandbox)
    assert [(c["email"], c["subscriptionId"], c["legalBasis"]) for c in changes] == [
        (e, MARKETING_SUBSCRIPTION_ID, "LEGITIMATE_INTEREST_OTHER") for e in emails
    ]
    again = _v4(sandbox, "POST", "/statuses/batch/write", {"inputs": inputs[:3]}).json()
    assert [r["setStatusSuccessReason"] for r in again["results"]] == ["NO_STATUS_CHANGE"] * 3
    assert len(_changes(sandbox)) == 3


def test_v4_batch_read_answers_207_for_unknown_subscribers(seeded, sandbox):
    emails = [c["email"] for c in _mailable(seeded, 2)]
    response = _v4(sandbox, "POST", "/statuses/batch/read", {"inputs": [*emails, "ghost@example.com"]}, channel="EMAIL")
    assert response.status_code == 207
    body = response.json()
    assert [r["subscriberIdString"] for r in body["results"]] == emails
    assert all(len(r["statuses"]) == 4 for r in body["results"])
    assert body["numErrors"] == 1 and body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    complete = _v4(sandbox, "POST", "/statuses/batch/read", {"inputs": emails}, channel="EMAIL")
    assert complete.status_code == 200


def test_v4_batches_over_100_inputs_are_rejected(seeded, sandbox):
    emails = [f"user{i}@example.com" for i in range(101)]
    for path, inputs in (
        ("/statuses/batch/unsubscribe-all", emails),
        ("/statuses/batch/read", emails),
        ("/statuses/batch/unsubscribe-all/read", emails),
        ("/statuses/batch/write", [_write(e) for e in emails]),
    ):
        response = _v4(sandbox, "POST", path, {"inputs": inputs}, channel="EMAIL")
        assert response.status_code == 400, path
        assert response.json()["category"] == "VALIDATION_ERROR"


def test_v4_batch_write_with_a_bad_enum_changes_nothing(seeded, sandbox):
    emails = [c["email"] for c in _mailable(seeded, 2)]
    response = _v4(
        sandbox, "POST", "/statuses/batch/write", {"inputs": [_write(emails[0]), _write(emails[1], state="OPTED_OUT")]}
    )
    assert response.status_code == 400
    assert "statusState" in response.json()["message"]
    assert _changes(sandbox) == []


def test_starter_tier_refuses_batches_with_missing_scopes_but_serves_single_calls(seeded, sandbox, restore_tier):
    sandbox.admin("PUT", "settings", {"tier": "starter"})
    email = _mailable(seeded, 1)[0]["email"]
    batch = _v4(sandbox, "POST", "/statuses/batch/unsubscribe-all", {"inputs": [email]}, channel="EMAIL")
    assert batch.status_code == 403
    body = batch.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["communication_preferences.statuses.batch.write"]
    read = _v4(sandbox, "POST", "/statuses/batch/read", {"inputs": [email]}, channel="EMAIL")
    assert read.status_code == 403
    assert read.json()["errors"][0]["context"]["requiredGranularScopes"] == [
        "communication_preferences.statuses.batch.read"
    ]
    single = _v4(sandbox, "POST", f"/statuses/{email}/unsubscribe-all", channel="EMAIL", verbose="true")
    assert single.status_code == 200
    assert single.json()["results"][0]["setStatusSuccessReason"] == "UNSUBSCRIBE_FROM_ALL_OCCURRED"
    assert len(_changes(sandbox)) == 1
