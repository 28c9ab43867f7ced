"""List storage (CRM Lists v3): the ``lists`` and ``memberships`` tables and how DYNAMIC lists stay current.

Other areas (email sends, exports) read a list through :func:`refresh`: after it returns,
``SELECT record_id FROM memberships WHERE list_id = ?`` is the list's current membership.

- MANUAL lists change only through the membership endpoints; SNAPSHOT lists evaluate their filters once,
  at creation, and then behave like MANUAL lists. Every such change calls ``portal.touch()``, because
  DYNAMIC lists may reference them with IN_LIST.
- DYNAMIC lists re-evaluate lazily, when read after contact data or memberships changed
  (``evaluated_version < portal.data_version``), or when their filters are relative to the clock and the
  last evaluation is older than :data:`CLOCK_STALE_MS`. Evaluation is one ``DELETE`` plus one
  ``INSERT ... SELECT`` that keeps ``added_at`` of members that stay: seconds at a million contacts.
- Like HubSpot, which recomputes DYNAMIC lists in the background, a list found behind is re-evaluated only
  ``config.list_lag_seconds`` after that first read: until then memberships, size, sends and exports all
  see the old members. A change therefore shows at least that long after it was made.
- A new (or re-filtered) list is PROCESSING for ``config.list_processing_seconds``; while it is, its
  memberships read as empty, as a client that does not wait for COMPLETE would see on HubSpot.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import errors, filters

if TYPE_CHECKING:
    from .portal import Portal

CONTACTS = "0-1"
PROCESSING_TYPES = ("MANUAL", "SNAPSHOT", "DYNAMIC")
#: A DYNAMIC list whose filters depend on the clock re-evaluates when read this long after its last run.
CLOCK_STALE_MS = 60_000
#: HubSpot's limit for copying or clearing memberships (spec descriptions of add-from and DELETE memberships).
BULK_LIMIT = 100_000
#: Deleted lists can be restored for 90 days.
RESTORE_WINDOW_MS = 90 * 86_400_000
FIRST_LIST_ID = 1001


# -- reading ------------------------------------------------------------------------------------------


def get(portal: Portal, list_id: int, *, deleted: bool = False) -> sqlite3.Row:
    """The ``lists`` row (no re-evaluation); 404 if missing, or deleted unless ``deleted`` is set."""
    row = portal.db.one("SELECT * FROM lists WHERE id = ?", (list_id,))
    if row is None or (row["deleted_at"] is not None and not deleted):
        raise errors.not_found(f"List {list_id} does not exist.")
    return row


def refresh(portal: Portal, list_id: int) -> sqlite3.Row:
    """The list's row after bringing a stale DYNAMIC list (and the lists it references) up to date."""
    row = get(portal, list_id)
    _refresh_row(portal, row, set())
    return get(portal, list_id)


def settle(portal: Portal) -> int:
    """Bring every DYNAMIC list up to date now, lag or not: what HubSpot shows once its background work is done.

    For the sandbox's own admin API (a test's view of a portal's final state); no HubSpot endpoint does this.
    """
    rows = portal.db.all("SELECT * FROM lists WHERE processing_type = 'DYNAMIC' AND deleted_at IS NULL ORDER BY id")
    for row in rows:
        normalised = filters.normalise(json.loads(row["filter_branch"]), portal.config.time_zone)
        if _is_stale(portal, row, normalised):
            evaluate(portal, row["id"], normalised.branch)
    return len(rows)


def _refresh_row(portal: Portal, row: sqlite3.Row, seen: set[int]) -> None:
    if row["processing_type"] != "DYNAMIC" or row["id"] in seen:
        return
    seen.add(row["id"])
    normalised = filters.normalise(json.loads(row["filter_branch"]), portal.config.time_zone)
    for ref in sorted(normalised.list_ids):
        ref_row = portal.db.one("SELECT * FROM lists WHERE id = ?", (ref,))
        if ref_row is not None:
            _refresh_row(portal, ref_row, seen)
    if _is_stale(portal, row, normalised) and _lag_passed(portal, row["id"]):
        evaluate(portal, row["id"], normalised.branch)


