"""The sending simulation as seen through HubSpot's legacy email events API and the contacts it changes.

Events are read with ``client.api_request`` where a paging loop needs it and with ``sandbox.session``
for raw status checks; the SDK's typed APIs cover the emails and lists that set each scene.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from hubspot.crm.lists import ListCreateRequest
from hubspot.marketing.emails import EmailCreateRequest

from include.hubspot_sandbox.seeding import SEND_BLOCKERS

EVENTS = "/email/public/v1/events"
MARKETING = "33583163"
CTA = "https://acme.example/thank-you?pp=7&round=1"
OTHER = "https://acme.example/blog"
#: The unsubscribe link comes first, the CTA is HTML-escaped and a later widget comes first in the dict: the
#: CTA is still found, and its click ``url`` is the URL a browser visits.
CONTENT = {
    "widgets": {
        "footer": {"body": {"html": f'<a href="{OTHER}">Blog</a>'}, "order": 3},
        "main": {
            "body": {
                "html": '<a href="{{ unsubscribe_link }}">Unsubscribe</a> '
                f'<a href="{CTA.replace("&", "&amp;")}">Yes, keep me subscribed</a>'
            },
            "order": 1,
        },
    }
}


# -- helpers ------------------------------------------------------------------------------------------


def contacts(sandbox) -> list[dict]:
    return sandbox.admin("GET", "contacts")["results"]


def send_to_everyone(sandbox, client, *, name="PP #1") -> tuple[str, str]:
    """Publish an email (graymail not suppressed) to every seeded contact; returns (email id, campaign id)."""
    created = client.crm.lists.lists_api.create(
        ListCreateRequest(name=f"{name} recipients", object_type_id="0-1", processing_type="MANUAL")
    ).list
    client.crm.lists.memberships_api.add(created.list_id, [c["id"] for c in contacts(sandbox)])
    emails = client.marketing.emails.marketing_emails_api
    email = emails.create(
        EmailCreateRequest(
            name=name,
            subject="Still there?",
            _from={"fromName": "ACME"},
            content=CONTENT,
            to={"contactIlsLists": {"include": [created.list_id]}, "suppressGraymail": False},
            subscription_details={"subscriptionId": MARKETING},
        )
    )
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


def mailable(contact) -> bool:
    """Whom HubSpot sends to, judged by the seeded profile (a contact's optout may change after the send)."""
    return bool(contact["email"]) and contact["profile"] not in (
        "already_unsubscribed",
        "subscription_optout",
        *SEND_BLOCKERS,
    )


def without_tracking(url: str) -> str:
    """A CLICK url with HubSpot's tracking parameters taken out again."""
    parts = urlsplit(url)
    own = "&".join(
        f"{k}={v}" for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith(("utm_", "_hs"))
    )
    return parts._replace(query=own).geturl()


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
    mailed = {c["email"] for c in contacts(seeded) if mailable(c)}
    assert recipients_of(events, "SENT") == mailed
    assert recipients_of(events, "BOUNCE") == profiles["bounce"]
    assert recipients_of(events, "DELIVERED") == mailed - profiles["bounce"]
    cta_clickers = {
        e["recipient"]
        for e in events
        if e["type"] == "CLICK" and not e["filteredEvent"] and without_tracking(e["url"]) == CTA
    }
    assert cta_clickers == profiles["confirm_r1"]
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
    # No campaign: every event of the portal by time (from this send on: the seeded newsletter's are older).
    everywhere = read_all(client, limit=100, startTimestamp=min(stamps))
    assert [e["id"] for e in everywhere] == [e["id"] for e in paged]


def test_filters_narrow_the_events(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    events = read_all(client, campaignId=campaign, limit=1000)
    clicks = read_all(client, campaignId=campaign, eventType="CLICK", limit=1000)
    assert clicks and {e["type"] for e in clicks} == {"CLICK"}
    unfiltered = read_all(client, campaignId=campaign, eventType="CLICK", excludeFilteredEvents="true", limit=1000)
    assert unfiltered == [e for e in clicks if not e["filteredEvent"]] and len(unfiltered) < len(clicks)
    someone, since = clicks[0]["recipient"], min(e["created"] for e in events)
    mine = read_all(client, recipient=someone, startTimestamp=since, limit=1000)
    assert mine == [e for e in events if e["recipient"] == someone]
    middle = sorted(e["created"] for e in events)[len(events) // 2]
    window = read_all(client, campaignId=campaign, startTimestamp=middle, limit=1000)
    assert window == [e for e in events if e["created"] >= middle]
    assert read_page(seeded, campaignId=campaign, appId=999)["events"] == []
    assert read_page(seeded, campaignId=int(campaign) + 1)["events"] == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"eventType": "SENT,DELIVERED"}, "not one of the values accepted for Enum class: [DROPPED, UNBOUNCE"),
        ({"eventType": "open"}, "com.hubspot.email.events.EventType"),
        ({"limit": "1001"}, "limit"),
        ({"campaignId": "abc"}, "For input string"),
        ({"offset": "%%%"}, "offset"),
    ],
)
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
        return len(
            {
                e["recipient"]
                for e in read_all(client, campaignId=campaign, eventType=kind, excludeFilteredEvents="true", limit=1000)
            }
        )

    assert counters["sent"] == unique("SENT")
    assert counters["selected"] == counters["sent"] + counters["notsent"] and counters["notsent"] > 0
    assert counters["unsubscribed"] == unique("STATUSCHANGE") > 0
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
    assert [(e["id"], without_tracking(e["url"]), e["filteredEvent"]) for e in clicks] == [(injected["id"], CTA, False)]
    landed = next(c for c in contacts(seeded) if c["id"] == ignorer["id"])
    assert landed["lastClick"] == injected["at"]
    future = seeded.admin(
        "POST",
        "events",
        {
            "emailId": email_id,
            "contactId": ignorer["id"],
            "type": "OPEN",
            "at": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat(),
        },
    )
    assert future["id"] not in {e["id"] for e in read_all(client, campaignId=campaign, eventType="OPEN", limit=1000)}


