"""``make reliability``: every fault of the matrix against a seeded sandbox, compared with a fault-free run.

For each fault the campaign runs on a freshly seeded portal (same seed), is rerun when the fault stopped
it, and HubSpot's final state is compared with the fault-free run: the same lists and members, one email
per round, one send per recipient, the same opt-out set, no status changed twice. Prints the table and
writes it to ``tests/reliability/results.md``::

    python -m tests.reliability.fault_suite [--rounds 2] [--contacts 400] [--seed 5] [--only kill]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for real only once the Airflow environment is set
    from tests.reliability.scenarios import FaultResult

RESULTS = Path(__file__).with_name("results.md")
#: Airflow's first task retry waits this long here (300 s in a deployment): longer than any request the
#: faults hold in flight, so a retried task looks HubSpot up after the request landed, as it would for real.
RETRY_DELAY_SECONDS = 10


def airflow_environment(home: Path) -> None:
    """An Airflow home on SQLite with the project's dags/; set before Airflow is imported."""
    from include.airflow_stack.shape import single_process_settings

    settings = single_process_settings(home)
    os.environ.update({**settings, "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": str(RETRY_DELAY_SECONDS)})
    for path in settings["PYTHONPATH"].split(os.pathsep):
        if path not in sys.path:
            sys.path.insert(0, path)


def table(results: list[FaultResult]) -> str:
    lines = ["| fault | runs | calls | retries | outcome identical |", "| --- | ---: | ---: | ---: | :---: |"]
    for r in results:
        t = r.traffic
        retries = f"{t.retries} ({t.client_retries} + {t.task_retries})"
        lines.append(f"| {r.fault} | {r.runs} | {t.calls:,} | {retries} | {'yes' if r.identical else '**no**'} |")
    return "\n".join(lines)


def explanation(args: argparse.Namespace, seconds: float) -> str:
    return (
        f"Seeded portal: {args.contacts} contacts, seed {args.seed}; campaign of {args.rounds} round(s); "
        f"{dt.date.today().isoformat()}, {seconds / 60:.0f} minutes.\n\n"
        "- **runs**: campaign runs of the scenario (a run killed or stopped counts, a rerun of one task counts).\n"
        "- **calls**: HubSpot requests the sandbox received (`GET /_sandbox/calls`), reruns included.\n"
        "- **retries**: requests the client repeated after a 5xx, 429, timeout or lost connection (the "
        "transport's `Retrying HubSpot request` log lines) + Airflow task tries after the first.\n"
        "- **outcome identical**: HubSpot's final state equals the fault-free run's: the same lists with the "
        "same members, one email per round, one send per recipient, the same opt-out set, no subscription "
        "status changed twice.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--only", help="run only the faults whose label contains this text")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the table (markdown)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="reliability-"))
    airflow_environment(workdir / "airflow")
    (workdir / "airflow").mkdir()
    return run_matrix(args, workdir)


def run_matrix(args: argparse.Namespace, workdir: Path) -> int:
    from include.hubspot_sandbox.process import SandboxProcess
    from tests.plugins.conftest import connection_json
    from tests.reliability.lab import CampaignLab
    from tests.reliability.scenarios import MATRIX, FaultResult, fault_free, judge
    from tests.support.campaign import CAMPAIGN_SANDBOX, load_dag, prepare_airflow_db

    started = time.monotonic()
    prepare_airflow_db()
    with SandboxProcess(workdir / "portal.db", args=CAMPAIGN_SANDBOX) as sandbox:
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = connection_json(sandbox.url, sandbox.token)
        lab = CampaignLab(load_dag(), sandbox, workdir, contacts=args.contacts, seed=args.seed, rounds=args.rounds)
        print(f"Fault-free run ({args.contacts} contacts, seed {args.seed}, {args.rounds} rounds); logs in {workdir}")
        baseline = fault_free(lab)
        results = [FaultResult("none (the fault-free run compared against)", 1, lab.traffic(), [])]
        for name, scenario in MATRIX.items():
            if args.only and args.only.lower() not in name.lower():
                continue
            print(f"{name} ...", flush=True)
            results.append(judge(lab, name, scenario, baseline))
            print(f"  {'identical' if results[-1].identical else 'DIFFERENT: ' + '; '.join(results[-1].problems)}")
    text = table(results)
    problems = [f"- {r.fault}: {p}" for r in results for p in r.problems]
    report = (
        f"# Reliability: faults against a fault-free run\n\n{explanation(args, time.monotonic() - started)}\n"
        f"{text}\n" + ("\n## Differences\n\n" + "\n".join(problems) + "\n" if problems else "")
    )
    print("\n" + text)
    args.out.write_text(report)
    print(f"\nWritten to {args.out}")
    return 0 if all(r.identical for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
