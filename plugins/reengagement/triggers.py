"""Deferrable waits on HubSpot: a list finishing processing, an export becoming downloadable.

They run in the triggerer, so no worker slot is held while HubSpot computes. The hook is synchronous
(the SDK is), so each poll runs in a thread. ``caller`` is the deferring task's, so a poll is logged as
that step's call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from .hook import HubSpotHook


def _backoff(attempt: int, ceiling: float) -> float:
    """0.5 s, 1 s, 2 s, ... up to ``poll_interval`` before each check: small lists are seen within a second (not
    at once: the task has just seen them PROCESSING), big ones are not hammered."""
    return min(ceiling, 0.5 * 2.0 ** min(attempt, 32))  # capped: 2.0**1024 overflows a float


class HubSpotPollingTrigger(BaseTrigger):
    """Poll HubSpot until :meth:`check` has an answer, with a growing pause before each check.

    Subclasses say what they wait for (``check``) and what identifies it (``fields``); the pause, the
    error handling and the serialisation are shared.
    """

    #: Constructor arguments besides the shared ones, as (argument, attribute) pairs.
    fields: tuple[tuple[str, str], ...] = ()

    def __init__(
        self, *, hubspot_conn_id: str, poll_interval: float = 5.0, max_polls: int = 720, caller: str | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.hubspot_conn_id = hubspot_conn_id
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self.caller = caller

    def serialize(self) -> tuple[str, dict[str, Any]]:
        own = {argument: getattr(self, attribute) for argument, attribute in self.fields}
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **own,
                "hubspot_conn_id": self.hubspot_conn_id,
                "poll_interval": self.poll_interval,
                "max_polls": self.max_polls,
                "caller": self.caller,
            },
        )

    def check(self, hook: HubSpotHook) -> dict[str, Any] | None:
        """One look at HubSpot (in a thread): the event's payload once there is an answer, else ``None``."""
        raise NotImplementedError

    def waiting(self) -> str:
        """What is still being waited for, for the log and the error after the last check."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from .hook import HubSpotHook

        hook = HubSpotHook(self.hubspot_conn_id, caller=self.caller)
        for attempt in range(self.max_polls):
            await asyncio.sleep(_backoff(attempt, self.poll_interval))  # the task has only just looked
            try:
                answer = await asyncio.to_thread(self.check, hook)
            except Exception as err:  # noqa: BLE001 - reported to the task, which raises it
                yield TriggerEvent({"status": "error", **self._ids(), "message": str(err)})
                return
            if answer is not None:
                yield TriggerEvent(answer)
                return
            self.log.info("%s; checking again in %.1fs", self.waiting(), _backoff(attempt + 1, self.poll_interval))
        yield TriggerEvent(
            {"status": "error", **self._ids(), "message": f"{self.waiting()} after {self.max_polls} checks"}
        )

    def _ids(self) -> dict[str, Any]:
        return {argument: getattr(self, attribute) for argument, attribute in self.fields}


class ListProcessedTrigger(HubSpotPollingTrigger):
    """Fires once a list's ``processingStatus`` is no longer PROCESSING."""

    fields = (("list_id", "list_id"),)

    def __init__(self, *, list_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_id = list_id

    def waiting(self) -> str:
        return f"list {self.list_id} still PROCESSING"

    def check(self, hook: HubSpotHook) -> dict[str, Any] | None:
        found = hook.get_list(self.list_id, include_filters=False)
        if found.get("processingStatus") == "PROCESSING":
            return None
        return {
            "status": "done",
            "list_id": str(found["listId"]),
            "processingStatus": found.get("processingStatus"),
            "size": found.get("size"),
        }


class ExportReadyTrigger(HubSpotPollingTrigger):
    """Fires once a CRM export task is COMPLETE (with its download URL) or failed.

    A queued export (PENDING: HubSpot runs one export at a time per portal) is waited for like a running one.
    """

    fields = (("task_id", "export_task_id"),)

    def __init__(self, *, task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.export_task_id = task_id

    def waiting(self) -> str:
        return f"export {self.export_task_id} not ready"

    def check(self, hook: HubSpotHook) -> dict[str, Any] | None:
        status = hook.export_status(self.export_task_id)
        state = status.get("status")
        if state == "COMPLETE":
            # The task reads the export's status again for a new URL right before it downloads: this one may
            # expire (after five minutes) before the task resumes.
            return {"status": "done", "task_id": self.export_task_id, "url": status.get("result")}
        if state in ("CANCELED", "FAILED"):
            return {
                "status": "error",
                "task_id": self.export_task_id,
                "message": f"export {self.export_task_id} {state}",
            }
        return None
