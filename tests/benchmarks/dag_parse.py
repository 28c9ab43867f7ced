"""DAG file parse time of the campaign DAG against trivial DAGs, parsed the way Airflow parses them.

Each file goes through ``DagBag.process_file`` (Airflow's importer: a fresh module import, then the
DAG checks) many times in this one process, alternating files so machine noise hits all alike; the
median is reported. Three baselines: a one-task DAG; a DAG of EmptyOperators with exactly the
campaign's task ids and dependencies (what the shape alone costs); and that DAG with the campaign's
params too (Airflow deep-copies a DAG's params into every operator it builds: they cost per task).
Sockets are watched while parsing: a parse that opens a connection is reported.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "hubspot_reengagement.py"

TRIVIAL = '''"""One task: the cheapest DAG file Airflow can parse."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="trivial_one_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="only")
'''

SAME_SHAPE = '''"""EmptyOperators with the campaign DAG's task ids and dependencies."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

TASKS = {tasks!r}
EDGES = {edges!r}

with DAG(dag_id="trivial_same_shape", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ops = {{task_id: EmptyOperator(task_id=task_id) for task_id in TASKS}}
    for upstream, downstream in EDGES:
        ops[upstream] >> ops[downstream]
'''

SAME_SHAPE_AND_PARAMS = '''"""The same EmptyOperators with the campaign's params (copied into each task by Airflow)."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param
from reengagement.campaign import PARAMS_SCHEMA

TASKS = {tasks!r}
EDGES = {edges!r}
PARAMS = {{name: Param(spec.pop("default"), **spec) for name, spec in ((n, dict(s)) for n, s in PARAMS_SCHEMA.items())}}

with DAG(dag_id="trivial_same_shape_and_params", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params=PARAMS):
    ops = {{task_id: EmptyOperator(task_id=task_id) for task_id in TASKS}}
    for upstream, downstream in EDGES:
        ops[upstream] >> ops[downstream]
'''


@contextmanager
def no_network() -> Iterator[list[Any]]:
    """Record (and refuse) every socket connection attempted inside the block."""
    attempts: list[Any] = []
    original = socket.socket.connect

    def refuse(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"no network at DAG parse time (tried {address})")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def _bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=tempfile.gettempdir(), collect_dags=False, load_op_links=False)


def campaign_shape() -> tuple[list[str], list[tuple[str, str]], int]:
    """The campaign DAG's task ids, edges and number of params, read from a parse of its file."""
    bag = _bag()
    dags = bag.process_file(str(DAG_FILE), only_if_updated=False, safe_mode=False)
    if not dags:
        raise RuntimeError(f"{DAG_FILE} did not parse: {bag.import_errors}")
    dag = dags[0]
    tasks = sorted(dag.task_dict)
    edges = sorted((up, task_id) for task_id, task in dag.task_dict.items() for up in task.upstream_task_ids)
    return tasks, edges, len(dag.params)


@contextmanager
def counting_param_copies() -> Iterator[list[int]]:
    """Count Airflow's deep copies of a DAG's params while operators are built (one per ``__init__`` level)."""
    from airflow.sdk.bases import operator

    counted = [0]
    original = operator._get_parent_defaults

    def counting(dag: Any, task_group: Any) -> Any:
        counted[0] += dag is not None
        return original(dag, task_group)

    operator._get_parent_defaults = counting
    try:
        yield counted
    finally:
        operator._get_parent_defaults = original


def param_copies(bag: Any, path: Path) -> int:
    with counting_param_copies() as counted:
        bag.process_file(str(path), only_if_updated=False, safe_mode=False)
    return counted[0]


def _time_once(bag: Any, path: Path) -> float:
    started = time.perf_counter()
    dags = bag.process_file(str(path), only_if_updated=False, safe_mode=False)
    elapsed = time.perf_counter() - started
    if not dags:
        raise RuntimeError(f"{path} did not parse: {bag.import_errors}")
    return elapsed * 1000


def measure(repetitions: int = 40) -> dict[str, Any]:
    """Median parse times (ms) of the three files, the campaign DAG's first (cold) parse, and the ratios."""
    bag = _bag()
    with no_network() as attempts:
        cold_ms = _time_once(bag, DAG_FILE)  # the first parse in this process also imports the plugins
        tasks, edges, params = campaign_shape()
        with tempfile.TemporaryDirectory(prefix="dag-parse-") as folder:
            files = {
                "campaign": DAG_FILE,
                "one_task": Path(folder) / "trivial_one_task.py",
                "same_shape": Path(folder) / "trivial_same_shape.py",
            }
            files["one_task"].write_text(TRIVIAL)
            files["same_shape"].write_text(SAME_SHAPE.format(tasks=tasks, edges=edges))
            files["with_params"] = Path(folder) / "trivial_same_shape_and_params.py"
            files["with_params"].write_text(SAME_SHAPE_AND_PARAMS.format(tasks=tasks, edges=edges))
            times: dict[str, list[float]] = {name: [] for name in files}
            for path in files.values():
                _time_once(bag, path)  # warm-up: the first import of each file's modules
            copies = {name: param_copies(bag, files[name]) for name in ("campaign", "with_params")}
            for _ in range(repetitions):
                for name, path in files.items():
                    times[name].append(_time_once(bag, path))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "campaign_ms": medians["campaign"],
        "one_task_ms": medians["one_task"],
        "same_shape_ms": medians["same_shape"],
        "with_params_ms": medians["with_params"],
        "cold_ms": cold_ms,
        "tasks": len(tasks),
        "params": params,
        "param_copies": copies,
        "repetitions": repetitions,
        "network_attempts": len(attempts),
        "ratio_one_task": medians["campaign"] / medians["one_task"],
        "ratio_same_shape": medians["campaign"] / medians["same_shape"],
        "ratio_with_params": medians["campaign"] / medians["with_params"],
    }