def _lag_passed(portal: Portal, list_id: int) -> bool:
    """True once the list has been behind for the portal's list lag (the first call starts the wait)."""
    lag_ms = portal.config.list_lag_seconds * 1000
    if lag_ms <= 0:
        return True
    key = f"list_behind_since:{list_id}"
    since = portal.db.get_meta(key)
    if since is None:
        portal.db.set_meta(key, portal.now_ms())
        return False
    return bool(portal.now_ms() - int(since) >= lag_ms)


def _is_stale(portal: Portal, row: sqlite3.Row, normalised: filters.Normalised) -> bool:
    if row["evaluated_version"] < portal.data_version:
        return True
    if not normalised.clock_dependent:
        return False
    evaluated_at = int(portal.db.get_meta(f"list_evaluated_at:{row['id']}", 0))
    return abs(portal.now_ms() - evaluated_at) > CLOCK_STALE_MS


def evaluate(portal: Portal, list_id: int, branch: dict[str, Any]) -> None:
    """Make the list's memberships exactly the contacts passing ``branch``; members that stay keep added_at."""
    now = portal.now_ms()
    compiled = filters.compile_branch(branch, now)
    db = portal.db
    with db.tx():
        db.execute(
            "DELETE FROM memberships WHERE list_id = ? AND record_id NOT IN "  # noqa: S608 - compiled SQL
            f"(SELECT c.id FROM contacts c WHERE {compiled.sql})",
            [list_id, *compiled.params],
        )
        db.execute(
            "INSERT OR IGNORE INTO memberships (list_id, record_id, added_at) "  # noqa: S608 - compiled SQL
            f"SELECT ?, c.id, ? FROM contacts c WHERE {compiled.sql}",
            [list_id, now, *compiled.params],
        )
        db.execute("UPDATE lists SET evaluated_version = ? WHERE id = ?", (portal.data_version, list_id))
        db.set_meta(f"list_evaluated_at:{list_id}", now)
        # Evaluation does not touch() the portal, so the cached size must go explicitly.
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (f"list_size:{list_id}", f"list_behind_since:{list_id}"))


def is_processing(portal: Portal, row: sqlite3.Row) -> bool:
    """True while a new or re-filtered list is still being processed (its members are not readable yet)."""
    return bool(portal.now_ms() / 1000 < row["processing_until"])


def size(portal: Portal, list_id: int) -> int:
    """The member count, cached until memberships change (a COUNT over a million members costs ~20 ms)."""
    key = f"list_size:{list_id}"
    cached = portal.db.get_meta(key)
    if cached is not None and cached[0] == portal.data_version:
        return int(cached[1])
    count = int(portal.db.scalar("SELECT COUNT(*) FROM memberships WHERE list_id = ?", (list_id,)))
    portal.db.set_meta(key, [portal.data_version, count])
    return count


def find_by_name(portal: Portal, name: str) -> sqlite3.Row | None:
    return portal.db.one("SELECT * FROM lists WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL", (name,))


def referencing(portal: Portal, list_id: int) -> list[int]:
    """Ids of live lists whose filters reference ``list_id`` with IN_LIST."""
    rows = portal.db.all(
        "SELECT id, filter_branch FROM lists WHERE deleted_at IS NULL AND filter_branch IS NOT NULL "
        "AND instr(filter_branch, 'IN_LIST') > 0"
    )
    return [r["id"] for r in rows if list_id in _list_refs(r["filter_branch"])]


def _list_refs(filter_branch: str | None) -> set[int]:
    if not filter_branch:
        return set()
    out = set()
    for child in json.loads(filter_branch).get("filterBranches", []):
        for item in child.get("filters", []):
            if item.get("filterType") == "IN_LIST":
                out.add(int(item["listId"]))
    return out


# -- writing ------------------------------------------------------------------------------------------


def check_name(portal: Portal, name: Any, *, own_id: int | None = None) -> str:
    """A usable list name: non-empty and not taken by another live list (case-insensitive)."""
    if not isinstance(name, str) or not name.strip():
        raise errors.validation_error("The list name must be a non-empty string.", field="name")
    existing = find_by_name(portal, name)
    if existing is not None and existing["id"] != own_id:
        raise errors.conflict(
            f"A list named '{existing['name']}' already exists (listId {existing['id']}); list names must be unique."
        )
    return name


def check_object_type(object_type_id: Any) -> str:
    if object_type_id != CONTACTS:
        raise errors.validation_error(
            f"objectTypeId {object_type_id!r} is not supported by the sandbox; only contacts ('0-1') are.",
            field="objectTypeId",
        )
    return CONTACTS


