"""The sending simulation: who receives a published marketing email and what each recipient does with it.

Publishing an email (Enterprise only) picks its recipients the way HubSpot does (include lists minus
exclude lists, minus everyone HubSpot would suppress), records one ``sends`` row per recipient and
writes the whole future of the send into ``events`` at once: SENT, then DELIVERED or BOUNCE, then the
OPEN/CLICK that the contact's seeded profile dictates, each at a deterministic time inside the portal's
response window. Events stay invisible until the portal clock reaches them; :func:`land_due_events`
then applies them to the contacts (last open/click, hard bounce, an unsubscribe-link click), like HubSpot's
event pipeline does. Contacts HubSpot never mails (unsubscribed, bounced, quarantined, not marketing contacts,
double opt-in pending, graymail) get a ``not_sent`` row instead of a send; CTA clicks carry HubSpot's tracking
parameters.
Everything is set-based so a send to 400k contacts takes seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import errors, lists_store
from .portal import iso
from .properties import CONFIRMATION_PENDING
from .seeding import PROFILES, WEEK_MS

if TYPE_CHECKING:
    from .portal import Portal

#: HubSpot's app id and name for batch marketing email in the legacy email events API.
APP_ID = 113
APP_NAME = "Batch"
#: Contacts with no open for this long count as graymail (suppressed unless ``suppressGraymail`` is false).
GRAYMAIL_MS = 52 * WEEK_MS
#: Every value the legacy events API accepts for ``eventType``, in HubSpot's own order.
EVENT_TYPES = (
    "DROPPED",
    "UNBOUNCE",
    "STATUSCHANGE",
    "DELIVERED",
    "FORWARD",
    "BOUNCE",
    "REPLY",
    "PRINT",
    "PROCESSED",
    "UNSUBSCRIBED",
    "SUPPRESSED",
    "CLICK_ON_IDENTIFIED_LINK",
    "SENT",
    "SELECTED",
    "SPAMREPORT",
    "OPT_IN_CHANGE",
    "DEFERRED",
    "ERROR",
    "OPEN",
    "MTA_DROPPED",
    "CLICK",
)
COUNTER_KEYS = (
    "bounce",
    "click",
    "contactslost",
    "delivered",
    "dropped",
    "hardbounced",
    "notsent",
    "open",
    "pending",
    "selected",
    "sent",
    "softbounced",
    "spamreport",
    "suppressed",
    "unsubscribed",
)
_P = 2_147_483_647  # 2**31 - 1, prime
_HREF = re.compile(r"""href\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_UNSUBSCRIBE_MARKERS = (
    "{{",
    "{%",
    "/hs/manage-preferences",
    "/hs/preferences-center",
    "unsubscribe",
    "email-preferences",
    "subscription-preferences",
)


# -- deterministic timing ---------------------------------------------------------------------------


def _key(seed: int, email_id: int, contact_id: int) -> int:
    """A recipient's hash key; :data:`_SIM_SQL` computes the same in SQL (all products stay below 2**63)."""
    return ((abs(seed) % _P) * 1_000_003 + (email_id % _P) * 7_919 + contact_id) % _P


def _draw(key: int, salt: int) -> int:
    """A pseudo-random 31-bit number per (key, salt): square mod a prime, then an LCG step."""
    value = (key + salt * 1_234_567) % _P
    return (value * value % _P * 1_103_515_245 + 12_345) % _P


def _draw_sql(salt: int) -> str:
    value = f"((key + {salt * 1_234_567}) % {_P})"
    return f"(({value} * {value} % {_P} * 1103515245 + 12345) % {_P})"


