"""HubSpot's endpoints, one module per API area, and the sandbox's own admin API."""

from __future__ import annotations

from . import account, admin, contacts, emails, events, exports, forms, lists, subscriptions

ROUTERS = [
    module.endpoints.router
    for module in (lists, contacts, emails, events, subscriptions, exports, forms, account, admin)
]
ROUTERS.append(events.admin_router)  # the sending simulation's /_sandbox switches
