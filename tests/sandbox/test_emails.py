"""Marketing Emails v3 in the sandbox: drafts, publishing (= sending), recipient selection and statistics.

HubSpot endpoints are driven through the real hubspot-api-client; ``sandbox.session`` is used for raw
checks (status codes, fields the SDK's models drop) and the ``/_sandbox`` admin API for ground truth.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hubspot.crm.lists import ListCreateRequest
from hubspot.marketing.emails import ApiException, ContentCloneRequestVNext, EmailCreateRequest, EmailUpdateRequest

from include.hubspot_sandbox.seeding import SEND_BLOCKERS

EMAILS = "/marketing/v3/emails"
MARKETING = "33583163"
CTA = "https://acme.example/thank-you?pp=1"
HTML = (
    f'<p>Still there? <a href="{CTA}">Yes, keep me subscribed</a></p>'
    '<p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>'
)
WEEK = dt.timedelta(weeks=1)


# -- helpers ------------------------------------------------------------------------------------------


def make_list(client, contact_ids, name="recipients") -> str:
    created = client.crm.lists.lists_api.create(
        ListCreateRequest(name=name, object_type_id="0-1", processing_type="MANUAL")
    ).list
    if contact_ids:
        client.crm.lists.memberships_api.add(created.list_id, list(contact_ids))
    return created.list_id


def make_email(client, list_id=None, *, name="PP #1", graymail=None, **fields):
    to = {"contactIlsLists": {"include": [list_id] if list_id else [], "exclude": []}}
    if graymail is not None:
        to["suppressGraymail"] = graymail
    request = EmailCreateRequest(
        name=name,
        subject=fields.pop("subject", "Do you still want to hear from us?"),
        _from=fields.pop("_from", {"fromName": "ACME", "replyTo": "news@acme.example"}),
        to=fields.pop("to", to),
        subscription_details=fields.pop("subscription_details", {"subscriptionId": MARKETING}),
        content=fields.pop("content", {"widgets": {"module-1": {"body": {"html": HTML}, "order": 1}}}),
        **fields,
    )
    return client.marketing.emails.marketing_emails_api.create(request)


def raw_email(sandbox, email_id) -> dict:
    response = sandbox.session.get(f"{sandbox.url}{EMAILS}/{email_id}")
    assert response.status_code == 200, response.text
    return response.json()


def recipients(sandbox, email_id) -> set[str]:
    return {r["contactId"] for r in sandbox.admin("GET", f"emails/{email_id}/recipients")["recipients"]}


def seeded_contacts(sandbox) -> list[dict]:
    return sandbox.admin("GET", "contacts")["results"]


def mailable(contact) -> bool:
    """What HubSpot never mails: no address, unsubscribed from all, opted out of the marketing type, not a
    marketing contact, double opt-in pending, hard-bounced or quarantined (judged by the seeded profile)."""
    return bool(contact["email"]) and contact["profile"] not in (
        "already_unsubscribed",
        "subscription_optout",
        *SEND_BLOCKERS,
    )


def opened_within_a_year(contact) -> bool:
    if not contact["lastOpen"]:
        return False
    opened = dt.datetime.fromisoformat(contact["lastOpen"].replace("Z", "+00:00"))
    return opened >= dt.datetime.now(dt.timezone.utc) - 52 * WEEK


def land(sandbox, seconds=10) -> None:
    """Move the portal clock past the response window; any HubSpot request then lands the due events."""
    sandbox.admin("POST", "clock", {"advance_seconds": seconds})
    sandbox.session.get(f"{sandbox.url}{EMAILS}", params={"limit": 1})


@pytest.fixture
def emails(client):
    return client.marketing.emails.marketing_emails_api


# -- drafts -------------------------------------------------------------------------------------------


def test_create_returns_a_draft_batch_email_without_campaign_ids_yet(sandbox, client, emails):
    list_id = make_list(client, [])
    email = make_email(client, list_id)
    assert email.state == "DRAFT" and email.type == "BATCH_EMAIL" and email.is_published is False
    assert email.subject == "Do you still want to hear from us?" and email._from.from_name == "ACME"
    assert email.to.contact_ils_lists.include == [list_id]
    assert email.subscription_details.subscription_id == MARKETING
    raw = raw_email(sandbox, email.id)
    # A draft has no email campaign ids yet: they appear at publish (test_email_campaign_ids.py).
    assert "primaryEmailCampaignId" not in raw and raw["allEmailCampaignIds"] == []
    assert raw["to"]["suppressGraymail"] is True and raw["isAb"] is False
    assert emails.get_by_id(email.id).name == "PP #1"


def test_create_answers_201_and_rejects_bad_bodies(sandbox):
    ok = sandbox.session.post(f"{sandbox.url}{EMAILS}", json={"name": "raw"})
    assert ok.status_code == 201 and ok.json()["name"] == "raw"
    for body in (
        {},
        {"name": ""},
        {"name": "x", "subjekt": "typo"},
        {"name": "x", "subject": 5},
        {"name": "x", "state": "PUBLISHED"},
        {"name": "x", "to": {"contactIlsLists": {"include": ["a"]}}},
    ):
        response = sandbox.session.post(f"{sandbox.url}{EMAILS}", json=body)
        assert response.status_code == 400, body
        assert response.json()["category"] == "VALIDATION_ERROR"


def test_unknown_email_is_404(sandbox, emails):
    with pytest.raises(ApiException) as err:
        emails.get_by_id("999")
    assert err.value.status == 404
    assert sandbox.session.get(f"{sandbox.url}{EMAILS}/not-a-number").status_code == 404


def test_list_pages_filters_and_sorts(sandbox, client, emails):
    for name in ("b", "c", "a"):
        make_email(client, name=name)
    first = emails.get_page(limit=2, sort=["name"])
    assert first.total == 3 and [e.name for e in first.results] == ["a", "b"]
    second = emails.get_page(limit=2, sort=["name"], after=first.paging.next.after)
    assert [e.name for e in second.results] == ["c"] and second.paging is None
    assert [e.name for e in emails.get_page(sort=["-name"]).results] == ["c", "b", "a"]
    assert emails.get_page(is_published=True).total == 0
    assert emails.get_page(type="BATCH_EMAIL", is_published=False).total == 3
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert emails.get_page(created_after=future).total == 0
    assert sandbox.session.get(f"{sandbox.url}{EMAILS}", params={"sort": "colour"}).status_code == 400


def test_patch_merges_nested_objects_and_keeps_the_rest(client, emails):
    email = make_email(client)
    updated = emails.update(
        email.id,
        EmailUpdateRequest(
            subject="New subject", content={"widgets": {"module-2": {"body": {"html": "<p>P.S.</p>"}, "order": 2}}}
        ),
    )
    assert updated.subject == "New subject" and updated.name == "PP #1"
    assert set(updated.content.widgets) == {"module-1", "module-2"}
    assert updated.updated_at >= email.updated_at


def test_archive_hides_the_email_unless_archived_is_asked_for(sandbox, client, emails):
    email = make_email(client)
    emails.archive(email.id)
    with pytest.raises(ApiException) as err:
        emails.get_by_id(email.id)
    assert err.value.status == 404
    assert emails.get_by_id(email.id, archived=True).archived is True
    assert emails.get_page().total == 0 and emails.get_page(archived=True).total == 1


def test_clone_is_a_new_draft_with_new_ids_and_the_same_content(sandbox, client, emails):
    source = make_email(client)
    clone = emails.clone(ContentCloneRequestVNext(id=source.id, clone_name="PP #2"))
    assert clone.id != source.id and clone.name == "PP #2" and clone.state == "DRAFT"
    assert clone.content.widgets == source.content.widgets and clone.subject == source.subject
    raw_source, raw_clone = raw_email(sandbox, source.id), raw_email(sandbox, clone.id)
    assert "primaryEmailCampaignId" not in raw_clone and raw_clone["allEmailCampaignIds"] == []
    assert raw_clone["clonedFrom"] == source.id and raw_source["id"] != raw_clone["id"]
    with pytest.raises(ApiException) as err:
        emails.clone(ContentCloneRequestVNext(id="424242"))
    assert err.value.status == 404


# -- publishing = sending -------------------------------------------------------------------------------


def test_publish_sends_to_the_list_and_marks_the_email_published(seeded, client, emails):
    members = [c["id"] for c in seeded_contacts(seeded) if c["profile"] == "engaged"][:20]
    email = make_email(client, make_list(client, members))
    assert emails.publish_or_send(email.id) is None
    sent = emails.get_by_id(email.id)
    assert sent.state == "PUBLISHED" and sent.is_published is True and sent.published_at is not None
    assert recipients(seeded, email.id) == set(members)
    assert {c["emailsReceived"] for c in seeded_contacts(seeded) if c["id"] in members} == {1}


def test_publish_needs_marketing_hub_enterprise(seeded, client, emails):
    email = make_email(client, make_list(client, [c["id"] for c in seeded_contacts(seeded)][:5]))
    seeded.admin("PUT", "settings", {"tier": "starter"})
    try:
        with pytest.raises(ApiException) as err:
            emails.publish_or_send(email.id)
    finally:
        seeded.admin("PUT", "settings", {"tier": "enterprise"})
    assert err.value.status == 403
    assert recipients(seeded, email.id) == set() and emails.get_by_id(email.id).state == "DRAFT"


def test_publish_names_everything_that_is_missing(seeded, client, emails):
    empty = emails.create(EmailCreateRequest(name="empty"))
    with pytest.raises(ApiException) as err:
        emails.publish_or_send(empty.id)
    assert err.value.status == 400
    fields = {e["in"] for e in json.loads(err.value.body)["errors"]}
    assert fields == {"subject", "from.fromName", "to.contactIlsLists.include", "subscriptionDetails.subscriptionId"}
    inactive = make_email(client, make_list(client, []), subscription_details={"subscriptionId": "33583166"})
    response = seeded.session.post(f"{seeded.url}{EMAILS}/{inactive.id}/publish")
    assert response.status_code == 400 and "not active" in response.json()["message"]
    missing_list = make_email(client, "987654", name="no list")
    response = seeded.session.post(f"{seeded.url}{EMAILS}/{missing_list.id}/publish")
    assert response.status_code == 400 and "List 987654 does not exist" in response.json()["message"]


def test_publishing_twice_sends_once(seeded, client, emails):
    members = [c["id"] for c in seeded_contacts(seeded) if c["profile"] == "engaged"][:10]
    email = make_email(client, make_list(client, members))
    emails.publish_or_send(email.id)
    with pytest.raises(ApiException) as err:
        emails.publish_or_send(email.id)
    assert err.value.status == 400
    assert len(recipients(seeded, email.id)) == 10
    assert {c["emailsReceived"] for c in seeded_contacts(seeded) if c["id"] in members} == {1}


def test_a_sent_email_can_not_be_changed_or_unpublished(seeded, client, emails):
    email = make_email(client, make_list(client, [seeded_contacts(seeded)[0]["id"]]))
    emails.publish_or_send(email.id)
    with pytest.raises(ApiException) as err:
        emails.update(email.id, EmailUpdateRequest(subject="too late"))
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        emails.unpublish_or_cancel(email.id)
    assert err.value.status == 400


def test_recipients_exclude_every_kind_of_suppressed_contact(seeded, client):
    contacts = seeded_contacts(seeded)
    everyone = [c["id"] for c in contacts]
    engaged = [c["id"] for c in contacts if c["profile"] == "engaged"]
    excluded_by_list, excluded_by_id = engaged[:3], engaged[3]
    email = make_email(
        client,
        make_list(client, everyone),
        graymail=False,
        to={
            "contactIlsLists": {
                "include": [make_list(client, everyone, "all")],
                "exclude": [make_list(client, excluded_by_list, "vip")],
            },
            "contactIds": {"exclude": [excluded_by_id]},
            "suppressGraymail": False,
        },
    )
    client.marketing.emails.marketing_emails_api.publish_or_send(email.id)
    expected = {c["id"] for c in contacts if mailable(c)} - set(excluded_by_list) - {excluded_by_id}
    assert recipients(seeded, email.id) == expected
    profiles = {c["profile"] for c in contacts if c["id"] in expected}
    assert not profiles & {"no_email", "already_unsubscribed", "subscription_optout"}


def test_graymail_suppression_skips_contacts_without_an_open_in_52_weeks(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    list_id = make_list(client, [c["id"] for c in contacts])
    default = make_email(client, list_id, name="graymail suppressed")
    emails.publish_or_send(default.id)
    assert recipients(seeded, default.id) == {c["id"] for c in contacts if mailable(c) and opened_within_a_year(c)}
    unengaged = make_email(client, list_id, name="to unengaged", graymail=False)
    emails.publish_or_send(unengaged.id)
    assert recipients(seeded, unengaged.id) == {c["id"] for c in contacts if mailable(c)}
    assert len(recipients(seeded, unengaged.id)) > len(recipients(seeded, default.id))


def test_hard_bounced_contacts_are_not_mailed_again(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    list_id = make_list(client, [c["id"] for c in contacts])
    first = make_email(client, list_id, graymail=False)
    emails.publish_or_send(first.id)
    land(seeded)
    bounced = {c["id"] for c in contacts if c["profile"] == "bounce"}
    assert bounced <= recipients(seeded, first.id)
    second = emails.clone(ContentCloneRequestVNext(id=first.id, clone_name="PP #2"))
    emails.publish_or_send(second.id)
    unsubscribed = {c["id"] for c in contacts if c["profile"] == "unsubscribe_click"}  # by the first's link
    assert recipients(seeded, second.id) == recipients(seeded, first.id) - bounced - unsubscribed
    rounds = {r["round"] for r in seeded.admin("GET", f"emails/{second.id}/recipients")["recipients"]}
    assert rounds == {2}


def test_a_dynamic_include_list_is_brought_up_to_date_before_sending(seeded, client, emails):
    engaged = {c["id"] for c in seeded_contacts(seeded) if c["profile"] == "engaged"}
    branch = {
        "filterBranchType": "OR",
        "filterBranchOperator": "OR",
        "filters": [],
        "filterBranches": [
            {
                "filterBranchType": "AND",
                "filterBranchOperator": "AND",
                "filterBranches": [],
                "filters": [
                    {
                        "filterType": "PROPERTY",
                        "property": "hs_email_last_open_date",
                        "operation": {
                            "operationType": "ALL_PROPERTY",
                            "operator": "IS_KNOWN",
                            "includeObjectsWithNoValueSet": False,
                        },
                    }
                ],
            }
        ],
    }
    dynamic = client.crm.lists.lists_api.create(
        ListCreateRequest(name="opened ever", object_type_id="0-1", processing_type="DYNAMIC", filter_branch=branch)
    ).list
    email = make_email(client, dynamic.list_id)
    emails.publish_or_send(email.id)  # at once, while the list is still PROCESSING
    assert engaged <= recipients(seeded, email.id)


def test_a_future_publish_date_schedules_and_unpublish_cancels(seeded, client, emails):
    members = [c["id"] for c in seeded_contacts(seeded) if c["profile"] == "engaged"][:5]
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).isoformat()
    email = make_email(client, make_list(client, members), publish_date=later)
    emails.publish_or_send(email.id)
    assert emails.get_by_id(email.id).state == "SCHEDULED" and recipients(seeded, email.id) == set()
    emails.unpublish_or_cancel(email.id)
    assert emails.get_by_id(email.id).state == "DRAFT"
    emails.publish_or_send(email.id)
    land(seeded, seconds=600)
    assert emails.get_by_id(email.id).state == "PUBLISHED" and recipients(seeded, email.id) == set(members)


# -- statistics ---------------------------------------------------------------------------------------


def test_statistics_count_only_what_has_happened(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    email = make_email(client, make_list(client, [c["id"] for c in contacts]), graymail=False)
    emails.publish_or_send(email.id)
    land(seeded)
    stats = emails.get_by_id(email.id, include_stats=True).stats
    mailed = [c for c in contacts if mailable(c)]
    by_profile = {name: sum(1 for c in mailed if c["profile"] == name) for name in {c["profile"] for c in mailed}}
    assert stats.counters["sent"] == len(mailed)
    skipped = [c for c in contacts if c["email"] and not mailable(c)]
    assert stats.counters["notsent"] == len(skipped) > 0
    assert stats.counters["selected"] == len(mailed) + len(skipped)
    assert stats.counters["bounce"] == stats.counters["hardbounced"] == by_profile["bounce"]
    assert stats.counters["delivered"] == len(mailed) - by_profile["bounce"]
    # Bot-filtered opens and clicks never count; confirmers click the CTA, unsubscribe clickers their link.
    assert stats.counters["click"] == by_profile["confirm_r1"] + by_profile["unsubscribe_click"]
    openers = sum(
        by_profile.get(p, 0) for p in ("engaged", "confirm_r1", "confirm_r2", "never_confirm", "unsubscribe_click")
    )
    assert stats.counters["open"] == openers
    assert stats.ratios["openratio"] == round(100 * openers / stats.counters["delivered"], 3)
    assert set(stats.device_breakdown) == {"open_device_type", "click_device_type"}
    assert sum(stats.device_breakdown["open_device_type"].values()) == openers


def test_statistics_list_and_histogram_aggregate_sent_emails(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    email = make_email(client, make_list(client, [c["id"] for c in contacts if c["profile"] == "engaged"]))
    emails.publish_or_send(email.id)
    land(seeded)
    statistics = client.marketing.emails.statistics_api
    report = statistics.get_emails_list(email_ids=[int(email.id)])
    assert report.emails == [int(email.id)]
    assert report.aggregate.counters == emails.get_by_id(email.id, include_stats=True).stats.counters
    campaign = raw_email(seeded, email.id)["primaryEmailCampaignId"]
    assert set(report.campaign_aggregations) == {campaign}
    histogram = statistics.get_histogram(interval="DAY", email_ids=[int(email.id)])
    assert histogram.total == len(histogram.results) >= 1
    assert sum(r.aggregations.counters["sent"] for r in histogram.results) == report.aggregate.counters["sent"]
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    later = statistics.get_emails_list(email_ids=[int(email.id)], start_timestamp=future)
    assert later.aggregate.counters["sent"] == 0
    bad = seeded.session.get(f"{seeded.url}{EMAILS}/statistics/histogram", params={"interval": "FORTNIGHT"})
    assert bad.status_code == 400


# -- who HubSpot actually sends to ---------------------------------------------------------------------


SKIPPED_AT_SEND = {  # seeded profile -> the contact property that makes HubSpot skip it, and its value
    "non_marketing": ("hs_marketable_status", {"false"}),
    "doi_pending": ("hs_emailconfirmationstatus", {"Confirmation Pending", "Confirmation Email Sent"}),
    "hard_bounced": ("hs_email_hard_bounce_reason_enum", {"UNKNOWN_USER", "MAILBOX_FULL"}),
    "quarantined": ("hs_email_quarantined", {"true"}),
}


def contact_property(sandbox, contact_id, name):
    response = sandbox.session.get(f"{sandbox.url}/crm/v3/objects/contacts/{contact_id}", params={"properties": name})
    assert response.status_code == 200, response.text
    return response.json()["properties"].get(name)


@pytest.mark.parametrize("profile", sorted(SKIPPED_AT_SEND))
def test_hubspot_skips_each_unmailable_kind_at_send(seeded, client, emails, profile):
    contacts = seeded_contacts(seeded)
    kind = [c for c in contacts if c["profile"] == profile]
    assert kind, f"the seeded portal has no {profile} contact"
    name, values = SKIPPED_AT_SEND[profile]
    assert {contact_property(seeded, c["id"], name) for c in kind} <= values
    email = make_email(client, make_list(client, [c["id"] for c in contacts]), graymail=False)
    emails.publish_or_send(email.id)
    land(seeded)
    sent = recipients(seeded, email.id)
    assert not sent & {c["id"] for c in kind}
    assert all(c["emailsReceived"] == 0 for c in seeded_contacts(seeded) if c["profile"] == profile)
    stats = emails.get_by_id(email.id, include_stats=True).stats
    assert stats.counters["notsent"] >= len(kind)
    assert stats.counters["selected"] == stats.counters["sent"] + stats.counters["notsent"]


def test_contacts_confirmed_through_double_opt_in_are_mailable(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    confirmed = {c["id"] for c in contacts if c["profile"] == "doi_confirmed"}
    assert confirmed
    assert {contact_property(seeded, i, "hs_emailconfirmationstatus") for i in confirmed} <= {
        "Confirmed",
        "User clicked confirmation",
    }
    assert {contact_property(seeded, i, "hs_marketable_status") for i in confirmed} == {"true"}
    email = make_email(client, make_list(client, sorted(confirmed)), graymail=False)
    emails.publish_or_send(email.id)
    assert recipients(seeded, email.id) == confirmed


def test_a_hard_bounce_sets_the_bounce_reason(seeded, client, emails):
    contacts = seeded_contacts(seeded)
    bouncers = [c["id"] for c in contacts if c["profile"] == "bounce"]
    assert {contact_property(seeded, i, "hs_email_hard_bounce_reason_enum") for i in bouncers} == {None}
    email = make_email(client, make_list(client, bouncers), graymail=False)
    emails.publish_or_send(email.id)
    land(seeded)
    assert {contact_property(seeded, i, "hs_email_hard_bounce_reason_enum") for i in bouncers} == {"UNKNOWN_USER"}


def test_the_old_lenient_sending_can_be_switched_on(seeded, client, emails):
    assert seeded.admin("GET", "sending")["skipUnmailable"] is True
    seeded.admin("PUT", "sending", {"skipUnmailable": False})
    contacts = seeded_contacts(seeded)
    unmailable = {c["id"] for c in contacts if c["profile"] in ("non_marketing", "doi_pending", "quarantined")}
    email = make_email(client, make_list(client, [c["id"] for c in contacts]), graymail=False)
    emails.publish_or_send(email.id)
    assert unmailable <= recipients(seeded, email.id)


def test_the_ground_truth_never_opts_out_a_contact_hubspot_does_not_send_to(seeded):
    contacts = {c["id"]: c["profile"] for c in seeded_contacts(seeded)}
    truth = {key: set(ids) for key, ids in seeded.admin("GET", "ground-truth", rounds=3).items()}
    for key in ("not_sendable", "double_opt_in_confirmed", "unsubscribed_themselves"):
        assert truth[key], key
        assert not truth[key] & truth["opt_out"], key
    assert {contacts[i] for i in truth["not_sendable"]} == set(SEND_BLOCKERS)
    assert {contacts[i] for i in truth["unsubscribed_themselves"]} == {"unsubscribe_click"}
    assert not (truth["not_sendable"] | truth["double_opt_in_confirmed"]) & truth["unengaged"]
