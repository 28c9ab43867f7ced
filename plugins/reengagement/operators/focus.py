"""Step 2, HubSpot's second way: only contacts who received a given email and did not open it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import lineage
from ..links import HubSpotObjectLink, list_url
from .base import HubSpotOperator
from .lists import ensure_list

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..lineage import Lineage


class FocusNonOpenersOperator(HubSpotOperator):
    """The focus email's non-openers, as a MANUAL list the unengaged list keeps only the members of.

    Who received the email (a DELIVERED event: bounces are not received) and who opened it come from
    HubSpot's email events, bot-filtered opens excluded, so a machine open (a security scanner, Apple Mail
    Privacy Protection) does not make a contact look engaged. HubSpot's own "received but not opened" list
    filter would take one call, but which ids it needs for an email made through the API is not documented
    (``include/hubspot_sandbox/FIDELITY.md``); the events cost one call per 1,000 recipients and openers, the
    look-ups one per 100 non-openers, the list adds one per 100.

    The list is found (or created) by name and adding is idempotent, so a rerun changes nothing. Without a
    focus email (preflight's result has none) the task does nothing and returns ``list_id`` ``None``.

    :param list_name: the campaign's "focus" list name (templated).
    :param focus_from: the task whose result holds ``focus_email_id`` and ``focus_campaign_ids`` (preflight).
    """

    template_fields: Sequence[str] = ("list_name",)
    operator_extra_links = (HubSpotObjectLink(),)
    ui_color = "#e1f5fe"

    def __init__(self, *, list_name: str, focus_from: str = "preflight", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_name = list_name
        self.focus_from = focus_from
        self.hubspot_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        found = context["ti"].xcom_pull(task_ids=self.focus_from) or {}
        campaign_ids = [str(i) for i in found.get("focus_campaign_ids") or []]
        if not campaign_ids:
            self.log.info("No focus email: the cohort is every unengaged contact.")
            return {"list_id": None, "received": 0, "opened": 0, "non_openers": 0}
        received = self._recipients(campaign_ids, "DELIVERED")
        opened = self._recipients(campaign_ids, "OPEN") & received
        non_openers = sorted(received - opened)
        self.log.info(
            "Focus email %s: %d received it, %d of them opened it (machine opens not counted), %d did not.",
            found.get("focus_email_id"),
            len(received),
            len(opened),
            len(non_openers),
        )
        listed = ensure_list(self.hook, self.list_name, "MANUAL", None, log=self.log)
        list_id = str(listed["listId"])
        contact_ids = [contact_id for _, contact_id in self.hook.contact_ids_by_email(non_openers)]
        added = self.hook.add_to_list(list_id, contact_ids)
        portal = self.portal(context)
        self.hubspot_url = list_url(portal["uiDomain"], portal["portalId"], list_id)
        self.log.info(
            "Focus list %s: %d non-openers found as contacts, %d added now (the rest were in it already).",
            list_id,
            len(contact_ids),
            added,
        )
        return {
            "list_id": list_id,
            "received": len(received),
            "opened": len(opened),
            "non_openers": len(contact_ids),
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the focus email read and the focus list (see :mod:`reengagement.lineage`)."""
        return lineage.focus_non_openers(self, task_instance)

    def _recipients(self, campaign_ids: list[str], event_type: str) -> set[str]:
        """The addresses (in lower case) with a non-filtered event of this type for the email."""
        return {
            str(event["recipient"]).strip().lower()
            for campaign_id in campaign_ids
            for event in self.hook.iter_email_events(campaign_id, event_type, exclude_filtered=True)
            if event.get("recipient") and not event.get("filteredEvent")
        }
