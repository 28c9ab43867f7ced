"""Email campaign ids in the sandbox: a draft has none, a published (or scheduled) email has them.

The legacy email events API is keyed by these ids, and HubSpot does not promise them before publish, so
the sandbox shows them only from publish on; events of the send are filed under the id it then shows.
"""

from __future__ import annotations

import datetime as dt

from hubspot.marketing.emails import ContentCloneRequestVNext

from tests.sandbox.test_emails import EMAILS, land, make_email, make_list, raw_email, seeded_contacts


def no_campaign_ids(email: dict) -> bool:
    return not email.get("primaryEmailCampaignId") and not email.get("allEmailCampaignIds")


def test_a_draft_has_no_email_campaign_ids(sandbox, client):
    email = make_email(client, make_list(client, []))
    assert no_campaign_ids(raw_email(sandbox, email.id))
    listed = sandbox.session.get(f"{sandbox.url}{EMAILS}").json()["results"]
    assert [no_campaign_ids(e) for e in listed] == [True]


def test_a_clone_of_a_sent_email_is_a_draft_without_the_sources_campaign_ids(seeded, client):
    emails = client.marketing.emails.marketing_emails_api
    source = make_email(client, make_list(client, [seeded_contacts(seeded)[0]["id"]]))
    emails.publish_or_send(source.id)
    clone = emails.clone(ContentCloneRequestVNext(id=source.id, clone_name="PP #2"))
    assert not no_campaign_ids(raw_email(seeded, source.id))
    assert no_campaign_ids(raw_email(seeded, clone.id))


def test_publish_assigns_the_campaign_id_its_events_are_filed_under(seeded, client):
    contacts = [c["id"] for c in seeded_contacts(seeded)[:20]]
    email = make_email(client, make_list(client, contacts), graymail=False)
    client.marketing.emails.marketing_emails_api.publish_or_send(email.id)
    land(seeded)
    sent = raw_email(seeded, email.id)
    campaign = sent["primaryEmailCampaignId"]
    assert campaign.isdigit() and sent["allEmailCampaignIds"] == [campaign]
    events = seeded.session.get(
        f"{seeded.url}/email/public/v1/events", params={"campaignId": campaign, "eventType": "SENT", "limit": 1000}
    ).json()
    assert events["events"] and {e["emailCampaignId"] for e in events["events"]} == {int(campaign)}


def test_a_scheduled_email_shows_its_campaign_ids(seeded, client):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    email = make_email(client, make_list(client, [seeded_contacts(seeded)[0]["id"]]), publish_date=later)
    client.marketing.emails.marketing_emails_api.publish_or_send(email.id)
    scheduled = raw_email(seeded, email.id)
    assert scheduled["state"] == "SCHEDULED" and scheduled["primaryEmailCampaignId"].isdigit()
