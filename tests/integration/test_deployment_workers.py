"""A second deployment beside the first (``DEPLOYMENT_SLOT``: its own database and broker), for what happens
across Celery's processes: a worker killed in the middle of the opt-out, and two configured campaigns that
share one portal's rate limit. Nothing here reads OpenLineage's events, so this stack sends none
(``DEPLOYMENT_LINEAGE``); ``test_deployment.py`` checks them.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from include.airflow_stack.stack import DAG_ID
from tests.integration.conftest import CONFIGURED_CAMPAIGNS, Deployment, assert_no_duplicates, wait_until

pytestmark = pytest.mark.integration
DEPLOYMENT_SLOT = 1
DEPLOYMENT_LINEAGE = False


def test_a_worker_killed_during_the_opt_out_is_replaced_and_everyone_is_opted_out_once(deployment: Deployment):
    deployment.fresh_portal(contacts=3000)
    # Slow opt-out batches (about ten, five in flight at once), so the worker dies with some applied and some not.
    deployment.admin(
        "POST",
        "faults",
        {"endpoint": "subscriptions.v4.batch_unsubscribe_all", "kind": "latency", "seconds": 3, "count": 1000},
    )
    deployment.trigger("ci-kill")
    deployment.api.wait_for_task(DAG_ID, "ci-kill", "opt_out_unconfirmed", {"running"}, timeout=600)
    wait_until(deployment.status_changes, "the opt-out's first change", timeout=120)

    deployment.stack.kill("worker")  # the whole session: the task runner dies with it
    applied_before = len(deployment.status_changes())
    deployment.admin("DELETE", "faults")
    deployment.stack.start("worker")

    run = deployment.api.wait_for_run(DAG_ID, "ci-kill", timeout=600)
    assert run["state"] == "success", deployment.states("ci-kill")
    opt_out = deployment.api.task_instances(DAG_ID, "ci-kill")["opt_out_unconfirmed"]
    assert opt_out["try_number"] == 2
    truth = deployment.truth(1)
    assert 0 < applied_before < len(truth)
    assert {c["contactId"] for c in deployment.status_changes()} == truth
    assert_no_duplicates(deployment, "ci-kill", rounds=1)


#: The portal's limit while two configured campaigns share it: low enough that both are call-bound.
SHARED_LIMIT = 30


def busiest_window(calls: list[dict], seconds: float = 10) -> list[dict]:
    """The most calls any ``seconds``-long window of the call log holds (HubSpot's limit is a rolling window)."""
    times = sorted(calls, key=lambda c: c["at"])
    best: list[dict] = []
    start = 0
    for end, call in enumerate(times):
        while call["at"] - times[start]["at"] >= seconds:
            start += 1
        if end + 1 - start > len(best):
            best = times[start : end + 1]
    return best


def test_two_configured_campaigns_on_two_brands_share_the_portals_limit_and_opt_out_their_own_truth(
    deployment: Deployment,
):
    """``campaigns.yaml`` declares brand-a (business unit 0) and brand-b (unit 1) of the stack's portal. Run at
    once on the Celery worker, their tasks run in separate processes: only the limit kept in the deployment's
    Redis keeps their combined calls under the portal's, where a limit per process would let in twice as many."""
    deployment.fresh_portal(business_units=[{"id": 1, "name": "Brand B"}])
    limits = deployment.admin("GET", "settings")["rate_limit"]
    deployment.admin("PUT", "settings", {"rate_limit": f"{SHARED_LIMIT}/10s"})
    started = time.time()
    try:
        for campaign in CONFIGURED_CAMPAIGNS:
            conf = {"wait": "PT4S", "export_base": f"file://{deployment.exports}"}
            deployment.api.trigger(f"hubspot_reengagement__{campaign}", f"ci-{campaign}", conf)
        for campaign in CONFIGURED_CAMPAIGNS:
            dag_id = f"hubspot_reengagement__{campaign}"
            run = deployment.api.wait_for_run(dag_id, f"ci-{campaign}", timeout=600)
            assert run["state"] == "success", deployment.api.task_instances(dag_id, f"ci-{campaign}")
    finally:
        deployment.admin("PUT", "settings", {"rate_limit": limits})

    changes = deployment.status_changes()
    for campaign, (unit, _, left_out) in CONFIGURED_CAMPAIGNS.items():
        opted_out = {c["contactId"] for c in changes if int(c.get("businessUnitId", 0)) == unit}
        truth = deployment.truth(1, business_unit=unit, exclude_lifecycle_stages=",".join(left_out))
        assert truth and opted_out == truth, campaign
    calls = [c for c in deployment.calls() if c["at"] >= started and "hubspot_reengagement__" in c["agent"]]
    assert [c for c in calls if c["status"] == 429] == []
    # One limit: the busiest 10 s hold both campaigns' calls, together near the portal's limit and never over it.
    busiest = busiest_window(calls)
    assert {campaign for campaign in CONFIGURED_CAMPAIGNS if any(campaign in c["agent"] for c in busiest)} == set(
        CONFIGURED_CAMPAIGNS
    ), busiest
    assert 0.8 * SHARED_LIMIT <= len(busiest) <= SHARED_LIMIT, len(busiest)


# Last, and quick: the scheduler hands this worker its next file when its last test starts.
def test_make_up_status_finds_the_running_stack_from_its_folder(deployment: Deployment):
    done = subprocess.run(
        [sys.executable, "-m", "include.airflow_stack", "status", "--home", str(deployment.stack.home)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for name in deployment.stack.components:
        assert any(line.split()[:2] == [name, "running"] for line in done.stdout.splitlines()), done.stdout
    assert deployment.stack.config.api_url in done.stdout