def check_filters(portal: Portal, branch: Any, *, own_id: int | None = None) -> filters.Normalised:
    """Validate a filter branch for a list; referenced lists must exist, and no list may reach itself."""
    normalised = filters.normalise(branch, portal.config.time_zone)
    for ref in sorted(normalised.list_ids):
        if ref == own_id:
            raise errors.validation_error(
                f"List {own_id} cannot reference itself with an IN_LIST filter.", field="filterBranch"
            )
        get_ref = portal.db.one("SELECT id FROM lists WHERE id = ? AND deleted_at IS NULL", (ref,))
        if get_ref is None:
            raise errors.validation_error(
                f"The IN_LIST filter references list {ref}, which does not exist.", field="filterBranch"
            )
    if own_id is not None and own_id in _reachable(portal, normalised.list_ids):
        raise errors.validation_error(
            f"These filters would make list {own_id} depend on itself through IN_LIST filters (a cycle).",
            field="filterBranch",
        )
    return normalised


def _reachable(portal: Portal, start: Iterable[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(start)
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_list_refs(portal.db.scalar("SELECT filter_branch FROM lists WHERE id = ?", (current,))))
    return seen


def create(portal: Portal, *, name: str, processing_type: str, normalised: filters.Normalised | None) -> sqlite3.Row:
    """Store a new list (already validated) and fill it: SNAPSHOT and DYNAMIC lists evaluate now."""
    now = portal.now_ms()
    db = portal.db
    with db.tx():
        list_id = portal.next_id("list", FIRST_LIST_ID)
        branch = json.dumps(normalised.branch) if normalised else None
        db.execute(
            "INSERT INTO lists (id, name, object_type_id, processing_type, filter_branch, list_version, created_at, "
            "updated_at, filters_updated_at, processing_until) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                list_id,
                name,
                CONTACTS,
                processing_type,
                branch,
                now,
                now,
                now if normalised else None,
                _processing_until(portal),
            ),
        )
        if normalised is not None:
            for ref in sorted(normalised.list_ids):
                refresh(portal, ref)
            evaluate(portal, list_id, normalised.branch)
    # No touch(): nothing can reference a list that did not exist until now.
    return get(portal, list_id)


def update_filters(portal: Portal, row: sqlite3.Row, normalised: filters.Normalised) -> sqlite3.Row:
    now = portal.now_ms()
    with portal.db.tx():
        portal.db.execute(
            "UPDATE lists SET filter_branch = ?, list_version = list_version + 1, updated_at = ?, "
            "filters_updated_at = ?, processing_until = ? WHERE id = ?",
            (json.dumps(normalised.branch), now, now, _processing_until(portal), row["id"]),
        )
        for ref in sorted(normalised.list_ids):
            refresh(portal, ref)
        evaluate(portal, row["id"], normalised.branch)
    return get(portal, row["id"])


def rename(portal: Portal, row: sqlite3.Row, name: str) -> sqlite3.Row:
    portal.db.execute("UPDATE lists SET name = ?, updated_at = ? WHERE id = ?", (name, portal.now_ms(), row["id"]))
    return get(portal, row["id"])


def delete(portal: Portal, row: sqlite3.Row) -> None:
    """Soft delete: the name becomes free, memberships stay for a restore."""
    now = portal.now_ms()
    portal.db.execute("UPDATE lists SET deleted_at = ?, updated_at = ? WHERE id = ?", (now, now, row["id"]))


def restore(portal: Portal, list_id: int) -> None:
    row = get(portal, list_id, deleted=True)
    if row["deleted_at"] is None:
        raise errors.validation_error(f"List {list_id} is not deleted, so it cannot be restored.")
    if portal.now_ms() - row["deleted_at"] > RESTORE_WINDOW_MS:
        raise errors.not_found(f"List {list_id} was deleted more than 90 days ago and can no longer be restored.")
    check_name(portal, row["name"], own_id=list_id)
    now = portal.now_ms()
    with portal.db.tx():
        portal.db.execute(
            "UPDATE lists SET deleted_at = NULL, updated_at = ?, evaluated_version = -1 WHERE id = ?", (now, list_id)
        )


def _processing_until(portal: Portal) -> float:
    return portal.now_ms() / 1000 + portal.config.list_processing_seconds


