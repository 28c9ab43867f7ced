"""Account info v3: the portal's details and its daily API usage.

Callers use these to check which portal a token reaches (portal id, UI domain, time zone) and how
much of the daily request budget is left, so the figures come from the live config and rate limiter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request

from .. import errors
from ..portal import iso, portal_of
from ..routing import Endpoints, json_body, json_object

endpoints = Endpoints()

SCOPES = [["oauth"]]


def utc_offset(time_zone: str, at: dt.datetime) -> tuple[str, int]:
    """``("-04:00", -14400000)`` for the zone at that instant (DST included); UTC if the zone is unknown."""
    try:
        offset = at.astimezone(ZoneInfo(time_zone)).utcoffset() or dt.timedelta()
    except (ZoneInfoNotFoundError, ValueError):
        offset = dt.timedelta()
    millis = int(offset.total_seconds() * 1000)
    sign = "-" if millis < 0 else "+"
    minutes = abs(millis) // 60_000
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}", millis


@endpoints.get("/account-info/v3/details", name="account.details", scopes=SCOPES)
async def details(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    config = portal.config
    now = dt.datetime.fromtimestamp(portal.now_ms() / 1000, tz=dt.timezone.utc)
    offset, offset_ms = utc_offset(config.time_zone, now)
    return {
        "portalId": config.portal_id,
        "accountType": "STANDARD",
        "timeZone": config.time_zone,
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": offset,
        "utcOffsetMilliseconds": offset_ms,
        "uiDomain": config.ui_domain,
        "dataHostingLocation": "na1",
    }


@endpoints.get("/account-info/v3/api-usage/daily/private-apps", name="account.api_usage", scopes=SCOPES)
async def api_usage(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    resets = portal.limiter.daily_reset_at()
    return {
        "results": [
            {
                "name": "private-apps-api-calls-daily",
                "usageLimit": portal.config.limits.daily,
                "currentUsage": portal.limiter.daily_used,
                "collectedAt": iso(portal.now_ms()),
                "fetchStatus": "SUCCESS",
                "resetsAt": iso(resets.timestamp() * 1000),
            }
        ]
    }


@endpoints.post("/oauth/v2/private-apps/get/access-token-info", name="account.token_info", scopes=[])
async def token_info(request: Request) -> dict[str, Any]:
    """A private app token's portal and the scopes it really has (Enterprise-only scopes vanish on lower tiers).

    HubSpot documents this for private app tokens only; what it answers for a Service Key is not public, so
    the sandbox answers strictly, as for a token it does not know: a caller must not depend on it for keys.
    """
    portal = portal_of(request)
    body = json_object(await json_body(request))
    token = body.get("tokenKey")
    if not isinstance(token, str) or not token:
        raise errors.validation_error("tokenKey is required.", field="tokenKey")
    grant = portal.grant_for(f"Bearer {token}")
    if grant is None or grant.is_service_key:
        raise errors.not_found("No private app has this access token.")
    return {
        "userId": 1,
        "hubId": portal.config.portal_id,
        "appId": 1,
        "scopes": sorted(portal.config.scopes_for(grant)),
    }
