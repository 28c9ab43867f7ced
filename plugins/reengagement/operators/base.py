"""What every HubSpot operator shares: the connection id and a lazily built hook."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from ..hook import HubSpotHook


class HubSpotOperator(BaseOperator):
    """Base class: ``hubspot_conn_id`` and a hook built on first use (never at DAG parse time).

    :param hubspot_conn_id: the Airflow connection of the HubSpot portal.
    """

    def __init__(self, *, hubspot_conn_id: str = HubSpotHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id

    @cached_property
    def hook(self) -> HubSpotHook:
        # The task id travels in the User-Agent, so each call in HubSpot's logs names its step.
        return HubSpotHook(self.hubspot_conn_id, caller=f"{self.dag_id}/{self.task_id}")