# -- click tracking parameters ----------------------------------------------------------------------------


def test_cta_clicks_carry_hubspot_tracking_parameters_around_the_links_own(seeded, client):
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    clicks = [
        e
        for e in read_all(client, campaignId=campaign, eventType="CLICK", limit=1000)
        if "/hs/manage-preferences/" not in e["url"]
    ]
    assert len(clicks) >= 5
    own_at = set()
    for click in clicks:
        parts = urlsplit(click["url"])
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "acme.example", "/thank-you")
        params = parse_qsl(parts.query)
        names = [name for name, _ in params]
        values = dict(params)
        assert values["pp"] == "7" and values["round"] == "1"
        assert values["utm_source"] == "hs_email" and values["utm_medium"] == "email"
        assert values["_hsenc"].startswith("p2ANqtz-") and values["_hsmi"].isdigit()
        assert values["utm_content"] == values["_hsmi"]
        assert names.index("round") == names.index("pp") + 1  # the link's own query stays as written
        own_at.add(names.index("pp"))
    # Recipients differ in where HubSpot's parameters go: before, after and around the link's own.
    assert 0 in own_at and len(own_at) >= 3
    assert len({e["url"] for e in clicks}) == len(clicks)  # _hsenc is per recipient
    # The same send reads the same way twice (deterministic per recipient).
    again = [e["url"] for e in read_all(client, campaignId=campaign, eventType="CLICK", limit=1000)]
    assert {e["url"] for e in clicks} <= set(again)


def test_a_late_cta_click_injected_without_url_is_tracked_too(seeded, client):
    email_id, _ = send_to_everyone(seeded, client)
    contact = next(c for c in contacts(seeded) if c["profile"] == "never_confirm")
    injected = seeded.admin("POST", "events", {"type": "CLICK", "emailId": email_id, "contactId": contact["id"]})
    assert without_tracking(injected["url"]) == CTA and "_hsenc=p2ANqtz-" in injected["url"]


def test_tracking_parameters_can_be_switched_off(seeded, client):
    assert seeded.admin("GET", "sending")["trackingParameters"] is True
    seeded.admin("PUT", "sending", {"trackingParameters": False})
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    clicks = read_all(client, campaignId=campaign, eventType="CLICK", limit=1000)
    cta = {e["url"] for e in clicks if "/hs/manage-preferences/" not in e["url"]}
    assert cta == {CTA}


