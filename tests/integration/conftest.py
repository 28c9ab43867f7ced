"""The deployment ``make up`` starts, on this machine's PostgreSQL and Redis, driven through the REST API only.

One stack serves the module's tests: a fresh metadata database, an emptied broker database, and scheduler,
dag-processor, triggerer, Celery worker and api-server as separate processes with their own logs. Whatever
happens, every process is stopped at the end; a failed test's report carries the logs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from include.airflow_stack.stack import DAG_ID, LocalStack, StackConfig
from include.hubspot_sandbox.process import SandboxProcess, free_port
from tests.conftest import CAMPAIGN_SANDBOX
from tests.reliability.outcome import Outcome, snapshot
from tests.support.campaigns_yaml import write_campaigns_file
from tests.support.inbox import Inbox, SmtpServer

DATABASE_URL = os.environ.get(
    "INTEGRATION_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/reengagement_integration"
)
BROKER_URL = os.environ.get("INTEGRATION_BROKER_URL", "redis://127.0.0.1:6379/15")


#: The second deployment's Redis database (13 and 14 are the shared-limit tests', 15 the first deployment's).
SECOND_BROKER_DB = 12


def stack_services(slot: int) -> tuple[str, str]:
    """The metadata database and broker of the deployment in ``slot`` (0 or 1): each test module that declares
    ``DEPLOYMENT_SLOT = 1`` has a stack of its own, so it runs beside the first one on another test worker."""
    if slot not in (0, 1):
        raise ValueError(f"DEPLOYMENT_SLOT must be 0 or 1, not {slot!r}")
    if not slot:
        return DATABASE_URL, BROKER_URL
    return f"{DATABASE_URL}_{slot}", f"{BROKER_URL.rpartition('/')[0]}/{SECOND_BROKER_DB}"


#: Faster than a deployment: a lost worker is noticed in ~15 s (task heartbeats come every 5 s), a failed
#: task is retried after 1, 2, 4 s, and an idle scheduler looks for work twice a second. The DAG files do not
#: change while the tests run: they are parsed once, not again every 10 s.
TEST_SETTINGS = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
}


#: Two campaigns of ``campaigns.yaml`` on two business units (brands) of the stack's one portal, triggered only:
#: (unit, subscription type, lifecycle stages the campaign leaves out). The brands' audiences do not overlap (every
#: seeded contact has one of the four stages): a contact who opens one brand's email has engaged, and HubSpot's
#: active list of the other brand's unengaged contacts lets them go, so overlapping audiences run at once would
#: each end short of their own ground truth, which assumes a campaign alone on the portal.
CONFIGURED_CAMPAIGNS = {
    "brand-a": (0, "Marketing Information", ("marketingqualifiedlead", "customer")),
    "brand-b": (1, "Brand B Marketing Information", ("subscriber", "lead")),
}


def campaigns_file(home: Path) -> dict[str, str]:
    """The stack's ``campaigns.yaml`` (:data:`CONFIGURED_CAMPAIGNS`), written before the DAG processor starts."""
    return write_campaigns_file(home, CONFIGURED_CAMPAIGNS)


def observers(home: Path, smtp: SmtpServer, *, lineage_events: bool = True) -> dict[str, str]:
    """Where the stack tells what it did: notifications to the local SMTP server, OpenLineage events to files
    (one JSON file per event, so the workers' processes never write into one file at once).

    Without ``lineage_events`` OpenLineage is off: a stack whose tests read no lineage does not pay for it
    (building and writing the events took 15 % of the CPU of ``test_deployment_workers.py``).
    """
    notifications = {"AIRFLOW_CONN_SMTP_DEFAULT": smtp.connection()}
    if not lineage_events:
        return {**notifications, "AIRFLOW__OPENLINEAGE__DISABLED": "true"}
    lineage = home / "lineage"
    lineage.mkdir(parents=True, exist_ok=True)
    transport = {"type": "file", "log_file_path": str(lineage / "event"), "append": False}
    return {
        **notifications,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "reengagement-ci",
    }


