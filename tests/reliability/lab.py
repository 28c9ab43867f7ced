"""A seeded sandbox portal and the campaign DAG, run in child processes that can be killed like a worker.

Each campaign run is ``dag.test()`` in a forked child of the current process (pytest, or the fault
suite): the parent has imported Airflow and the DAG already, so a run starts at once, and the child
can be SIGKILLed in the middle of a step. The child writes everything it prints (the task logs) to a
file of the run. Every run of one scenario uses the same logical date, so a second run is the same
DAG run cleared and run again: each task adopts what HubSpot already has, which is how the project
recovers from a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reengagement.campaign import PARAMS_SCHEMA
from reengagement.hook import HubSpotHook

from include.hubspot_sandbox.process import SandboxProcess

DAG_ID = "hubspot_reengagement"
CAMPAIGN = "reliability"
#: Short waits: a round takes seconds, not a week (the sandbox's response window is 2 s).
FAST_CONF = {"wait": "PT4S"}
#: What the transport logs before it repeats a request.
CLIENT_RETRY = "Retrying HubSpot request"
EXIT_SUCCESS, EXIT_FAILED, EXIT_CRASHED = 0, 1, 3


@dataclass
class Traffic:
    """What one scenario cost: HubSpot calls the sandbox answered and retries on the client's side."""

    calls: int = 0
    faulted: int = 0  # responses a fault rule spoiled (5xx, 429, latency, dropped)
    client_retries: int = 0  # requests the transport repeated (its "Retrying HubSpot request" lines)
    task_retries: int = 0  # Airflow task tries after the first

    @property
    def retries(self) -> int:
        return self.client_retries + self.task_retries


class CampaignChild:
    """One ``dag.test()`` (or one task rerun) in a forked child; ``kill()`` is a SIGKILL."""

    def __init__(self, target: Callable[[], int], log_path: Path) -> None:
        self.log_path = log_path
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child never returns
            _child_main(target, log_path)
        self.exit_code: int | None = None

    def wait(self, timeout: float = 900.0) -> int:
        deadline = time.monotonic() + timeout
        while self.exit_code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"the campaign did not finish within {timeout:.0f}s; see {self.log_path}")
            else:
                time.sleep(0.05)
        return self.exit_code

    def kill(self) -> None:
        """SIGKILL the child's process group (the child leads its own), as the OOM killer would."""
        if self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.exit_code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def _child_main(target: Callable[[], int], log_path: Path) -> None:
    """Run ``target`` with stdout and stderr in the run's log file, then leave without cleanup."""
    code = EXIT_CRASHED
    try:
        os.setsid()
        _redirect_output(log_path)
        _forget_parent_state()
        code = target()
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into pytest
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _redirect_output(log_path: Path) -> None:
    """Send fds 1 and 2, and whatever files the current streams write to (pytest's capture, which
    Airflow's log configuration holds on to), to the run's log."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    targets = {1, 2}
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
            targets.add(stream.fileno())
    for target in targets:
        os.dup2(fd, target)


def warm_up() -> None:
    """Build dag.test()'s in-process API application once, in the parent, for every run to inherit."""
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    _ = in_process_api_server().app


def _forget_parent_state() -> None:
    """Database connections and the API server's event-loop thread belong to the parent: the child makes
    its own (the application itself is reused)."""
    from airflow import settings
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    if settings.engine is not None:
        settings.engine.dispose(close=False)
    api = in_process_api_server()
    for owned_by_parent in ("transport", "atransport"):  # cached properties in slots: unset, they rebuild
        with contextlib.suppress(AttributeError):
            delattr(api, owned_by_parent)


