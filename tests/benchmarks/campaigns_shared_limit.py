"""Three configured campaigns on one portal, at the same time, on three Celery workers: one rate limit for all.

``python -m tests.benchmarks.campaigns_shared_limit [--contacts 450000] [--latency-ms 150] [--out FILE] [--keep DIR]``

The deployment ``make up`` starts (PostgreSQL, Redis, CeleryExecutor) runs with three Celery workers of one
task each, so three campaigns' tasks that run at once run in three worker processes, which share nothing but
the deployment's Redis. ``campaigns.yaml`` declares three campaigns on three business units (brands) of the
stack's one sandbox portal (Enterprise: 190 calls per rolling 10 s), each answer held ``--latency-ms``. Their
audiences do not overlap (each leaves out the others' lifecycle stages), so each one's outcome is checked
against its own ground truth.

Every request carries the User-Agent ``hubspot-reengagement (<dag id>/<task id>)`` and the sandbox's call log
keeps one line per request with its time and status. A task is call-bound when it makes more calls than one
window holds (``campaign_steps.is_call_bound``); a campaign is call-bound from its first to its last call of
such a task. While all three are call-bound, every 10 s window (sliding by one second) is counted: the
report gives the least, the median and the most calls any such window holds, against the portal's limit, and
the 429s of the whole run. Which worker ran which task is read from the workers' logs.

Nothing here asserts a time (the machines are shared); the target prints as a PASS/FAIL line, and the report
is appended to ``tests/benchmarks/results.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from include.airflow_stack.stack import LocalStack, StackConfig
from include.hubspot_sandbox.process import SandboxProcess, free_port
from tests.benchmarks import campaign_steps as steps
from tests.benchmarks.sandbox_bench import machine, publish
from tests.support.campaigns_yaml import write_campaigns_file

RESULTS = Path(__file__).with_name("results.md")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/reengagement_bench_shared_limit"
)
#: Not the integration tests' Redis databases (12 to 15): the benchmark may run while they do.
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")
WORKERS = 3
WINDOW_S = steps.INTERVAL_S
#: The issue's target: combined calls per 10 s while all three campaigns are call-bound.
MIN_SHARE = 0.90
AGENT = re.compile(r"hubspot-reengagement \((hubspot_reengagement__[\w-]+)/([^)]+)\)")
#: (business unit, subscription type, the lifecycle stages the campaign leaves out): every seeded contact has
#: one of four stages, a quarter of them each, so the three audiences do not overlap and are of one size (their
#: call-bound steps then run at the same time; customers are in none).
CAMPAIGNS = {
    "brand-a": (0, "Marketing Information", ("lead", "marketingqualifiedlead", "customer")),
    "brand-b": (1, "Brand B Marketing Information", ("subscriber", "marketingqualifiedlead", "customer")),
    "brand-c": (2, "Brand C Marketing Information", ("subscriber", "lead", "customer")),
}
UNITS = [{"id": 1, "name": "Brand B"}, {"id": 2, "name": "Brand C"}]
TIMINGS = ["--list-processing-seconds", "0.3", "--export-processing-seconds", "0.3", "--response-window-seconds", "2"]
#: The stack's pace for a benchmark: faster retries and heartbeats, DAG files parsed once.
SETTINGS = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    # One task per worker: tasks that run at once run in different workers.
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
}


def dag_id(campaign: str) -> str:
    return f"hubspot_reengagement__{campaign}"


# -- what the call log says -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    at: float
    dag_id: str
    task_id: str
    status: int
    endpoint: str


def read_calls(path: Path) -> list[Call]:
    """The campaigns' calls (``hubspot_reengagement__<id>`` User-Agents), in time order."""
    calls = []
    for line in path.read_text().splitlines():
        if not line.endswith("}"):
            continue
        record = json.loads(line)
        if match := AGENT.search(record.get("agent", "")):
            calls.append(Call(record["at"], match[1], match[2], int(record["status"]), record.get("endpoint", "")))
    return sorted(calls, key=lambda call: call.at)


def call_bound_spans(calls: Iterable[Call]) -> dict[str, list[tuple[float, float]]]:
    """Per DAG: the (first, last) call times of each of its call-bound tasks."""
    by_task: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for call in calls:
        by_task[call.dag_id, call.task_id].append(call.at)
    spans: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for (dag, _task), times in by_task.items():
        if steps.is_call_bound(len(times)):
            spans[dag].append((min(times), max(times)))
    return {dag: sorted(found) for dag, found in spans.items()}


