"""Marketing Emails v3: create, clone, read, list, update, archive, publish (= send) and statistics.

The full ``PublicEmail`` JSON lives in ``emails.data``; the columns hold what queries filter and sort on.
Publishing is the send: it needs Marketing Hub Enterprise, happens once, and hands over to
:mod:`..sending`, which picks recipients and simulates what they do. A draft shows no email campaign ids
(``primaryEmailCampaignId`` absent, ``allEmailCampaignIds`` empty): HubSpot does not promise them before
the email is published, and the legacy events API is keyed by them, so they appear at publish. The id is
reserved in the ``campaign_id`` column from the start (events and statistics are filed under it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request, Response

from .. import errors, sending
from ..business_units import check_unit
from ..portal import Portal, iso, parse_iso, portal_of
from ..routing import Endpoints, json_body, json_object, path_for, query_bool, query_int

endpoints = Endpoints()

READ = [["marketing.email.read"], ["marketing.email.write"], ["content"]]
SEND = [["marketing-email"], ["transactional-email"]]

_STRINGS = (
    "name",
    "subject",
    "activeDomain",
    "campaign",
    "feedbackSurveyId",
    "language",
    "subcategory",
    "state",
    "publishDate",
)
_BOOLS = ("archived", "jitterSendTime", "sendOnPublish")
_INTS = ("businessUnitId", "folderIdV2")
_OBJECTS = ("content", "from", "to", "subscriptionDetails", "testing", "webversion", "rssData")
_FIELDS = frozenset(_STRINGS + _BOOLS + _INTS + _OBJECTS)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")
_SORTS = {
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "publishedAt": "published_at",
    "publishDate": "published_at",
    "name": "name COLLATE NOCASE",
    "id": "id",
}
_TIME_FILTERS = {"created": "created_at", "updated": "updated_at", "published": "published_at"}
_EMAIL_ID_START = 160_000_000_001
_CAMPAIGN_ID_START = 300_000_001


# -- storage ------------------------------------------------------------------------------------------


def _email_id(raw: str) -> int:
    """HubSpot answers 404 for an id that names no email, numeric or not."""
    try:
        return int(raw)
    except ValueError as err:
        raise errors.not_found(f"Email {raw} does not exist.") from err


def load(portal: Portal, raw_id: str | int, *, archived: bool = False) -> Any:
    """The email row, or 404 (archived emails only when ``archived`` is asked for)."""
    email_id = _email_id(str(raw_id))
    row = portal.db.one("SELECT * FROM emails WHERE id = ?", (email_id,))
    if row is None or (row["archived"] and not archived):
        raise errors.not_found(f"Email {raw_id} does not exist.")
    return row


def _save(portal: Portal, email_id: int, data: dict[str, Any]) -> None:
    portal.db.execute(
        "UPDATE emails SET name = ?, state = ?, data = ?, updated_at = ?, archived = ? WHERE id = ?",
        (
            data["name"],
            data["state"],
            json.dumps(data),
            parse_iso(data["updatedAt"]),
            int(bool(data["archived"])),
            email_id,
        ),
    )


def public(portal: Portal, row: Any, *, include_stats: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row["data"])
    if include_stats:
        data["stats"] = sending.statistics(portal, [row])
    return data


# -- request bodies -----------------------------------------------------------------------------------


def _check_types(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise errors.validation_error(f"Unrecognized field(s) {', '.join(map(repr, unknown))}.", field=unknown[0])
    checks = (
        (_STRINGS, str, "a string"),
        (_BOOLS, bool, "a boolean"),
        (_INTS, int, "an integer"),
        (_OBJECTS, dict, "an object"),
    )
    for names, kind, what in checks:
        for name in names:
            value = body.get(name)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise errors.validation_error(f"{name} must be {what}.", field=name)


def _check_values(body: dict[str, Any]) -> None:
    if body.get("state") not in (None, "DRAFT"):
        raise errors.validation_error("state can only be DRAFT here; use the publish endpoint to send.", field="state")
    if body.get("subcategory") not in (None, "batch"):
        raise errors.validation_error(
            "The sandbox emulates regular (batch) marketing emails only.", field="subcategory"
        )
    if body.get("language") is not None and not _LANGUAGE.match(body["language"]):
        raise errors.validation_error(f"Unknown language {body['language']!r}.", field="language")
    if body.get("publishDate") is not None:
        try:
            parse_iso(body["publishDate"])
        except ValueError as err:
            raise errors.validation_error("publishDate must be an ISO 8601 date-time.", field="publishDate") from err


def _normalise_to(to: dict[str, Any]) -> dict[str, Any]:
    """Recipient ids as strings (HubSpot accepts numbers too and answers with strings)."""
    out = dict(to)
    for group in ("contactIlsLists", "contactIds", "contactLists"):
        if group in out and not isinstance(out[group], dict):
            raise errors.validation_error(f"to.{group} must be an object.", field=f"to.{group}")
        if group in out:
            out[group] = {side: [str(i) for i in sending.id_list(out, group, side)] for side in ("include", "exclude")}
    for flag in ("suppressGraymail", "limitSendFrequency"):
        if flag in out and not isinstance(out[flag], bool):
            raise errors.validation_error(f"to.{flag} must be a boolean.", field=f"to.{flag}")
    return out


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: nested objects merge, everything else is replaced."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _apply(portal: Portal, data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    _check_types(body)
    _check_values(body)
    body = dict(body)
    if "to" in body:
        body["to"] = _normalise_to(body["to"])
    if isinstance(body.get("subscriptionDetails"), dict) and "subscriptionId" in body["subscriptionDetails"]:
        details = dict(body["subscriptionDetails"])
        details["subscriptionId"] = str(details["subscriptionId"])
        body["subscriptionDetails"] = details
    if body.get("publishDate"):
        body["publishDate"] = iso(parse_iso(body["publishDate"]))
    if body.get("businessUnitId") is None:
        body.pop("businessUnitId", None)
    else:
        # An email belongs to one of the portal's business units; its subscription type must be that unit's.
        body["businessUnitId"] = str(check_unit(portal, int(body["businessUnitId"])))
    body.pop("archived", None)
    merged = _merge(data, body)
    _name_subscription(portal, merged)
    return merged


def _name_subscription(portal: Portal, data: dict[str, Any]) -> None:
    details = data.get("subscriptionDetails") or {}
    try:
        sub_id = int(details.get("subscriptionId"))
    except (TypeError, ValueError):
        return
    name = portal.db.scalar("SELECT name FROM subscription_types WHERE id = ?", (sub_id,))
    if name:
        details["subscriptionName"] = name


def _new_email(portal: Portal, name: str) -> dict[str, Any]:
    """A fresh draft with every field the SDK's PublicEmail model insists on, and no campaign ids yet."""
    now = iso(portal.now_ms())
    email_id = portal.next_id("email", _EMAIL_ID_START)
    return {
        "id": str(email_id),
        "name": name,
        "subject": "",
        "state": "DRAFT",
        "type": "BATCH_EMAIL",
        "subcategory": "batch",
        "isPublished": False,
        "isAb": False,
        "isTransactional": False,
        "sendOnPublish": True,
        "jitterSendTime": False,
        "language": "en",
        "activeDomain": sending.portal_domain(portal),
        "emailTemplateMode": "DRAG_AND_DROP",
        "businessUnitId": "0",
        "from": {},
        "content": {},
        "to": {
            "contactIlsLists": {"include": [], "exclude": []},
            "contactIds": {"include": [], "exclude": []},
            "suppressGraymail": True,
            "limitSendFrequency": False,
        },
        "subscriptionDetails": {},
        "webversion": {"enabled": False},
        "allEmailCampaignIds": [],
        "createdAt": now,
        "updatedAt": now,
        "archived": False,
    }


