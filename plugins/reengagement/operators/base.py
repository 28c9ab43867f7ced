"""What every HubSpot operator shares: the connection id, a lazily built hook, and the portal for links."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from ..hook import HubSpotHook

if TYPE_CHECKING:
    from airflow.sdk import Context


def as_outputs(value: Any) -> list[Any]:
    """Results of several tasks: a list, or the JSON list the ``outputs_of`` macro renders (``None`` = skipped)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return list(value or [])


class HubSpotOperator(BaseOperator):
    """Base class: ``hubspot_conn_id`` and a hook built on first use (never at DAG parse time).

    :param hubspot_conn_id: the Airflow connection of the HubSpot portal.
    :param business_unit_id: the business unit (brand) the task works in; the hook sends it as
        ``businessUnitId`` on every call that takes one (0: the portal's default unit).
    :param portal_from: a task whose result carries ``portal_id`` and ``ui_domain`` (the campaign's
        preflight). A task's link to HubSpot's UI then costs no call; without it, the portal is looked up.
    """

    def __init__(
        self,
        *,
        hubspot_conn_id: str = HubSpotHook.default_conn_name,
        business_unit_id: int = 0,
        portal_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self.business_unit_id = business_unit_id
        self.portal_from = portal_from

    @cached_property
    def hook(self) -> HubSpotHook:
        # The task id travels in the User-Agent, so each call in HubSpot's logs names its step.
        return HubSpotHook(
            self.hubspot_conn_id, caller=f"{self.dag_id}/{self.task_id}", business_unit_id=self.business_unit_id
        )

    def portal(self, context: Context) -> dict[str, Any]:
        """``portalId`` and ``uiDomain``, for links: from ``portal_from``'s result when it has them, else looked up."""
        if self.portal_from and self.portal_from != self.task_id:
            found = context["ti"].xcom_pull(task_ids=self.portal_from)
            if isinstance(found, dict) and found.get("portal_id") and found.get("ui_domain"):
                return {"portalId": str(found["portal_id"]), "uiDomain": str(found["ui_domain"])}
        return self.hook.portal
