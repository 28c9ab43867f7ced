"""End-to-end: the real DAG run with ``dag.test()`` against a seeded sandbox, checked against its ground truth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reengagement.campaign import PARAMS_SCHEMA

from include.hubspot_sandbox.process import SandboxProcess
from tests.plugins.conftest import connection_json
from tests.support.contract import read_exchanges

#: Short waits: a round takes seconds, not a week (the sandbox's timings are in tests/conftest.py).
FAST_CONF = {"wait": "PT4S"}


class Campaign:
    """One seeded portal and the DAG pointed at it; ``run()`` is one ``dag.test()``."""

    def __init__(self, dag: Any, sandbox: SandboxProcess, exports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dag, self.sandbox, self.exports = dag, sandbox, exports
        self._monkeypatch = monkeypatch
        self.speak()
        record = sandbox.command()[sandbox.command().index("--record") + 1]
        self._record = Path(record)
        self._record_start = self._record.stat().st_size if self._record.exists() else 0

    def speak(self, api_version: str | None = None) -> None:
        """Point ``hubspot_default`` at the sandbox, in the given HubSpot API version (``None``: the default)."""
        self._monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT",
            connection_json(self.sandbox.url, self.sandbox.token, api_version=api_version),
        )

    def paths_called(self) -> set[str]:
        """Every HubSpot API path the sandbox answered since this test began (its admin calls left out)."""
        exchanges, _ = read_exchanges(self._record, self._record_start)
        return {e.path for e in exchanges if not e.path.startswith("/_sandbox")}

    def seed(self, contacts: int = 400, seed: int = 5, **kw: Any) -> dict[str, Any]:
        return self.sandbox.admin("POST", "seed", {"contacts": contacts, "seed": seed, **kw})

    def run(self, *, during: Callable[[], None] | None = None, **conf: Any) -> Any:
        """Run the campaign; ``during`` runs in a thread alongside it (to click late, answer approvals...)."""
        from airflow._shared.timezones import timezone

        # Every param is given: dag.test() keeps a previous run's conf in the DAG object's params.
        defaults = {name: spec["default"] for name, spec in PARAMS_SCHEMA.items()}
        conf = {**defaults, **FAST_CONF, "export_base": f"file://{self.exports}", **conf}
        self.logical_date = timezone.utcnow()  # before the helper starts: it finds the run by this date
        helper = threading.Thread(target=during, daemon=True) if during else None
        if helper:
            helper.start()
        dag_run = self.dag.test(run_conf=conf, logical_date=self.logical_date)
        if helper:
            helper.join(timeout=60)
        return dag_run

    # -- what HubSpot looks like afterwards ----------------------------------------------------------------
    def truth(self, rounds: int) -> dict[str, set[str]]:
        return {k: set(v) for k, v in self.sandbox.admin("GET", "ground-truth", rounds=rounds).items()}

    def status_changes(self) -> list[dict[str, Any]]:
        return self.sandbox.admin("GET", "status-changes")["results"]

    def opted_out(self) -> set[str]:
        return {c["contactId"] for c in self.status_changes()}

    def lists(self) -> list[dict[str, Any]]:
        found = self.sandbox.session.post(
            f"{self.sandbox.url}/crm/v3/lists/search",
            json={"query": "", "offset": 0, "count": 500, "additionalProperties": []},
        ).json()
        return found["lists"]

    def emails(self) -> list[dict[str, Any]]:
        page = self.sandbox.session.get(f"{self.sandbox.url}/marketing/v3/emails", params={"limit": 100}).json()
        # The campaign's own emails: not the seeded portal's newsletters, nor a template to clone.
        return [e for e in page["results"] if e["name"].endswith("· email")]

    def recipients(self, email_id: str) -> list[str]:
        return [r["contactId"] for r in self.sandbox.admin("GET", f"emails/{email_id}/recipients")["recipients"]]

    def contacts(self, profile: str) -> list[dict[str, Any]]:
        return self.sandbox.admin("GET", "contacts", profile=profile)["results"]

    def confirm_late(self, *, clicker: str, by_hand: str, campaign_id: str) -> None:
        """Round 1's CTA clicked by ``clicker`` now, and ``by_hand`` added to list 1 by a marketer."""
        from reengagement.campaign import PARAMS_SCHEMA, confirm_url_for

        (email,) = [e for e in self.emails() if e["name"].endswith("· r1 · email")]
        cta = confirm_url_for(PARAMS_SCHEMA["confirm_url"]["default"], campaign_id, 1)
        self.sandbox.admin(
            "POST", "events", {"emailId": email["id"], "contactId": clicker, "type": "CLICK", "url": cta}
        )
        (list_one,) = [x for x in self.lists() if x["name"].endswith("· confirmed")]
        self.sandbox.session.put(
            f"{self.sandbox.url}/crm/v3/lists/{list_one['listId']}/memberships/add", json=[by_hand]
        ).raise_for_status()

    def wait_for_list(self, suffix: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.lists():
                if found["name"].endswith(suffix) and found["processingStatus"] == "COMPLETE":
                    return found
            time.sleep(0.2)
        raise TimeoutError(f"no list ending with {suffix!r}")


@pytest.fixture
def campaign(dag, campaign_sandbox, tmp_path, monkeypatch) -> Campaign:
    campaign_sandbox.admin("POST", "reset")
    return Campaign(dag, campaign_sandbox, tmp_path / "exports", monkeypatch)


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
