"""Email subscription state shared by the v3 and v4 communication-preferences routes.

The portal-wide opt-out lives in ``contacts.optout`` (the ``hs_email_optout`` property) and the
per-subscription status in ``subscription_status`` (the ``hs_email_optout_<id>`` properties). Every
real change made through the API appends one row to ``status_changes`` (the opt-out audit log) and calls
:meth:`Portal.touch`, because DYNAMIC lists filter on these properties. A repeat of a status that is
already in place changes nothing and logs nothing, so callers can retry safely. A contact who unsubscribes
through an email's own link is opted out by :mod:`.sending` (a STATUSCHANGE event of that email), not here.

Business units: every subscription type belongs to one unit (``subscription_types.business_unit_id``), so a
status follows its type's unit. "Unsubscribed from all email" is kept per unit: unit 0's is ``contacts.optout``,
another unit's a row of ``unit_optouts``. Reads and unsubscribe-alls work in the one unit they name.

Batches are handled set-based: one query resolves all emails, one reads the current statuses, and
the writes go out with ``executemany`` in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from .portal import Portal

SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED = "SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"
STATUS_STATES = (SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED)
LEGAL_BASES = (
    "CONSENT_WITH_NOTICE",
    "LEGITIMATE_INTEREST_CLIENT",
    "LEGITIMATE_INTEREST_OTHER",
    "LEGITIMATE_INTEREST_PQL",
    "NON_GDPR",
    "PERFORMANCE_OF_CONTRACT",
    "PROCESS_AND_STORE",
)

NO_STATUS_CHANGE = "NO_STATUS_CHANGE"
REQUESTED_CHANGE_OCCURRED = "REQUESTED_CHANGE_OCCURRED"
RESUBSCRIBE_OCCURRED = "RESUBSCRIBE_OCCURRED"
UNSUBSCRIBE_FROM_ALL_OCCURRED = "UNSUBSCRIBE_FROM_ALL_OCCURRED"

#: What HubSpot reports as ``source`` for a status set through the public API.
API_SOURCE = "Public status API"
#: ``source`` of a contact that never had a status for a subscription.
DEFAULT_SOURCE = "Default status"
#: SQLite's default limit on bound parameters is far above a batch of 100; stay well under it.
_CHUNK = 500


@dataclass(frozen=True)
class Contact:
    id: int
    email: str
    optout: bool
    createdate: int
    lastmodifieddate: int


@dataclass(frozen=True)
class SubscriptionType:
    id: int
    name: str
    description: str
    purpose: str
    communication_method: str
    is_active: bool
    is_default: bool
    is_internal: bool
    created_at: int
    updated_at: int
    business_unit_id: int = 0


@dataclass
class Status:
    """One contact's status for one subscription type, as the API reports it."""

    contact: Contact
    subscription: SubscriptionType
    #: The effective status: UNSUBSCRIBED while the contact is opted out of all email.
    status: str
    source: str
    timestamp: int
    portal_wide: bool
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StatusWrite:
    """A requested per-subscription status (v3 subscribe/unsubscribe, v4 single and batch write)."""

    subscriber: str
    subscription_id: int
    state: str
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None


@dataclass(frozen=True)
class Failure:
    """Why one input of a batch could not be applied; routes render it as HubSpot's StandardError."""

    subscriber: str
    category: str
    message: str
    subscription_id: int | None = None


@dataclass
class WideResult:
    """The portal-wide status of one contact, after an unsubscribe-all or for a read."""

    contact: Contact
    status: str
    timestamp: int
    reason: str | None = None
    business_unit_id: int = 0


@dataclass
class _Changes:
    """Rows a write collects before flushing them in one transaction."""

    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    optouts: list[tuple[Any, ...]] = field(default_factory=list)
    #: (contact id, unit, at) to add to ``unit_optouts``, and (contact id, unit) to remove.
    unit_optouts: list[tuple[Any, ...]] = field(default_factory=list)
    unit_resubscribes: list[tuple[Any, ...]] = field(default_factory=list)
    log: list[tuple[Any, ...]] = field(default_factory=list)


# -- reads ---------------------------------------------------------------------------------------