def _union(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def all_call_bound(spans: dict[str, list[tuple[float, float]]], dags: Sequence[str]) -> list[tuple[float, float]]:
    """The stretches of time in which every one of ``dags`` is inside one of its call-bound tasks."""
    common = [(-float("inf"), float("inf"))]
    for dag in dags:
        own = _union(spans.get(dag, []))
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in own if max(a, c) < min(b, d)]
    return common


def windows(calls: Sequence[Call], stretches: Sequence[tuple[float, float]], width: float = WINDOW_S) -> list[int]:
    """Calls in each ``width``-second window that lies wholly inside one stretch, windows starting a second apart."""
    times = [call.at for call in calls]
    counts = []
    for start, end in stretches:
        at = start
        while at + width <= end:
            counts.append(bisect.bisect_left(times, at + width) - bisect.bisect_left(times, at))
            at += 1.0
    return counts


# -- which worker ran which task ------------------------------------------------------------------------


def task_workers(stack: LocalStack, dags: Iterable[str]) -> dict[tuple[str, str], set[str]]:
    """(dag id, task id) -> the workers whose logs show they ran it (Celery names the workload it executes)."""
    wanted = set(dags)
    found: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for worker in stack.workers:
        for line in stack.log_path(worker).read_text(errors="replace").splitlines():
            if "Executing workload" not in line:
                continue
            dag, task = re.search(r"dag_id='([^']+)'", line), re.search(r"task_id='([^']+)'", line)
            if dag and task and dag[1] in wanted:
                found[dag[1], task[1]].add(worker)
    return found


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    contacts: int
    latency_ms: float
    run_s: float = 0.0
    states: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, tuple[int, int, bool]] = field(default_factory=dict)  # opted out, truth, equal
    calls: int = 0
    rate_limited: list[str] = field(default_factory=list)  # "dag/task endpoint" of each 429
    limit: int = steps.RATE_LIMIT
    stretches: list[tuple[float, float]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    busiest: int = 0  # the most calls any 10 s window of the whole run held, on HubSpot's clock
    bound_tasks: dict[str, list[str]] = field(default_factory=dict)
    workers: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            all(state == "success" for state in self.states.values())
            and all(equal for *_, equal in self.outcomes.values())
            and not self.rate_limited
            and bool(self.counts)
            and min(self.counts) >= MIN_SHARE * self.limit
        )


def run(contacts: int, latency_ms: float, workdir: Path) -> Result:
    home = workdir / "stack"
    home.mkdir(parents=True)
    config = StackConfig(
        database_url=DATABASE_URL,
        broker_url=BROKER_URL,
        api_port=free_port(),
        sandbox_port=free_port(),
        scheduler_health_port=free_port(),
        worker_log_port=free_port(),
        triggerer_log_port=free_port(),
        sandbox_args=[*TIMINGS, "--latency-ms", str(latency_ms), "--call-log", str(home / "calls.jsonl")],
        settings={**SETTINGS, **write_campaigns_file(home, CAMPAIGNS)},
        workers=WORKERS,
    )
    stack = LocalStack(home, config)
    result = Result(contacts, latency_ms)
    print(f"starting the deployment with {WORKERS} Celery workers under {home} ...", flush=True)
    stack.up(fresh=True)
    try:
        sandbox = SandboxProcess(home / "portal.db", port=config.sandbox_port)
        sandbox.admin("POST", "reset")
        sandbox.admin("POST", "seed", {"contacts": contacts, "seed": 1, "business_units": UNITS})
        result.limit = int(str(sandbox.admin("GET", "settings")["rate_limit"]).split("/")[0])
        api = stack.api().login()
        exports = home / "exports"
        started = time.time()
        for campaign in CAMPAIGNS:
            api.trigger(dag_id(campaign), "bench", {"wait": "PT5S", "export_base": f"file://{exports}"})
        print(f"triggered {', '.join(CAMPAIGNS)}; waiting for the three runs ...", flush=True)
        for campaign in CAMPAIGNS:
            finished = api.wait_for_run(dag_id(campaign), "bench", timeout=3600)
            result.states[campaign] = finished["state"]
            print(f"  {campaign}: {finished['state']} after {time.time() - started:.0f} s", flush=True)
        result.run_s = time.time() - started
        measure(result, stack, sandbox)
    finally:
        stack.down()
    return result