# -- memberships --------------------------------------------------------------------------------------


def require_static(row: sqlite3.Row) -> None:
    """Membership writes are for MANUAL and SNAPSHOT lists only (HubSpot's lists guide)."""
    if row["processing_type"] not in ("MANUAL", "SNAPSHOT"):
        raise errors.validation_error(
            f"List {row['id']} is a {row['processing_type']} list; memberships can only be changed on MANUAL or "
            "SNAPSHOT lists."
        )


def parse_record_ids(values: Any, what: str) -> list[Any]:
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise errors.validation_error(f"{what} must be a list of record ids (strings).", field=what)
    return values


def _split_known(portal: Portal, values: list[Any]) -> tuple[list[int], list[str]]:
    """Record ids that exist as contacts, and the rest (as given) for ``recordIdsMissing``."""
    numeric: dict[int, str] = {}
    missing: list[str] = []
    for value in values:
        text = str(value).strip()
        if text.isdigit() and int(text) not in numeric:
            numeric[int(text)] = text
        elif not text.isdigit():
            missing.append(str(value))
    existing = {
        r[0]
        for r in portal.db.all(
            "SELECT c.id FROM json_each(?) j JOIN contacts c ON c.id = j.value", (json.dumps(list(numeric)),)
        )
    }
    missing.extend(text for rid, text in numeric.items() if rid not in existing)
    return [rid for rid in numeric if rid in existing], missing


def add_members(portal: Portal, list_id: int, values: list[Any]) -> tuple[list[int], list[str]]:
    """Add contacts; returns (newly added ids, missing ids)."""
    known, missing = _split_known(portal, values)
    db = portal.db
    with db.tx():
        present = _members_among(portal, list_id, known)
        added = [rid for rid in known if rid not in present]
        db.conn.executemany(
            "INSERT INTO memberships (list_id, record_id, added_at) VALUES (?, ?, ?)",
            [(list_id, rid, portal.now_ms()) for rid in added],
        )
        if added:
            portal.touch()
    return added, missing


def remove_members(portal: Portal, list_id: int, values: list[Any]) -> tuple[list[int], list[str]]:
    """Remove contacts; returns (removed ids, missing ids)."""
    known, missing = _split_known(portal, values)
    db = portal.db
    with db.tx():
        removed = [rid for rid in known if rid in _members_among(portal, list_id, known)]
        db.conn.executemany(
            "DELETE FROM memberships WHERE list_id = ? AND record_id = ?", [(list_id, rid) for rid in removed]
        )
        if removed:
            portal.touch()
    return removed, missing


def _members_among(portal: Portal, list_id: int, ids: list[int]) -> set[int]:
    # CROSS JOIN keeps json_each outside: one primary-key probe per id, not a scan of the whole list.
    rows = portal.db.all(
        "SELECT m.record_id FROM json_each(?) j CROSS JOIN memberships m ON m.list_id = ? AND m.record_id = j.value",
        (json.dumps(ids), list_id),
    )
    return {r[0] for r in rows}


def copy_members(portal: Portal, list_id: int, source_id: int) -> None:
    """Add every member of ``source_id`` (refreshed first) to ``list_id``."""
    refresh(portal, source_id)
    if size(portal, source_id) >= BULK_LIMIT:
        raise errors.validation_error(
            f"List {source_id} has {BULK_LIMIT:,} or more members; add-from only supports "
            f"source lists with fewer than {BULK_LIMIT:,}."
        )
    with portal.db.tx():
        cursor = portal.db.execute(
            "INSERT OR IGNORE INTO memberships (list_id, record_id, added_at) "
            "SELECT ?, record_id, ? FROM memberships WHERE list_id = ?",
            (list_id, portal.now_ms(), source_id),
        )
        if cursor.rowcount:
            portal.touch()


def clear_members(portal: Portal, list_id: int) -> None:
    if size(portal, list_id) >= BULK_LIMIT:
        raise errors.validation_error(
            f"List {list_id} has {BULK_LIMIT:,} or more members; removing all memberships "
            f"only supports lists with fewer than {BULK_LIMIT:,}."
        )
    with portal.db.tx():
        cursor = portal.db.execute("DELETE FROM memberships WHERE list_id = ?", (list_id,))
        if cursor.rowcount:
            portal.touch()