def subscription_types(portal: Portal, unit: int | None = None) -> dict[int, SubscriptionType]:
    """The subscription types of one business unit, or of every unit (``None``)."""
    sql = (
        "SELECT id, name, description, purpose, communication_method, is_active, is_default, is_internal, "
        "created_at, updated_at, business_unit_id FROM subscription_types"
    )
    rows = (
        portal.db.all(sql + " ORDER BY id")
        if unit is None
        else portal.db.all(sql + " WHERE business_unit_id = ? ORDER BY id", (unit,))
    )
    return {row[0]: _subscription_type(row) for row in rows}


def _subscription_type(row: sqlite3.Row) -> SubscriptionType:
    return SubscriptionType(
        row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]), bool(row[7]), row[8], row[9], row[10]
    )


def unit_optouts(portal: Portal, contacts: Sequence[Contact], unit: int) -> dict[int, int | None]:
    """Each contact's "unsubscribed from all email" in ``unit``: when it was set, or ``None`` if not set.

    Unit 0's is the contact's own ``optout`` (timed by its last modification, as before units existed).
    """
    if unit == 0:
        return {c.id: (c.lastmodifieddate if c.optout else None) for c in contacts}
    found: dict[int, int | None] = dict.fromkeys((c.id for c in contacts), None)
    ids = list(found)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in portal.db.all(
            f"SELECT contact_id, updated_at FROM unit_optouts WHERE business_unit_id = ? AND contact_id IN ({marks})",  # noqa: S608
            [unit, *chunk],
        ):
            found[row[0]] = row[1]
    return found


def normalise(email: str) -> str:
    return email.strip().lower()


def find_contacts(portal: Portal, emails: Iterable[str]) -> dict[str, Contact]:
    """Contacts by normalised email, looked up through the case-insensitive email index."""
    wanted = list(dict.fromkeys(normalise(e) for e in emails if isinstance(e, str) and e.strip()))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = portal.db.all(
            "SELECT id, email, optout, createdate, lastmodifieddate FROM contacts "  # noqa: S608 - placeholders only
            f"WHERE email COLLATE NOCASE IN ({marks})",
            chunk,
        )
        for row in rows:
            found[normalise(row[1])] = Contact(row[0], row[1], bool(row[2]), row[3], row[4])
    return found


