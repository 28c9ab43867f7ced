"""HubSpot's endpoints, one module per API area, and the sandbox's own admin API."""

from __future__ import annotations

from . import account, admin, contacts, emails, events, exports, forms, lists, subscriptions

_MODULES = (lists, contacts, emails, events, subscriptions, exports, forms, account, admin)

#: Every endpoint on its legacy path, and the sandbox's admin API.
ROUTERS = [module.endpoints.router for module in _MODULES]
ROUTERS.append(events.admin_router)  # the sending simulation's /_sandbox switches
#: The same endpoints on their date-based paths (``/crm/lists/2026-09/...``), same handlers and names.
DATED_ROUTERS = [module.endpoints.dated_router for module in _MODULES if module is not admin]
