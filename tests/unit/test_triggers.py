"""The deferrable waits on HubSpot: shared polling, backoff, error events and serialisation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.module_loading import import_string
from reengagement import hook as hook_module
from reengagement import triggers
from reengagement.errors import HubSpotAuthError, HubSpotTransientError
from reengagement.triggers import (
    ExportReadyTrigger,
    HubSpotPollingTrigger,
    ListProcessedTrigger,
    _backoff,
)


class FakeHook:
    """Only what the triggers' checks call: answers come from a script, one per call; an exception is raised."""

    def __init__(self, answers: list[Any], hubspot_conn_id: str, caller: str | None) -> None:
        self.answers = answers
        self.hubspot_conn_id = hubspot_conn_id
        self.caller = caller
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[int] = set()

    def _next(self, *call: Any) -> dict[str, Any]:
        self.calls.append(call)
        self.threads.add(threading.get_ident())
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_list(self, list_id: str, *, include_filters: bool | None = None) -> dict[str, Any]:
        return self._next("get_list", list_id, include_filters)

    def export_status(self, task_id: str) -> dict[str, Any]:
        return self._next("export_status", task_id)


class Portal:
    """Builds the fake hook in place of ``HubSpotHook`` and records the pauses instead of taking them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: list[Any] = []
        self.hooks: list[FakeHook] = []
        self.sleeps: list[float] = []
        self.loop_thread = 0
        monkeypatch.setattr(hook_module, "HubSpotHook", self._hook)
        monkeypatch.setattr(triggers.asyncio, "sleep", self._sleep)

    def _hook(self, hubspot_conn_id: str, *, caller: str | None = None) -> FakeHook:
        self.hooks.append(FakeHook(self.answers, hubspot_conn_id, caller))
        return self.hooks[-1]

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def calls(self) -> list[tuple[Any, ...]]:
        return [call for hook in self.hooks for call in hook.calls]

    def run(self, trigger: HubSpotPollingTrigger) -> list[Any]:
        async def collect() -> tuple[list[Any], int]:
            return [event.payload async for event in trigger.run()], threading.get_ident()

        events, self.loop_thread = asyncio.run(asyncio.wait_for(collect(), timeout=30))
        return events


@pytest.fixture
def portal(monkeypatch) -> Iterator[Portal]:
    yield Portal(monkeypatch)


def list_trigger(**kwargs: Any) -> ListProcessedTrigger:
    return ListProcessedTrigger(**{"list_id": "7", "hubspot_conn_id": "hubspot_test", "caller": "d/t", **kwargs})


def export_trigger(**kwargs: Any) -> ExportReadyTrigger:
    return ExportReadyTrigger(**{"task_id": "9", "hubspot_conn_id": "hubspot_test", "caller": "d/t", **kwargs})


def test_backoff_doubles_from_half_a_second_up_to_the_poll_interval():
    assert [_backoff(attempt, 5.0) for attempt in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [_backoff(attempt, 1.5) for attempt in range(4)] == [0.5, 1.0, 1.5, 1.5]
    assert _backoff(0, 0.2) == 0.2
    assert _backoff(720, 30.0) == 30.0  # the default max_polls' last pause


def test_backoff_stays_at_the_poll_interval_for_long_waits():
    assert _backoff(1024, 30.0) == _backoff(100_000, 30.0) == 30.0


@pytest.mark.parametrize(
    ("trigger", "own"),
    [
        (list_trigger(poll_interval=2.5, max_polls=10), {"list_id": "7"}),
        (export_trigger(poll_interval=1.0, max_polls=3, caller=None), {"task_id": "9"}),
    ],
)
def test_serialize_rebuilds_an_equal_trigger(trigger, own):
    classpath, kwargs = trigger.serialize()
    assert classpath == f"reengagement.triggers.{type(trigger).__name__}"
    assert kwargs == {
        **own,
        "hubspot_conn_id": "hubspot_test",
        "poll_interval": trigger.poll_interval,
        "max_polls": trigger.max_polls,
        "caller": trigger.caller,
    }
    rebuilt = import_string(classpath)(**kwargs)
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert vars(rebuilt).keys() >= {"hubspot_conn_id", "poll_interval", "max_polls", "caller"}
    for name in ("hubspot_conn_id", "poll_interval", "max_polls", "caller"):
        assert getattr(rebuilt, name) == getattr(trigger, name)


def test_defaults_poll_every_five_seconds_for_an_hour():
    trigger = ListProcessedTrigger(list_id="7", hubspot_conn_id="hubspot_test")
    assert (trigger.poll_interval, trigger.max_polls, trigger.caller) == (5.0, 720, None)


def test_the_base_class_says_what_subclasses_must_provide():
    base = HubSpotPollingTrigger(hubspot_conn_id="hubspot_test")
    assert base.serialize()[1] == {
        "hubspot_conn_id": "hubspot_test",
        "poll_interval": 5.0,
        "max_polls": 720,
        "caller": None,
    }
    with pytest.raises(NotImplementedError):
        base.check(FakeHook([], "hubspot_test", None))  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        base.waiting()


def test_a_list_fires_once_it_is_no_longer_processing(portal):
    portal.answers[:] = [
        {"listId": 7, "processingStatus": "PROCESSING", "size": 0},
        {"listId": 7, "processingStatus": "PROCESSING", "size": 5},
        {"listId": 7, "processingStatus": "COMPLETE", "size": 12},
    ]
    events = portal.run(list_trigger())
    assert events == [{"status": "done", "list_id": "7", "processingStatus": "COMPLETE", "size": 12}]
    assert portal.calls == [("get_list", "7", False)] * 3
    assert portal.sleeps == [0.5, 1.0, 2.0]  # a pause before every check, the first one too


def test_the_hook_is_built_once_for_the_connection_and_the_deferring_tasks_caller(portal):
    portal.answers[:] = [{"listId": 7, "processingStatus": "PROCESSING"}, {"listId": 7, "processingStatus": "DONE"}]
    portal.run(list_trigger(hubspot_conn_id="portal_a", caller="campaign/build_list"))
    assert [(h.hubspot_conn_id, h.caller) for h in portal.hooks] == [("portal_a", "campaign/build_list")]


def test_checks_run_in_a_thread_not_on_the_event_loop(portal):
    portal.answers[:] = [{"listId": 7, "processingStatus": "PROCESSING"}, {"listId": 7, "processingStatus": "DONE"}]
    portal.run(list_trigger())
    assert portal.hooks[0].threads and portal.loop_thread not in portal.hooks[0].threads


def test_the_pause_stops_growing_at_the_poll_interval(portal):
    portal.answers[:] = [{"listId": 7, "processingStatus": "PROCESSING"}] * 5 + [{"listId": 7}]
    events = portal.run(list_trigger(poll_interval=1.5))
    assert portal.sleeps == [0.5, 1.0, 1.5, 1.5, 1.5, 1.5]
    assert events == [{"status": "done", "list_id": "7", "processingStatus": None, "size": None}]


def test_a_list_still_processing_after_max_polls_is_an_error_event(portal):
    portal.answers[:] = [{"listId": 7, "processingStatus": "PROCESSING"}]
    events = portal.run(list_trigger(max_polls=4))
    assert events == [{"status": "error", "list_id": "7", "message": "list 7 still PROCESSING after 4 checks"}]
    assert len(portal.calls) == 4 and portal.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_no_checks_allowed_is_an_error_event_without_a_call(portal):
    events = portal.run(export_trigger(max_polls=0))
    assert events == [{"status": "error", "task_id": "9", "message": "export 9 not ready after 0 checks"}]
    assert portal.calls == [] and portal.sleeps == []


@pytest.mark.parametrize(
    "error",
    [HubSpotTransientError("HubSpot answered 503", status=503), HubSpotAuthError("token revoked", status=401)],
)
def test_a_hubspot_error_ends_the_wait_with_an_error_event(portal, error):
    portal.answers[:] = [{"listId": 7, "processingStatus": "PROCESSING"}, error]
    events = portal.run(list_trigger())
    assert events == [{"status": "error", "list_id": "7", "message": str(error)}]
    assert len(portal.calls) == 2  # no check after the error


def test_an_export_queued_or_running_is_waited_for_until_complete(portal):
    portal.answers[:] = [
        {"status": "PENDING"},
        {"status": "PROCESSING"},
        {"status": "COMPLETE", "result": "https://download.example/export.zip"},
    ]
    events = portal.run(export_trigger())
    assert events == [{"status": "done", "task_id": "9", "url": "https://download.example/export.zip"}]
    assert portal.calls == [("export_status", "9")] * 3


@pytest.mark.parametrize("state", ["FAILED", "CANCELED"])
def test_a_failed_or_cancelled_export_is_an_error_event(portal, state):
    portal.answers[:] = [{"status": "PROCESSING"}, {"status": state}]
    events = portal.run(export_trigger())
    assert events == [{"status": "error", "task_id": "9", "message": f"export 9 {state}"}]
    assert len(portal.calls) == 2


def test_an_export_error_event_names_the_export(portal):
    portal.answers[:] = [HubSpotTransientError("connection reset")]
    assert portal.run(export_trigger()) == [{"status": "error", "task_id": "9", "message": "connection reset"}]


def test_an_export_never_ready_is_an_error_event_after_max_polls(portal):
    portal.answers[:] = [{"status": "PENDING"}]
    events = portal.run(export_trigger(max_polls=3, poll_interval=0.75))
    assert events == [{"status": "error", "task_id": "9", "message": "export 9 not ready after 3 checks"}]
    assert portal.sleeps == [0.5, 0.75, 0.75]
