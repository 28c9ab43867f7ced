"""``make demo``: one whole campaign against a local HubSpot sandbox, no account needed.

Starts the sandbox on a free port with a seeded portal, prepares an Airflow home on SQLite (the
``hubspot_default`` connection and the ``hubspot_api`` pool), runs the DAG with ``airflow dags test``
(2 rounds, short waits), prints the report and checks the opt-out against the portal's ground truth,
then stops the sandbox. Everything it writes lives under ``.demo/``; a second run starts afresh.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from include.airflow_stack.shape import INIT_COMMANDS, single_process_settings
from include.hubspot_sandbox.process import PROJECT_ROOT, SandboxProcess

DEMO_DIR = PROJECT_ROOT / ".demo"
DAG_ID = "hubspot_reengagement"


def airflow_env(home: Path, sandbox: SandboxProcess) -> dict[str, str]:
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": sandbox.port,
        "schema": "http",
        "password": sandbox.token,
    }
    return {**os.environ, **single_process_settings(home), "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(connection)}


def airflow(env: dict[str, str], *args: str, log: Path) -> None:
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    with log.open("a") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if done.returncode:
        raise SystemExit(f"`airflow {' '.join(args[:2])}` failed; see {log}")


def show_report(exports: Path) -> Path:
    reports = sorted(exports.glob("*/*/report.csv"))
    if not reports:
        raise SystemExit(f"the run wrote no report under {exports}")
    with reports[-1].open() as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c != "run_id"] if rows else []
    print("\n" + "  ".join(f"{c:>11}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>11}" for c in columns))
    return reports[-1].parent


def check_outcome(sandbox: SandboxProcess, folder: Path, rounds: int) -> bool:
    truth = set(sandbox.admin("GET", "ground-truth", rounds=rounds)["opt_out"])
    # The campaign's audit ledger holds every answer HubSpot gave; a contact who unsubscribed through the email's
    # own link answers NO_STATUS_CHANGE, so was not opted out by the campaign.
    opted = set()
    for part in sorted((folder.parent / "audit_ledger").glob("*.csv")):
        with part.open() as handle:
            opted |= {
                row["contact_id"]
                for row in csv.DictReader(handle)
                if row["reason"] in ("REQUESTED_CHANGE_OCCURRED", "UNSUBSCRIBE_FROM_ALL_OCCURRED")
            }
    changed = {c["contactId"] for c in sandbox.admin("GET", "status-changes")["results"]}
    print(
        f"\nopted out: {len(opted)}; the seeded ground truth says {len(truth)}; "
        f"HubSpot recorded {len(changed)} status changes"
    )
    return opted == truth == changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--wait", default="PT15S", help="response window after each send (ISO 8601)")
    args = parser.parse_args(argv)

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    home, exports = DEMO_DIR / "airflow", DEMO_DIR / "exports"
    home.mkdir(parents=True)
    log = DEMO_DIR / "demo.log"
    started = time.monotonic()
    sandbox_args = [
        "--seed-contacts",
        str(args.contacts),
        "--seed",
        "1",
        "--list-processing-seconds",
        "1",
        "--export-processing-seconds",
        "1",
        "--response-window-seconds",
        "10",
    ]
    with SandboxProcess(DEMO_DIR / "portal.db", args=sandbox_args) as sandbox:
        print(f"HubSpot sandbox on {sandbox.url} with {args.contacts} seeded contacts")
        env = airflow_env(home, sandbox)
        print("Preparing Airflow (SQLite metadata database, connection, pool) ...")
        for command in INIT_COMMANDS:
            airflow(env, *command, log=log)
        conf = {"rounds": args.rounds, "wait": args.wait, "export_base": f"file://{exports}"}
        print(f"Running the campaign: airflow dags test {DAG_ID} -c '{json.dumps(conf)}'  (log: {log})")
        airflow(env, "dags", "test", DAG_ID, "-c", json.dumps(conf), log=log)
        folder = show_report(exports)
        matches = check_outcome(sandbox, folder, args.rounds)
    print(
        f"\nReport: {folder / 'report.html'}\nFinished in {time.monotonic() - started:.0f}s; "
        f"outcome {'matches' if matches else 'DOES NOT match'} the ground truth."
    )
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