def measure(result: Result, stack: LocalStack, sandbox: SandboxProcess) -> None:
    changes = sandbox.admin("GET", "status-changes")["results"]
    for campaign, (unit, _, left_out) in CAMPAIGNS.items():
        opted_out = {c["contactId"] for c in changes if int(c.get("businessUnitId", 0)) == unit}
        truth = set(
            sandbox.admin(
                "GET", "ground-truth", rounds=1, business_unit=unit, exclude_lifecycle_stages=",".join(left_out)
            )["opt_out"]
        )
        result.outcomes[campaign] = (len(opted_out), len(truth), opted_out == truth)
    calls = read_calls(stack.home / "calls.jsonl")
    result.calls = len(calls)
    result.rate_limited = [f"{c.dag_id}/{c.task_id} {c.endpoint}" for c in calls if c.status == 429]
    spans = call_bound_spans(calls)
    dags = [dag_id(campaign) for campaign in CAMPAIGNS]
    result.stretches = all_call_bound(spans, dags)
    result.counts = windows(calls, result.stretches)
    result.busiest = max(windows(calls, [(calls[0].at, calls[-1].at + WINDOW_S)]), default=0) if calls else 0
    per_task = collections.Counter((call.dag_id, call.task_id) for call in calls)
    ran_on = task_workers(stack, dags)
    for campaign in CAMPAIGNS:
        dag = dag_id(campaign)
        bound = sorted(task for (of, task), n in per_task.items() if of == dag and steps.is_call_bound(n))
        result.bound_tasks[campaign] = bound
        result.workers[campaign] = {task: sorted(ran_on.get((dag, task), ())) for task in bound}


# -- the report ------------------------------------------------------------------------------------------


def report(result: Result, total_s: float) -> str:
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    limit = result.limit
    lines = [
        f"## Three campaigns on one portal, three Celery workers, {stamp}",
        "",
        f"Machine: {machine()}. Whole run: {total_s:.0f} s (the three campaigns: {result.run_s:.0f} s).",
        f"Sandbox: {result.contacts:,} contacts on three business units, the portal's limit {limit} calls per "
        f"rolling 10 s, each answer held {result.latency_ms:g} ms. Deployment: CeleryExecutor on PostgreSQL and "
        f"Redis, {WORKERS} workers of one task each, the limit shared through Redis.",
        "",
        "| campaign | run | opted out | ground truth | equal | call-bound tasks (worker) |",
        "|---|---|---:|---:|---|---|",
    ]
    for campaign, (opted_out, truth, equal) in result.outcomes.items():
        tasks = ", ".join(
            f"{task} ({'/'.join(workers) or '?'})" for task, workers in result.workers.get(campaign, {}).items()
        )
        state = result.states.get(campaign, "?")
        lines.append(f"| {campaign} | {state} | {opted_out:,} | {truth:,} | {'yes' if equal else 'NO'} | {tasks} |")
    together = sum(end - start for start, end in result.stretches)
    lines += [
        "",
        f"All campaigns' calls: {result.calls:,}; 429s: {len(result.rate_limited)}; the busiest 10 s of the run, "
        f"as HubSpot's clock saw them: {result.busiest} calls.",
    ]
    lines += [f"- 429: {call}" for call in result.rate_limited]
    if result.counts:
        least, median, most = min(result.counts), statistics.median(result.counts), max(result.counts)
        lines.append(
            f"All three call-bound for {together:.0f} s in {len(result.stretches)} stretch(es); its "
            f"{len(result.counts)} windows of 10 s (a second apart) hold {least} to {most} calls, median "
            f"{median:g}: {least / limit:.0%} / {median / limit:.0%} / {most / limit:.0%} of the limit."
        )
    else:
        lines.append("The three campaigns were never call-bound at once for a whole 10 s window.")
    verdict = "PASS" if result.ok else "FAIL"
    lines += [
        "",
        f"- {verdict}: zero 429s, every outcome equal to its ground truth, and every 10 s window while all three "
        f"are call-bound at ≥ {MIN_SHARE:.0%} of the portal's limit.",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.campaigns_shared_limit", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--contacts", type=int, default=450_000, help="seeded contacts, over all three brands")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="how long the sandbox holds each answer")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file the report is appended to")
    parser.add_argument("--keep", type=Path, help="keep the deployment's folder (logs, call log) here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.contacts < 1000:
        raise SystemExit("--contacts: at least 1000, so that each campaign has call-bound steps")
    began = time.monotonic()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.contacts, args.latency_ms, Path(tempfile.mkdtemp(dir=args.keep)))
    else:
        with tempfile.TemporaryDirectory(prefix="reengagement-shared-limit-") as folder:
            result = run(args.contacts, args.latency_ms, Path(folder))
    publish(report(result, time.monotonic() - began), args.out)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
