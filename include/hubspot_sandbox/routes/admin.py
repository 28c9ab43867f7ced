"""The sandbox's own API under ``/_sandbox``: seed, inspect, inject faults, move the clock, reset.

Not HubSpot's: tests and the demo use it to set a scene and read the ground truth. It still needs
one of the portal's tokens, so nothing on the machine can change the portal anonymously.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request

from .. import errors, lists_store
from ..business_units import parse_seed
from ..config import TIERS, RateLimit
from ..faults import Fault
from ..portal import Portal, iso, portal_of
from ..routing import json_body, json_object, query_bool, query_int
from ..seeding import PROFILES, expected_outcome, seed_portal, seeded_emails


def _admin(request: Request) -> Portal:
    portal = portal_of(request)
    if portal.grant_for(request.headers.get("authorization", "")) is None:
        raise errors.unauthorized()
    return portal


class _Admin:
    def __init__(self) -> None:
        self.router = APIRouter(prefix="/_sandbox", dependencies=[Depends(_admin)])


endpoints = _Admin()
router = endpoints.router

#: Settings a test may change on the running portal, and how each is read.
_SETTINGS: dict[str, type] = {
    "list_processing_seconds": float,
    "export_processing_seconds": float,
    "response_window_seconds": float,
    "list_lag_seconds": float,
    "export_url_seconds": float,
    "export_zip_bytes": int,
    "export_rows_per_file": int,
    "exports_per_day": int,
}


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    return {"ok": True, "portalId": portal.config.portal_id, "tier": portal.config.tier}


@router.post("/seed")
async def seed(request: Request) -> dict[str, Any]:
    body = json_object(await json_body(request, default={}))
    try:
        return seed_portal(
            portal_of(request),
            contacts=int(body.get("contacts", 1000)),
            seed=int(body.get("seed", 0)),
            weights=body.get("profiles"),
            reset=bool(body.get("reset", True)),
            business_units=parse_seed(body.get("business_units") or []),
        )
    except (TypeError, ValueError) as err:
        raise errors.validation_error(str(err)) from err


@router.get("/profiles")
async def profiles() -> dict[str, Any]:
    return {
        name: {"description": p.description, "weight": p.weight, "unengaged": p.unengaged, "answers": p.answers}
        for name, p in PROFILES.items()
    }


@router.post("/contacts")
async def add_contacts(request: Request) -> dict[str, Any]:
    """Add hand-made contacts: ``{"contacts": [{"email", "profile", "createdate", "last_open", ...}]}``."""
    portal = portal_of(request)
    body = json_object(await json_body(request))
    items = body.get("contacts")
    if not isinstance(items, list):
        raise errors.validation_error("contacts must be a list")
    now = portal.now_ms()
    ids = []
    with portal.db.tx():
        for item in items:
            item = json_object(item, "contact")
            profile = item.get("profile")
            if profile is not None and profile not in PROFILES:
                raise errors.validation_error(f"unknown profile {profile!r}")
            contact_id = portal.next_id("contact", 10_000_000)
            created = int(item.get("createdate", now - 100 * 7 * 86_400_000))
            try:
                portal.db.execute(
                    "INSERT INTO contacts (id, email, firstname, lastname, createdate, lastmodifieddate, last_open, "
                    "last_click, optout, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        contact_id,
                        item.get("email"),
                        item.get("firstname"),
                        item.get("lastname"),
                        created,
                        now,
                        item.get("last_open"),
                        item.get("last_click"),
                        int(bool(item.get("optout"))),
                        profile,
                    ),
                )
            except Exception as err:
                raise errors.conflict(f"Contact {item.get('email')!r} could not be created: {err}") from err
            ids.append(contact_id)
    portal.touch()
    return {"ids": [str(i) for i in ids]}


@router.get("/contacts")
async def list_contacts(request: Request) -> dict[str, Any]:
    """Seeded contacts with their profile and signal role (the ground truth), optionally of one profile."""
    portal = portal_of(request)
    profile = request.query_params.get("profile")
    sql = (
        "SELECT id, email, profile, optout, last_open, last_click, sends, bounced, delivered_before, last_visit, "
        "last_form, lifecyclestage, signal_role FROM contacts"
    )
    if profile:
        rows = portal.db.all(sql + " WHERE profile = ? ORDER BY id", (profile,))
    else:
        rows = portal.db.all(sql + " ORDER BY id")
    return {
        "results": [
            {
                "id": str(r["id"]),
                "email": r["email"],
                "profile": r["profile"],
                "optout": bool(r["optout"]),
                "lastOpen": iso(r["last_open"]),
                "lastClick": iso(r["last_click"]),
                "emailsReceived": r["sends"],
                "bounced": r["bounced"],
                "deliveredBefore": r["delivered_before"],
                "lastVisit": iso(r["last_visit"]),
                "lastForm": iso(r["last_form"]),
                "lifecycleStage": r["lifecyclestage"],
                "signalRole": r["signal_role"],
            }
            for r in rows
        ]
    }


@router.get("/ground-truth")
async def ground_truth(request: Request) -> dict[str, Any]:
    """The campaign's expected outcome; the optional signals narrow the cohort as the campaign's own would.

    Query: ``rounds``, ``focus_email_id``, ``min_emails_delivered``, ``spare_recent_activity`` (true/false),
    ``exclude_lifecycle_stages`` (comma-separated), ``inactivity_weeks``, ``business_unit`` (default 0; a unit
    the portal does not have is a 400). ``removed_by`` holds numbers, every other key a list of contact ids.
    """
    rounds = query_int(request, "rounds", 1, minimum=1, maximum=3)
    assert rounds is not None
    stages = request.query_params.get("exclude_lifecycle_stages") or ""
    try:
        outcome = expected_outcome(
            portal_of(request),
            rounds,
            focus_email_id=query_int(request, "focus_email_id", None, minimum=1),
            min_emails_delivered=query_int(request, "min_emails_delivered", 0, minimum=0) or 0,
            spare_recent_activity=query_bool(request, "spare_recent_activity"),
            exclude_lifecycle_stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
            inactivity_weeks=query_int(request, "inactivity_weeks", 52, minimum=1) or 52,
            business_unit=query_int(request, "business_unit", 0, minimum=0) or 0,
        )
    except ValueError as err:
        raise errors.validation_error(str(err)) from err
    removed_by = outcome.pop("removed_by")
    return {**{key: [str(i) for i in ids] for key, ids in outcome.items()}, "removed_by": removed_by}


@router.get("/seeded-emails")
async def get_seeded_emails(request: Request) -> dict[str, Any]:
    """The marketing emails the last seed made: ``focus_email`` (published, with its events) and
    ``draft_email`` (never sent), each ``{"id", "name"}``; ``{}`` before any seed with contacts."""
    return seeded_emails(portal_of(request))


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {"faults": [f.describe() for f in portal_of(request).faults.faults]}


@router.post("/faults")
async def add_fault(request: Request) -> dict[str, Any]:
    body = json_object(await json_body(request))
    try:
        fault = Fault(
            endpoint=str(body.get("endpoint", "*")),
            kind=str(body["kind"]),
            count=None if body.get("count") is None else int(body["count"]),
            probability=float(body.get("probability", 1.0)),
            status=int(body.get("status", 503)),
            seconds=float(body.get("seconds", 0.0)),
            seed=int(body.get("seed", 0)),
            skip=int(body.get("skip", 0)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise errors.validation_error(f"bad fault: {err}") from err
    portal_of(request).faults.add(fault)
    return fault.describe()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    portal_of(request).faults.clear()
    return {"faults": []}


@router.get("/calls")
async def calls(request: Request) -> dict[str, Any]:
    rows = portal_of(request).db.all("SELECT endpoint, calls, errors, rate_limited FROM call_counts ORDER BY endpoint")
    return {r["endpoint"]: {"calls": r["calls"], "errors": r["errors"], "rateLimited": r["rate_limited"]} for r in rows}


@router.delete("/calls")
async def reset_calls(request: Request) -> dict[str, Any]:
    portal_of(request).db.execute("DELETE FROM call_counts")
    return {}


@router.get("/status-changes")
async def status_changes(request: Request) -> dict[str, Any]:
    """Every subscription status change, in order: the audit log of opt-outs (``businessUnitId`` on a change
    made in a unit other than 0)."""
    after = query_int(request, "after", 0) or 0
    rows = portal_of(request).db.all("SELECT * FROM status_changes WHERE seq > ? ORDER BY seq", (after,))
    return {
        "results": [
            {
                "seq": r["seq"],
                "at": iso(r["at"]),
                "contactId": str(r["contact_id"]),
                "email": r["email"],
                "subscriptionId": r["subscription_id"],
                "from": r["old_status"],
                "to": r["new_status"],
                "source": r["source"],
                "legalBasis": r["legal_basis"],
                "legalBasisExplanation": r["legal_basis_explanation"],
                "endpoint": r["endpoint"],
                # Only on portals with business units: unit 0's changes keep the shape they always had.
                **({"businessUnitId": r["business_unit_id"]} if r["business_unit_id"] else {}),
            }
            for r in rows
        ]
    }


@router.post("/clock")
async def clock(request: Request) -> dict[str, Any]:
    body = json_object(await json_body(request))
    portal = portal_of(request)
    offset = portal.advance_clock(int(float(body.get("advance_seconds", 0)) * 1000))
    return {"now": iso(portal.now_ms()), "offsetSeconds": offset / 1000}


@router.put("/settings")
async def settings(request: Request) -> dict[str, Any]:
    """Change the tier, timings or rate limits of the running portal."""
    portal = portal_of(request)
    body = json_object(await json_body(request))
    changes: dict[str, Any] = {}
    if "tier" in body:
        if body["tier"] not in TIERS:
            raise errors.validation_error(f"tier must be one of {TIERS}")
        changes["tier"] = body["tier"]
    for key, kind in _SETTINGS.items():
        if key in body:
            try:
                changes[key] = kind(body[key])
            except (TypeError, ValueError) as err:
                raise errors.validation_error(f"{key} must be a {kind.__name__}") from err
    if "rate_limit" in body:
        try:
            changes["rate_limit"] = RateLimit.parse(str(body["rate_limit"]))
        except ValueError as err:
            raise errors.validation_error(str(err)) from err
    portal.config = portal.config.replace(**changes)
    portal.limiter.set_limits(portal.config.limits)
    if "daily_used" in body:
        portal.limiter.daily_used = int(body["daily_used"])
        portal.record_usage()
    return _settings(portal)


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    return _settings(portal_of(request))


def _settings(portal: Portal) -> dict[str, Any]:
    config = dataclasses.asdict(portal.config)
    config.pop("tokens", None)
    config["rate_limit"] = portal.config.limits.header_value()
    config["daily_used"] = portal.limiter.daily_used
    return config


@router.post("/lists/settle")
async def settle_lists(request: Request) -> dict[str, Any]:
    """Let every DYNAMIC list catch up now, as HubSpot's background recomputation eventually does.

    A test reads a portal's final state through it; the campaign never can (HubSpot has no such call).
    """
    return {"dynamicLists": lists_store.settle(portal_of(request))}


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    portal_of(request).reset()
    return {"reset": True}
