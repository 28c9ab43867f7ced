"""Contact properties the sandbox knows: HubSpot's name, label and type, and where each lives in SQL.

List filters, contact reads and exports all go through :func:`resolve`, so a property means the same
thing everywhere. SQL expressions refer to the contact row as ``c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .portal import iso

if TYPE_CHECKING:
    from .portal import Portal

STRING, NUMBER, DATETIME, BOOL, ENUMERATION = "string", "number", "datetime", "bool", "enumeration"


@dataclass(frozen=True)
class Property:
    name: str
    label: str
    type: str
    sql: str
    options: tuple[str, ...] = ()

    def to_hubspot(self, value: Any) -> str | None:
        """A stored value as HubSpot sends it: every property value is a string or null."""
        if value is None:
            return None
        if self.type == DATETIME:
            return iso(value)
        if self.type == BOOL:
            return "true" if value else "false"
        return str(value)


_FIXED = {
    p.name: p
    for p in (
        Property("hs_object_id", "Record ID", NUMBER, "c.id"),
        Property("email", "Email", STRING, "c.email"),
        Property("firstname", "First Name", STRING, "c.firstname"),
        Property("lastname", "Last Name", STRING, "c.lastname"),
        Property(
            "lifecyclestage",
            "Lifecycle Stage",
            ENUMERATION,
            "c.lifecyclestage",
            ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"),
        ),
        Property("createdate", "Create Date", DATETIME, "c.createdate"),
        Property("lastmodifieddate", "Last Modified Date", DATETIME, "c.lastmodifieddate"),
        Property("hs_email_last_open_date", "Last marketing email open date", DATETIME, "c.last_open"),
        Property("hs_email_last_click_date", "Last marketing email click date", DATETIME, "c.last_click"),
        Property("hs_email_optout", "Unsubscribed from all email", BOOL, "c.optout"),
        Property("hs_email_bounce", "Marketing emails bounced", NUMBER, "c.bounced"),
        Property("hs_email_delivered", "Marketing emails delivered", NUMBER, "(c.sends - c.bounced)"),
    )
}

_PER_SUBSCRIPTION = re.compile(r"^hs_email_optout_(\d+)$")


def resolve(name: str) -> Property | None:
    """The property called ``name``, or ``None`` if the portal has no such property."""
    if name in _FIXED:
        return _FIXED[name]
    match = _PER_SUBSCRIPTION.match(name)
    if match:
        sub_id = int(match[1])
        return Property(
            name,
            f"Opted out of email: {sub_id}",
            BOOL,
            # sub_id is an int parsed by the regex above, so the SQL stays trusted.
            "(SELECT s.status = 'UNSUBSCRIBED' FROM subscription_status s "  # noqa: S608
            f"WHERE s.contact_id = c.id AND s.subscription_id = {sub_id})",
        )
    return None


def known(names: Iterable[str]) -> list[Property]:
    """The known properties among ``names`` (HubSpot silently ignores unknown ones on reads)."""
    return [p for p in (resolve(n) for n in dict.fromkeys(names)) if p is not None]


DEFAULT_READ = ("email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id")


def read_contacts(
    portal: Portal, where: str, params: Sequence[Any], names: Iterable[str]
) -> list[tuple[int, dict[str, str | None], int, int]]:
    """``(id, properties, createdate_ms, lastmodified_ms)`` for the contacts matching ``where``."""
    props = known(names)
    columns = ", ".join(["c.id", "c.createdate", "c.lastmodifieddate"] + [p.sql for p in props])
    sql = f"SELECT {columns} FROM contacts c WHERE {where}"  # noqa: S608 - trusted SQL fragments only
    rows = portal.db.all(sql, params)
    out = []
    for row in rows:
        values = {p.name: p.to_hubspot(row[3 + i]) for i, p in enumerate(props)}
        out.append((row[0], values, row[1], row[2]))
    return out


def simple_public_object(record: tuple[int, dict[str, str | None], int, int]) -> dict[str, Any]:
    """HubSpot's ``SimplePublicObject`` for a contact read by :func:`read_contacts`."""
    contact_id, values, created, updated = record
    return {
        "id": str(contact_id),
        "properties": values,
        "createdAt": iso(created),
        "updatedAt": iso(updated),
        "archived": False,
    }
