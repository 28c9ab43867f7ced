"""Deferrable waits on HubSpot: a list finishing processing, an export becoming downloadable.

They run in the triggerer, so no worker slot is held while HubSpot computes. The hook is synchronous
(the SDK is), so each poll runs in a thread. ``caller`` is the deferring task's, so a poll is logged as
that step's call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def _backoff(attempt: int, ceiling: float) -> float:
    """0.5 s, 1 s, 2 s, ... up to ``poll_interval`` before each check: small lists are seen within a second (not
    at once: the task has just seen them PROCESSING), big ones are not hammered."""
    return min(ceiling, 0.5 * 2**attempt)


class ListProcessedTrigger(BaseTrigger):
    """Fires once a list's ``processingStatus`` is no longer PROCESSING."""

    def __init__(self, *, list_id: str, hubspot_conn_id: str, poll_interval: float = 5.0,
                 max_polls: int = 720, caller: str | None = None) -> None:
        super().__init__()
        self.list_id = list_id
        self.hubspot_conn_id = hubspot_conn_id
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self.caller = caller

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"list_id": self.list_id, "hubspot_conn_id": self.hubspot_conn_id,
                 "poll_interval": self.poll_interval, "max_polls": self.max_polls, "caller": self.caller})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from .hook import HubSpotHook

        hook = HubSpotHook(self.hubspot_conn_id, caller=self.caller)
        for attempt in range(self.max_polls):
            await asyncio.sleep(_backoff(attempt, self.poll_interval))  # the task has just seen PROCESSING
            try:
                status = await asyncio.to_thread(_list_status, hook, self.list_id)
            except Exception as err:  # noqa: BLE001 - reported to the task, which raises it
                yield TriggerEvent({"status": "error", "list_id": self.list_id, "message": str(err)})
                return
            if status["processingStatus"] != "PROCESSING":
                yield TriggerEvent({"status": "done", **status})
                return
            self.log.info("List %s is still PROCESSING; checking again in %.1fs", self.list_id,
                          _backoff(attempt + 1, self.poll_interval))
        yield TriggerEvent({"status": "error", "list_id": self.list_id,
                            "message": f"list still PROCESSING after {self.max_polls} checks"})


def _list_status(hook: Any, list_id: str) -> dict[str, Any]:
    found = hook.client.crm.lists.lists_api.get_by_id(list_id, include_filters=False)
    return {"list_id": str(found.list.list_id), "processingStatus": found.list.processing_status,
            "size": found.list.size}


class ExportReadyTrigger(BaseTrigger):
    """Fires once a CRM export task is COMPLETE (with its download URL) or failed.

    A queued export (PENDING: HubSpot runs one export at a time per portal) is waited for like a running one.
    """

    def __init__(self, *, task_id: str, hubspot_conn_id: str, poll_interval: float = 5.0,
                 max_polls: int = 720, caller: str | None = None) -> None:
        super().__init__()
        self.export_task_id = task_id
        self.hubspot_conn_id = hubspot_conn_id
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self.caller = caller

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"task_id": self.export_task_id, "hubspot_conn_id": self.hubspot_conn_id,
                 "poll_interval": self.poll_interval, "max_polls": self.max_polls, "caller": self.caller})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from .hook import HubSpotHook

        hook = HubSpotHook(self.hubspot_conn_id, caller=self.caller)
        for attempt in range(self.max_polls):
            await asyncio.sleep(_backoff(attempt, self.poll_interval))  # the export has only just started
            try:
                status = await asyncio.to_thread(_export_status, hook, self.export_task_id)
            except Exception as err:  # noqa: BLE001 - reported to the task, which raises it
                yield TriggerEvent({"status": "error", "message": str(err)})
                return
            if status["status"] == "COMPLETE":
                # The task reads the task's status again for a new URL right before it downloads: this one may
                # expire (after five minutes) before the task resumes.
                yield TriggerEvent({"status": "done", "task_id": self.export_task_id, "url": status["result"]})
                return
            if status["status"] in ("CANCELED", "FAILED"):
                yield TriggerEvent({"status": "error", "task_id": self.export_task_id,
                                    "message": f"export {self.export_task_id} {status['status']}"})
                return
        yield TriggerEvent({"status": "error", "task_id": self.export_task_id,
                            "message": f"export {self.export_task_id} not ready in time"})


def _export_status(hook: Any, task_id: str) -> dict[str, Any]:
    status = hook.client.crm.exports.public_exports_api.get_status(task_id)
    return {"status": status.status, "result": status.result}
