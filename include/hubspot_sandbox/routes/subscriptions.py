"""Communication preferences v3 and v4: subscription definitions, statuses, opt-outs.

The state and its rules live in :mod:`..subscriptions_store`; this module parses HubSpot's requests and
renders HubSpot's response shapes. v4 batch endpoints need the Enterprise-only batch scopes (the gate
answers 403 MISSING_SCOPES on lower tiers); single-contact endpoints work on every tier.

v3 reports a subscription the contact never chose (v4 ``NOT_SPECIFIED``) as ``NOT_SUBSCRIBED``, and
every subscription of a contact opted out of all email as ``NOT_SUBSCRIBED`` with
``sourceOfStatus: PORTAL_WIDE_STATUS``.

v4 reads and unsubscribe-alls work in the business unit their ``businessUnitId`` names (default 0); writes name
a subscription type, which belongs to one unit. An unknown unit is refused (:mod:`..business_units`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import errors
from .. import subscriptions_store as store
from ..business_units import unit_param
from ..portal import Portal, iso, portal_of
from ..routing import MAX_BATCH, Endpoints, batch_inputs, is_dated, json_body, json_object, query_bool
from ..subscriptions_store import Contact, Failure, Status, StatusWrite, SubscriptionType, WideResult

endpoints = Endpoints()

READ = [["communication_preferences.read_write"], ["communication_preferences.read"]]
WRITE = [["communication_preferences.read_write"], ["communication_preferences.write"]]
BATCH_READ = [["communication_preferences.statuses.batch.read"]]
BATCH_WRITE = [["communication_preferences.statuses.batch.write"]]
V4 = "/communication-preferences/v4"

# -- rendering -------------------------------------------------------------------------------------


def _definition(sub: SubscriptionType) -> dict[str, Any]:
    return {
        "id": str(sub.id),
        "name": sub.name,
        "description": sub.description,
        "purpose": sub.purpose,
        "communicationMethod": sub.communication_method,
        "isActive": sub.is_active,
        "isDefault": sub.is_default,
        "isInternal": sub.is_internal,
        "createdAt": iso(sub.created_at),
        "updatedAt": iso(sub.updated_at),
        "businessUnitId": sub.business_unit_id,
        "subscriptionTranslations": [],
    }


def _public_status(status: Status) -> dict[str, Any]:
    """v4 ``PublicStatus``; optional fields are left out rather than sent as null (HubSpot's enums)."""
    out: dict[str, Any] = {
        "subscriberIdString": status.contact.email,
        "subscriptionId": status.subscription.id,
        "subscriptionName": status.subscription.name,
        "channel": "EMAIL",
        "status": status.status,
        "source": status.source,
        "timestamp": iso(status.timestamp),
        "businessUnitId": status.subscription.business_unit_id,
    }
    if status.legal_basis:
        out["legalBasis"] = status.legal_basis
    if status.legal_basis_explanation:
        out["legalBasisExplanation"] = status.legal_basis_explanation
    if status.reason:
        out["setStatusSuccessReason"] = status.reason
    return out


def _wide_status(result: WideResult) -> dict[str, Any]:
    return {
        "subscriberIdString": result.contact.email,
        "wideStatusType": "BUSINESS_UNIT_WIDE" if result.business_unit_id else "PORTAL_WIDE",
        "status": result.status,
        "channel": "EMAIL",
        "timestamp": iso(result.timestamp),
        "businessUnitId": result.business_unit_id,
    }


def _v3_status(status: Status) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(status.subscription.id),
        "name": status.subscription.name,
        "description": status.subscription.description,
        "status": "SUBSCRIBED" if status.status == store.SUBSCRIBED else "NOT_SUBSCRIBED",
        "sourceOfStatus": "PORTAL_WIDE_STATUS" if status.portal_wide else "SUBSCRIPTION_STATUS",
    }
    if status.legal_basis:
        out["legalBasis"] = status.legal_basis
    if status.legal_basis_explanation:
        out["legalBasisExplanation"] = status.legal_basis_explanation
    return out


