"""Parse time of dags/hubspot_campaigns.py per campaign: campaigns.yaml with one campaign against ten.

Each folder holds a copy of the dags file and its own campaigns.yaml; the files go through
``DagBag.process_file`` (Airflow's importer, then its DAG checks) many times in this one process, alternating
so machine noise hits all alike; the median is reported. Each parse starts with Python's cycle collector's work
done (untimed), so one parse's garbage is not counted in the next. The target (issue #17): the parse time per campaign
with ten campaigns is at most 1.2 x the parse time of one. The marginal cost of a campaign, (ten - one) / 9,
is reported too: the reading of the file and the schema check must not grow with the campaigns.
Sockets are watched while parsing: a parse that opens a connection is reported.

    python -m tests.benchmarks.campaigns_parse [--repetitions 20] [--out tests/benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from include.airflow_stack.shape import single_process_settings
from tests.benchmarks.dag_parse import no_network
from tests.benchmarks.sandbox_bench import publish

ROOT = Path(__file__).resolve().parents[2]
DAGS_FILE = ROOT / "dags" / "hubspot_campaigns.py"
RESULTS = Path(__file__).with_name("results.md")
COUNTS = (1, 10)
#: Per campaign with ten at most this many times the parse of one (issue #17).
TARGET = 1.2
SCHEDULES = ("@quarterly", None, "0 6 1 */3 *", "@monthly")


def campaigns_yaml(count: int) -> str:
    """``count`` campaigns that differ as real ones do: connection, business unit, schedule, param defaults.

    Their ids say how many there are, so the files' DAG ids differ (Airflow keeps a DAG id to one file)."""
    lines = ["campaigns:"]
    for k in range(count):
        schedule = SCHEDULES[k % len(SCHEDULES)]
        lines += [
            f"  - id: of-{count}-brand-{k:02d}",
            f"    connection_id: hubspot_brand_{k % 3}",
            f"    business_unit: {1000 + k}",
            f"    subscription_type: Brand {k} News",
            f"    schedule: {'null' if schedule is None else repr(schedule)}",
            "    params:",
            f"      rounds: {1 + k % 3}",
            f"      inactivity_weeks: {26 + k}",
            f"      reply_to: brand-{k}@example.com",
        ]
    return "\n".join(lines) + "\n"


def _bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=tempfile.gettempdir(), collect_dags=False, load_op_links=False)


def _time_once(bag: Any, path: Path, count: int) -> float:
    gc.collect()  # untimed: the garbage of the parse before is not this parse's cost
    started = time.perf_counter()
    dags = bag.process_file(str(path), only_if_updated=False, safe_mode=False)
    elapsed = time.perf_counter() - started
    if len(dags) != count:
        raise RuntimeError(f"{path} built {len(dags)} DAGs, not {count}: {bag.import_errors}")
    return elapsed * 1000


def measure(repetitions: int = 20, counts: Sequence[int] = COUNTS) -> dict[str, Any]:
    """Median parse times (ms) of the dags file over campaigns.yaml files of ``counts`` campaigns."""
    bag = _bag()
    with tempfile.TemporaryDirectory(prefix="campaigns-parse-") as folder, no_network() as attempts:
        files = {}
        for count in counts:
            dags_folder = Path(folder) / f"{count}_campaigns"
            dags_folder.mkdir()
            files[count] = Path(shutil.copy(DAGS_FILE, dags_folder))
            (dags_folder / "campaigns.yaml").write_text(campaigns_yaml(count))
        cold_ms = _time_once(bag, files[counts[0]], counts[0])  # imports the plugins and the SDK
        for count, path in files.items():
            _time_once(bag, path, count)  # warm-up
        times: dict[int, list[float]] = {count: [] for count in counts}
        for _ in range(repetitions):
            for count, path in files.items():
                times[count].append(_time_once(bag, path, count))
    medians = {count: statistics.median(values) for count, values in times.items()}
    one, many = min(counts), max(counts)
    marginal = (medians[many] - medians[one]) / (many - one)
    return {
        "medians_ms": medians,
        "cold_ms": cold_ms,
        "one": one,
        "many": many,
        "per_campaign_ms": medians[many] / many,
        "marginal_ms": marginal,
        "ratio": medians[many] / many / (medians[one] / one),
        "marginal_ratio": marginal / (medians[one] / one),
        "repetitions": repetitions,
        "network_attempts": len(attempts),
    }


def passed(parse: dict[str, Any]) -> bool:
    return bool(parse["ratio"] <= TARGET and parse["network_attempts"] == 0)


def report(parse: dict[str, Any]) -> str:
    one, many = parse["one"], parse["many"]
    one_ms = parse["medians_ms"][one]
    rows = [
        f"| {count} | {ms:.1f} | {ms / count:.1f} | {ms / count / (one_ms / one):.2f} |"
        for count, ms in parse["medians_ms"].items()
    ]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return "\n".join(
        [
            f"## Campaigns file parse benchmark, {stamp} UTC",
            "",
            f"`dags/hubspot_campaigns.py` over a `campaigns.yaml` of 1 and {many} campaigns (each its own "
            "connection, business unit, schedule and param defaults): `DagBag.process_file`, median of "
            f"{parse['repetitions']} alternating parses in one process (plugins already imported; the cycle "
            "collector's work done before each parse, untimed); socket connections attempted while parsing: "
            f"{parse['network_attempts']}.",
            "",
            "| campaigns | median ms | ms per campaign | per campaign / one's |",
            "|---:|---:|---:|---:|",
            *rows,
            "",
            f"Each campaign past the first adds {parse['marginal_ms']:.1f} ms "
            f"({parse['marginal_ratio']:.2f} x the parse of one). First parse in a fresh process (imports the "
            f"plugins and the SDK): {parse['cold_ms']:.0f} ms.",
            "",
            f"- {'PASS' if passed(parse) else 'FAIL'}: parse time per campaign with {many} campaigns <= {TARGET} x "
            f"that of one ({parse['per_campaign_ms']:.1f} ms vs {one_ms / one:.1f} ms: x{parse['ratio']:.2f}), "
            "with no network",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown file to append to (default: %(default)s)")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="campaigns-parse-airflow-"))
    if "airflow" not in sys.modules:  # a command of its own: Airflow's settings in a home of its own
        os.environ.update(single_process_settings(home))
    print(f"campaigns.yaml parse time, {args.repetitions} repetitions ...", flush=True)
    try:
        parse = measure(args.repetitions)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    publish(report(parse), args.out)
    return 0 if passed(parse) else 1


if __name__ == "__main__":
    sys.exit(main())
