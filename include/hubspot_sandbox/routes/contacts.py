"""CRM contacts v3, read side: one contact, a batch of contacts, paging through all of them, and the
definitions (type, field type, options) of contact properties.

Properties go through :mod:`..properties`, so a contact reads the same here as in list filters and
exports. Unknown property names are ignored like HubSpot does; without ``properties`` HubSpot's default
set is returned. Paging uses the record id as the ``after`` cursor, so each page is one indexed query.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import errors, properties, subscriptions_store
from ..portal import Portal, iso, portal_of
from ..routing import (
    MAX_BATCH,
    Endpoints,
    batch_inputs,
    is_dated,
    json_body,
    json_object,
    path_for,
    query_bool,
    query_int,
)

endpoints = Endpoints()

READ = [["crm.objects.contacts.read"]]
MAX_PAGE = 100
#: HubSpot returns these with every contact, whatever properties were asked for.
ALWAYS = ("createdate", "lastmodifieddate", "hs_object_id")
#: Properties whose values are unique, so they can identify a contact (``idProperty``).
UNIQUE = {"hs_object_id": "c.id", "email": "c.email COLLATE NOCASE"}


def _names(raw: list[str] | None) -> list[str]:
    """Requested property names (repeated and/or comma-separated), or HubSpot's default set."""
    names = [n.strip() for value in raw or [] for n in value.split(",") if n.strip()]
    if not names:
        return list(properties.DEFAULT_READ)
    return names + [n for n in ALWAYS if n not in names]


def _query_names(request: Request) -> list[str]:
    return _names(request.query_params.getlist("properties"))


def _id_column(id_property: str | None) -> str:
    if not id_property:
        return UNIQUE["hs_object_id"]
    if id_property not in UNIQUE:
        raise errors.validation_error(
            f"Property {id_property!r} is not a unique-value property of contacts: use email or hs_object_id.",
            field="idProperty",
        )
    return UNIQUE[id_property]


def _lookup_value(value: str, column: str) -> str | int | None:
    """The value to compare with ``column``; ``None`` when it cannot match anything (a non-numeric id)."""
    if column == "c.id":
        text = value.strip()
        return int(text) if text.isdigit() else None
    return value.strip()


def _public(record: Any) -> dict[str, Any]:
    """``SimplePublicObject`` without null values: HubSpot's spec types every property value as a string."""
    obj = properties.simple_public_object(record)
    obj["properties"] = {k: v for k, v in obj["properties"].items() if v is not None}
    return obj


@endpoints.get("/crm/v3/objects/contacts/{contactId}", name="contacts.get", scopes=READ)
async def get_contact(request: Request, contactId: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    column = _id_column(request.query_params.get("idProperty"))
    value = _lookup_value(contactId, column)
    if value is None or query_bool(request, "archived"):
        raise errors.not_found(f"Object not found.  objectId are usually numeric. ({contactId})")
    records = properties.read_contacts(portal, f"{column} = ?", (value,), _query_names(request))
    if not records:
        raise errors.not_found(f"Object not found.  objectId are usually numeric. ({contactId})")
    return _public(records[0])


@endpoints.get("/crm/v3/objects/contacts", name="contacts.list", scopes=READ)
async def list_contacts(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    limit = query_int(request, "limit", 10, minimum=1, maximum=MAX_PAGE)
    assert limit is not None
    after = request.query_params.get("after") or "0"
    if not after.isdigit():
        raise errors.validation_error(f"Invalid after cursor {after!r}.", field="after")
    if query_bool(request, "archived"):
        return {"results": []}
    records = properties.read_contacts(
        portal, "c.id >= ? ORDER BY c.id LIMIT ?", (int(after), limit + 1), _query_names(request)
    )
    body: dict[str, Any] = {"results": [_public(r) for r in records[:limit]]}
    if len(records) > limit:
        cursor = str(records[limit][0])
        path = path_for(request, "/crm/v3/objects/contacts")
        link = f"{str(request.base_url).rstrip('/')}{path}?after={cursor}&limit={limit}"
        body["paging"] = {"next": {"after": cursor, "link": link}}
    return body


def _batch_request(body: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """Inputs, property names and the id column of a ``BatchReadInputSimplePublicObjectId``."""
    inputs = batch_inputs(body, MAX_BATCH)
    ids = []
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("id"), (str, int)) or isinstance(item["id"], bool):
            raise errors.validation_error("Invalid input: every input needs an id.", field="inputs")
        ids.append(str(item["id"]))
    names = body.get("properties")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise errors.validation_error("Invalid input: properties must be a list of names.", field="properties")
    return list(dict.fromkeys(ids)), _names(names), _id_column(body.get("idProperty"))


def _batch_read(portal: Portal, ids: list[str], names: list[str], column: str) -> tuple[list[Any], list[str]]:
    """The found contacts (in input order) and the inputs that matched nothing."""
    values = {i: _lookup_value(i, column) for i in ids}
    wanted = [v for v in values.values() if v is not None]
    records = (
        properties.read_contacts(portal, f"{column} IN ({', '.join('?' * len(wanted))})", wanted, [*names, "email"])
        if wanted
        else []
    )
    if column == "c.id":
        by_key = {str(r[0]): r for r in records}
        keys = {i: str(v) for i, v in values.items() if v is not None}
    else:
        by_key = {(r[1].get("email") or "").lower(): r for r in records}
        keys = {i: str(v).lower() for i, v in values.items() if v is not None}
    found, missing = [], []
    for i in ids:
        record = by_key.get(keys.get(i, ""))
        if record is None:
            missing.append(i)
        else:
            found.append(_only(record, names))
    return found, missing


def _only(record: Any, names: list[str]) -> Any:
    """Drop the email that was read only to match inputs, if it was not asked for."""
    contact_id, values, created, updated = record
    return contact_id, {k: v for k, v in values.items() if k in names}, created, updated


@endpoints.post("/crm/v3/objects/contacts/batch/read", name="contacts.batch_read", scopes=READ)
async def batch_read(request: Request) -> Any:
    portal = portal_of(request)
    started = portal.now_ms()
    ids, names, column = _batch_request(json_object(await json_body(request)))
    found, missing = _batch_read(portal, ids, names, column)
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": [_public(r) for r in found],
        "requestedAt": iso(started),
        "startedAt": iso(started),
        "completedAt": iso(portal.now_ms()),
    }
    if not missing:
        return body
    body["numErrors"] = 1
    body["errors"] = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": (
                "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
            ),
            "context": {"ids": missing},
            "errors": [],
            "links": {},
        }
    ]
    # Legacy answers 207 Multi-Status; the date-based versions keep the errors inside a 200.
    return JSONResponse(body, status_code=200 if is_dated(request) else 207)


