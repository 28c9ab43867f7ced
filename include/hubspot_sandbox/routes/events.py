"""HubSpot's legacy email events API (``GET /email/public/v1/events``) and the sending simulation's admin API.

Events are read newest first with a keyset cursor on ``(created, id)`` over the index
``(campaign_id, type, created, id)``: a page of 1000 costs a few index seeks however many events exist.
Only events whose time has come (``created <= now``) are visible. Errors here have the legacy v1
shape (``status``, ``message``, ``correlationId``), not the v3 one.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .. import errors, sending
from ..portal import Portal, iso, parse_iso, portal_of
from ..routing import Endpoints, json_body, json_object
from .admin import _admin

endpoints = Endpoints()
admin_router = APIRouter(prefix="/_sandbox", dependencies=[Depends(_admin)])

MAX_LIMIT = 1000
_FAR = 1 << 62
_COLUMNS = "id, campaign_id, email_id, contact_id, recipient, type, created, url, filtered"


class LegacyError(Exception):
    """A v1-style error: ``{"status": "error", "message", "correlationId"}``."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def response(self) -> JSONResponse:
        body = {"status": "error", "message": self.message, "correlationId": str(uuid.uuid4())}
        return JSONResponse(body, status_code=self.status_code)


@dataclass
class EventQuery:
    """The parsed query string of one events request."""

    campaign_id: int | None = None
    app_id: int | None = None
    event_type: str | None = None
    recipient: str | None = None
    start: int | None = None
    end: int | None = None
    exclude_filtered: bool = False
    limit: int = 10
    cursor: tuple[int, int] = (_FAR, 0)

    @classmethod
    def parse(cls, request: Request) -> EventQuery:
        q = request.query_params
        event_type = q.get("eventType") or None
        if event_type is not None and event_type not in sending.EVENT_TYPES:
            raise LegacyError(
                f'Cannot deserialize value of type `com.hubspot.email.events.EventType` from String "{event_type}": '
                f"not one of the values accepted for Enum class: [{', '.join(sending.EVENT_TYPES)}]"
            )
        limit = _number(q.get("limit"), "limit")
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise LegacyError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
        return cls(
            campaign_id=_number(q.get("campaignId"), "campaignId"),
            app_id=_number(q.get("appId"), "appId"),
            event_type=event_type,
            recipient=q.get("recipient") or None,
            start=_number(q.get("startTimestamp"), "startTimestamp"),
            end=_number(q.get("endTimestamp"), "endTimestamp"),
            exclude_filtered=(q.get("excludeFilteredEvents") or "false").lower() == "true",
            limit=limit or 10,
            cursor=decode_offset(q.get("offset")),
        )


