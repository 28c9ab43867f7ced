"""Run the sandbox as a child process on a free local port (for the demo, tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from .config import DEFAULT_TOKEN

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    """``python -m include.hubspot_sandbox serve`` in a child process, stopped on exit.

    :param db_path: the SQLite file; reusing it across starts keeps the portal's state.
    :param args: extra command-line options, e.g. ``["--tier", "starter"]``.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        args: list[str] | None = None,
        token: str = DEFAULT_TOKEN,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.db_path = str(db_path)
        self.args = list(args or [])
        self.token = token
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else Path(self.db_path + ".log")
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "include.hubspot_sandbox",
            "serve",
            "--port",
            str(self.port),
            "--db",
            self.db_path,
            *self.args,
        ]

    def start(self) -> SandboxProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                self.command(),
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sandbox exited with {self.proc.returncode}; see {self.log_path}:\n"
                    f"{self.log_path.read_text()[-3000:]}"
                )
            try:
                if self.session.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"sandbox did not answer within {self.startup_timeout}s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def admin(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Call the ``/_sandbox`` admin API and return its JSON (raises on an error status)."""
        response = self.session.request(
            method, f"{self.url}/_sandbox/{path.lstrip('/')}", json=json, params=params or None, timeout=600
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
