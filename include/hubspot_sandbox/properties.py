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

#: ``hs_emailconfirmationstatus`` options (value = label). Double opt-in is pending for the first two;
#: every other value counts as confirmed.
CONFIRMATION_PENDING = ("Confirmation Pending", "Confirmation Email Sent")
CONFIRMATION_STATUSES = (
    "Confirmed",
    *CONFIRMATION_PENDING,
    "User clicked confirmation",
    "HubSpot Rep. marked confirmed",
    "Customer marked confirmed",
    "Confirmed from previous behavior",
    "Confirmed due to form",
)
QUARANTINE_REASONS = (
    "ON_LIST_IMPORT",
    "HIGH_HARD_BOUNCE_RATE",
    "MULTIPLE_CANCELLED_CAMPAIGNS",
    "FORM_ABUSE",
    "RECIPIENT_COMPLAINT",
    "SUSPENSION_REMEDIATION",
    "BLOCKLIST_REMEDIATION",
    "TRUST_SAFETY_REMEDIATION",
    "OTHER",
    "UNDELIVERABLE_ADDRESS",
)


@dataclass(frozen=True)
class Property:
    name: str
    label: str
    type: str
    sql: str
    options: tuple[str, ...] = ()
    #: HubSpot's ``fieldType`` (how its UI edits the value); empty means the usual one for ``type``.
    field_type: str = ""

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
            (
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ),
        ),
        Property("createdate", "Create Date", DATETIME, "c.createdate"),
        Property("lastmodifieddate", "Last Modified Date", DATETIME, "c.lastmodifieddate"),
        Property("hs_email_last_open_date", "Last marketing email open date", DATETIME, "c.last_open"),
        Property("hs_email_last_click_date", "Last marketing email click date", DATETIME, "c.last_click"),
        Property("hs_email_optout", "Unsubscribed from all email", BOOL, "c.optout"),
        Property("hs_email_bounce", "Marketing emails bounced", NUMBER, "c.bounced"),
        # Deliveries from before the sandbox's history (and seeded history) plus the sandbox's own sends.
        Property(
            "hs_email_delivered", "Marketing emails delivered", NUMBER, "(c.delivered_before + c.sends - c.bounced)"
        ),
        Property("hs_analytics_last_visit_timestamp", "Time of last session", DATETIME, "c.last_visit"),
        Property("recent_conversion_date", "Recent conversion date", DATETIME, "c.last_form"),
        # What decides whether HubSpot sends a marketing email to a contact at all.
        Property(
            "hs_marketable_status",
            "Marketing contact status",
            ENUMERATION,
            "(CASE WHEN c.marketable THEN 'true' ELSE 'false' END)",
            ("true", "false"),
            "booleancheckbox",
        ),
        Property(
            "hs_emailconfirmationstatus",
            "Marketing email confirmation status",
            ENUMERATION,
            "c.confirmation",
            CONFIRMATION_STATUSES,
            "select",
        ),
        Property(
            "hs_email_hard_bounce_reason_enum",
            "Email hard bounce reason",
            ENUMERATION,
            "c.hard_bounce_reason",
            ("CONTENT", "MAILBOX_FULL", "OTHER", "POLICY", "SPAM", "UNKNOWN_USER"),
            "select",
        ),
        Property("hs_email_quarantined", "Email Address Quarantined", BOOL, "c.quarantined", (), "booleancheckbox"),
        Property(
            "hs_email_quarantined_reason",
            "Email address automated quarantine reason",
            ENUMERATION,
            "c.quarantined_reason",
            QUARANTINE_REASONS,
            "select",
        ),
    )
}

_PER_SUBSCRIPTION = re.compile(r"^hs_email_optout_(\d+)$")


def subscription_of(name: str) -> int | None:
    """The subscription type id of a per-subscription opt-out property (``hs_email_optout_<id>``), else ``None``."""
    match = _PER_SUBSCRIPTION.match(name)
    return int(match[1]) if match else None


def resolve(name: str) -> Property | None:
    """The property called ``name``, or ``None`` if the portal has no such property."""
    if name in _FIXED:
        return _FIXED[name]
    match = _PER_SUBSCRIPTION.match(name)
    if match:
        sub_id = int(match[1])
        # HubSpot types these as an enumeration of "true"/"false" shown as a checkbox, unlike the
        # boolean hs_email_optout: a BOOL list filter on them is refused.
        return Property(
            name,
            f"Opted out of email: {sub_id}",
            ENUMERATION,
            # sub_id is an int parsed by the regex above, so the SQL stays trusted.
            "(SELECT CASE WHEN s.status = 'UNSUBSCRIBED' THEN 'true' ELSE 'false' END "  # noqa: S608
            f"FROM subscription_status s WHERE s.contact_id = c.id AND s.subscription_id = {sub_id})",
            ("true", "false"),
            "booleancheckbox",
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
