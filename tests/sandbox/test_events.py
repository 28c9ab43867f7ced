"""The sending simulation as seen through HubSpot's legacy email events API and the contacts it changes.

Events are read with ``client.api_request`` where a paging loop needs it and with ``sandbox.session``
for raw status checks; the SDK's typed APIs cover the emails and lists that set each scene.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hubspot.crm.lists import ListCreateRequest
from hubspot.marketing.emails import EmailCreateRequest

EVENTS = "/email/public/v1/events"
MARKETING = "33583163"
CTA = "https://acme.example/thank-you?pp=7&round=1"
OTHER = "https://acme.example/blog"
#: The unsubscribe link comes first, the CTA is HTML-escaped and a later widget comes first in the dict: the
#: CTA is still found, and its click ``url`` is the URL a browser visits.
CONTENT = {"widgets": {
    "footer": {"body": {"html": f'<a href="{OTHER}">Blog</a>'}, "order": 3},
    "main": {"body": {"html": '<a href="{{ unsubscribe_link }}">Unsubscribe</a> '
                              f'<a href="{CTA.replace("&", "&amp;")}">Yes, keep me subscribed</a>'}, "order": 1},
}}


# -- helpers ------------------------------------------------------------------------------------------


def contacts(sandbox) -> list[dict]:
    return sandbox.admin("GET", "contacts")["results"]


def send_to_everyone(sandbox, client, *, name="PP #1") -> tuple[str, str]:
    """Publish an email (graymail not suppressed) to every seeded contact; returns (email id, campaign id)."""
    created = client.crm.lists.lists_api.create(
        ListCreateRequest(name=f"{name} recipients", object_type_id="0-1", processing_type="MANUAL")).list
    client.crm.lists.memberships_api.add(created.list_id, [c["id"] for c in contacts(sandbox)])
    emails = client.marketing.emails.marketing_emails_api
    email = emails.create(EmailCreateRequest(
        name=name, subject="Still there?", _from={"fromName": "ACME"}, content=CONTENT,
        to={"contactIlsLists": {"include": [created.list_id]}, "suppressGraymail": False},
        subscription_details={"subscriptionId": MARKETING}))
    emails.publish_or_send(email.id)
    campaign = sandbox.session.get(f"{sandbox.url}/marketing/v3/emails/{email.id}").json()["primaryEmailCampaignId"]
    return email.id, campaign


def read_page(sandbox, **params) -> dict:
    response = sandbox.session.get(f"{sandbox.url}{EVENTS}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def read_all(client, **params) -> list[dict]:
    """Every event for the query, following ``offset`` while ``hasMore`` (as the DAG's helper does)."""
    events, offset = [], None
    while True:
        qs = {**params, **({"offset": offset} if offset else {})}
        body = client.api_request({"method": "GET", "path": EVENTS, "qs": qs}).json()
        events.extend(body["events"])
        if not body["hasMore"]:
            return events
        offset = body["offset"]


def later(sandbox, seconds=10) -> None:
    """Move the portal clock past the 3 s response window of the test sandbox."""
    sandbox.admin("POST", "clock", {"advance_seconds": seconds})


def by_profile(sandbox) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in contacts(sandbox):
        out.setdefault(c["profile"], set()).add(c["email"])
    return out


def recipients_of(events, kind, **match) -> set[str]:
    return {e["recipient"] for e in events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())}


# -- tests --------------------------------------------------------------------------------------------


def test_events_become_visible_only_when_their_time_has_come(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    early = read_all(client, campaignId=campaign, eventType="OPEN", limit=1000)
    later(seeded)
    opens = read_all(client, campaignId=campaign, eventType="OPEN", limit=1000)
    assert len(early) < len(opens)
    assert {e["id"] for e in early} <= {e["id"] for e in opens}
    now_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000) + 10_000
    assert all(e["created"] <= now_ms for e in opens)


