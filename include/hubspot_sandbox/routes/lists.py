"""CRM Lists v3 (``/crm/v3/lists``): create, fetch, search, rename, re-filter, delete/restore, memberships.

Shapes follow ``crm-lists-v3.json``; storage and DYNAMIC evaluation live in :mod:`..lists_store`, filters in
:mod:`..filters`. Only contact lists (``objectTypeId`` ``0-1``) exist in the sandbox.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fastapi import Request, Response

from .. import errors, lists_store
from ..portal import Portal, iso, portal_of
from ..routing import Endpoints, is_dated, json_body, json_object, path_int, query_bool, query_int

endpoints = Endpoints()

READ = [["crm.lists.read"]]
CREATE = [["crm.lists.write"], ["cms.membership.access_groups.write"]]
WRITE = [["crm.lists.read", "crm.lists.write"], ["cms.membership.access_groups.write", "crm.lists.read"]]

PAGE_DEFAULT, PAGE_MAX = 100, 250
SEARCH_DEFAULT, SEARCH_MAX = 20, 500
SEARCH_SORTS = {"listId": "id", "name": "name COLLATE NOCASE", "createdAt": "created_at", "updatedAt": "updated_at"}
#: List properties the search can return; the first three come back by default, as on HubSpot.
SEARCH_PROPERTIES = (
    "hs_list_size",
    "hs_last_record_added_at",
    "hs_list_reference_count",
    "hs_processing_type",
    "hs_object_type_id",
    "hs_list_name",
    "hs_list_id",
)


def no_content() -> Response:
    return Response(status_code=204)


# -- serialisation --------------------------------------------------------------------------------------


def _common(portal: Portal, row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "listId": str(row["id"]),
        "listVersion": row["list_version"],
        "name": row["name"],
        "objectTypeId": row["object_type_id"],
        "processingType": row["processing_type"],
        "processingStatus": "PROCESSING" if lists_store.is_processing(portal, row) else "COMPLETE",
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }
    if row["filters_updated_at"] is not None:
        out["filtersUpdatedAt"] = iso(row["filters_updated_at"])
    if row["deleted_at"] is not None:
        out["deletedAt"] = iso(row["deleted_at"])
    return out


def public_list(portal: Portal, row: sqlite3.Row, *, include_filters: bool) -> dict[str, Any]:
    """HubSpot's ``PublicObjectList``; ``size`` only once processing is COMPLETE."""
    out = _common(portal, row)
    if not lists_store.is_processing(portal, row):
        out["size"] = lists_store.size(portal, row["id"])
    if include_filters and row["filter_branch"]:
        out["filterBranch"] = json.loads(row["filter_branch"])
    return out


def _list_id(value: str) -> int:
    return path_int(value, "listId")


# -- lists ----------------------------------------------------------------------------------------------


