"""Shared fixtures: a real sandbox server on a free port, the real HubSpot SDK, and contract checks."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.airflow_stack.shape import single_process_settings
from include.hubspot_sandbox.process import SandboxProcess
from tests.support.campaign import CAMPAIGN_SANDBOX, load_dag, prepare_airflow_db
from tests.support.contract import ContractChecker, read_exchanges

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its configuration once, at first import: give the test session its own home, with the
# project's dags/ and plugins/, before anything imports Airflow.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="reengagement-airflow-"))
os.environ.update(
    {
        **single_process_settings(AIRFLOW_HOME),
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",  # a task retry in a test waits a second, not minutes
    }
)

#: The slowest files first: the workers take whole files in this order, so the deployments' tests (minutes
#: on one worker each) start at once instead of last, and the workers finish together.
SLOW_FIRST = (
    "tests/integration/test_deployment",
    "tests/e2e/",
    "tests/packaging/",
    "tests/reliability/",
    "tests/plugins/test_optout_operator.py",  # a minute of small opt-outs: last, it would end the run alone
    "tests/benchmarks/",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole files (``--dist loadfile``), but a worker is given its next file only once it starts the last test
    of the file it has. xdist's own scheduler queues the next file as soon as two tests are left, so a file
    waited behind a deployment's or a packaging test's minutes while other workers ran out of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NextFileAtTheLastTest(LoadFileScheduling):
        def _reschedule(self, node: Any) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            # One test left: the worker holds it until it has the next one (it needs it to end the last test's
            # fixtures), so give the next file now.
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return NextFileAtTheLastTest(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)


#: Short timings so tests do not wait like a real portal would.
FAST = [
    "--list-processing-seconds",
    "0.3",
    "--export-processing-seconds",
    "0.3",
    "--response-window-seconds",
    "3",
    "--list-lag-seconds",
    "0.5",
]


def pytest_report_header() -> str:
    """Say up front whether traffic is also checked against HubSpot's own OpenAPI files, and why not."""
    return ContractChecker().openapi_note


@pytest.fixture(scope="session")
def contract() -> ContractChecker:
    """The project's schemas of HubSpot's answers, plus HubSpot's OpenAPI files where they are present."""
    return ContractChecker()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox process for the session; each test gets it reset."""
    folder = tmp_path_factory.mktemp("sandbox")
    server = SandboxProcess(folder / "portal.db", args=[*FAST, "--record", str(folder / "traffic.jsonl")])
    with server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess, contract: ContractChecker) -> Iterator[SandboxProcess]:
    """The session's sandbox, reset, with fresh limits; this test's traffic must match HubSpot's contract
    (tests/support/schemas, and HubSpot's OpenAPI files where present)."""
    sandbox_server.admin("POST", "reset")
    record = Path(sandbox_server.command()[sandbox_server.command().index("--record") + 1])
    start = record.stat().st_size if record.exists() else 0
    yield sandbox_server
    exchanges, _ = read_exchanges(record, start)
    problems = [p for exchange in exchanges for p in contract.problems(exchange)]
    assert not problems, "sandbox traffic breaks HubSpot's contract:\n" + "\n".join(problems[:20])


@pytest.fixture
def seeded(sandbox: SandboxProcess) -> SandboxProcess:
    """A small seeded portal (every profile present)."""
    sandbox.admin("POST", "seed", {"contacts": 300, "seed": 7})
    return sandbox


@pytest.fixture
def client(sandbox: SandboxProcess):
    """The real hubspot-api-client, pointed at the sandbox exactly as the hook will do it."""
    import hubspot

    return hubspot.Client.create(access_token=sandbox.token, host=sandbox.url, base_url=sandbox.url)


# -- whole campaigns (tests/e2e, tests/reliability) ----------------------------------------------------------
@pytest.fixture(scope="session")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's SQLite metadata database, migrated, with the pool; returns a copy of it as it was then (no
    runs yet), for a test that needs an Airflow home of its own.

    Migrating costs seconds of CPU in Airflow's CLI; under xdist the first worker to get here makes the
    database once in the run's shared temporary folder and every worker copies it.
    """
    database = AIRFLOW_HOME / "airflow.db"
    if "PYTEST_XDIST_WORKER" not in os.environ:
        prepare_airflow_db()
        pristine = AIRFLOW_HOME / "pristine.db"
        shutil.copyfile(database, pristine)
        return pristine
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, above every worker's own
    with (shared / "airflow-db.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        template = shared / "airflow.db"
        if template.exists():
            shutil.copyfile(template, database)
        else:
            prepare_airflow_db()
            shutil.copyfile(database, template)
    return template


@pytest.fixture(scope="session")
def campaign_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    folder = tmp_path_factory.mktemp("campaign-sandbox")
    # Recorded, so a test can say which paths a whole campaign called.
    args = [*CAMPAIGN_SANDBOX, "--record", str(folder / "traffic.jsonl")]
    with SandboxProcess(folder / "portal.db", args=args) as server:
        yield server


@pytest.fixture(scope="session")
def dag(airflow_db):
    return load_dag()
