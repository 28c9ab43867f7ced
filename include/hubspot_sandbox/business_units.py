"""Business units (HubSpot's Brands add-on): each has its own subscription types and opt-outs.

Every portal has the default unit 0. A portal seeded with ``business_units`` has more; a call naming a
``businessUnitId`` the portal does not have is refused with a 400 VALIDATION_ERROR (see FIDELITY.md: HubSpot
documents no answer for it, so the sandbox takes the strict one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import errors
from .routing import query_int

if TYPE_CHECKING:
    from fastapi import Request

    from .portal import Portal

DEFAULT_UNIT = 0
DEFAULT_UNIT_NAME = "Default business unit"
#: Each seeded unit's own marketing subscription type is the default unit's id plus this times the unit id.
UNIT_SUBSCRIPTION_STRIDE = 100


def units_of(portal: Portal) -> dict[int, str]:
    """The portal's business units by id, the default unit first."""
    rows = portal.db.all("SELECT id, name FROM business_units ORDER BY id")
    return {DEFAULT_UNIT: DEFAULT_UNIT_NAME, **{int(row[0]): str(row[1]) for row in rows}}


def check_unit(portal: Portal, unit: int, *, field: str = "businessUnitId") -> int:
    """``unit`` if the portal has it, else HubSpot's 400 VALIDATION_ERROR naming the field."""
    if unit not in units_of(portal):
        raise errors.validation_error(f"Business unit {unit} does not exist in this portal.", field=field)
    return unit


def unit_param(request: Request, portal: Portal) -> int:
    """The request's ``businessUnitId`` query parameter (default: unit 0), checked against the portal's units."""
    unit = query_int(request, "businessUnitId", DEFAULT_UNIT, minimum=0)
    assert unit is not None
    return check_unit(portal, unit)


def body_unit(portal: Portal, value: Any, *, field: str = "businessUnitId") -> int:
    """A ``businessUnitId`` from a request body (a number or numeric string), checked like :func:`unit_param`."""
    if value is None:
        return DEFAULT_UNIT
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise errors.validation_error(f"Invalid input: {field} must be a numeric id, got {value!r}.", field=field)
    return check_unit(portal, int(value), field=field)


def parse_seed(spec: Iterable[Any]) -> dict[int, str]:
    """The seed's ``business_units``: ids, or ``{"id", "name"}`` objects; ValueError for anything else."""
    found: dict[int, str] = {}
    for item in spec:
        raw_id, name = (item.get("id"), item.get("name")) if isinstance(item, dict) else (item, None)
        if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id < 1:
            raise ValueError(f"business_units: each id must be a whole number above 0 (0 is the default), got {item!r}")
        found[raw_id] = str(name or f"Business unit {raw_id}")
    return found


def marketing_subscription_id(base_id: int, unit: int) -> int:
    """The id of a seeded unit's own copy of the default unit's subscription type ``base_id``."""
    return base_id + UNIT_SUBSCRIPTION_STRIDE * unit