def test_each_profile_answers_as_seeded(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    events = read_all(client, campaignId=campaign, limit=1000)
    profiles = by_profile(seeded)
    mailed = {c["email"] for c in contacts(seeded) if c["email"] and not c["optout"]
              and c["profile"] != "subscription_optout"}
    assert recipients_of(events, "SENT") == mailed
    assert recipients_of(events, "BOUNCE") == profiles["bounce"]
    assert recipients_of(events, "DELIVERED") == mailed - profiles["bounce"]
    assert recipients_of(events, "CLICK", url=CTA, filteredEvent=False) == profiles["confirm_r1"]
    assert recipients_of(events, "CLICK", filteredEvent=True) == profiles["bot_click"]
    unsubscribes = [e for e in events if e["type"] == "CLICK" and e["recipient"] in profiles["unsubscribe_click"]]
    assert {e["recipient"] for e in unsubscribes} == profiles["unsubscribe_click"]
    assert all("/hs/manage-preferences/unsubscribe" in e["url"] for e in unsubscribes)
    assert not recipients_of(events, "OPEN") & (profiles["confirm_r3"] | profiles["bounce"])
    assert not recipients_of(events, "CLICK", url=OTHER)


def test_every_event_carries_hubspot_fields_and_opens_precede_clicks(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    events = read_all(client, campaignId=campaign, limit=1000)
    sent = {e["recipient"]: e for e in events if e["type"] == "SENT"}
    for event in events:
        assert event["appId"] == 113 and event["appName"] == "Batch" and event["emailCampaignId"] == int(campaign)
        assert event["sentBy"] == {"id": sent[event["recipient"]]["id"], "created": sent[event["recipient"]]["created"]}
    bounce = next(e for e in events if e["type"] == "BOUNCE")
    assert bounce["category"] == "HARD_BOUNCE" and bounce["response"]
    opened = {(e["recipient"]): e["created"] for e in events if e["type"] == "OPEN"}
    for click in (e for e in events if e["type"] == "CLICK"):
        assert opened[click["recipient"]] < click["created"]
        assert click["created"] - sent[click["recipient"]]["created"] <= 3_000


def test_paging_walks_every_event_newest_first_without_duplicates(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    whole = read_page(seeded, campaignId=campaign, limit=1000)
    assert whole["hasMore"] is False
    paged = read_all(client, campaignId=campaign, limit=37)
    assert [e["id"] for e in paged] == [e["id"] for e in whole["events"]]
    assert len({e["id"] for e in paged}) == len(paged) > 37
    stamps = [e["created"] for e in paged]
    assert stamps == sorted(stamps, reverse=True)
    first = read_page(seeded, campaignId=campaign)
    assert len(first["events"]) == 10 and first["hasMore"] is True and first["offset"]
    everywhere = read_all(client, limit=100)  # no campaign: every event of the portal, by time
    assert [e["id"] for e in everywhere] == [e["id"] for e in paged]


def test_filters_narrow_the_events(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    events = read_all(client, campaignId=campaign, limit=1000)
    clicks = read_all(client, campaignId=campaign, eventType="CLICK", limit=1000)
    assert clicks and {e["type"] for e in clicks} == {"CLICK"}
    unfiltered = read_all(client, campaignId=campaign, eventType="CLICK", excludeFilteredEvents="true", limit=1000)
    assert unfiltered == [e for e in clicks if not e["filteredEvent"]] and len(unfiltered) < len(clicks)
    someone = clicks[0]["recipient"]
    assert read_all(client, recipient=someone, limit=1000) == [e for e in events if e["recipient"] == someone]
    middle = sorted(e["created"] for e in events)[len(events) // 2]
    window = read_all(client, campaignId=campaign, startTimestamp=middle, limit=1000)
    assert window == [e for e in events if e["created"] >= middle]
    assert read_page(seeded, campaignId=campaign, appId=999)["events"] == []
    assert read_page(seeded, campaignId=int(campaign) + 1)["events"] == []


@pytest.mark.parametrize(("params", "fragment"), [
    ({"eventType": "SENT,DELIVERED"}, "not one of the values accepted for Enum class: [DROPPED, UNBOUNCE"),
    ({"eventType": "open"}, "com.hubspot.email.events.EventType"),
    ({"limit": "1001"}, "limit"),
    ({"campaignId": "abc"}, "For input string"),
    ({"offset": "%%%"}, "offset"),
])
def test_bad_queries_get_the_legacy_error_shape(sandbox, params, fragment):
    response = sandbox.session.get(f"{sandbox.url}{EVENTS}", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and fragment in body["message"] and body["correlationId"]


def test_statistics_agree_with_the_events_api(seeded, client):
    email_id, campaign = send_to_everyone(seeded, client)
    later(seeded)
    counters = client.marketing.emails.marketing_emails_api.get_by_id(email_id, include_stats=True).stats.counters

    def unique(kind):
        return len({e["recipient"] for e in read_all(client, campaignId=campaign, eventType=kind,
                                                      excludeFilteredEvents="true", limit=1000)})

    assert counters["sent"] == counters["selected"] == unique("SENT")
    assert counters["delivered"] == unique("DELIVERED") and counters["bounce"] == unique("BOUNCE")
    assert counters["open"] == unique("OPEN") and counters["click"] == unique("CLICK")


def test_contacts_learn_their_last_open_and_click_when_events_land(seeded, client):
    before = {c["id"]: c for c in contacts(seeded)}
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    events = read_all(client, campaignId=campaign, limit=1000)  # a HubSpot request: due events land first
    after = {c["email"]: c for c in contacts(seeded) if c["email"]}
    for click in (e for e in events if e["type"] == "CLICK"):
        contact = after[click["recipient"]]
        stamp = dt.datetime.fromtimestamp(click["created"] / 1000, dt.timezone.utc)
        if click["filteredEvent"]:
            assert contact["lastClick"] == before[contact["id"]]["lastClick"]  # bot clicks change nothing
        else:
            assert contact["lastClick"] == stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{click['created'] % 1000:03d}Z"
    for bounced in (e["recipient"] for e in events if e["type"] == "BOUNCE"):
        assert after[bounced]["lastOpen"] == before[after[bounced]["id"]]["lastOpen"]
    opened = {e["recipient"] for e in events if e["type"] == "OPEN" and not e["filteredEvent"]}
    assert all(after[r]["lastOpen"] != before[after[r]["id"]]["lastOpen"] for r in opened)


def test_broken_click_tracking_emits_no_clicks(seeded, client):
    assert seeded.admin("PUT", "tracking", {"clicks": False}) == {"clicks": False}
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    assert read_all(client, campaignId=campaign, eventType="CLICK", limit=1000) == []
    assert read_all(client, campaignId=campaign, eventType="OPEN", limit=1000)
    assert seeded.admin("GET", "tracking") == {"clicks": False}


def test_an_injected_late_click_shows_up_and_lands(seeded, client):
    email_id, campaign = send_to_everyone(seeded, client)
    later(seeded, seconds=3600)
    ignorer = next(c for c in contacts(seeded) if c["profile"] == "confirm_r3")
    injected = seeded.admin("POST", "events", {"emailId": email_id, "contactId": ignorer["id"], "type": "CLICK"})
    clicks = read_all(client, campaignId=campaign, eventType="CLICK", recipient=ignorer["email"], limit=1000)
    assert [(e["id"], e["url"], e["filteredEvent"]) for e in clicks] == [(injected["id"], CTA, False)]
    landed = next(c for c in contacts(seeded) if c["id"] == ignorer["id"])
    assert landed["lastClick"] == injected["at"]
    future = seeded.admin("POST", "events", {
        "emailId": email_id, "contactId": ignorer["id"], "type": "OPEN",
        "at": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat()})
    assert future["id"] not in {e["id"] for e in read_all(client, campaignId=campaign, eventType="OPEN", limit=1000)}