@endpoints.post("/crm/v3/lists", name="lists.create", scopes=CREATE)
async def create_list(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.validation_error("The list name must be a non-empty string.", field="name")
    lists_store.check_object_type(body.get("objectTypeId"))
    processing_type = body.get("processingType")
    if processing_type not in lists_store.PROCESSING_TYPES:
        raise errors.validation_error(
            f"processingType must be one of {', '.join(lists_store.PROCESSING_TYPES)}, got {processing_type!r}.",
            field="processingType",
        )
    branch = body.get("filterBranch")
    normalised = None
    if processing_type == "MANUAL" and branch is not None:
        raise errors.validation_error("A MANUAL list has no filters; leave filterBranch out.", field="filterBranch")
    if processing_type != "MANUAL":
        if branch is None:
            raise errors.validation_error(f"A {processing_type} list needs a filterBranch.", field="filterBranch")
        normalised = lists_store.check_filters(portal, branch)
    lists_store.check_name(portal, name)
    row = lists_store.create(portal, name=name, processing_type=processing_type, normalised=normalised)
    return {"list": public_list(portal, row, include_filters=True)}


@endpoints.get("/crm/v3/lists", name="lists.get_many", scopes=READ)
async def get_lists(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    include = query_bool(request, "includeFilters")
    ids: list[int] = []
    for raw in request.query_params.getlist("listIds"):
        ids.extend(_list_id(part.strip()) for part in raw.split(",") if part.strip())
    found = []
    for list_id in dict.fromkeys(ids):
        try:
            found.append(lists_store.refresh(portal, list_id))
        except errors.HubSpotError:
            continue  # HubSpot leaves out ids it does not find
    return {"lists": [public_list(portal, row, include_filters=include) for row in found]}


@endpoints.post("/crm/v3/lists/search", name="lists.search", scopes=READ)
async def search_lists(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    body = json_object(await json_body(request))
    offset = _body_int(body, "offset", 0, 0, None)
    count = _body_int(body, "count", SEARCH_DEFAULT, 1, SEARCH_MAX)
    where, params = _search_where(body)
    if is_dated(request):
        where.extend(_dated_search_where(body))
    if body.get("objectTypeId") not in (None, lists_store.CONTACTS):
        where.append("0")
    order = _search_order(body.get("sort"))
    sql_where = " AND ".join(where)
    total = int(portal.db.scalar(f"SELECT COUNT(*) FROM lists WHERE {sql_where}", params))  # noqa: S608
    rows = portal.db.all(
        f"SELECT id FROM lists WHERE {sql_where} ORDER BY {order}, id LIMIT ? OFFSET ?",  # noqa: S608
        [*params, count, offset],
    )
    wanted = _string_list(body, "additionalProperties")
    results = [_search_result(portal, lists_store.refresh(portal, r["id"]), wanted) for r in rows]
    return {"lists": results, "offset": offset + len(results), "hasMore": offset + len(results) < total, "total": total}


def _body_int(body: dict[str, Any], key: str, default: int, minimum: int, maximum: int | None) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.validation_error(f"{key} must be an integer.", field=key)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise errors.validation_error(f"{key} must be {bound}, got {value}.", field=key)
    return value


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise errors.validation_error(f"{key} must be a list of strings.", field=key)
    return [str(v) for v in value]


def _search_where(body: dict[str, Any]) -> tuple[list[str], list[Any]]:
    where, params = ["deleted_at IS NULL"], []
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise errors.validation_error("query must be a string.", field="query")
    if query:
        where.append("instr(lower(name), lower(?)) > 0")
        params.append(query)
    types = _string_list(body, "processingTypes")
    unknown = [t for t in types if t not in lists_store.PROCESSING_TYPES]
    if unknown:
        raise errors.validation_error(f"Unknown processingTypes {unknown}.", field="processingTypes")
    if types:
        where.append(f"processing_type IN ({', '.join('?' for _ in types)})")
        params.extend(types)
    ids = [_list_id(v) for v in _string_list(body, "listIds")]
    if ids:
        where.append(f"id IN ({', '.join('?' for _ in ids)})")
        params.extend(ids)
    return where, params


#: Fields the date-based versions require in a list search (legacy treats both as optional).
DATED_SEARCH_REQUIRED = ("listIds", "processingTypes")


def _dated_search_where(body: dict[str, Any]) -> list[str]:
    """The date-based search's extra rule: both fields required, and an empty one matches no list.

    Whether HubSpot reads an empty ``listIds`` as "any list" or "no list" is not documented; the strict
    reading is served so that a caller relying on either notices here rather than in a real portal.
    """
    missing = [key for key in DATED_SEARCH_REQUIRED if key not in body or body[key] is None]
    if missing:
        raise errors.validation_error(f"Invalid input: {' and '.join(missing)} required.", field=missing[0])
    return ["0"] if any(not _string_list(body, key) for key in DATED_SEARCH_REQUIRED) else []


def _search_order(sort: Any) -> str:
    if sort is None or sort == "":
        return "id"
    text = str(sort)
    descending = text.startswith("-")
    column = SEARCH_SORTS.get(text.lstrip("-"))
    if column is None:
        raise errors.validation_error(
            f"Cannot sort lists by {text!r}; use one of {', '.join(SEARCH_SORTS)} (prefix - for descending).",
            field="sort",
        )
    return f"{column} {'DESC' if descending else 'ASC'}"


def _search_result(portal: Portal, row: sqlite3.Row, wanted: list[str]) -> dict[str, Any]:
    out = _common(portal, row)
    names = dict.fromkeys([*SEARCH_PROPERTIES[:3], *wanted])
    values = _list_properties(portal, row)
    out["additionalProperties"] = {name: values[name] for name in names if values.get(name) is not None}
    return out


def _list_properties(portal: Portal, row: sqlite3.Row) -> dict[str, str | None]:
    processing = lists_store.is_processing(portal, row)
    last_added = (
        None
        if processing
        else portal.db.scalar("SELECT MAX(added_at) FROM memberships WHERE list_id = ?", (row["id"],))
    )
    return {
        "hs_list_size": None if processing else str(lists_store.size(portal, row["id"])),
        "hs_last_record_added_at": None if last_added is None else str(last_added),
        "hs_list_reference_count": str(len(lists_store.referencing(portal, row["id"]))),
        "hs_processing_type": row["processing_type"],
        "hs_object_type_id": row["object_type_id"],
        "hs_list_name": row["name"],
        "hs_list_id": str(row["id"]),
    }


@endpoints.get(
    "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName:path}", name="lists.get_by_name", scopes=READ
)
async def get_by_name(request: Request, objectTypeId: str, listName: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    lists_store.check_object_type(objectTypeId)
    row = lists_store.find_by_name(portal, listName)
    if row is None:
        raise errors.not_found(f"No list named '{listName}' exists for object type {objectTypeId}.")
    row = lists_store.refresh(portal, row["id"])
    return {"list": public_list(portal, row, include_filters=query_bool(request, "includeFilters"))}


@endpoints.get(
    "/crm/v3/lists/records/{objectTypeId}/{recordId}/memberships", name="lists.record_memberships", scopes=READ
)
async def record_memberships(request: Request, objectTypeId: str, recordId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    lists_store.check_object_type(objectTypeId)
    record_id = path_int(recordId, "recordId")
    live = portal.db.all("SELECT id FROM lists WHERE deleted_at IS NULL AND processing_type = 'DYNAMIC'")
    for row in live:
        lists_store.refresh(portal, row["id"])
    rows = portal.db.all(
        "SELECT l.*, m.added_at FROM memberships m JOIN lists l ON l.id = m.list_id "
        "WHERE m.record_id = ? AND l.deleted_at IS NULL ORDER BY l.id",
        (record_id,),
    )
    results = [
        {
            "listId": str(r["id"]),
            "listVersion": r["list_version"],
            "firstAddedTimestamp": iso(r["added_at"]),
            "lastAddedTimestamp": iso(r["added_at"]),
            "isPublicList": True,
        }
        for r in rows
        if not lists_store.is_processing(portal, r)
    ]
    return {"results": results, "total": len(results)}


@endpoints.get("/crm/v3/lists/{listId}", name="lists.get", scopes=READ)
async def get_list(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    row = lists_store.refresh(portal, _list_id(listId))
    return {"list": public_list(portal, row, include_filters=query_bool(request, "includeFilters"))}


@endpoints.delete("/crm/v3/lists/{listId}", name="lists.delete", scopes=WRITE, status_code=204)
async def delete_list(request: Request, listId: str) -> Response:  # noqa: N803
    portal = portal_of(request)
    lists_store.delete(portal, lists_store.get(portal, _list_id(listId)))
    return no_content()


@endpoints.put("/crm/v3/lists/{listId}/restore", name="lists.restore", scopes=WRITE, status_code=204)
async def restore_list(request: Request, listId: str) -> Response:  # noqa: N803
    lists_store.restore(portal_of(request), _list_id(listId))
    return no_content()


@endpoints.put("/crm/v3/lists/{listId}/update-list-name", name="lists.update_name", scopes=WRITE)
async def update_name(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    row = lists_store.get(portal, _list_id(listId))
    name = request.query_params.get("listName")
    if name is None or not name.strip():
        raise errors.validation_error("listName is required and must not be empty.", field="listName")
    lists_store.check_name(portal, name, own_id=row["id"])
    row = lists_store.rename(portal, row, name)
    return {"updatedList": public_list(portal, row, include_filters=query_bool(request, "includeFilters"))}


@endpoints.put("/crm/v3/lists/{listId}/update-list-filters", name="lists.update_filters", scopes=WRITE)
async def update_filters(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    query_bool(request, "enrollObjectsInWorkflows")
    row = lists_store.get(portal, _list_id(listId))
    body = json_object(await json_body(request))
    if row["processing_type"] != "DYNAMIC":
        raise errors.validation_error(
            f"List {row['id']} is a {row['processing_type']} list; only DYNAMIC lists can have their filters updated."
        )
    if "filterBranch" not in body:
        raise errors.validation_error("filterBranch is required.", field="filterBranch")
    normalised = lists_store.check_filters(portal, body["filterBranch"], own_id=row["id"])
    row = lists_store.update_filters(portal, row, normalised)
    return {"updatedList": public_list(portal, row, include_filters=True)}


# -- memberships ----------------------------------------------------------------------------------------


def _cursor(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def _page_limit(request: Request) -> int:
    limit = query_int(request, "limit", PAGE_DEFAULT, minimum=1, maximum=PAGE_MAX)
    assert limit is not None
    return limit


def _member(record_id: int, added_at: int) -> dict[str, Any]:
    return {"recordId": str(record_id), "membershipTimestamp": iso(added_at)}


def _page(items: list[sqlite3.Row], limit: int, backwards: bool, key: Any) -> tuple[list[sqlite3.Row], dict]:
    """Trim a ``limit + 1`` fetch to a page and build HubSpot's ``paging`` (next only when more follow)."""
    more = len(items) > limit
    items = items[:limit]
    if backwards:
        items.reverse()
    paging: dict[str, Any] = {}
    if items and (more if not backwards else True):
        paging["next"] = {"after": key(items[-1])}
    if items and backwards and more:
        paging["prev"] = {"before": key(items[0])}
    return items, paging


@endpoints.get("/crm/v3/lists/{listId}/memberships", name="lists.memberships", scopes=READ)
async def memberships(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    """Members ordered by record id; ``after``/``before`` are record ids."""
    portal = portal_of(request)
    row = lists_store.refresh(portal, _list_id(listId))
    limit = _page_limit(request)
    after, before = _cursor(request, "after"), _cursor(request, "before")
    cursor = path_int(before, "before") if before is not None else path_int(after, "after") if after else -1
    if lists_store.is_processing(portal, row):
        return {"results": [], "total": 0}
    base = "SELECT record_id, added_at FROM memberships WHERE list_id = ?"
    if before is not None:
        items = portal.db.all(
            base + " AND record_id < ? ORDER BY record_id DESC LIMIT ?", (row["id"], cursor, limit + 1)
        )
    else:
        items = portal.db.all(base + " AND record_id > ? ORDER BY record_id LIMIT ?", (row["id"], cursor, limit + 1))
    page, paging = _page(items, limit, before is not None, lambda r: str(r["record_id"]))
    out: dict[str, Any] = {
        "results": [_member(r["record_id"], r["added_at"]) for r in page],
        "total": lists_store.size(portal, row["id"]),
    }
    if paging:
        out["paging"] = paging
    return out


def _join_cursor(value: str, name: str) -> tuple[int, int]:
    added, _, record = value.partition("_")
    if not (added.isdigit() and record.isdigit()):
        raise errors.validation_error(f"Invalid {name} cursor {value!r}.", field=name)
    return int(added), int(record)


@endpoints.get("/crm/v3/lists/{listId}/memberships/join-order", name="lists.memberships_join_order", scopes=READ)
async def memberships_join_order(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    """Members ordered by when they joined; cursors are ``<addedAt>_<recordId>``."""
    portal = portal_of(request)
    row = lists_store.refresh(portal, _list_id(listId))
    limit = _page_limit(request)
    after, before = _cursor(request, "after"), _cursor(request, "before")
    if before is not None:
        added, record = _join_cursor(before, "before")
    else:
        added, record = _join_cursor(after, "after") if after is not None else (-1, -1)
    if lists_store.is_processing(portal, row):
        return {"results": [], "total": 0}
    base = "SELECT record_id, added_at FROM memberships WHERE list_id = ?"
    if before is not None:
        items = portal.db.all(
            base + " AND (added_at, record_id) < (?, ?) ORDER BY added_at DESC, record_id DESC LIMIT ?",
            (row["id"], added, record, limit + 1),
        )
    else:
        items = portal.db.all(
            base + " AND (added_at, record_id) > (?, ?) ORDER BY added_at, record_id LIMIT ?",
            (row["id"], added, record, limit + 1),
        )
    page, paging = _page(items, limit, before is not None, lambda r: f"{r['added_at']}_{r['record_id']}")
    out: dict[str, Any] = {
        "results": [_member(r["record_id"], r["added_at"]) for r in page],
        "total": lists_store.size(portal, row["id"]),
    }
    if paging:
        out["paging"] = paging
    return out


def _update_response(added: list[int], removed: list[int], missing: list[str]) -> dict[str, Any]:
    return {
        "recordIdsMissing": list(dict.fromkeys(missing)),
        "recordIdsRemoved": [str(i) for i in removed],
        "recordsIdsAdded": [str(i) for i in added],
    }


def _static_list(portal: Portal, list_id: str) -> sqlite3.Row:
    row = lists_store.get(portal, _list_id(list_id))
    lists_store.require_static(row)
    return row


@endpoints.put("/crm/v3/lists/{listId}/memberships/add", name="lists.memberships_add", scopes=WRITE)
async def add_members(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    row = _static_list(portal, listId)
    ids = lists_store.parse_record_ids(await json_body(request), "request body")
    added, missing = lists_store.add_members(portal, row["id"], ids)
    return _update_response(added, [], missing)


@endpoints.put("/crm/v3/lists/{listId}/memberships/remove", name="lists.memberships_remove", scopes=WRITE)
async def remove_members(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    row = _static_list(portal, listId)
    ids = lists_store.parse_record_ids(await json_body(request), "request body")
    removed, missing = lists_store.remove_members(portal, row["id"], ids)
    return _update_response([], removed, missing)


@endpoints.put(
    "/crm/v3/lists/{listId}/memberships/add-and-remove", name="lists.memberships_add_and_remove", scopes=WRITE
)
async def add_and_remove(request: Request, listId: str) -> dict[str, Any]:  # noqa: N803
    portal = portal_of(request)
    row = _static_list(portal, listId)
    body = json_object(await json_body(request))
    to_add = lists_store.parse_record_ids(body.get("recordIdsToAdd", []), "recordIdsToAdd")
    to_remove = lists_store.parse_record_ids(body.get("recordIdsToRemove", []), "recordIdsToRemove")
    with portal.db.tx():
        added, missing_add = lists_store.add_members(portal, row["id"], to_add)
        removed, missing_remove = lists_store.remove_members(portal, row["id"], to_remove)
    return _update_response(added, removed, missing_add + missing_remove)


@endpoints.put(
    "/crm/v3/lists/{listId}/memberships/add-from/{sourceListId}",
    name="lists.memberships_add_from",
    scopes=WRITE,
    status_code=204,
)
async def add_from(request: Request, listId: str, sourceListId: str) -> Response:  # noqa: N803
    portal = portal_of(request)
    row = _static_list(portal, listId)
    source = lists_store.get(portal, path_int(sourceListId, "sourceListId"))
    lists_store.copy_members(portal, row["id"], source["id"])
    return no_content()


@endpoints.delete("/crm/v3/lists/{listId}/memberships", name="lists.memberships_clear", scopes=WRITE, status_code=204)
async def clear_members(request: Request, listId: str) -> Response:  # noqa: N803
    portal = portal_of(request)
    row = _static_list(portal, listId)
    lists_store.clear_members(portal, row["id"])
    return no_content()