def _insert(portal: Portal, data: dict[str, Any]) -> Any:
    """Store a new draft; its email campaign id is reserved here and shown only once it is published."""
    created = parse_iso(data["createdAt"])
    campaign_id = portal.next_id("email_campaign", _CAMPAIGN_ID_START)
    portal.db.execute(
        "INSERT INTO emails (id, name, campaign_id, state, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (int(data["id"]), data["name"], campaign_id, data["state"], json.dumps(data), created, created),
    )
    return load(portal, data["id"])


def _with_campaign_ids(row: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The email as published: its email campaign ids, which the legacy events API is keyed by, now show."""
    campaign_id = str(row["campaign_id"])
    return {**data, "primaryEmailCampaignId": campaign_id, "allEmailCampaignIds": [campaign_id]}


def seed_email(portal: Portal, name: str, body: dict[str, Any], *, created: int, published: int | None = None) -> Any:
    """Store an email made outside the API, for the seeded history: a draft, or (``published`` given) an email
    published then, with its campaign ids showing. No recipients are picked: the caller files its sends and events.
    """
    data = _apply(portal, _new_email(portal, name), body)
    data.update(createdAt=iso(created), updatedAt=iso(published if published is not None else created))
    row = _insert(portal, data)
    if published is None:
        return row
    data = _with_campaign_ids(row, data)
    data.update(state="PUBLISHED", isPublished=True, publishedAt=iso(published), publishDate=iso(published))
    portal.db.execute(
        "UPDATE emails SET state = 'PUBLISHED', data = ?, created_at = ?, updated_at = ?, published_at = ? "
        "WHERE id = ?",
        (json.dumps(data), created, published, published, row["id"]),
    )
    return load(portal, row["id"])


# -- endpoints ----------------------------------------------------------------------------------------


@endpoints.post("/marketing/v3/emails", name="emails.create", scopes=READ, status_code=201)
async def create(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise errors.validation_error("name is required.", field="name")
    with portal.db.tx():
        data = _apply(portal, _new_email(portal, body["name"]), body)
        row = _insert(portal, data)
    return public(portal, row)


@endpoints.post("/marketing/v3/emails/clone", name="emails.clone", scopes=READ)
async def clone(request: Request) -> dict[str, Any]:
    """A new draft with the source's content, a new id and new campaign ids."""
    portal = portal_of(request)
    body = json_object(await json_body(request))
    if body.get("id") in (None, ""):
        raise errors.validation_error("id is required.", field="id")
    source = json.loads(load(portal, body["id"])["data"])
    name = body.get("cloneName") or f"{source['name']} (Clone)"
    if not isinstance(name, str):
        raise errors.validation_error("cloneName must be a string.", field="cloneName")
    with portal.db.tx():
        fresh = _new_email(portal, name)
        data = {
            key: value
            for key, value in source.items()
            if key not in ("publishedAt", "publishDate", "unpublishedAt", "stats", "deletedAt")
        }
        data.pop("primaryEmailCampaignId", None)
        data.update(
            {
                key: fresh[key]
                for key in (
                    "id",
                    "name",
                    "state",
                    "isPublished",
                    "allEmailCampaignIds",
                    "createdAt",
                    "updatedAt",
                    "archived",
                )
            }
        )
        data["clonedFrom"] = source["id"]
        if body.get("language"):
            data = _apply(portal, data, {"language": body["language"]})
        row = _insert(portal, data)
    return public(portal, row)


@endpoints.get("/marketing/v3/emails/statistics/list", name="emails.statistics.list", scopes=READ)
async def statistics_list(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    rows = _stat_emails(portal, request)
    start, end = _time_param(request, "startTimestamp"), _time_param(request, "endTimestamp")
    return {
        "aggregate": sending.statistics(portal, rows, start, end),
        "campaignAggregations": {str(r["campaign_id"]): sending.statistics(portal, [r], start, end) for r in rows},
        "emails": [int(r["id"]) for r in rows],
    }


@endpoints.get("/marketing/v3/emails/statistics/histogram", name="emails.statistics.histogram", scopes=READ)
async def statistics_histogram(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    interval = request.query_params.get("interval") or "DAY"
    if interval not in sending.HISTOGRAM_INTERVALS:
        raise errors.validation_error(
            f"interval must be one of {', '.join(sending.HISTOGRAM_INTERVALS)}.", field="interval"
        )
    rows = _stat_emails(portal, request)
    start, end = _time_param(request, "startTimestamp"), _time_param(request, "endTimestamp")
    results = sending.histogram(portal, rows, interval, start, end)
    return {"results": results, "total": len(results)}


@endpoints.get("/marketing/v3/emails/{emailId}", name="emails.get", scopes=READ)
async def get_email(request: Request, emailId: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    row = load(portal, emailId, archived=query_bool(request, "archived"))
    return public(portal, row, include_stats=query_bool(request, "includeStats"))


@endpoints.get("/marketing/v3/emails", name="emails.list", scopes=READ)
async def list_emails(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    limit = query_int(request, "limit", 10, minimum=1, maximum=1000) or 10
    offset = _after(request)
    where, params = _list_filters(request)
    order = _order(request)
    total = int(portal.db.scalar(f"SELECT COUNT(*) FROM emails WHERE {where}", params))  # noqa: S608
    rows = portal.db.all(
        f"SELECT * FROM emails WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset],
    )
    include_stats = query_bool(request, "includeStats")
    body: dict[str, Any] = {"total": total, "results": [public(portal, r, include_stats=include_stats) for r in rows]}
    if offset + len(rows) < total:
        after = str(offset + len(rows))
        link = f"{portal.base_url}{path_for(request, '/marketing/v3/emails')}?after={after}"
        body["paging"] = {"next": {"after": after, "link": link}}
    return body


@endpoints.patch("/marketing/v3/emails/{emailId}", name="emails.update", scopes=READ)
async def update(request: Request, emailId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    body = json_object(await json_body(request))
    row = load(portal, emailId)
    data = json.loads(row["data"])
    if data.get("isPublished") or row["state"] in ("PUBLISHED", "SCHEDULED"):
        raise errors.validation_error(
            f"Email {emailId} is published ({row['state']}); a sent or scheduled email can't be changed."
        )
    if isinstance(body.get("name"), str) and not body["name"].strip():
        raise errors.validation_error("name can't be empty.", field="name")
    with portal.db.tx():
        data = _apply(portal, data, body)
        data["updatedAt"] = iso(portal.now_ms())
        _save(portal, int(row["id"]), data)
    return public(portal, load(portal, row["id"]))


@endpoints.delete("/marketing/v3/emails/{emailId}", name="emails.archive", scopes=READ, status_code=204)
async def archive(request: Request, emailId: str) -> Response:  # noqa: N803
    portal = portal_of(request)
    row = load(portal, emailId)
    data = json.loads(row["data"])
    now = iso(portal.now_ms())
    data.update(archived=True, deletedAt=now, updatedAt=now)
    _save(portal, int(row["id"]), data)
    return Response(status_code=204)


@endpoints.post(
    "/marketing/v3/emails/{emailId}/publish", name="emails.publish", scopes=SEND, status_code=204, interval_exempt=True
)
async def publish(request: Request, emailId: str) -> Response:  # noqa: N803
    """Send now (or schedule, when publishDate is in the future). Enterprise only, and only once."""
    portal = portal_of(request)
    if portal.config.tier != "enterprise":
        raise errors.tier_required("Publishing marketing email")
    row = load(portal, emailId)
    data = json.loads(row["data"])
    if data.get("isPublished") or row["state"] in ("PUBLISHED", "SCHEDULED"):
        raise errors.validation_error(f"Email {emailId} is already published ({row['state']}); it is sent only once.")
    problems = sending.send_problems(portal, data)
    if problems:
        raise errors.HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Email {emailId} can't be sent: " + " ".join(message for _, message in problems),
            errors=[{"message": message, "in": field} for field, message in problems],
        )
    now = portal.now_ms()
    when = parse_iso(data["publishDate"]) if data.get("publishDate") else now
    data = _with_campaign_ids(row, data)
    if when > now:
        _schedule(portal, row, data, when)
    else:
        with portal.db.tx():
            _save(portal, int(row["id"]), data)
            sending.deliver(portal, load(portal, row["id"]), now)
    return Response(status_code=204)


def _schedule(portal: Portal, row: Any, data: dict[str, Any], when: int) -> None:
    data.update(state="SCHEDULED", isPublished=True, updatedAt=iso(portal.now_ms()))
    with portal.db.tx():
        _save(portal, int(row["id"]), data)
        portal.db.execute("UPDATE emails SET published_at = ? WHERE id = ?", (when, row["id"]))


@endpoints.post("/marketing/v3/emails/{emailId}/unpublish", name="emails.unpublish", scopes=SEND, status_code=204)
async def unpublish(request: Request, emailId: str) -> Response:  # noqa: N803
    """Cancel a scheduled send; an email that has gone out can't be called back."""
    portal = portal_of(request)
    if portal.config.tier != "enterprise":
        raise errors.tier_required("Unpublishing marketing email")
    row = load(portal, emailId)
    if row["state"] == "PUBLISHED":
        raise errors.validation_error(f"Email {emailId} has already been sent and can't be unpublished.")
    if row["state"] != "SCHEDULED":
        raise errors.validation_error(f"Email {emailId} is not published.")
    data = json.loads(row["data"])
    now = iso(portal.now_ms())
    data.update(state="DRAFT", isPublished=False, unpublishedAt=now, updatedAt=now)
    with portal.db.tx():
        _save(portal, int(row["id"]), data)
        portal.db.execute("UPDATE emails SET published_at = NULL WHERE id = ?", (row["id"],))
    return Response(status_code=204)


# -- query helpers ------------------------------------------------------------------------------------


def _time_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError as err:
        raise errors.validation_error(f"{name} must be an ISO 8601 date-time, got {raw!r}.", field=name) from err


def _after(request: Request) -> int:
    raw = request.query_params.get("after") or "0"
    if not raw.isdigit():
        raise errors.validation_error(f"Invalid paging token after={raw!r}.", field="after")
    return int(raw)


def _list_filters(request: Request) -> tuple[str, list[Any]]:
    clauses = ["archived = ?"]
    params: list[Any] = [int(query_bool(request, "archived"))]
    for prefix, column in _TIME_FILTERS.items():
        for suffix, op in (("At", "="), ("After", ">"), ("Before", "<")):
            value = _time_param(request, prefix + suffix)
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
    if request.query_params.get("isPublished"):
        clauses.append("json_extract(data, '$.isPublished') = ?")
        params.append(int(query_bool(request, "isPublished")))
    for name in ("type", "campaign"):
        if request.query_params.get(name):
            clauses.append(f"json_extract(data, '$.{name}') = ?")
            params.append(request.query_params[name])
    return " AND ".join(clauses), params


def _order(request: Request) -> str:
    parts = []
    for raw in request.query_params.getlist("sort"):
        for key in (k.strip() for k in raw.split(",") if k.strip()):
            column = _SORTS.get(key.lstrip("-"))
            if column is None:
                raise errors.validation_error(f"Can't sort by {key!r}; use one of {', '.join(_SORTS)}.", field="sort")
            parts.append(f"{column} {'DESC' if key.startswith('-') else 'ASC'}")
    return ", ".join([*parts, "id ASC"])


def _stat_emails(portal: Portal, request: Request) -> list[Any]:
    """The emails a statistics call is about: ``emailIds``, or every sent email."""
    raw_ids = request.query_params.getlist("emailIds")
    try:
        ids = [int(part) for raw in raw_ids for part in raw.split(",") if part.strip()]
    except ValueError as err:
        raise errors.validation_error("emailIds must be numbers.", field="emailIds") from err
    if ids:
        return portal.db.all(
            "SELECT * FROM emails WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id", (json.dumps(ids),)
        )
    return portal.db.all("SELECT * FROM emails WHERE published_at IS NOT NULL AND archived = 0 ORDER BY id")
