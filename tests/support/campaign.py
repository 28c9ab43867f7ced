"""What running whole campaigns needs, in pytest (tests/e2e, tests/reliability) and in the fault suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from include.airflow_stack.shape import INIT_COMMANDS
from include.hubspot_sandbox.process import PROJECT_ROOT

#: Sandbox timings for whole campaigns: a round takes seconds, not a week.
CAMPAIGN_SANDBOX = [
    "--list-processing-seconds",
    "0.3",
    "--export-processing-seconds",
    "0.3",
    "--response-window-seconds",
    "2",
]


def prepare_airflow_db() -> None:
    """Migrate the SQLite metadata database of ``$AIRFLOW_HOME`` and create the pool, as `make demo` does."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    for args in INIT_COMMANDS:
        subprocess.run([airflow, *args], check=True, capture_output=True, env=os.environ)


def load_dag() -> Any:
    """The campaign DAG object, imported from dags/ like Airflow does."""
    sys.path.insert(0, str(PROJECT_ROOT / "dags"))
    import hubspot_reengagement

    return hubspot_reengagement.hubspot_reengagement