def _number(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as err:
        raise LegacyError(
            f"Failed to convert value of type 'java.lang.String' to required type 'long' for {name}: "
            f'For input string: "{raw}"'
        ) from err


def encode_offset(created: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{created}:{row_id}".encode()).decode().rstrip("=")


def decode_offset(token: str | None) -> tuple[int, int]:
    if not token:
        return (_FAR, 0)
    try:
        created, row_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
        return int(created), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise LegacyError(f"Invalid offset {token!r}.") from err


# -- reading a page -----------------------------------------------------------------------------------


def _page(portal: Portal, query: EventQuery) -> list[Any]:
    """Up to limit+1 visible events before the cursor, newest first."""
    # The cursor tightens the upper bound so the index seek starts at the page, not at the newest event.
    upper = min(portal.now_ms(), query.cursor[0], query.end if query.end is not None else _FAR)
    lower = query.start if query.start is not None else -_FAR
    extra, extra_params = "", []
    if query.exclude_filtered:
        extra += " AND filtered = 0"
    if query.recipient:
        extra += " AND recipient = ? COLLATE NOCASE"
        extra_params.append(query.recipient)
    window = [lower, upper, *query.cursor]
    if query.campaign_id is None:
        type_clause = " AND type = ?" if query.event_type else ""
        return portal.db.all(
            f"SELECT {_COLUMNS} FROM events WHERE created BETWEEN ? AND ? AND (created, id) < (?, ?)"  # noqa: S608
            f"{type_clause}{extra} ORDER BY created DESC, id DESC LIMIT ?",
            [*window, *([query.event_type] if query.event_type else []), *extra_params, query.limit + 1],
        )
    parts = [
        portal.db.all(
            f"SELECT {_COLUMNS} FROM events WHERE campaign_id = ? AND type = ? AND created BETWEEN ? AND ? "  # noqa: S608
            f"AND (created, id) < (?, ?){extra} ORDER BY created DESC, id DESC LIMIT ?",
            [query.campaign_id, kind, *window, *extra_params, query.limit + 1],
        )
        for kind in ([query.event_type] if query.event_type else sending.EVENT_TYPES)
    ]
    merged = heapq.merge(*parts, key=lambda r: (r["created"], r["id"]), reverse=True)
    return list(itertools.islice(merged, query.limit + 1))


@endpoints.get("/email/public/v1/events", name="events.list", scopes=[["content"]])
async def list_events(request: Request) -> Any:
    portal = portal_of(request)
    try:
        query = EventQuery.parse(request)
    except LegacyError as err:
        return err.response()
    rows = [] if query.app_id not in (None, sending.APP_ID) else _page(portal, query)
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    offset = encode_offset(rows[-1]["created"], rows[-1]["id"]) if rows else encode_offset(*query.cursor)
    renderer = _Renderer(portal)
    return {"hasMore": has_more, "offset": offset, "events": [renderer.render(r) for r in rows]}


# -- event JSON ---------------------------------------------------------------------------------------

_DESKTOP_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
_MOBILE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
)
_BOT_AGENT = "Mozilla/5.0 (compatible; SafeLinks/1.0; +https://example.invalid/link-scanner)"
_BROWSERS = {
    "COMPUTER": {
        "name": "Google Chrome 124",
        "family": "Chrome",
        "producer": "Google Inc.",
        "producerUrl": "https://www.google.com/about/company/",
        "type": "Browser",
        "url": "https://www.google.com/chrome/",
        "version": ["124.0.0.0"],
    },
    "MOBILE": {
        "name": "Apple Mail",
        "family": "Apple Mail",
        "producer": "Apple Inc.",
        "producerUrl": "https://www.apple.com/",
        "type": "Email client",
        "url": "https://www.apple.com/",
        "version": ["17.4"],
    },
    "BOT": {
        "name": "unknown",
        "family": "unknown",
        "producer": "unknown",
        "producerUrl": "",
        "type": "Robot",
        "url": "",
        "version": [],
    },
}
_LOCATION = {
    "country": "UNITED STATES",
    "state": "massachusetts",
    "city": "cambridge",
    "zipcode": "02139",
    "latitude": 42.3736,
    "longitude": -71.1097,
}


class _Renderer:
    """Turns event rows into HubSpot's event JSON, caching each email's details for the page."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.portal_id = portal.config.portal_id
        self._emails: dict[int, tuple[dict[str, Any], dict[str, int] | None]] = {}

    def _email(self, email_id: int) -> tuple[dict[str, Any], dict[str, int] | None]:
        if email_id not in self._emails:
            raw = self.portal.db.scalar("SELECT data FROM emails WHERE id = ?", (email_id,))
            self._emails[email_id] = (json.loads(raw) if raw else {}, sending.send_params(self.portal, email_id))
        return self._emails[email_id]

    def render(self, row: Any) -> dict[str, Any]:
        data, params = self._email(row["email_id"])
        sent_at = row["created"]
        if params:
            sent_at = sending.timeline(
                params["seed"], row["email_id"], row["contact_id"], params["start"], params["window"]
            )[0]
        sent_id = sending.sent_event_id(self.portal_id, row["email_id"], row["contact_id"])
        event: dict[str, Any] = {
            "id": sent_id if row["type"] == "SENT" else sending.event_id(self.portal_id, row["id"]),
            "created": row["created"],
            "type": row["type"],
            "recipient": row["recipient"],
            "portalId": self.portal_id,
            "appId": sending.APP_ID,
            "appName": sending.APP_NAME,
            "emailCampaignId": row["campaign_id"],
            "sentBy": {"id": sent_id, "created": sent_at},
        }
        event.update(self._details(row, data))
        return event

    def _details(self, row: Any, data: dict[str, Any]) -> dict[str, Any]:
        kind = row["type"]
        if kind == "SENT":
            sender = data.get("from") or {}
            address = sender.get("replyTo") or f"noreply@{sending.portal_domain(self.portal)}"
            return {"subject": data.get("subject") or "", "from": f"{sender.get('fromName') or ''} <{address}>"}
        if kind == "DELIVERED":
            return {"response": "250 2.0.0 OK: queued as sandbox", "smtpId": None}
        if kind == "BOUNCE":
            return {
                "category": "HARD_BOUNCE",
                "status": "5.1.1",
                "response": "550 5.1.1 The email account that you tried to reach does not exist.",
            }
        if kind in ("OPEN", "CLICK"):
            return self._engagement(row)
        if kind in sending.SELF_UNSUBSCRIBE_EVENT_TYPES:
            return {
                "source": sending.RECIPIENT_SOURCE,
                "requestedBy": row["recipient"],
                "portalSubscriptionStatus": "UNSUBSCRIBED",
                "subscriptions": [],
                "bounced": False,
            }
        return {}

    @staticmethod
    def _engagement(row: Any) -> dict[str, Any]:
        device = "MOBILE" if row["contact_id"] % 5 == 0 else "COMPUTER"
        filtered = bool(row["filtered"])
        agent = _BOT_AGENT if filtered else (_MOBILE_AGENT if device == "MOBILE" else _DESKTOP_AGENT)
        out: dict[str, Any] = {
            "filteredEvent": filtered,
            "userAgent": agent,
            "browser": _BROWSERS["BOT" if filtered else device],
            "location": _LOCATION,
            "deviceType": device,
        }
        if row["type"] == "CLICK":
            out.update(url=row["url"] or "", referer="", linkId=zlib.crc32((row["url"] or "").encode()) % 1_000_000)
        else:
            out["duration"] = 0 if filtered else 1_000 + row["id"] % 9_000
        return out


# -- admin: the sending simulation's switches -------------------------------------------------------------


@admin_router.get("/tracking")
async def get_tracking(request: Request) -> dict[str, Any]:
    return {"clicks": bool(portal_of(request).db.get_meta("click_tracking", True))}


@admin_router.put("/tracking")
async def set_tracking(request: Request) -> dict[str, Any]:
    """``{"clicks": false}`` breaks click tracking: later sends produce no CLICK events at all."""
    body = json_object(await json_body(request))
    if not isinstance(body.get("clicks"), bool):
        raise errors.validation_error("clicks must be true or false.", field="clicks")
    portal = portal_of(request)
    portal.db.set_meta("click_tracking", body["clicks"])
    return {"clicks": body["clicks"]}


@admin_router.get("/sending")
async def get_sending(request: Request) -> dict[str, Any]:
    return _sending_switches(portal_of(request))


@admin_router.put("/sending")
async def set_sending(request: Request) -> dict[str, Any]:
    """Switch parts of HubSpot's sending behaviour off for a test (all are on by default, as in HubSpot).

    ``trackingParameters``: CTA clicks carry utm_*/_hsenc/_hsmi; ``skipUnmailable``: publishing skips contacts
    that are not marketing contacts, double opt-in pending, hard-bounced or quarantined; ``unsubscribeLinks``:
    a click on the email's unsubscribe link unsubscribes the contact from all email. ``unsubscribeEventType``
    (``STATUSCHANGE``, the default, or ``UNSUBSCRIBED``): the event type such an unsubscribe is filed as.
    """
    body = json_object(await json_body(request))
    portal = portal_of(request)
    for field, meta in _SENDING_SWITCHES.items():
        if field in body:
            if not isinstance(body[field], bool):
                raise errors.validation_error(f"{field} must be true or false.", field=field)
            portal.db.set_meta(meta, body[field])
    if "unsubscribeEventType" in body:
        if body["unsubscribeEventType"] not in sending.SELF_UNSUBSCRIBE_EVENT_TYPES:
            kinds = " or ".join(sending.SELF_UNSUBSCRIBE_EVENT_TYPES)
            raise errors.validation_error(f"unsubscribeEventType must be {kinds}.", field="unsubscribeEventType")
        portal.db.set_meta("unsubscribe_event_type", body["unsubscribeEventType"])
    return _sending_switches(portal)


#: Admin field -> portal meta key; the server's SandboxConfig field (``_CONFIG_FIELDS``) gives its default.
_SENDING_SWITCHES = {
    "trackingParameters": "tracking_parameters",
    "skipUnmailable": "skip_unmailable",
    "unsubscribeLinks": "unsubscribe_links",
}
_CONFIG_FIELDS = {
    "tracking_parameters": "click_tracking_parameters",
    "skip_unmailable": "skip_unmailable",
    "unsubscribe_links": "unsubscribe_links",
}


def _sending_switches(portal: Portal) -> dict[str, Any]:
    switches: dict[str, Any] = {
        field: bool(portal.db.get_meta(meta, getattr(portal.config, _CONFIG_FIELDS[meta])))
        for field, meta in _SENDING_SWITCHES.items()
    }
    switches["unsubscribeEventType"] = sending.unsubscribe_event_type(portal)
    return switches


@admin_router.post("/events")
async def inject_event(request: Request) -> dict[str, Any]:
    """Add an OPEN or CLICK by hand, e.g. a click that arrives after the response window."""
    portal = portal_of(request)
    body = json_object(await json_body(request))
    kind = body.get("type")
    if kind not in ("OPEN", "CLICK"):
        raise errors.validation_error("type must be OPEN or CLICK.", field="type")
    email = _row(portal, "emails", body.get("emailId"), "Email")
    contact = _row(portal, "contacts", body.get("contactId"), "Contact")
    if not contact["email"]:
        raise errors.validation_error(f"Contact {contact['id']} has no email address.", field="contactId")
    url = body.get("url")
    if kind == "CLICK" and not url:
        url = sending.tracked_cta(portal, email, int(contact["id"]))
        if not url:
            raise errors.validation_error("The email has no call-to-action link; give url.", field="url")
    try:
        at = parse_iso(body["at"]) if body.get("at") else portal.now_ms()
    except (TypeError, ValueError) as err:
        raise errors.validation_error("at must be an ISO 8601 date-time.", field="at") from err
    row_id = sending.inject_event(
        portal, email, contact, kind, at, url if kind == "CLICK" else None, bool(body.get("filtered"))
    )
    return {
        "id": sending.event_id(portal.config.portal_id, row_id),
        "type": kind,
        "created": at,
        "at": iso(at),
        "emailCampaignId": email["campaign_id"],
        "recipient": contact["email"],
        "url": url,
    }


def _row(portal: Portal, table: str, raw: Any, what: str) -> Any:
    try:
        row_id = int(raw)
    except (TypeError, ValueError) as err:
        raise errors.validation_error(f"{what} id {raw!r} is not a number.") from err
    row = portal.db.one(f"SELECT * FROM {table} WHERE id = ?", (row_id,))  # noqa: S608 - fixed table names
    if row is None:
        raise errors.not_found(f"{what} {row_id} does not exist.")
    return row


@admin_router.get("/emails/{email_id}/recipients")
async def recipients(request: Request, email_id: int) -> dict[str, Any]:
    """Who a sent email went to (the ``sends`` rows): the ground truth of recipient selection."""
    portal = portal_of(request)
    rows = portal.db.all("SELECT contact_id, round FROM sends WHERE email_id = ? ORDER BY contact_id", (email_id,))
    return {
        "emailId": str(email_id),
        "total": len(rows),
        "recipients": [{"contactId": str(r["contact_id"]), "round": r["round"]} for r in rows],
    }