class Deployment:
    """The running stack, its REST API and its sandbox, with what the tests read back from HubSpot."""

    def __init__(self, stack: LocalStack, exports: Path, inbox: Inbox | None = None) -> None:
        self.stack, self.exports, self.inbox = stack, exports, inbox
        self.api = stack.api().login()
        # A client of the stack's sandbox (started by the stack, not by this object).
        self.sandbox = SandboxProcess(stack.home / "portal.db", port=stack.config.sandbox_port)

    def admin(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.sandbox.admin(method, path, body, **params)

    def fresh_portal(self, contacts: int = 400, seed: int = 5, **seed_options: Any) -> None:
        self.admin("POST", "reset")
        self.admin("POST", "seed", {"contacts": contacts, "seed": seed, **seed_options})

    def trigger(self, run_id: str, **conf: Any) -> None:
        conf = {"campaign": run_id, "wait": "PT4S", "export_base": f"file://{self.exports}", **conf}
        self.api.trigger(DAG_ID, run_id, conf)

    def served(self, run_id: str, path: str) -> str:
        """One of the run's files as the api-server serves it (``report``, ``files/<name>``, ``ledger.csv``)."""
        url = f"{self.stack.config.api_url}/reengagement/runs/{DAG_ID}/{run_id}/{path}"
        response = self.api.session.get(url, timeout=30)
        assert response.status_code == 200, f"GET {url} -> {response.status_code}: {response.text[:300]}"
        return response.text

    def states(self, run_id: str) -> dict[str, str | None]:
        return {task: ti["state"] for task, ti in self.api.task_instances(DAG_ID, run_id).items()}

    def lineage_events(self) -> list[dict[str, Any]]:
        """Every OpenLineage event the stack's processes wrote so far (see :func:`observers`)."""
        folder = self.stack.home / "lineage"
        return [json.loads(path.read_text()) for path in sorted(folder.glob("event*")) if path.stat().st_size]

    # -- HubSpot afterwards --------------------------------------------------------------------------------
    def outcome(self, campaign: str) -> Outcome:
        return snapshot(self.sandbox, campaign)

    def status_changes(self) -> list[dict[str, Any]]:
        return self.admin("GET", "status-changes")["results"]

    def truth(self, rounds: int, **signals: Any) -> set[str]:
        """Who a campaign of ``rounds`` emails must opt out; ``signals``: the ground truth's narrowing query."""
        return set(self.admin("GET", "ground-truth", rounds=rounds, **signals)["opt_out"])

    def calls(self) -> list[dict[str, Any]]:
        """The sandbox's call log: one ``{"at", "endpoint", "method", "status", "agent"}`` per HubSpot request."""
        path = self.stack.home / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def assert_no_duplicates(deployment: Deployment, campaign: str, rounds: int) -> None:
    """One list per name, one email per round, one send per recipient, no contact's status changed twice."""
    outcome = deployment.outcome(campaign)
    assert outcome.lists and not outcome.problems, outcome.problems
    assert outcome.emails == {f"r{k} · email": 1 for k in range(1, rounds + 1)}


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> object:
    """``condition()``'s first true answer, looked for twice a second until ``timeout``; an error counts as not
    yet (a page still rendering, a process still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition()
        except Exception:  # noqa: BLE001 - not there yet
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what} within {timeout:.0f} s")
        time.sleep(0.5)


def stack_logs(stack: LocalStack) -> str:
    """The end of each component's log and of every failed task attempt's log."""
    parts = [f"===== {name}: {stack.log_path(name)} =====\n{stack.tail(name, 80)}" for name in stack.components]
    for attempt in sorted((stack.airflow_home / "logs").glob("dag_id=*/run_id=*/task_id=*/attempt=*.log")):
        text = attempt.read_text(errors="replace")
        if '"level":"error"' in text or "Traceback" in text:
            parts.append(f"===== {attempt} =====\n" + "\n".join(text.splitlines()[-40:]))
    return "\n\n".join(parts)


#: The stacks of this test process, for the failure report below.
RUNNING: dict[str, LocalStack] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test's report carries the stack's logs (printed with the failure, also under xdist)."""
    report = yield
    module = getattr(item, "module", None)
    stack = RUNNING.get(module.__name__) if module else None
    if report.failed and stack and item.get_closest_marker("integration"):
        report.sections.append(("deployment logs", stack_logs(stack)))
    return report


@pytest.fixture(scope="module")
def stack_smtp() -> Iterator[SmtpServer]:
    """The SMTP server the stack's notifications go to, up before the stack and down after it."""
    with SmtpServer() as server:
        yield server


# Module-scoped: the stack's five processes stop as soon as the deployment's tests are done, not when the whole
# session ends (under xdist their worker goes on to other files, which would share the cores with an idle stack).
@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stack_smtp: SmtpServer
) -> Iterator[Deployment]:
    if os.environ.get("INTEGRATION_STACK_HOME"):  # a stack already up (`make up`), while writing tests
        running = LocalStack(Path(os.environ["INTEGRATION_STACK_HOME"]))
        yield Deployment(running, running.home / "exports")
        return
    home = tmp_path_factory.mktemp("stack")
    database_url, broker_url = stack_services(getattr(request.module, "DEPLOYMENT_SLOT", 0))
    observed = observers(home, stack_smtp, lineage_events=getattr(request.module, "DEPLOYMENT_LINEAGE", True))
    config = StackConfig(
        database_url=database_url,
        broker_url=broker_url,
        api_port=free_port(),
        sandbox_port=free_port(),
        scheduler_health_port=free_port(),
        worker_log_port=free_port(),
        triggerer_log_port=free_port(),
        # The call log says, per call, when it came, which step made it and whether HubSpot refused it.
        sandbox_args=[*CAMPAIGN_SANDBOX, "--call-log", str(home / "calls.jsonl")],
        settings={**TEST_SETTINGS, **observed, **campaigns_file(home)},
    )
    stack = LocalStack(home, config)
    try:
        stack.up(fresh=True)
    except Exception as err:
        raise AssertionError(f"the stack did not start:\n{stack_logs(stack)}") from err
    RUNNING[request.module.__name__] = stack
    try:
        yield Deployment(stack, home / "exports", stack_smtp.inbox)
    finally:
        del RUNNING[request.module.__name__]
        stack.down()
        leftovers = {name: stack.describe()[name]["running"] for name in stack.components}
        assert not any(leftovers.values()), f"processes left running: {leftovers}"
