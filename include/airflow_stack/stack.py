"""The deployment as native processes on this machine: PostgreSQL, Redis, CeleryExecutor, one process per part.

``LocalStack`` keeps everything under one home folder: ``stack.json`` (where the parts live, the shared
secrets; owner-only), ``logs/<component>.log``, ``run/<component>.pid`` and Airflow's own ``AIRFLOW_HOME``.
A stack is started by ``make up`` (``python -m include.airflow_stack up``) and found again from its folder
by ``make down`` or a test, which is how one process can stop, kill or restart what another started.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from include.hubspot_sandbox.process import PROJECT_ROOT

from . import processes
from .api import AirflowApi
from .shape import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    COMPONENTS,
    DEPLOYMENT_SETTINGS,
    INIT_COMMANDS,
    SANDBOX_ARGS,
    SANDBOX_PORT,
    Location,
    new_secrets,
    sandbox_connection,
)

log = logging.getLogger(__name__)

SANDBOX = "hubspot-sandbox"
API_SERVER = "api-server"
WORKER = "worker"
DAG_ID = "hubspot_reengagement"


class StackError(RuntimeError):
    """The stack could not start, or a part of it stopped answering."""


@dataclass
class StackConfig:
    """Where this stack's parts live. Ports other than the API's matter only when two stacks share a machine."""

    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow_reengagement"
    broker_url: str = "redis://127.0.0.1:6379/0"
    api_port: int = 8080
    sandbox_port: int = SANDBOX_PORT
    scheduler_health_port: int = 8974
    worker_log_port: int = 8793
    triggerer_log_port: int = 8794
    #: ``hubspot_default`` as JSON; empty means "start the sandbox and point at it".
    hubspot_connection: str = ""
    sandbox_args: list[str] = field(default_factory=lambda: list(SANDBOX_ARGS))
    #: Celery workers: ``worker``, then ``worker-2`` ... (one machine, one log folder: the first serves the logs).
    workers: int = 1
    #: More ``AIRFLOW__*`` settings, e.g. the tests' shorter timeouts.
    settings: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=new_secrets)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


class LocalStack:
    """Start, watch and stop the stack whose home is ``home``."""

    def __init__(self, home: Path, config: StackConfig | None = None) -> None:
        self.home = Path(home).resolve()
        self.config = config or self._load()
        self.airflow_home = self.home / "airflow"
        #: The example ledger load's table (``reengagement_warehouse``).
        self.warehouse_path = self.home / "warehouse.db"
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- files -----------------------------------------------------------------------------------------------
    def _load(self) -> StackConfig:
        path = self.home / "stack.json"
        if not path.exists():
            raise StackError(f"no stack under {self.home} (start one with `make up`)")
        return StackConfig(**json.loads(path.read_text()))

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "stack.json"
        path.touch(mode=0o600)
        path.chmod(0o600)  # it holds the shared secrets
        path.write_text(json.dumps(asdict(self.config), indent=2))

    def log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.home / "run" / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        path = self._pid_path(name)
        return int(path.read_text()) if path.exists() else None

    # -- environment -----------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """What every Airflow process of this stack sees: the shared shape plus this machine's locations."""
        cfg = self.config
        location = Location(
            database_url=cfg.database_url,
            broker_url=cfg.broker_url,
            api_url=cfg.api_url,
            passwords_file=str(self.airflow_home / "passwords.json"),
            hubspot_connection=cfg.hubspot_connection or sandbox_connection("127.0.0.1", cfg.sandbox_port),
            warehouse_path=str(self.warehouse_path),
        )
        local = {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(cfg.api_port),
            "AIRFLOW__API__BASE_URL": cfg.api_url,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(cfg.scheduler_health_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cfg.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(cfg.triggerer_log_port),
            # A local stack runs the campaigns it is asked to run: the campaign's quarterly schedule stays off,
            # while the scheduler still starts what the campaign's assets schedule (the example ledger load).
            "AIRFLOW__HUBSPOT_REENGAGEMENT__SCHEDULE": "none",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # On one machine, pick up an edited DAG file within seconds.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            # The campaign's code is the installed provider; the project root is there for the sandbox (``include``).
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        return {**os.environ, **DEPLOYMENT_SETTINGS, **location.settings(cfg.secrets), **local, **cfg.settings}

    def command(self, name: str) -> list[str]:
        if name == SANDBOX:
            return [
                sys.executable,
                "-m",
                "include.hubspot_sandbox",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.config.sandbox_port),
                "--db",
                str(self.home / "portal.db"),
                *self.config.sandbox_args,
            ]
        airflow = str(Path(sys.executable).with_name("airflow"))
        if name in self.extra_workers:
            # Its own Celery node name; the first worker's log server already serves this machine's log folder.
            return [airflow, *COMPONENTS[WORKER], "--celery-hostname", f"{name}@%h", "--skip-serve-logs"]
        return [airflow, *COMPONENTS[name]]

    @property
    def extra_workers(self) -> list[str]:
        return [f"{WORKER}-{n}" for n in range(2, self.config.workers + 1)]

    @property
    def workers(self) -> list[str]:
        return [WORKER, *self.extra_workers]

    @property
    def components(self) -> list[str]:
        return ([] if self.config.hubspot_connection else [SANDBOX]) + list(COMPONENTS) + self.extra_workers

    # -- lifecycle -------------------------------------------------------------------------------------------
    def prepare(self, *, fresh: bool = False) -> None:
        """Create the metadata database (afresh if asked), the login, and run ``INIT_COMMANDS``."""
        from .services import check_broker, ensure_database, flush_broker

        ensure_database(self.config.database_url, fresh=fresh)
        if fresh:
            flush_broker(self.config.broker_url)  # a killed worker's unacked messages would come back
        else:
            check_broker(self.config.broker_url)
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        passwords = self.airflow_home / "passwords.json"
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        for args in INIT_COMMANDS:
            self.run_airflow(*args)

    def run_airflow(self, *args: str) -> None:
        argv = [str(Path(sys.executable).with_name("airflow")), *args]
        with self.log_path("init").open("ab") as out:
            done = subprocess.run(  # noqa: S603 - our own airflow executable, arguments from this module
                argv,
                env=self.environment(),
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            raise StackError(f"`airflow {' '.join(args)}` failed; see {self.log_path('init')}")

    def start(self, name: str) -> None:
        if self.is_running(name):
            return
        self._pid_path(name).parent.mkdir(parents=True, exist_ok=True)
        child = processes.start(self.command(name), env=self.environment(), log=self.log_path(name), cwd=PROJECT_ROOT)
        self._children[name] = child
        self._pid_path(name).write_text(str(child.pid))
        log.info("started %s (pid %s), log %s", name, child.pid, self.log_path(name))

    def is_running(self, name: str) -> bool:
        pid = self.pid(name)
        return bool(pid and processes.session_members(pid))

    def stop(self, *names: str) -> None:
        """SIGTERM the components together; any still running 30 s later is killed."""
        pids = {name: pid for name in names if (pid := self.pid(name))}
        killed = processes.stop_sessions(list(pids.values()))
        for name, pid in pids.items():
            if pid in killed:
                log.warning("%s did not stop on SIGTERM within 30 s and was killed", name)
        for name in names:
            self._forget(name)

    def kill(self, name: str) -> None:
        """SIGKILL the component and everything it started (task runners included)."""
        pid = self.pid(name)
        if pid:
            processes.kill_session(pid)
        self._forget(name)

    def _forget(self, name: str) -> None:
        child = self._children.pop(name, None)
        if child is not None:
            child.wait(timeout=10)  # reap it: no zombie left in a long-lived parent
        self._pid_path(name).unlink(missing_ok=True)

    def up(self, *, fresh: bool = False, timeout: float = 240) -> None:
        """Prepare, start every component and wait until the DAG can be triggered; stop it all on failure."""
        self.save()
        try:
            if SANDBOX in self.components:
                self.start(SANDBOX)
            self.prepare(fresh=fresh)
            for name in [*COMPONENTS, *self.extra_workers]:
                self.start(name)
            self.wait_ready(timeout)
        except BaseException:
            self.down()
            raise

    def down(self) -> list[str]:
        """Stop the components that do work first, then those they talk to: a worker finishing its task in a
        warm shutdown still reports to the api-server, and the task still calls HubSpot."""
        stopped = [name for name in reversed(self.components) if self.pid(name)]
        servers = (API_SERVER, SANDBOX)
        self.stop(*[name for name in stopped if name not in servers])
        self.stop(*[name for name in stopped if name in servers])
        return stopped

    # -- readiness -------------------------------------------------------------------------------------------
    def api(self) -> AirflowApi:
        return AirflowApi(self.config.api_url, ADMIN_USER, ADMIN_PASSWORD)

    def wait_ready(self, timeout: float = 240) -> None:
        """Every component healthy, every worker ready, and the DAG parsed."""
        deadline = time.monotonic() + timeout
        api = self.api()
        while not self._ready(api):
            for name in self.components:
                if not self.is_running(name):
                    raise StackError(f"{name} exited; the end of {self.log_path(name)}:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise StackError(f"the stack was not ready within {timeout:.0f}s; logs in {self.home / 'logs'}")
            time.sleep(1)

    def _ready(self, api: AirflowApi) -> bool:
        health = api.health()
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        if not all(health.get(part, {}).get("status") == "healthy" for part in parts):
            return False
        if not self.worker_ready():
            return False
        try:
            api.login().call("GET", f"dags/{DAG_ID}")
        except Exception:  # noqa: BLE001 - not parsed yet (404) or still starting: keep waiting
            return False
        return True

    def worker_ready(self) -> bool:
        """Celery logs ``<node>@<host> ready.`` once it consumes; the log may hold binary bytes."""
        paths = [self.log_path(name) for name in self.workers]
        return all(path.exists() and b" ready." in path.read_bytes() for path in paths)

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def describe(self) -> dict[str, Any]:
        return {
            name: {"pid": self.pid(name), "running": self.is_running(name), "log": str(self.log_path(name))}
            for name in self.components
        }