def timeline(seed: int, email_id: int, contact_id: int, start: int, window: int) -> tuple[int, int, int, int]:
    """(sent, delivered, open, click) times of one recipient: SENT within 1 % of the window, OPEN < CLICK."""
    key = _key(seed, email_id, contact_id)
    end = start + max(window, 10)
    sent = start + _draw(key, 1) % (window // 100 + 1)
    delivered = sent + 1 + _draw(key, 2) % max(1, min(2_000, window // 200))
    opened = delivered + 1 + _draw(key, 3) % max(1, end - delivered - 2)
    clicked = opened + 1 + _draw(key, 4) % max(1, end - opened - 1)
    return sent, delivered, opened, clicked


def portal_seed(portal: Portal) -> int:
    seeded = portal.db.get_meta("seed") or {}
    return int(seeded.get("seed", portal.config.seed)) if isinstance(seeded, dict) else portal.config.seed


def send_params(portal: Portal, email_id: int) -> dict[str, int] | None:
    """How a send was simulated (start, window, seed): enough to recompute any recipient's SENT event."""
    value = portal.db.get_meta(f"send:{email_id}")
    return value if isinstance(value, dict) else None


def sent_event_id(portal_id: int, email_id: int, contact_id: int) -> str:
    """The public id of a recipient's SENT event; ``sentBy.id`` of every later event of that send."""
    return str(uuid.UUID(bytes=hashlib.md5(f"{portal_id}:{email_id}:{contact_id}:SENT".encode()).digest()))  # noqa: S324


def event_id(portal_id: int, row_id: int) -> str:
    return str(uuid.UUID(bytes=hashlib.md5(f"{portal_id}:event:{row_id}".encode()).digest()))  # noqa: S324


#: Where the email's own unsubscribe link points; a CLICK there unsubscribes the contact from all email.
UNSUBSCRIBE_PATH = "/hs/manage-preferences/unsubscribe"
#: ``source`` of the STATUSCHANGE event a recipient's own unsubscribe leaves in the legacy events API.
RECIPIENT_SOURCE = "SOURCE_RECIPIENT"
SELF_UNSUBSCRIBE_EVENT_TYPES = ("STATUSCHANGE", "UNSUBSCRIBED")


# -- email content ------------------------------------------------------------------------------------


def portal_domain(portal: Portal) -> str:
    return f"{portal.config.portal_id}.hs-sites.com"


def is_unsubscribe_link(href: str) -> bool:
    """HubSpot's unsubscribe/preferences links and template tokens are never the call to action."""
    lowered = href.strip().lower()
    return any(marker in lowered for marker in _UNSUBSCRIBE_MARKERS)


def _html_parts(content: Any) -> Iterator[str]:
    """The email's HTML: widget bodies in widget order first, then any other ``html`` in the content."""
    if not isinstance(content, dict):
        return
    widgets = content.get("widgets") if isinstance(content.get("widgets"), dict) else {}
    ordered = sorted(
        (w for w in widgets.values() if isinstance(w, dict)),
        key=lambda w: w.get("order") if isinstance(w.get("order"), int) else 1 << 30,
    )
    seen: set[int] = set()
    for widget in ordered:
        body = widget.get("body")
        if isinstance(body, dict) and isinstance(body.get("html"), str):
            seen.add(id(body["html"]))
            yield body["html"]
    yield from (html for html in _all_html(content) if id(html) not in seen)


def _all_html(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "html" and isinstance(item, str):
                yield item
            else:
                yield from _all_html(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_html(item)


def cta_url(data: dict[str, Any]) -> str | None:
    """The call-to-action link: the first ``href`` that is not an unsubscribe link, a mailto or an anchor.

    Entities are decoded (``&amp;`` -> ``&``) as a browser does, so the CLICK ``url`` is the URL people visit.
    """
    for part in _html_parts(data.get("content")):
        for match in _HREF.finditer(part):
            href = html.unescape(match.group(2)).strip()
            if href and not href.startswith(("#", "mailto:", "tel:")) and not is_unsubscribe_link(href):
                return href
    return None


def tracking_message_id(email_id: int) -> int:
    """The ``_hsmi`` (and ``utm_content``) number HubSpot gives an email's tracked links."""
    return 80_000_000 + email_id % 900_000_000


def tracked_link(url: str | None, email_id: int, key: int, campaign: str | None = None) -> str | None:
    """``url`` as it reaches a CLICK event after HubSpot's click tracking: the same scheme, host, path and own
    query, with ``utm_source``, ``utm_medium``, ``utm_content``, ``utm_campaign`` (if any), ``_hsenc`` (per
    recipient) and ``_hsmi`` (per email) mixed in before, after or around it, in an order fixed by the key."""
    if not url:
        return url
    parts = urlsplit(url)
    own = [p for p in parts.query.split("&") if p]
    message = str(tracking_message_id(email_id))
    token = f"p2ANqtz-{_draw(key, 6):08x}{_draw(key, 7):08x}{_draw(key, 8):04x}"
    added = [
        ("utm_source", "hs_email"),
        ("utm_medium", "email"),
        ("utm_content", message),
        ("_hsenc", token),
        ("_hsmi", message),
    ]
    if campaign:
        added.append(("utm_campaign", campaign))
    order = sorted(range(len(added)), key=lambda i: _draw(key, 10 + i))
    tracking = [urlencode([added[i]]) for i in order]
    split = _draw(key, 9) % (len(tracking) + 1)
    query = "&".join(tracking[:split] + own + tracking[split:])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# -- validation before a send -------------------------------------------------------------------------


def id_list(to: dict[str, Any], group: str, side: str) -> list[int]:
    """Numeric ids from ``to.<group>.<side>`` (HubSpot takes them as strings or numbers)."""
    section = to.get(group) if isinstance(to.get(group), dict) else {}
    values = section.get(side) or []
    out = []
    for value in values if isinstance(values, list) else [values]:
        try:
            out.append(int(value))
        except (TypeError, ValueError) as err:
            raise errors.validation_error(
                f"to.{group}.{side} holds {value!r}, which is not an id.", field=f"to.{group}.{side}"
            ) from err
    return out


def _refresh_list(portal: Portal, list_id: int) -> bool:
    """Bring a recipient list up to date (DYNAMIC lists re-evaluate); False if it does not exist."""
    try:
        lists_store.refresh(portal, list_id)
    except errors.HubSpotError as err:
        if err.status_code == 404:
            return False
        raise
    return True


def send_problems(portal: Portal, data: dict[str, Any]) -> list[tuple[str, str]]:
    """What stops this email from being sent, as (field, message) pairs; refreshes its lists on the way."""
    problems: list[tuple[str, str]] = []
    if not str(data.get("subject") or "").strip():
        problems.append(("subject", "The email has no subject."))
    sender = data.get("from") if isinstance(data.get("from"), dict) else {}
    if not str(sender.get("fromName") or "").strip():
        problems.append(("from.fromName", "The email has no from name (from.fromName)."))
    to = data.get("to") if isinstance(data.get("to"), dict) else {}
    include = id_list(to, "contactIlsLists", "include")
    if not include:
        problems.append(("to.contactIlsLists.include", "The email has no recipient list (to.contactIlsLists.include)."))
    for list_id in include + id_list(to, "contactIlsLists", "exclude"):
        if not _refresh_list(portal, list_id):
            problems.append(("to.contactIlsLists", f"List {list_id} does not exist."))
    problems.extend(_subscription_problems(portal, data))
    return problems


def _subscription_problems(portal: Portal, data: dict[str, Any]) -> list[tuple[str, str]]:
    details = data.get("subscriptionDetails") if isinstance(data.get("subscriptionDetails"), dict) else {}
    raw = details.get("subscriptionId")
    field = "subscriptionDetails.subscriptionId"
    if raw in (None, ""):
        return [(field, "The email has no subscription type (subscriptionDetails.subscriptionId).")]
    try:
        sub_id = int(raw)
    except (TypeError, ValueError):
        return [(field, f"Subscription type {raw!r} is not a valid id.")]
    row = portal.db.one("SELECT is_active, business_unit_id FROM subscription_types WHERE id = ?", (sub_id,))
    if row is None:
        return [(field, f"Subscription type {sub_id} does not exist.")]
    if not row["is_active"]:
        return [(field, f"Subscription type {sub_id} is not active.")]
    if row["business_unit_id"] != email_unit(data):
        return [
            (
                field,
                f"Subscription type {sub_id} belongs to business unit {row['business_unit_id']}, "
                f"not to the email's business unit {email_unit(data)}.",
            )
        ]
    return []


def email_unit(data: dict[str, Any]) -> int:
    """The business unit an email belongs to (``businessUnitId``, stored as a number; 0 when unset)."""
    value = data.get("businessUnitId")
    return int(value) if isinstance(value, (int, str)) and str(value).strip().isdigit() else 0


# -- the send -----------------------------------------------------------------------------------------


def deliver(portal: Portal, row: Any, at: int) -> int:
    """Send a validated email at ``at`` and mark it PUBLISHED; returns the number of recipients."""
    data = json.loads(row["data"])
    with portal.db.tx():
        count = send(portal, int(row["id"]), int(row["campaign_id"]), data, at)
        data.update(state="PUBLISHED", isPublished=True, publishedAt=iso(at))
        data.setdefault("publishDate", iso(at))
        data["updatedAt"] = iso(portal.now_ms())
        portal.db.execute(
            "UPDATE emails SET state = 'PUBLISHED', data = ?, published_at = ?, updated_at = ? WHERE id = ?",
            (json.dumps(data), at, portal.now_ms(), row["id"]),
        )
    return count


def send(portal: Portal, email_id: int, campaign_id: int, data: dict[str, Any], at: int) -> int:
    """Record an email's recipients and their future events (lists already refreshed); returns the count."""
    db = portal.db
    params = {"start": at, "window": int(portal.config.response_window_seconds * 1000), "seed": portal_seed(portal)}
    with db.tx():
        count = _insert_recipients(portal, email_id, data, at)
        db.execute(
            "UPDATE contacts SET sends = sends + 1 WHERE id IN (SELECT contact_id FROM sends WHERE email_id = ?)",
            (email_id,),
        )
        db.set_meta(f"send:{email_id}", params)
        _write_events(portal, email_id, campaign_id, data, params)
        portal.touch()
    return count


def send_scheduled(portal: Portal) -> int:
    """Send the scheduled emails whose publish date has come (HubSpot's scheduler, run lazily)."""
    rows = portal.db.all(
        "SELECT * FROM emails WHERE state = 'SCHEDULED' AND archived = 0 AND published_at <= ?", (portal.now_ms(),)
    )
    for row in rows:
        data = json.loads(row["data"])
        to = data.get("to") if isinstance(data.get("to"), dict) else {}
        for list_id in id_list(to, "contactIlsLists", "include") + id_list(to, "contactIlsLists", "exclude"):
            _refresh_list(portal, list_id)
        deliver(portal, row, int(row["published_at"]))
    return len(rows)


def background(portal: Portal) -> None:
    """The sending pipeline's lazy background work, run before every HubSpot request."""
    send_scheduled(portal)
    land_due_events(portal)


#: Why HubSpot does not send to a selected contact, first match wins (the legacy DROPPED event's
#: ``dropReason`` names). The first two ``?`` are the email's business unit (its "unsubscribed from all email"
#: is unit 0's ``optout`` or another unit's ``unit_optouts`` row), the third its subscription type id.
_UNSUBSCRIBED_OR_BOUNCED = (
    "WHEN (? = 0 AND c.optout) OR EXISTS (SELECT 1 FROM unit_optouts o WHERE o.contact_id = c.id "
    "            AND o.business_unit_id = ?) THEN 'PREVIOUSLY_UNSUBSCRIBED_PORTAL' "
    "WHEN EXISTS (SELECT 1 FROM subscription_status s WHERE s.contact_id = c.id AND s.subscription_id = ? "
    "            AND s.status = 'UNSUBSCRIBED') THEN 'PREVIOUSLY_UNSUBSCRIBED_MESSAGE' "
)
_NOT_MAILABLE = (
    "WHEN c.bounced > 0 OR c.hard_bounce_reason IS NOT NULL THEN 'PREVIOUSLY_BOUNCED' "
    "WHEN c.quarantined THEN 'QUARANTINED_ADDRESS' "
    "WHEN NOT c.marketable THEN 'NON_MARKETABLE_CONTACT' "
    f"WHEN c.confirmation IN {tuple(CONFIRMATION_PENDING)!r} THEN 'EMAIL_UNCONFIRMED' "
)
#: The lenient variant (admin switch ``PUT /_sandbox/sending {"skipUnmailable": false}``) skips only the
#: unsubscribed and bounced, as the sandbox did before it modelled marketing status, double opt-in and quarantine.
_LENIENT = "WHEN c.bounced > 0 THEN 'PREVIOUSLY_BOUNCED' "
_GRAYMAIL = "WHEN ? AND (c.last_open IS NULL OR c.last_open < ?) THEN 'GRAYMAIL_SUPPRESSED' "


def not_sent_reason_sql(strict: bool) -> str:
    return "CASE " + _UNSUBSCRIBED_OR_BOUNCED + (_NOT_MAILABLE if strict else _LENIENT) + _GRAYMAIL + "END"


def _insert_recipients(portal: Portal, email_id: int, data: dict[str, Any], at: int) -> int:
    """Include lists (+ contactIds.include) minus the excluded: each selected contact either gets a ``sends``
    row or, when HubSpot would not mail it (unsubscribed, bounced, quarantined, not a marketing contact,
    double opt-in pending, graymail), a ``not_sent`` row with the reason; returns the number sent."""
    to = data.get("to") if isinstance(data.get("to"), dict) else {}
    sub_id = int(data["subscriptionDetails"]["subscriptionId"])
    unit = email_unit(data)
    graymail = to.get("suppressGraymail", True) is not False
    db = portal.db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS selected_contacts (contact_id INTEGER PRIMARY KEY, reason TEXT)")
    db.execute("DELETE FROM temp.selected_contacts")
    reason = not_sent_reason_sql(bool(db.get_meta("skip_unmailable", portal.config.skip_unmailable)))
    db.execute(
        f"INSERT INTO temp.selected_contacts SELECT c.id, {reason} FROM contacts c "  # noqa: S608 - constant SQL
        "WHERE c.id IN (SELECT record_id FROM memberships WHERE list_id IN (SELECT value FROM json_each(?)) "
        "               UNION SELECT value FROM json_each(?)) "
        "AND c.id NOT IN (SELECT record_id FROM memberships WHERE list_id IN (SELECT value FROM json_each(?))) "
        "AND c.id NOT IN (SELECT value FROM json_each(?)) "
        "AND c.email IS NOT NULL AND c.email <> ''",
        [
            unit,
            unit,
            sub_id,
            int(graymail),
            at - GRAYMAIL_MS,
            json.dumps(id_list(to, "contactIlsLists", "include")),
            json.dumps(id_list(to, "contactIds", "include")),
            json.dumps(id_list(to, "contactIlsLists", "exclude")),
            json.dumps(id_list(to, "contactIds", "exclude")),
        ],
    )
    db.execute(
        "INSERT OR IGNORE INTO not_sent (email_id, contact_id, reason) "
        "SELECT ?, contact_id, reason FROM temp.selected_contacts WHERE reason IS NOT NULL",
        (email_id,),
    )
    count = db.execute(
        "INSERT INTO sends (email_id, contact_id, round) SELECT ?, c.id, c.sends + 1 FROM contacts c "
        "WHERE c.id IN (SELECT contact_id FROM temp.selected_contacts WHERE reason IS NULL)",
        (email_id,),
    ).rowcount
    db.execute("DELETE FROM temp.selected_contacts")
    return int(count)


#: One row per recipient with its answer and event times, computed in SQL (mirrors :func:`timeline`).
_SIM_SQL = f"""
INSERT INTO temp.sim_recipients (contact_id, email, answer, key, sent, delivered, opened, clicked)
WITH k AS (
    SELECT s.contact_id AS contact_id, c.email AS email, COALESCE(a.answer, 'ignore') AS answer,
           (:seed * 1000003 + :email_key * 7919 + s.contact_id) % {_P} AS key
    FROM sends s JOIN contacts c ON c.id = s.contact_id
    LEFT JOIN temp.sim_answers a ON a.profile = c.profile AND a.round = MIN(s.round, :max_round)
    WHERE s.email_id = :email_id),
t1 AS (SELECT *, :start + {_draw_sql(1)} % (:window / 100 + 1) AS sent FROM k),
t2 AS (SELECT *, sent + 1 + {_draw_sql(2)} % MAX(1, MIN(2000, :window / 200)) AS delivered FROM t1),
t3 AS (SELECT *, delivered + 1 + {_draw_sql(3)} % MAX(1, :end - delivered - 2) AS opened FROM t2)
SELECT contact_id, email, answer, key, sent, delivered, opened,
       opened + 1 + {_draw_sql(4)} % MAX(1, :end - opened - 1) FROM t3
"""  # noqa: S608 - only constants are formatted in

#: Every event of the send, in time order (so the time-ordered indexes grow at their ends).
_EVENTS_SQL = f"""
INSERT INTO events (campaign_id, email_id, contact_id, recipient, type, created, url, filtered)
SELECT * FROM (
    SELECT :campaign_id, :email_id, contact_id, email, 'SENT', sent AS created, NULL, 0 FROM temp.sim_recipients
    UNION ALL
    SELECT :campaign_id, :email_id, contact_id, email, CASE answer WHEN 'bounce' THEN 'BOUNCE' ELSE 'DELIVERED' END,
           delivered, NULL, 0 FROM temp.sim_recipients
    UNION ALL
    SELECT :campaign_id, :email_id, contact_id, email, 'OPEN', opened, NULL, answer = 'bot_click'
    FROM temp.sim_recipients WHERE answer IN ('open', 'confirm', 'unsubscribe_link', 'bot_click')
    UNION ALL
    SELECT :campaign_id, :email_id, contact_id, email, 'CLICK', clicked,
           CASE WHEN answer = 'unsubscribe_link' THEN printf(:unsubscribe, {_draw_sql(5)})
                WHEN :tracked THEN hs_tracked_link(:cta, key) ELSE :cta END,
           answer = 'bot_click'
    FROM temp.sim_recipients
    WHERE :clicks AND (answer = 'unsubscribe_link' OR (answer IN ('confirm', 'bot_click') AND :cta IS NOT NULL))
) ORDER BY created
"""  # noqa: S608 - only constants are formatted in


def _prepare_temp_tables(portal: Portal) -> int:
    """The per-send scratch tables; returns the highest round any profile answers differently."""
    db = portal.db
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS sim_answers (profile TEXT, round INTEGER, answer TEXT, "
        "PRIMARY KEY (profile, round))"
    )
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS sim_recipients (contact_id INTEGER, email TEXT, answer TEXT, "
        "key INTEGER, sent INTEGER, delivered INTEGER, opened INTEGER, clicked INTEGER)"
    )
    db.execute("DELETE FROM temp.sim_answers")
    db.execute("DELETE FROM temp.sim_recipients")
    max_round = max(len(p.answers) for p in PROFILES.values())
    db.conn.executemany(
        "INSERT INTO temp.sim_answers VALUES (?, ?, ?)",
        [(name, n, profile.answer(n)) for name, profile in PROFILES.items() for n in range(1, max_round + 1)],
    )
    return max_round


def _write_events(
    portal: Portal, email_id: int, campaign_id: int, data: dict[str, Any], params: dict[str, int]
) -> None:
    """Every event of the send, set-based: a recipients scratch table, then one INSERT ... SELECT."""
    max_round = _prepare_temp_tables(portal)
    portal.db.execute(
        _SIM_SQL,
        {
            "seed": abs(params["seed"]) % _P,
            "email_key": email_id % _P,
            "max_round": max_round,
            "email_id": email_id,
            "start": params["start"],
            "window": params["window"],
            "end": params["start"] + max(params["window"], 10),
        },
    )
    unsubscribe = (
        f"https://{portal_domain(portal)}{UNSUBSCRIBE_PATH}?languagePreference=en&d=%08x&v=3&_hsenc=p2A{email_id:x}"
    )
    campaign = data.get("campaign") if isinstance(data.get("campaign"), str) else None
    portal.db.conn.create_function(
        "hs_tracked_link", 2, lambda url, key: tracked_link(url, email_id, int(key), campaign), deterministic=True
    )
    portal.db.execute(
        _EVENTS_SQL,
        {
            "campaign_id": campaign_id,
            "email_id": email_id,
            "cta": cta_url(data),
            "unsubscribe": unsubscribe,
            "clicks": int(bool(portal.db.get_meta("click_tracking", True))),
            "tracked": int(bool(portal.db.get_meta("tracking_parameters", portal.config.click_tracking_parameters))),
        },
    )
    portal.db.execute("DELETE FROM temp.sim_recipients")


# -- events landing on contacts -------------------------------------------------------------------------


def land_due_events(portal: Portal) -> int:
    """Apply events whose time has come to their contacts; one indexed probe when nothing is due."""
    db = portal.db
    now = portal.now_ms()
    if db.one("SELECT 1 FROM events WHERE applied = 0 AND created <= ? LIMIT 1", (now,)) is None:
        return 0
    with db.tx():
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS due_contacts "
            "(contact_id INTEGER PRIMARY KEY, last_open INTEGER, last_click INTEGER, bounced INTEGER)"
        )
        db.execute("DELETE FROM due_contacts")
        db.execute(
            "INSERT INTO due_contacts SELECT contact_id, "
            "MAX(CASE WHEN type = 'OPEN' AND filtered = 0 THEN created END), "
            "MAX(CASE WHEN type = 'CLICK' AND filtered = 0 THEN created END), "
            "MAX(type = 'BOUNCE') FROM events WHERE applied = 0 AND created <= ? GROUP BY contact_id",
            (now,),
        )
        db.execute(
            "UPDATE contacts SET "
            "last_open = CASE WHEN d.last_open IS NOT NULL AND (contacts.last_open IS NULL "
            "  OR d.last_open > contacts.last_open) THEN d.last_open ELSE contacts.last_open END, "
            "last_click = CASE WHEN d.last_click IS NOT NULL AND (contacts.last_click IS NULL "
            "  OR d.last_click > contacts.last_click) THEN d.last_click ELSE contacts.last_click END, "
            "bounced = MAX(contacts.bounced, d.bounced), "
            "hard_bounce_reason = CASE WHEN d.bounced = 1 THEN COALESCE(contacts.hard_bounce_reason, 'UNKNOWN_USER') "
            "  ELSE contacts.hard_bounce_reason END, "
            "lastmodifieddate = MAX(contacts.lastmodifieddate, ?) "
            "FROM due_contacts d WHERE contacts.id = d.contact_id "
            "AND (d.last_open IS NOT NULL OR d.last_click IS NOT NULL OR d.bounced = 1)",
            (now,),
        )
        _apply_unsubscribe_clicks(portal, now)
        landed = int(db.execute("UPDATE events SET applied = 1 WHERE applied = 0 AND created <= ?", (now,)).rowcount)
    if landed:
        # Visible events change contact properties and EMAIL_EVENT list filters alike.
        portal.touch()
    return landed


def _apply_unsubscribe_clicks(portal: Portal, now: int) -> None:
    """A recipient who clicks the email's unsubscribe link is unsubscribed from all email of the email's
    business unit, as HubSpot's unsubscribe link does: in unit 0 ``hs_email_optout`` turns true, in another
    unit its ``unit_optouts`` row is added, and a STATUSCHANGE event (``source`` SOURCE_RECIPIENT) is filed
    under the email's campaign. Done by the contact, so not in the API audit log."""
    db = portal.db
    if not bool(db.get_meta("unsubscribe_links", portal.config.unsubscribe_links)):
        return
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS unsubscribe_clicks (contact_id INTEGER, unit INTEGER, "
        "campaign_id INTEGER, email_id INTEGER, recipient TEXT, at INTEGER, PRIMARY KEY (contact_id, unit))"
    )
    db.execute("DELETE FROM temp.unsubscribe_clicks")
    db.execute(
        "INSERT INTO temp.unsubscribe_clicks SELECT e.contact_id, "  # noqa: S608 - only constants are formatted in
        f"{_EMAIL_UNIT_SQL} AS unit, e.campaign_id, e.email_id, e.recipient, "
        "MIN(e.created) FROM events e JOIN contacts c ON c.id = e.contact_id LEFT JOIN emails m ON m.id = e.email_id "
        "WHERE e.applied = 0 AND e.created <= ? AND e.type = 'CLICK' AND e.filtered = 0 "
        f"AND NOT (({_EMAIL_UNIT_SQL} = 0 AND c.optout) OR EXISTS (SELECT 1 FROM unit_optouts o "
        f"    WHERE o.contact_id = c.id AND o.business_unit_id = {_EMAIL_UNIT_SQL})) "
        "AND instr(lower(e.url), ?) > 0 GROUP BY e.contact_id, unit",
        (now, UNSUBSCRIBE_PATH),
    )
    db.execute(
        "UPDATE contacts SET optout = 1, lastmodifieddate = MAX(contacts.lastmodifieddate, u.at) "
        "FROM temp.unsubscribe_clicks u WHERE contacts.id = u.contact_id AND u.unit = 0"
    )
    db.execute(
        "INSERT OR IGNORE INTO unit_optouts (contact_id, business_unit_id, updated_at) "
        "SELECT contact_id, unit, at FROM temp.unsubscribe_clicks WHERE unit <> 0"
    )
    db.execute(
        "INSERT INTO events (campaign_id, email_id, contact_id, recipient, type, created, url, filtered, applied) "
        "SELECT campaign_id, email_id, contact_id, recipient, ?, at, NULL, 0, 1 FROM temp.unsubscribe_clicks "
        "ORDER BY at",
        (unsubscribe_event_type(portal),),
    )
    db.execute("DELETE FROM temp.unsubscribe_clicks")


#: The business unit of the email ``m`` an event belongs to, in SQL (0 for an email without one).
_EMAIL_UNIT_SQL = "COALESCE(CAST(json_extract(m.data, '$.businessUnitId') AS INTEGER), 0)"


def unsubscribe_event_type(portal: Portal) -> str:
    """The event type a self-unsubscribe is filed as: STATUSCHANGE, as HubSpot documents it, unless a test
    asks for UNSUBSCRIBED (also in the API's enum, undocumented) to prove a consumer reads both."""
    kind = portal.db.get_meta("unsubscribe_event_type", "STATUSCHANGE")
    return kind if kind in SELF_UNSUBSCRIBE_EVENT_TYPES else "STATUSCHANGE"


def tracked_cta(portal: Portal, email: Any, contact_id: int) -> str | None:
    """The CTA link of ``email`` as a CLICK by ``contact_id`` reports it (tracking parameters unless turned off)."""
    data = json.loads(email["data"])
    url = cta_url(data)
    if not bool(portal.db.get_meta("tracking_parameters", portal.config.click_tracking_parameters)):
        return url
    campaign = data.get("campaign") if isinstance(data.get("campaign"), str) else None
    email_id = int(email["id"])
    return tracked_link(url, email_id, _key(portal_seed(portal), email_id, contact_id), campaign)


def inject_event(portal: Portal, email: Any, contact: Any, kind: str, at: int, url: str | None, filtered: bool) -> int:
    """Add one OPEN or CLICK (e.g. a late click) for a contact; it lands when its time comes."""
    cursor = portal.db.execute(
        "INSERT INTO events (campaign_id, email_id, contact_id, recipient, type, created, url, filtered) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (email["campaign_id"], email["id"], contact["id"], contact["email"], kind, at, url, int(filtered)),
    )
    return int(cursor.lastrowid or 0)


# -- statistics ---------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 3) if whole else 0.0


def _visible_counts(portal: Portal, campaign_ids: list[int], start: int | None, end: int | None) -> dict[str, Any]:
    """Counts of visible events of these campaigns: totals, unique contacts and unique mobile contacts."""
    upper = min(portal.now_ms(), end) if end is not None else portal.now_ms()
    lower = start if start is not None else -(1 << 62)
    counts: dict[str, Any] = {}
    for kind in ("SENT", "DELIVERED", "BOUNCE", *SELF_UNSUBSCRIBE_EVENT_TYPES):
        counts[kind] = int(
            portal.db.scalar(
                "SELECT COUNT(*) FROM events WHERE campaign_id IN (SELECT value FROM json_each(?)) AND type = ? "
                "AND created BETWEEN ? AND ?",
                (json.dumps(campaign_ids), kind, lower, upper),
            )
            or 0
        )
    for kind in ("OPEN", "CLICK"):
        row = portal.db.one(
            "SELECT COUNT(DISTINCT contact_id), COUNT(DISTINCT CASE WHEN contact_id % 5 = 0 THEN contact_id END) "
            "FROM events WHERE campaign_id IN (SELECT value FROM json_each(?)) AND type = ? "
            "AND created BETWEEN ? AND ? AND filtered = 0",
            (json.dumps(campaign_ids), kind, lower, upper),
        )
        counts[kind] = (int(row[0]), int(row[1])) if row else (0, 0)
    return counts


def statistics(
    portal: Portal, emails: Iterable[Any], start: int | None = None, end: int | None = None
) -> dict[str, Any]:
    """HubSpot's ``EmailStatisticsData`` for these email rows, counted from visible, unfiltered events."""
    rows = list(emails)
    counts = _visible_counts(portal, [int(r["campaign_id"]) for r in rows], start, end)
    ids = json.dumps([int(r["id"]) for r in rows])
    sent = int(
        portal.db.scalar("SELECT COUNT(*) FROM sends WHERE email_id IN (SELECT value FROM json_each(?))", (ids,)) or 0
    )
    skipped = portal.db.one(
        "SELECT COUNT(*), COALESCE(SUM(reason = 'GRAYMAIL_SUPPRESSED'), 0) FROM not_sent "
        "WHERE email_id IN (SELECT value FROM json_each(?))",
        (ids,),
    )
    not_sent, suppressed = (int(skipped[0]), int(skipped[1])) if skipped else (0, 0)
    return _statistics_data(counts, sent + not_sent, not_sent, suppressed)


def _statistics_data(counts: dict[str, Any], selected: int, not_sent: int = 0, suppressed: int = 0) -> dict[str, Any]:
    """Counters as HubSpot reports them: ``selected`` = ``sent`` + ``notsent`` (every contact HubSpot skipped,
    unsubscribed, bounced, quarantined, not a marketing contact, unconfirmed or graymail-suppressed)."""
    opened, mobile_opens = counts.get("OPEN", (0, 0))
    clicked, mobile_clicks = counts.get("CLICK", (0, 0))
    bounced = counts.get("BOUNCE", 0)
    counters = dict.fromkeys(COUNTER_KEYS, 0)
    counters.update(
        sent=counts.get("SENT", 0),
        delivered=counts.get("DELIVERED", 0),
        bounce=bounced,
        hardbounced=bounced,
        open=opened,
        click=clicked,
        selected=selected,
        notsent=not_sent,
        suppressed=suppressed,
        unsubscribed=sum(counts.get(kind, 0) for kind in SELF_UNSUBSCRIBE_EVENT_TYPES),
    )
    return {
        "counters": counters,
        "deviceBreakdown": {
            "open_device_type": {"computer": opened - mobile_opens, "mobile": mobile_opens, "unknown": 0},
            "click_device_type": {"computer": clicked - mobile_clicks, "mobile": mobile_clicks, "unknown": 0},
        },
        "qualifierStats": {},
        "ratios": _ratios(counters),
    }


#: Histogram buckets: SQL for an integer bucket key of ``created`` (ms), per HubSpot interval name.
_T = "created / 1000, 'unixepoch'"
_YEAR, _MONTH = f"CAST(strftime('%Y', {_T}) AS INTEGER)", f"CAST(strftime('%m', {_T}) AS INTEGER)"
_FIXED_MS = {"SECOND": 1_000, "MINUTE": 60_000, "QUARTER_HOUR": 900_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_BUCKETS = {
    **{name: f"created / {size}" for name, size in _FIXED_MS.items()},
    "WEEK": "(created / 86400000 + 3) / 7",
    "MONTH": f"{_YEAR} * 12 + {_MONTH} - 1",
    "QUARTER": f"{_YEAR} * 4 + ({_MONTH} - 1) / 3",
    "YEAR": _YEAR,
}
HISTOGRAM_INTERVALS = ("DAY", "HOUR", "MINUTE", "MONTH", "QUARTER", "QUARTER_HOUR", "SECOND", "WEEK", "YEAR")


def _bucket_bounds(interval: str, key: int) -> tuple[int, int]:
    """[start, end) of bucket ``key`` in ms (calendar months, quarters and years in UTC)."""
    if interval in _FIXED_MS:
        size = _FIXED_MS[interval]
        return key * size, (key + 1) * size
    if interval == "WEEK":
        return (key * 7 - 3) * 86_400_000, (key * 7 + 4) * 86_400_000
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[interval]
    first = key * months
    return _month_start(first), _month_start(first + months)


def _month_start(month_index: int) -> int:
    year, month = divmod(month_index, 12)
    return int(dt.datetime(year, month + 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


def histogram(
    portal: Portal, emails: Iterable[Any], interval: str, start: int | None = None, end: int | None = None
) -> list[dict[str, Any]]:
    """``EmailStatisticInterval`` items for the non-empty buckets, oldest first."""
    campaign_ids = [int(r["campaign_id"]) for r in emails]
    upper = min(portal.now_ms(), end) if end is not None else portal.now_ms()
    rows = portal.db.all(
        f"SELECT {_BUCKETS[interval]} AS k, type, COUNT(*), COUNT(DISTINCT contact_id), "  # noqa: S608
        "COUNT(DISTINCT CASE WHEN contact_id % 5 = 0 THEN contact_id END) FROM events "
        "WHERE campaign_id IN (SELECT value FROM json_each(?)) AND created BETWEEN ? AND ? AND filtered = 0 "
        "AND type IN ('SENT', 'DELIVERED', 'BOUNCE', 'OPEN', 'CLICK') GROUP BY k, type ORDER BY k",
        (json.dumps(campaign_ids), start if start is not None else -(1 << 62), upper),
    )
    buckets: dict[int, dict[str, Any]] = {}
    for key, kind, total, unique, mobile in rows:
        buckets.setdefault(int(key), {})[kind] = (unique, mobile) if kind in ("OPEN", "CLICK") else total
    out = []
    for key, counts in buckets.items():
        lower, higher = _bucket_bounds(interval, key)
        out.append(
            {
                "interval": {"start": iso(lower), "end": iso(higher)},
                "aggregations": _statistics_data(counts, counts.get("SENT", 0)),
            }
        )
    return out


def _ratios(c: dict[str, int]) -> dict[str, float]:
    return {
        "bounceratio": _ratio(c["bounce"], c["sent"]),
        "clickratio": _ratio(c["click"], c["delivered"]),
        "clickthroughratio": _ratio(c["click"], c["open"]),
        "contactslostratio": _ratio(c["contactslost"], c["delivered"]),
        "deliveredratio": _ratio(c["delivered"], c["sent"]),
        "hardbounceratio": _ratio(c["hardbounced"], c["sent"]),
        "notsentratio": _ratio(c["notsent"], c["selected"]),
        "openratio": _ratio(c["open"], c["delivered"]),
        "pendingratio": _ratio(c["pending"], c["selected"]),
        "softbounceratio": _ratio(c["softbounced"], c["sent"]),
        "spamreportratio": _ratio(c["spamreport"], c["delivered"]),
        "unsubscribedratio": _ratio(c["unsubscribed"], c["delivered"]),
    }