def _standard_error(failure: Failure) -> dict[str, Any]:
    context = {"subscriberIdString": [failure.subscriber]}
    if failure.subscription_id is not None:
        context["subscriptionId"] = [str(failure.subscription_id)]
    return {
        "status": "error",
        "category": failure.category,
        "message": failure.message,
        "context": context,
        "errors": [],
        "links": {},
    }


def _not_found(subscriber: str) -> Failure:
    return Failure(subscriber, "OBJECT_NOT_FOUND", f"No contact with email {subscriber!r} exists.")


def _envelope(started: int, portal: Portal, results: list[Any], failures: Sequence[Failure] = ()) -> dict[str, Any]:
    """HubSpot's action/batch response wrapper; ``errors`` only when something failed."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso(started),
        "startedAt": iso(started),
        "completedAt": iso(portal.now_ms()),
    }
    if failures:
        body["errors"] = [_standard_error(f) for f in failures]
        body["numErrors"] = len(failures)
    return body


def _multi_status(request: Request, body: dict[str, Any]) -> Any:
    """Legacy batch reads answer 207 Multi-Status when some inputs failed; dated ones keep the errors in a 200."""
    return JSONResponse(body, status_code=207) if body.get("errors") and not is_dated(request) else body


# -- request parsing -------------------------------------------------------------------------------


def _channel(request: Request) -> None:
    channel = request.query_params.get("channel")
    if channel != "EMAIL":
        raise errors.validation_error(f"channel must be EMAIL, got {channel!r}.", field="channel")


def _enum(value: Any, allowed: Sequence[str], name: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if value not in allowed:
        raise errors.validation_error(
            f"Invalid input: {name} must be one of {', '.join(allowed)}, got {value!r}.", field=name
        )
    return str(value)


def _subscription_id(value: Any, name: str = "subscriptionId") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise errors.validation_error(f"Invalid input: {name} must be a numeric id, got {value!r}.", field=name)
    return int(value)


def _explanation(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise errors.validation_error(
            "Invalid input: legalBasisExplanation must be a string.", field="legalBasisExplanation"
        )
    return value


def _status_write(item: Any, subscriber: Any, *, where: str) -> StatusWrite:
    """A v4 ``PublicStatusRequest`` (or the single write's partial one plus the path's subscriber)."""
    item = json_object(item, where)
    if not isinstance(subscriber, str) or not subscriber.strip():
        raise errors.validation_error("Invalid input: subscriberIdString is required.", field="subscriberIdString")
    _enum(item.get("channel"), ("EMAIL",), "channel")
    return StatusWrite(
        subscriber=subscriber,
        subscription_id=_subscription_id(item.get("subscriptionId")),
        state=str(_enum(item.get("statusState"), store.STATUS_STATES, "statusState")),
        legal_basis=_enum(item.get("legalBasis"), store.LEGAL_BASES, "legalBasis", required=False),
        legal_basis_explanation=_explanation(item.get("legalBasisExplanation")),
    )


async def _batch_inputs(request: Request) -> list[Any]:
    return batch_inputs(json_object(await json_body(request)), MAX_BATCH)


def _string_inputs(inputs: list[Any]) -> list[str]:
    if not all(isinstance(i, str) for i in inputs):
        raise errors.validation_error("Invalid input: inputs must be a list of email addresses.", field="inputs")
    return list(dict.fromkeys(inputs))


def _contact_or_404(portal: Portal, subscriber: str) -> Contact:
    contact = store.find_contacts(portal, [subscriber]).get(store.normalise(subscriber))
    if contact is None:
        raise errors.not_found(f"No contact with email {subscriber!r} exists.")
    return contact


def _raise_failure(failure: Failure) -> None:
    if failure.category == "OBJECT_NOT_FOUND":
        raise errors.not_found(failure.message)
    raise errors.validation_error(failure.message, field="subscriptionId")


# -- v3 --------------------------------------------------------------------------------------------


@endpoints.get(
    "/communication-preferences/v3/definitions", name="subscriptions.v3.definitions", scopes=READ, dated=False
)
async def v3_definitions(request: Request) -> dict[str, Any]:
    """v3's shape; the dated ``/definitions`` is v4's (``results[]``), served by :func:`v4_definitions`."""
    types = store.subscription_types(portal_of(request))
    return {"subscriptionDefinitions": [_definition(sub) for sub in types.values()]}


@endpoints.get("/communication-preferences/v3/status/email/{emailAddress}", name="subscriptions.v3.status", scopes=READ)
async def v3_status(request: Request, emailAddress: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    contact = _contact_or_404(portal, emailAddress)
    statuses = store.read_statuses(portal, [contact])[contact.id]
    return {"recipient": contact.email, "subscriptionStatuses": [_v3_status(s) for s in statuses]}


async def _v3_write(request: Request, state: str, endpoint: str) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    email = body.get("emailAddress")
    if not isinstance(email, str) or not email.strip():
        raise errors.validation_error("Invalid input: emailAddress is required.", field="emailAddress")
    write = StatusWrite(
        subscriber=email,
        subscription_id=_subscription_id(body.get("subscriptionId")),
        state=state,
        legal_basis=_enum(body.get("legalBasis"), store.LEGAL_BASES, "legalBasis", required=False),
        legal_basis_explanation=_explanation(body.get("legalBasisExplanation")),
    )
    contact = _contact_or_404(portal, email)
    sub = store.subscription_types(portal).get(write.subscription_id)
    unit = sub.business_unit_id if sub is not None else 0
    if state == store.SUBSCRIBED and store.unit_optouts(portal, [contact], unit)[contact.id] is not None:
        raise errors.validation_error(
            f"{email} has opted out of all email; this endpoint cannot resubscribe a contact who is "
            "unsubscribed from all email."
        )
    results, failures = store.write_statuses(portal, [write], endpoint=endpoint)
    if failures:
        _raise_failure(failures[0])
    return _v3_status(results[0])


@endpoints.post("/communication-preferences/v3/subscribe", name="subscriptions.v3.subscribe", scopes=WRITE)
async def v3_subscribe(request: Request) -> dict[str, Any]:
    return await _v3_write(request, store.SUBSCRIBED, "subscriptions.v3.subscribe")


@endpoints.post("/communication-preferences/v3/unsubscribe", name="subscriptions.v3.unsubscribe", scopes=WRITE)
async def v3_unsubscribe(request: Request) -> dict[str, Any]:
    return await _v3_write(request, store.UNSUBSCRIBED, "subscriptions.v3.unsubscribe")


# -- v4: definitions and batches (batch routes first: "batch" would also match {subscriberIdString}) --


@endpoints.get(f"{V4}/definitions", name="subscriptions.v4.definitions", scopes=READ)
async def v4_definitions(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    started = portal.now_ms()
    unit = unit_param(request, portal)
    translations = query_bool(request, "includeTranslations")
    results = []
    for sub in store.subscription_types(portal, unit).values():
        definition = _definition(sub)
        if not translations:
            definition.pop("subscriptionTranslations")
        results.append(definition)
    return _envelope(started, portal, results)


@endpoints.post(f"{V4}/statuses/batch/read", name="subscriptions.v4.batch_read", scopes=BATCH_READ)
async def v4_batch_read(request: Request) -> Any:
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    subscribers = _string_inputs(await _batch_inputs(request))
    contacts = store.find_contacts(portal, subscribers)
    found = [contacts[store.normalise(s)] for s in subscribers if store.normalise(s) in contacts]
    statuses = store.read_statuses(portal, found, unit)
    results = [{"subscriberIdString": c.email, "statuses": [_public_status(s) for s in statuses[c.id]]} for c in found]
    failures = [_not_found(s) for s in subscribers if store.normalise(s) not in contacts]
    return _multi_status(request, _envelope(started, portal, results, failures))


@endpoints.post(f"{V4}/statuses/batch/write", name="subscriptions.v4.batch_write", scopes=BATCH_WRITE)
async def v4_batch_write(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    started = portal.now_ms()
    inputs = await _batch_inputs(request)
    writes = [
        _status_write(item, json_object(item, "input").get("subscriberIdString"), where="input") for item in inputs
    ]
    results, failures = store.write_statuses(portal, writes, endpoint="subscriptions.v4.batch_write")
    return _envelope(started, portal, [_public_status(s) for s in results], failures)


@endpoints.post(
    f"{V4}/statuses/batch/unsubscribe-all", name="subscriptions.v4.batch_unsubscribe_all", scopes=BATCH_WRITE
)
async def v4_batch_unsubscribe_all(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    verbose = query_bool(request, "verbose")
    subscribers = _string_inputs(await _batch_inputs(request))
    wide, missing = store.unsubscribe_all(
        portal, subscribers, endpoint="subscriptions.v4.batch_unsubscribe_all", unit=unit
    )
    results: list[dict[str, Any]] = []
    if verbose:
        statuses = store.read_statuses(portal, [w.contact for w in wide], unit)
        for result in wide:
            items = statuses[result.contact.id]
            for status in items:
                status.reason = result.reason
            results.append({"subscriberIdString": result.contact.email, "statuses": [_public_status(s) for s in items]})
    return _envelope(started, portal, results, [_not_found(s) for s in missing])


@endpoints.post(
    f"{V4}/statuses/batch/unsubscribe-all/read", name="subscriptions.v4.batch_unsubscribe_all_read", scopes=BATCH_READ
)
async def v4_batch_unsubscribe_all_read(request: Request) -> Any:
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    subscribers = _string_inputs(await _batch_inputs(request))
    contacts = store.find_contacts(portal, subscribers)
    found = [contacts[store.normalise(s)] for s in subscribers if store.normalise(s) in contacts]
    wide = store.wide_statuses(portal, found, unit)
    results = [
        {"subscriberIdString": contact.email, "wideStatuses": [_wide_status(wide[contact.id])]} for contact in found
    ]
    failures = [_not_found(s) for s in subscribers if store.normalise(s) not in contacts]
    return _multi_status(request, _envelope(started, portal, results, failures))


# -- v4: one subscriber ----------------------------------------------------------------------------


@endpoints.get(f"{V4}/statuses/{{subscriberIdString}}", name="subscriptions.v4.status", scopes=READ)
async def v4_status(request: Request, subscriberIdString: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    contact = _contact_or_404(portal, subscriberIdString)
    statuses = store.read_statuses(portal, [contact], unit)[contact.id]
    return _envelope(started, portal, [_public_status(s) for s in statuses])


@endpoints.post(f"{V4}/statuses/{{subscriberIdString}}", name="subscriptions.v4.write", scopes=WRITE)
async def v4_write(request: Request, subscriberIdString: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    started = portal.now_ms()
    write = _status_write(await json_body(request), subscriberIdString, where="request body")
    results, failures = store.write_statuses(portal, [write], endpoint="subscriptions.v4.write")
    if failures:
        _raise_failure(failures[0])
    return _envelope(started, portal, [_public_status(s) for s in results])


@endpoints.post(
    f"{V4}/statuses/{{subscriberIdString}}/unsubscribe-all", name="subscriptions.v4.unsubscribe_all", scopes=WRITE
)
async def v4_unsubscribe_all(request: Request, subscriberIdString: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    verbose = query_bool(request, "verbose")
    wide, missing = store.unsubscribe_all(
        portal, [subscriberIdString], endpoint="subscriptions.v4.unsubscribe_all", unit=unit
    )
    if missing:
        raise errors.not_found(f"No contact with email {subscriberIdString!r} exists.")
    results: list[dict[str, Any]] = []
    if verbose:
        statuses = store.read_statuses(portal, [wide[0].contact], unit)[wide[0].contact.id]
        for status in statuses:
            status.reason = wide[0].reason
        results = [_public_status(s) for s in statuses]
    return _envelope(started, portal, results)


@endpoints.get(
    f"{V4}/statuses/{{subscriberIdString}}/unsubscribe-all", name="subscriptions.v4.wide_status", scopes=READ
)
async def v4_wide_status(request: Request, subscriberIdString: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    started = portal.now_ms()
    _channel(request)
    unit = unit_param(request, portal)
    contact = _contact_or_404(portal, subscriberIdString)
    return _envelope(started, portal, [_wide_status(store.wide_statuses(portal, [contact], unit)[contact.id])])
