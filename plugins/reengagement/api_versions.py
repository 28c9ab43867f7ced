"""Which HubSpot API version each call goes to: date-based paths by default, legacy paths on request.

HubSpot moved its REST API to date-based versions (``/crm/v3/lists`` is ``/crm/lists/2026-09``). The v4
paths are unsupported from 30 March 2027 and v1-v3 from September 2027, and HubSpot advises moving straight
to a date-based version. The hook speaks one version per connection (extra ``{"api_version": "2026-09"}``,
``"legacy"`` for today's paths); this module maps each legacy path the project uses to its equivalent.

The hubspot-api-client SDK only knows legacy paths, so the mapping is applied to the URL of every request
(SDK and raw alike) just before it is sent.

.. seealso:: https://developers.hubspot.com/docs/api-reference/legacy/migration-guide
.. seealso:: https://developers.hubspot.com/changelog/legacy-apis-and-legacy-apps-whats-going-unsupported-and-when
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEGACY = "legacy"
#: The newest date-based version (GA 8 September 2026, supported until about March 2028).
DEFAULT_API_VERSION = "2026-09"
#: Date-based versions this project has been checked against; any other is refused with a clear error.
DATED_VERSIONS = ("2026-03", "2026-09")
API_VERSIONS = (*DATED_VERSIONS, LEGACY)

#: Legacy path prefix -> date-based prefix (``{version}`` is filled in). The longest prefix wins.
DATED_PREFIXES: dict[str, str] = {
    "/crm/v3/lists": "/crm/lists/{version}",
    "/crm/v3/objects/contacts": "/crm/objects/{version}/contacts",
    "/crm/v3/properties/contacts": "/crm/properties/{version}/contacts",
    "/crm/v3/exports": "/crm/exports/{version}",
    "/marketing/v3/emails": "/marketing/emails/{version}",
    "/communication-preferences/v3": "/communication-preferences/{version}",
    "/communication-preferences/v4": "/communication-preferences/{version}",
    "/account-info/v3": "/account-info/{version}",
}


@dataclass(frozen=True)
class LegacyOnly:
    """An endpoint the product uses that has no date-based equivalent yet, and when HubSpot stops supporting it."""

    path: str
    purpose: str
    unsupported_from: str
    why: str


#: Calls that stay on legacy paths whatever the version, because HubSpot has no date-based equivalent yet.
LEGACY_ONLY: tuple[LegacyOnly, ...] = (
    LegacyOnly(
        "/email/public/v1/events",
        "who was sent each email and who clicked its CTA (steps 4-6)",
        "September 2027",
        "the date-based Events API has no marketing email events, and email statistics are aggregates",
    ),
    LegacyOnly(
        "/marketing/v3/forms",
        "the consent text on forms (step 1)",
        "September 2027",
        "date-based Forms are in beta only (/marketing/forms/2026-09-beta)",
    ),
)

_VERSION = re.compile(r"^\d{4}-\d{2}$")


def check_version(value: object) -> str:
    """The version named in a connection's extra, or a ``ValueError`` that says which ones work."""
    if value is None:
        return DEFAULT_API_VERSION
    if isinstance(value, str) and value.strip().lower() in API_VERSIONS:
        return value.strip().lower()
    dated = isinstance(value, str) and _VERSION.match(value)
    hint = "" if dated else " (a date-based version is written YYYY-MM)"
    raise ValueError(f"api_version must be one of {', '.join(API_VERSIONS)}, not {value!r}{hint}")


def versioned_path(path: str, version: str) -> str:
    """``path`` (a legacy path, possibly with a query) as the given version names it.

    Paths with no date-based equivalent (:data:`LEGACY_ONLY`, token introspection, download URLs) and
    every path under ``legacy`` are returned unchanged.
    """
    if version == LEGACY:
        return path
    for prefix in sorted(DATED_PREFIXES, key=len, reverse=True):
        if path == prefix or path.startswith((prefix + "/", prefix + "?")):
            return DATED_PREFIXES[prefix].format(version=version) + path[len(prefix) :]
    return path