@endpoints.post("/crm/v3/objects/contacts/search", name="contacts.search", scopes=READ)
async def search_contacts(request: Request) -> dict[str, Any]:
    """CRM search without filters: a page of contacts and the portal's ``total`` (what preflight needs)."""
    portal = portal_of(request)
    body = json_object(await json_body(request))
    if body.get("filterGroups"):
        raise errors.validation_error(
            "The sandbox's contact search supports no filterGroups; use list filters.", field="filterGroups"
        )
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 1 <= limit <= 200:
        raise errors.validation_error("limit must be between 1 and 200.", field="limit")
    after = str(body.get("after") or "0")
    if not after.isdigit():
        raise errors.validation_error(f"Invalid after cursor {after!r}.", field="after")
    total = int(portal.db.scalar("SELECT COUNT(*) FROM contacts"))
    names = [str(n) for n in body.get("properties") or []] or list(properties.DEFAULT_READ)
    records = properties.read_contacts(portal, "c.id > ? ORDER BY c.id LIMIT ?", (int(after), limit + 1), names)
    page: dict[str, Any] = {"total": total, "results": [_public(r) for r in records[:limit]]}
    if len(records) > limit:
        page["paging"] = {"next": {"after": str(records[limit - 1][0])}}
    return page


# -- property definitions -------------------------------------------------------------------------------

#: Reading a property's definition needs the contacts read scope or the contact schema scope.
SCHEMA_READ = [["crm.objects.contacts.read"], ["crm.schemas.contacts.read"]]
CONTACT_OBJECT_TYPES = ("contacts", "contact", "0-1")
#: HubSpot's usual ``fieldType`` for each ``type`` (a property may differ, e.g. an enumeration as a checkbox).
FIELD_TYPES = {
    properties.STRING: "text",
    properties.NUMBER: "number",
    properties.DATETIME: "date",
    properties.BOOL: "booleancheckbox",
    properties.ENUMERATION: "select",
}
#: Options HubSpot lists for every boolean property.
BOOL_OPTIONS = ("true", "false")


#: HubSpot's property groups of the properties outside the contact and email information groups.
_GROUPS = {
    "hs_analytics_last_visit_timestamp": "analyticsinformation",
    "recent_conversion_date": "conversioninformation",
}


def property_definition(prop: properties.Property) -> dict[str, Any]:
    """HubSpot's ``Property`` for a contact property: name, label, ``type``, ``fieldType`` and options."""
    options = prop.options or (BOOL_OPTIONS if prop.type == properties.BOOL else ())
    return {
        "name": prop.name,
        "label": prop.label,
        "type": prop.type,
        "fieldType": prop.field_type or FIELD_TYPES[prop.type],
        "description": "",
        "groupName": _GROUPS.get(prop.name)
        or ("emailinformation" if prop.name.startswith("hs_email") else "contactinformation"),
        "options": [
            {"label": o.title() if o in BOOL_OPTIONS else o, "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(options)
        ],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": prop.name in UNIQUE,
        "hidden": False,
        "hubspotDefined": True,
        "formField": False,
        "modificationMetadata": {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": True},
        "archived": False,
    }


def _portal_property(portal: Portal, name: str) -> properties.Property | None:
    """The property if this portal has it: per-subscription opt-out properties exist only for its subscription types."""
    prop = properties.resolve(name)
    sub_id = properties.subscription_of(name)
    if prop is not None and sub_id is not None and sub_id not in subscriptions_store.subscription_types(portal):
        return None
    return prop


@endpoints.get("/crm/v3/properties/{objectType}/{propertyName}", name="properties.get", scopes=SCHEMA_READ)
async def get_property(request: Request, objectType: str, propertyName: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    if objectType.lower() not in CONTACT_OBJECT_TYPES:
        raise errors.not_found(f"Unable to infer object type from: {objectType}")
    prop = _portal_property(portal, propertyName)
    if prop is None or query_bool(request, "archived"):
        raise errors.not_found(f"Property {propertyName} does not exist")
    return property_definition(prop)