# -- the unsubscribe link ----------------------------------------------------------------------------------


def test_the_unsubscribe_link_unsubscribes_the_contact_from_all_email(seeded, client):
    email_id, campaign = send_to_everyone(seeded, client)
    clickers = by_profile(seeded)["unsubscribe_click"]
    assert not any(c["optout"] for c in contacts(seeded) if c["email"] in clickers)
    later(seeded)
    changes = read_all(client, campaignId=campaign, eventType="STATUSCHANGE", limit=1000)  # lands the clicks
    assert all(c["optout"] for c in contacts(seeded) if c["email"] in clickers)
    assert {e["recipient"] for e in changes} == clickers
    assert all(e["source"] == "SOURCE_RECIPIENT" and e["portalSubscriptionStatus"] == "UNSUBSCRIBED" for e in changes)
    # hs_email_optout reads true; the v4 API reports them unsubscribed and a campaign opt-out changes nothing.
    someone = sorted(clickers)[0]
    contact_id = next(c["id"] for c in contacts(seeded) if c["email"] == someone)
    found = seeded.session.get(
        f"{seeded.url}/crm/v3/objects/contacts/{contact_id}", params={"properties": "hs_email_optout"}
    )
    assert found.json()["properties"]["hs_email_optout"] == "true", found.text
    answer = seeded.session.post(
        f"{seeded.url}/communication-preferences/v4/statuses/batch/unsubscribe-all",
        params={"channel": "EMAIL", "verbose": "true"},
        json={"inputs": [someone]},
    )
    assert answer.status_code == 200, answer.text
    reasons = {s.get("setStatusSuccessReason") for r in answer.json()["results"] for s in r.get("statuses", [])}
    assert reasons <= {"NO_STATUS_CHANGE"}
    # A contact's own unsubscribe is not an API change: the opt-out audit log stays empty.
    assert seeded.admin("GET", "status-changes")["results"] == []
    stats = client.marketing.emails.marketing_emails_api.get_by_id(email_id, include_stats=True).stats
    assert stats.counters["unsubscribed"] == len(clickers)
    # The next email skips them.
    _, second = send_to_everyone(seeded, client, name="PP #2")
    assert not recipients_of(read_all(client, campaignId=second, eventType="SENT", limit=1000), "SENT") & clickers


def test_the_unsubscribe_link_can_be_switched_off(seeded, client):
    seeded.admin("PUT", "sending", {"unsubscribeLinks": False})
    _, campaign = send_to_everyone(seeded, client)
    later(seeded)
    assert read_all(client, campaignId=campaign, eventType="STATUSCHANGE", limit=1000) == []
    clickers = by_profile(seeded)["unsubscribe_click"]
    assert not any(c["optout"] for c in contacts(seeded) if c["email"] in clickers)


def test_the_sending_switches_have_command_line_flags():
    from include.hubspot_sandbox.__main__ import build_parser, config_from_args

    default = config_from_args(build_parser().parse_args(["serve"]))
    assert (default.click_tracking_parameters, default.skip_unmailable, default.unsubscribe_links) == (True,) * 3
    lenient = config_from_args(
        build_parser().parse_args(
            ["serve", "--no-tracking-parameters", "--send-to-unmailable", "--inert-unsubscribe-links"]
        )
    )
    assert (lenient.click_tracking_parameters, lenient.skip_unmailable, lenient.unsubscribe_links) == (False,) * 3


def test_a_self_unsubscribe_can_be_filed_as_an_unsubscribed_event(seeded, client):
    switches = seeded.admin("PUT", "sending", {"unsubscribeEventType": "UNSUBSCRIBED"})
    assert switches["unsubscribeEventType"] == "UNSUBSCRIBED"
    email_id, campaign = send_to_everyone(seeded, client)
    later(seeded)
    clickers = by_profile(seeded)["unsubscribe_click"]
    events = read_all(client, campaignId=campaign, eventType="UNSUBSCRIBED", limit=1000)
    assert {e["recipient"] for e in events} == clickers
    assert read_all(client, campaignId=campaign, eventType="STATUSCHANGE", limit=1000) == []
    stats = client.marketing.emails.marketing_emails_api.get_by_id(email_id, include_stats=True).stats
    assert stats.counters["unsubscribed"] == len(clickers)