class CampaignLab:
    """A seeded portal in the sandbox, the campaign DAG pointed at it, and ways to run and judge it.

    :param dag: the campaign DAG object.
    :param sandbox: a running sandbox; it is reset and re-seeded for every scenario.
    :param workdir: where run logs and exports go.
    :param contacts: contacts in the seeded portal.
    :param seed: the portal's seed: the same seed gives the same portal and the same ground truth.
    :param rounds: the campaign's ``rounds`` param.
    """

    def __init__(
        self, dag: Any, sandbox: SandboxProcess, workdir: Path, *, contacts: int = 400, seed: int = 5, rounds: int = 1
    ) -> None:
        self.dag, self.sandbox, self.workdir = dag, sandbox, workdir
        self.contacts, self.seed, self.rounds = contacts, seed, rounds
        self.scenario = "setup"
        self.logical_date = dt.datetime.now(dt.timezone.utc)
        self.logs: list[Path] = []
        self.faulted_before_restarts = 0
        self.connection = os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"]
        warm_up()

    # -- scenes ------------------------------------------------------------------------------------
    def new_scenario(self, name: str) -> None:
        """A fresh portal of the same seed, a fresh logical date (one DAG run), a fresh export folder."""
        from airflow._shared.timezones import timezone

        self.scenario = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.logical_date = timezone.utcnow()
        self.logs = []
        self.faulted_before_restarts = 0
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = self.connection
        self.sandbox.admin("POST", "reset")
        self.sandbox.admin("POST", "seed", {"contacts": self.contacts, "seed": self.seed})
        self.sandbox.admin("DELETE", "calls")

    @property
    def exports(self) -> Path:
        return self.workdir / self.scenario / "exports"

    def conf(self, **overrides: Any) -> dict[str, Any]:
        # Every param is given: dag.test() keeps a previous run's conf in the DAG object's params.
        defaults = {name: spec["default"] for name, spec in PARAMS_SCHEMA.items()}
        return {
            **defaults,
            **FAST_CONF,
            "campaign": CAMPAIGN,
            "rounds": self.rounds,
            "export_base": f"file://{self.exports}",
            **overrides,
        }

    def one_call_at_a_time(self) -> None:
        """Until the next scenario, the campaign's batch calls go one at a time (the connection's ``in_flight``)."""
        connection = json.loads(self.connection)
        connection["extra"] = {**connection.get("extra", {}), "in_flight": 1}
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(connection)

    def fault(self, endpoint: str, kind: str, **rule: Any) -> None:
        self.sandbox.admin("POST", "faults", {"endpoint": endpoint, "kind": kind, **rule})

    def faulted(self) -> int:
        """Responses the fault rules spoiled so far (the rules live in the sandbox's memory)."""
        return sum(rule["fired"] for rule in self.sandbox.admin("GET", "faults")["faults"])

    def restart_sandbox(self) -> None:
        """SIGKILL the sandbox and start it again on the same SQLite file and port (its fault rules are lost)."""
        self.faulted_before_restarts += self.faulted()
        self.sandbox.kill()
        self.sandbox.start()

    # -- runs ----------------------------------------------------------------------------------------
    def _log_path(self, what: str) -> Path:
        folder = self.workdir / self.scenario
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(self.logs) + 1:02d}-{what}.log"
        self.logs.append(path)
        return path

    def start(self, **params: Any) -> CampaignChild:
        """Start the campaign (or rerun the scenario's DAG run from scratch) in a child process."""
        dag, conf, logical_date = self.dag, self.conf(**params), self.logical_date

        def run() -> int:
            dag_run = dag.test(run_conf=conf, logical_date=logical_date)
            return EXIT_SUCCESS if str(dag_run.state) == "success" else EXIT_FAILED

        return CampaignChild(run, self._log_path("campaign"))

    def run(self, during: Callable[[CampaignChild], None] | None = None, **params: Any) -> int:
        """Run the campaign to its end; ``during`` runs in a thread alongside (to restart, kill, ...)."""
        child = self.start(**params)
        helper = threading.Thread(target=during, args=(child,), daemon=True) if during else None
        if helper:
            helper.start()
        code = child.wait()
        if helper:
            helper.join(timeout=120)
        return code

    def rerun_task(self, task_id: str) -> int:
        """What ``airflow tasks test <dag> <task> <run>`` does: one task again, inside the scenario's run."""
        dag, run_id = self.dag, self.run_id()

        def run() -> int:
            from argparse import Namespace

            from airflow.cli.commands.task_command import task_test

            task_test(
                Namespace(
                    dag_id=dag.dag_id,
                    task_id=task_id,
                    logical_date_or_run_id=run_id,
                    map_index=-1,
                    env_vars=None,
                    task_params=None,
                    post_mortem=False,
                    bundle_name=None,
                ),
                dag=dag,
            )
            return EXIT_SUCCESS if self.states().get(task_id) == "success" else EXIT_FAILED

        return CampaignChild(run, self._log_path(f"rerun-{task_id}")).wait()

    # -- what happened -------------------------------------------------------------------------------------
    def _dag_run(self, session: Any) -> Any:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        return session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.logical_date == self.logical_date))

    def run_id(self) -> str:
        from airflow.utils.session import create_session

        with create_session() as session:
            return str(self._dag_run(session).run_id)

    def states(self) -> dict[str, str]:
        from airflow.utils.session import create_session

        with create_session() as session:
            dag_run = self._dag_run(session)
            if dag_run is None:
                return {}
            return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}

    def task_retries(self) -> int:
        from airflow.utils.session import create_session

        with create_session() as session:
            dag_run = self._dag_run(session)
            return sum(max(0, ti.try_number - 1) for ti in dag_run.get_task_instances(session=session))

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())

    def traffic(self) -> Traffic:
        """Calls and retries of the scenario so far (read before the outcome: reading it costs calls)."""
        calls = sum(row["calls"] for row in self.sandbox.admin("GET", "calls").values())
        faulted = self.faulted_before_restarts + self.faulted()
        return Traffic(
            calls=calls,
            faulted=faulted,
            client_retries=self.log_text().count(CLIENT_RETRY),
            task_retries=self.task_retries(),
        )

    def xcom_values(self) -> dict[str, Any]:
        """Every XCom value of the scenario's run, by ``task id/key``."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(select(XComModel).where(XComModel.run_id == self.run_id())).all()
            return {f"{row.task_id}/{row.key}": row.value for row in rows}

    def rendered_fields(self) -> dict[str, Any]:
        """The rendered template fields of every task of the scenario's run, by task id."""
        from airflow.models.renderedtifields import RenderedTaskInstanceFields
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(
                select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.run_id == self.run_id())
            ).all()
            return {row.task_id: row.rendered_fields for row in rows}

    def artefacts(self) -> dict[str, str]:
        """Every text the scenario's runs left behind, by where it is: run logs (task logs and tracebacks),
        files under ``$AIRFLOW_HOME/logs``, the exports and reports, XCom values and rendered fields."""
        files = [*self.logs, *_files(Path(os.environ["AIRFLOW_HOME"]) / "logs"), *_files(self.exports)]
        found = {str(path): path.read_text(errors="replace") for path in files if path.exists()}
        found.update({f"XCom {where}": json.dumps(value, default=str) for where, value in self.xcom_values().items()})
        found.update(
            {
                f"rendered fields of {task}": json.dumps(value, default=str)
                for task, value in self.rendered_fields().items()
            }
        )
        return found


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- helpers for ``during`` ------------------------------------------------------------------------------
def wait_until(condition: Callable[[], bool], *, timeout: float = 300.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the awaited moment of the campaign never came")
        time.sleep(interval)


def calls_to(sandbox: SandboxProcess, endpoint: str) -> int:
    return int(sandbox.admin("GET", "calls").get(endpoint, {}).get("calls", 0))


def fired(sandbox: SandboxProcess, endpoint: str) -> int:
    return sum(rule["fired"] for rule in sandbox.admin("GET", "faults")["faults"] if rule["endpoint"] == endpoint)


@contextlib.contextmanager
def client_timeout(connect: float, read: float) -> Iterator[None]:
    """Every hook built meanwhile (in this process and its forked runs) gives up on a request after ``read`` s."""
    defaults = HubSpotHook.__init__.__kwdefaults__
    assert defaults is not None
    before = defaults["timeout"]
    defaults["timeout"] = (connect, read)
    try:
        yield
    finally:
        defaults["timeout"] = before
