"""Every HubSpot request names the step that made it in its User-Agent, triggers' polls included."""

from __future__ import annotations

from reengagement.hook import USER_AGENT, HubSpotHook
from reengagement.operators.lists import EnsureListOperator
from reengagement.ratelimit import RollingWindowLimiter
from reengagement.transport import GuardedRest, Transport
from reengagement.triggers import ExportReadyTrigger, ListProcessedTrigger


class RecordingRest:
    def __init__(self) -> None:
        self.headers: list[dict] = []

    def request(self, method, url, *args, **kwargs):
        self.headers.append(dict(kwargs.get("headers") or {}))
        return object()


def guarded(user_agent: str | None) -> tuple[GuardedRest, RecordingRest]:
    inner = RecordingRest()
    transport = Transport(RollingWindowLimiter(sleep=lambda s: None), sleep=lambda s: None)
    return GuardedRest(inner, transport, (1.0, 1.0), user_agent=user_agent), inner


def test_the_user_agent_replaces_the_sdks_and_keeps_the_other_headers():
    rest, inner = guarded("hubspot-reengagement (dag/task)")

    rest.GET(
        "https://api.hubapi.com/crm/v3/lists/1",
        headers={"User-Agent": "OpenAPI-Generator/1.0.0/python", "Accept": "application/json"},
    )
    rest.POST("https://api.hubapi.com/crm/v3/lists/")

    assert inner.headers == [
        {"User-Agent": "hubspot-reengagement (dag/task)", "Accept": "application/json"},
        {"User-Agent": "hubspot-reengagement (dag/task)"},
    ]


def test_without_a_user_agent_the_headers_are_left_alone():
    rest, inner = guarded(None)

    rest.GET("https://api.hubapi.com/crm/v3/lists/1", headers={"Accept": "application/json"})

    assert inner.headers == [{"Accept": "application/json"}]


def test_a_hook_names_its_caller_and_an_operators_hook_names_its_task():
    assert HubSpotHook().user_agent == USER_AGENT
    assert HubSpotHook(caller="my_dag/round_1.send_email").user_agent == f"{USER_AGENT} (my_dag/round_1.send_email)"

    operator = EnsureListOperator(task_id="build_unengaged_list", list_name="x", processing_type="MANUAL")

    assert operator.hook.caller == f"{operator.dag_id}/build_unengaged_list"


def test_triggers_carry_the_deferring_tasks_caller_through_serialisation():
    for trigger in (
        ListProcessedTrigger(list_id="7", hubspot_conn_id="hubspot_default", caller="d/t"),
        ExportReadyTrigger(task_id="9", hubspot_conn_id="hubspot_default", caller="d/t"),
    ):
        classpath, kwargs = trigger.serialize()
        assert kwargs["caller"] == "d/t"
        assert type(trigger)(**kwargs).serialize() == (classpath, kwargs)


def test_triggers_serialised_before_the_caller_existed_still_load():
    trigger = ListProcessedTrigger(list_id="7", hubspot_conn_id="hubspot_default", poll_interval=5.0, max_polls=720)

    assert trigger.caller is None
