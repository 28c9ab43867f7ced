"""Long-running processes, each in its own session, so one signal reaches everything it started.

Airflow's task supervisor moves each task runner into a process group of its own: killing a worker's process
group would leave the runner finishing its task as an orphan. A session holds them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def start(argv: Sequence[str], *, env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - the stack's own fixed commands
            list(argv),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ... ; comm may contain spaces, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def signal_session(sid: int, sig: int) -> int:
    """Send ``sig`` to every process of the session; returns how many were signalled."""
    count = 0
    for pid in session_members(sid):
        try:
            os.kill(pid, sig)
            count += 1
        except ProcessLookupError:
            pass
    return count


def stop_sessions(sids: Sequence[int], *, timeout: float = 30.0) -> list[int]:
    """SIGTERM every session at once, SIGKILL what is left after ``timeout``; the sessions that were killed.

    Asking all at once costs the slowest one's shutdown, not the sum of them.
    """
    for sid in sids:
        signal_session(sid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (alive := [sid for sid in sids if session_members(sid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for sid in alive:
        signal_session(sid, signal.SIGKILL)
    for sid in alive:
        _wait_gone(sid, 10)
    return alive


def kill_session(sid: int) -> None:
    """SIGKILL the whole session at once, as losing the machine would."""
    signal_session(sid, signal.SIGKILL)
    _wait_gone(sid, 10)


def _wait_gone(sid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
