"""The native stack's process handling and its HubSpot switch, without starting Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from include.airflow_stack import processes
from include.airflow_stack.__main__ import hubspot_connection, main
from include.airflow_stack.stack import LocalStack, StackConfig, StackError

#: A child that leaves its parent's process group, as Airflow's task runner does.
RUNNER = "import os, time; os.setpgid(0, 0); time.sleep(120)"


def test_killing_a_session_reaches_a_child_that_left_the_process_group(tmp_path):
    parent = processes.start(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {RUNNER!r}]); time.sleep(120)",
        ],
        env=dict(os.environ),
        log=tmp_path / "p.log",
        cwd=tmp_path,
    )
    # The child shows up in the session before its interpreter has left the group: wait for both.
    deadline = time.monotonic() + 20
    while not [pid for pid in processes.session_members(parent.pid) if os.getpgid(pid) != os.getpgid(parent.pid)]:
        assert time.monotonic() < deadline, "the child never started, or never left the process group"
        time.sleep(0.1)
    # A process-group kill would now miss the child; the session kill must not.

    processes.kill_session(parent.pid)
    parent.wait(timeout=10)
    assert processes.session_members(parent.pid) == []


def test_stopping_a_session_asks_first_and_reports_no_kill_when_it_obeys(tmp_path):
    child = processes.start(["sleep", "60"], env=dict(os.environ), log=tmp_path / "s.log", cwd=tmp_path)
    assert processes.stop_sessions([child.pid], timeout=10) == []
    assert child.wait(timeout=5) == -15


def test_sessions_stopped_together_report_only_the_one_that_had_to_be_killed(tmp_path):
    env = dict(os.environ)
    obeys = processes.start(["sleep", "60"], env=env, log=tmp_path / "a.log", cwd=tmp_path)
    ignores = processes.start(
        ["sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 0.1; done"],
        env=env,
        log=tmp_path / "b.log",
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 10
    while "trapped" not in (tmp_path / "b.log").read_text():
        assert time.monotonic() < deadline, "the shell never set its trap"
        time.sleep(0.05)
    assert processes.stop_sessions([obeys.pid, ignores.pid], timeout=1) == [ignores.pid]
    assert obeys.wait(timeout=5) == -15 and ignores.wait(timeout=5) == -9
    assert processes.session_members(obeys.pid) == processes.session_members(ignores.pid) == []


def test_the_hubspot_connection_comes_from_the_environment_or_dotenv(tmp_path, monkeypatch):
    monkeypatch.delenv("HUBSPOT_CONNECTION", raising=False)
    dotenv = tmp_path / ".env"
    assert hubspot_connection(dotenv) == ""  # no .env: the sandbox
    dotenv.write_text("OTHER=1\nHUBSPOT_CONNECTION='http://:pat-na1-x@api.hubapi.com/https'\n")
    assert hubspot_connection(dotenv) == "http://:pat-na1-x@api.hubapi.com/https"
    monkeypatch.setenv("HUBSPOT_CONNECTION", '{"conn_type": "http", "host": "api.hubapi.com"}')
    assert hubspot_connection(dotenv).startswith("{")


@pytest.mark.parametrize("value", ["pat-na1-only-a-token", '{"conn_type": "http",'])
def test_a_malformed_hubspot_connection_stops_make_up_before_anything_starts(monkeypatch, tmp_path, value):
    monkeypatch.setenv("HUBSPOT_CONNECTION", value)
    with pytest.raises(StackError, match="HUBSPOT_CONNECTION"):
        hubspot_connection(tmp_path / ".env")


def test_a_process_outside_the_session_is_not_a_member(tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    child = processes.start(["sleep", "30"], env=dict(os.environ), log=tmp_path / "c.log", cwd=tmp_path)
    try:
        assert processes.session_members(child.pid) == [child.pid]
    finally:
        other.kill()
        processes.kill_session(child.pid)
        child.wait()
        other.wait()


def test_extra_workers_are_celery_nodes_of_their_own_and_each_must_be_ready(tmp_path):
    stack = LocalStack(tmp_path, StackConfig(workers=3))
    assert stack.workers == ["worker", "worker-2", "worker-3"]
    assert stack.components[-3:] == ["worker", "worker-2", "worker-3"]
    assert stack.command("worker")[-2:] == ["celery", "worker"]
    extra = stack.command("worker-3")
    assert extra[extra.index("--celery-hostname") + 1] == "worker-3@%h"
    assert "--skip-serve-logs" in extra  # one log server per machine: the first worker's serves the folder
    (tmp_path / "logs").mkdir()
    for name in ("worker", "worker-2"):
        stack.log_path(name).write_bytes(b"\x1b[0m celery@host ready.\n")
    assert not stack.worker_ready()
    stack.log_path("worker-3").write_bytes(b"worker-3@host ready.\n")
    assert stack.worker_ready()


def test_make_up_refuses_fewer_than_one_worker(capsys):
    with pytest.raises(SystemExit):
        main(["up", "--workers", "0"])
    assert "at least 1" in capsys.readouterr().err
