"""The opt-out as it is commonly scripted without this project: one contact, and one call, at a time.

Pages a list's memberships (v3 lists, 250 per page), reads each member's email (``GET`` CRM v3
``contacts/{id}``) and unsubscribes it from the subscription type (``POST`` Communication Preferences v3
``unsubscribe``), with ``requests`` and no batching: 2 calls per contact plus the pages. The campaign
benchmark runs it on the same cohort as the project's opt-out to compare the number of calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import requests

MEMBERSHIPS_PAGE = 250


@dataclass
class PlainResult:
    """What the script did: HubSpot calls by kind, and contacts unsubscribed or refused."""

    pages: int = 0
    lookups: int = 0
    unsubscribes: int = 0
    unsubscribed: int = 0
    refused: int = 0

    @property
    def calls(self) -> int:
        return self.pages + self.lookups + self.unsubscribes


class PlainOptOut:
    """The script, against one portal (``base_url``, private app ``token``).

    :param base_url: ``https://api.hubapi.com`` or a sandbox's URL.
    :param token: the private app token.
    :param subscription_id: the subscription type to unsubscribe the list's contacts from.
    """

    def __init__(self, base_url: str, token: str, subscription_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.subscription_id = subscription_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.result = PlainResult()

    def members(self, list_id: str) -> Iterator[str]:
        params: dict[str, str | int] = {"limit": MEMBERSHIPS_PAGE}
        while True:
            response = self.session.get(
                f"{self.base_url}/crm/v3/lists/{list_id}/memberships", params=params, timeout=60
            )
            response.raise_for_status()
            self.result.pages += 1
            page = response.json()
            yield from (str(member["recordId"]) for member in page["results"])
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            params["after"] = after

    def email_of(self, contact_id: str) -> str | None:
        response = self.session.get(
            f"{self.base_url}/crm/v3/objects/contacts/{contact_id}", params={"properties": "email"}, timeout=60
        )
        self.result.lookups += 1
        response.raise_for_status()
        return response.json()["properties"].get("email")

    def unsubscribe(self, email: str) -> None:
        response = self.session.post(
            f"{self.base_url}/communication-preferences/v3/unsubscribe",
            json={
                "emailAddress": email,
                "subscriptionId": self.subscription_id,
                "legalBasis": "LEGITIMATE_INTEREST_OTHER",
                "legalBasisExplanation": "Did not confirm their subscription in a permission pass.",
            },
            timeout=60,
        )
        self.result.unsubscribes += 1
        if response.ok:
            self.result.unsubscribed += 1
        else:
            self.result.refused += 1  # e.g. already unsubscribed: the script carries on, as such scripts do

    def run(self, list_id: str) -> PlainResult:
        for contact_id in self.members(list_id):
            email = self.email_of(contact_id)
            if email:
                self.unsubscribe(email)
        return self.result
