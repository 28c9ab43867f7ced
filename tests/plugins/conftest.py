"""Fixtures for the Airflow side: a HubSpot connection pointing at the sandbox."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from reengagement.campaign import confirm_url_for
from reengagement.hook import HubSpotHook
from reengagement.operators.emails import CreatePermissionEmailOperator
from reengagement.operators.lists import EnsureListOperator

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID

SUB = str(MARKETING_SUBSCRIPTION_ID)
CTA = confirm_url_for("https://www.example.com/still-subscribed", "c", 1)


def connection_json(url: str, token: str, *, api_version: str | None = None) -> str:
    """An Airflow connection (JSON) to ``url``; ``api_version`` goes in the extra (``None``: the hook's default)."""
    scheme, _, hostport = url.partition("://")
    host, _, port = hostport.partition(":")
    conn: dict[str, Any] = {"conn_type": "http", "host": host, "schema": scheme, "port": int(port), "password": token}
    if api_version is not None:
        conn["extra"] = {"api_version": api_version}
    return json.dumps(conn)


@pytest.fixture
def hubspot_conn(sandbox, monkeypatch):
    """``hubspot_default`` points at the test's sandbox (Airflow reads AIRFLOW_CONN_* variables)."""
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sandbox.url, sandbox.token))
    return sandbox


@pytest.fixture
def hook(hubspot_conn) -> HubSpotHook:
    return HubSpotHook()


def make_list(hook: HubSpotHook, name: str, member_ids: list[str]) -> str:
    """A MANUAL list with the given members, created through the SDK."""
    from hubspot.crm.lists import ListCreateRequest

    created = hook.client.crm.lists.lists_api.create(
        ListCreateRequest(name=name, object_type_id="0-1", processing_type="MANUAL")
    )
    list_id = str(created.list.list_id)
    for start in range(0, len(member_ids), 100):
        hook.client.crm.lists.memberships_api.add(list_id, member_ids[start : start + 100])
    wait_processed(hook, list_id)
    return list_id


def wait_processed(hook: HubSpotHook, list_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while hook.client.crm.lists.lists_api.get_by_id(list_id).list.processing_status == "PROCESSING":
        assert time.monotonic() < deadline, f"list {list_id} still PROCESSING"
        time.sleep(0.1)


def calls(sandbox, endpoint: str) -> int:
    """How many calls the sandbox has answered on one endpoint since its counts were last cleared."""
    return int(sandbox.admin("GET", "calls").get(endpoint, {}).get("calls", 0))


def contact_ids(sandbox, profile: str | None = None) -> list[str]:
    params = {"profile": profile} if profile else {}
    return [c["id"] for c in sandbox.admin("GET", "contacts", **params)["results"]]


def run_operator(operator, context: dict | None = None):
    """Run an operator's ``execute``; when it defers, run its trigger to the first event and resume."""
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    context = {"run_id": "manual__test", **(context or {})}
    try:
        return operator.execute(context)
    except TaskDeferred as deferred:
        trigger, method, kwargs = deferred.trigger, deferred.method_name, deferred.kwargs or {}

        async def first_event():
            async for event in trigger.run():
                return event.payload
            raise AssertionError("trigger ended without an event")

        payload = asyncio.run(first_event())
        return getattr(operator, method)(context, payload, **kwargs)


@pytest.fixture
def recipients(seeded, hubspot_conn):
    """The round-1 recipients: a SNAPSHOT of the unengaged list."""
    unengaged = run_operator(
        EnsureListOperator(
            task_id="build_unengaged_list",
            list_name="c · unengaged",
            processing_type="DYNAMIC",
            segment="unengaged",
            segment_args={"subscription_id": SUB, "inactivity_weeks": 52},
            poll_interval=0.1,
        )
    )
    return run_operator(
        EnsureListOperator(
            task_id="build_recipients_list",
            list_name="c · r1 · recipients",
            processing_type="SNAPSHOT",
            segment="snapshot_of",
            segment_args={"list_id": unengaged["list_id"]},
            poll_interval=0.1,
        )
    )


def create_op(list_id: str, **kw) -> CreatePermissionEmailOperator:
    args = {
        "task_id": "create_email",
        "email_name": "c · r1 · email",
        "subject": "Still with us?",
        "from_name": "Team",
        "reply_to": "team@example.com",
        "confirm_url": CTA,
        "recipients_list_id": list_id,
        "subscription_id": SUB,
        **kw,
    }
    return CreatePermissionEmailOperator(**args)