def _stored_rows(portal: Portal, contact_ids: Sequence[int]) -> dict[tuple[int, int], sqlite3.Row]:
    rows: dict[tuple[int, int], sqlite3.Row] = {}
    ids = list(dict.fromkeys(contact_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in portal.db.all(
            "SELECT contact_id, subscription_id, status, legal_basis, legal_basis_explanation, source, "  # noqa: S608
            f"updated_at FROM subscription_status WHERE contact_id IN ({marks})",
            chunk,
        ):
            rows[(row[0], row[1])] = row
    return rows


def _status(contact: Contact, sub: SubscriptionType, row: sqlite3.Row | None, optout: bool) -> Status:
    stored = row["status"] if row is not None else NOT_SPECIFIED
    effective = UNSUBSCRIBED if optout else stored
    if row is None:
        return Status(contact, sub, effective, DEFAULT_SOURCE, contact.createdate, optout)
    return Status(
        contact,
        sub,
        effective,
        row["source"],
        row["updated_at"],
        optout,
        row["legal_basis"],
        row["legal_basis_explanation"],
    )


def read_statuses(portal: Portal, contacts: Sequence[Contact], unit: int = 0) -> dict[int, list[Status]]:
    """Every subscription type of ``unit``: each contact's status, keyed by contact id."""
    types = subscription_types(portal, unit)
    stored = _stored_rows(portal, [c.id for c in contacts])
    optouts = unit_optouts(portal, contacts, unit)
    return {
        c.id: [_status(c, sub, stored.get((c.id, sub_id)), optouts[c.id] is not None) for sub_id, sub in types.items()]
        for c in contacts
    }


def wide_statuses(portal: Portal, contacts: Sequence[Contact], unit: int = 0) -> dict[int, WideResult]:
    """Each contact's "unsubscribed from all email" status in ``unit``, keyed by contact id."""
    optouts = unit_optouts(portal, contacts, unit)
    results = {}
    for contact in contacts:
        at = optouts[contact.id]
        status = UNSUBSCRIBED if at is not None else SUBSCRIBED
        results[contact.id] = WideResult(contact, status, at or contact.lastmodifieddate, None, unit)
    return results


# -- writes ---------------------------------------------------------------------------------------


def write_statuses(
    portal: Portal, writes: Sequence[StatusWrite], *, endpoint: str, source: str = API_SOURCE
) -> tuple[list[Status], list[Failure]]:
    """Apply per-subscription statuses; unknown contacts and subscription types become failures.

    Writing SUBSCRIBED for a contact opted out of all email resubscribes it (the portal-wide opt-out is
    lifted), as HubSpot's v4 API does; callers that must not resubscribe check first.
    """
    types = subscription_types(portal)
    contacts = find_contacts(portal, [w.subscriber for w in writes])
    stored = _stored_rows(portal, [c.id for c in contacts.values()])
    current = {key: row["status"] for key, row in stored.items()}
    optout: dict[tuple[int, int], bool] = {}
    for unit in {types[w.subscription_id].business_unit_id for w in writes if w.subscription_id in types}:
        for contact_id, at in unit_optouts(portal, list(contacts.values()), unit).items():
            optout[(contact_id, unit)] = at is not None
    now = portal.now_ms()
    changes = _Changes()
    results: list[Status] = []
    failures: list[Failure] = []
    for write in writes:
        contact = contacts.get(normalise(write.subscriber))
        sub = types.get(write.subscription_id)
        failure = _check_write(write, contact, sub)
        if failure is not None:
            failures.append(failure)
            continue
        assert contact is not None and sub is not None
        reason = _apply_write(write, contact, sub, current, optout, changes, now, source, endpoint)
        results.append(_written_status(write, contact, sub, current, optout, now, reason, stored, source))
    _flush(portal, changes, now)
    return results, failures


def _check_write(write: StatusWrite, contact: Contact | None, sub: SubscriptionType | None) -> Failure | None:
    if contact is None:
        return Failure(write.subscriber, "OBJECT_NOT_FOUND", f"No contact with email {write.subscriber!r} exists.")
    if sub is None:
        return Failure(
            write.subscriber,
            "VALIDATION_ERROR",
            f"{write.subscription_id} is not a valid subscription id for this portal.",
            write.subscription_id,
        )
    return None


def _apply_write(
    write: StatusWrite,
    contact: Contact,
    sub: SubscriptionType,
    current: dict[tuple[int, int], str],
    optout: dict[tuple[int, int], bool],
    changes: _Changes,
    now: int,
    source: str,
    endpoint: str,
) -> str:
    """Record the changes one write causes (in ``changes``) and return its setStatusSuccessReason."""
    key = (contact.id, sub.id)
    old = current.get(key, NOT_SPECIFIED)
    unit = sub.business_unit_id
    resubscribe = write.state == SUBSCRIBED and optout[(contact.id, unit)]
    if resubscribe:
        optout[(contact.id, unit)] = False
        if unit == 0:
            changes.optouts.append((0, now, contact.id))
        else:
            changes.unit_resubscribes.append((contact.id, unit))
        changes.log.append(
            (
                now,
                contact.id,
                contact.email,
                None,
                UNSUBSCRIBED,
                SUBSCRIBED,
                source,
                write.legal_basis,
                write.legal_basis_explanation,
                endpoint,
                unit,
            )
        )
    if old != write.state:
        current[key] = write.state
        changes.statuses.append(
            (contact.id, sub.id, write.state, write.legal_basis, write.legal_basis_explanation, source, now)
        )
        changes.log.append(
            (
                now,
                contact.id,
                contact.email,
                sub.id,
                old,
                write.state,
                source,
                write.legal_basis,
                write.legal_basis_explanation,
                endpoint,
                unit,
            )
        )
    if resubscribe:
        return RESUBSCRIBE_OCCURRED
    return REQUESTED_CHANGE_OCCURRED if old != write.state else NO_STATUS_CHANGE


def _written_status(
    write: StatusWrite,
    contact: Contact,
    sub: SubscriptionType,
    current: dict[tuple[int, int], str],
    optout: dict[tuple[int, int], bool],
    now: int,
    reason: str,
    stored: dict[tuple[int, int], sqlite3.Row],
    source: str,
) -> Status:
    state = current.get((contact.id, sub.id), NOT_SPECIFIED)
    opted_out = optout[(contact.id, sub.business_unit_id)]
    effective = UNSUBSCRIBED if opted_out else state
    if reason == NO_STATUS_CHANGE and (contact.id, sub.id) in stored:
        row = stored[(contact.id, sub.id)]
        return Status(
            contact,
            sub,
            effective,
            row["source"],
            row["updated_at"],
            opted_out,
            row["legal_basis"],
            row["legal_basis_explanation"],
            reason,
        )
    return Status(
        contact,
        sub,
        effective,
        source,
        now,
        opted_out,
        write.legal_basis,
        write.legal_basis_explanation,
        reason,
    )


def unsubscribe_all(
    portal: Portal, subscribers: Sequence[str], *, endpoint: str, source: str = API_SOURCE, unit: int = 0
) -> tuple[list[WideResult], list[str]]:
    """Opt contacts out of all email of one business unit; returns their wide statuses and the subscribers
    not found. Other units' opt-outs and statuses stay as they are."""
    contacts = find_contacts(portal, subscribers)
    wide = wide_statuses(portal, list(contacts.values()), unit)
    now = portal.now_ms()
    changes = _Changes()
    results: list[WideResult] = []
    missing: list[str] = []
    seen: set[int] = set()
    for subscriber in subscribers:
        contact = contacts.get(normalise(subscriber)) if isinstance(subscriber, str) else None
        if contact is None:
            missing.append(str(subscriber))
            continue
        if contact.id in seen:
            continue
        seen.add(contact.id)
        if wide[contact.id].status == UNSUBSCRIBED:
            wide[contact.id].reason = NO_STATUS_CHANGE
            results.append(wide[contact.id])
            continue
        if unit == 0:
            changes.optouts.append((1, now, contact.id))
            contact = Contact(contact.id, contact.email, True, contact.createdate, now)
        else:
            changes.unit_optouts.append((contact.id, unit, now))
        changes.log.append(
            (now, contact.id, contact.email, None, SUBSCRIBED, UNSUBSCRIBED, source, None, None, endpoint, unit)
        )
        results.append(WideResult(contact, UNSUBSCRIBED, now, UNSUBSCRIBE_FROM_ALL_OCCURRED, unit))
    _flush(portal, changes, now)
    return results, missing


def _flush(portal: Portal, changes: _Changes, now: int) -> None:
    if not changes.log:
        return
    db = portal.db
    with db.tx():
        if changes.optouts:
            db.conn.executemany("UPDATE contacts SET optout = ?, lastmodifieddate = ? WHERE id = ?", changes.optouts)
        if changes.unit_optouts:
            db.conn.executemany(
                "INSERT OR IGNORE INTO unit_optouts (contact_id, business_unit_id, updated_at) VALUES (?, ?, ?)",
                changes.unit_optouts,
            )
            db.conn.executemany(
                "UPDATE contacts SET lastmodifieddate = ? WHERE id = ?",
                [(now, row[0]) for row in changes.unit_optouts],
            )
        if changes.unit_resubscribes:
            db.conn.executemany(
                "DELETE FROM unit_optouts WHERE contact_id = ? AND business_unit_id = ?", changes.unit_resubscribes
            )
        if changes.statuses:
            db.conn.executemany(
                "INSERT INTO subscription_status (contact_id, subscription_id, status, legal_basis, "
                "legal_basis_explanation, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (contact_id, subscription_id) DO UPDATE SET status = excluded.status, "
                "legal_basis = excluded.legal_basis, legal_basis_explanation = excluded.legal_basis_explanation, "
                "source = excluded.source, updated_at = excluded.updated_at",
                changes.statuses,
            )
            db.conn.executemany(
                "UPDATE contacts SET lastmodifieddate = ? WHERE id = ?",
                [(now, contact_id) for contact_id in dict.fromkeys(row[0] for row in changes.statuses)],
            )
        db.conn.executemany(
            "INSERT INTO status_changes (at, contact_id, email, subscription_id, old_status, new_status, source, "
            "legal_basis, legal_basis_explanation, endpoint, business_unit_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            changes.log,
        )
    portal.touch()
