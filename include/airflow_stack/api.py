"""A small client of Airflow's public REST API (v2): what the stack, its tests and scripts drive it with."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests

FINISHED = {"success", "failed"}


class AirflowApiError(RuntimeError):
    """Airflow answered a request with an error status."""


class AirflowApi:
    """Talks to ``/api/v2`` with a token from ``/auth/token`` (SimpleAuthManager's login)."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self._credentials = {"username": username, "password": password}
        self.session = requests.Session()

    def login(self) -> AirflowApi:
        response = self.session.post(f"{self.base_url}/auth/token", json=self._credentials, timeout=self.timeout)
        if response.status_code >= 400:
            raise AirflowApiError(f"login as {self._credentials['username']!r} failed: {response.status_code}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        return self

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = self.session.request(
            method, f"{self.base_url}/api/v2/{path.lstrip('/')}", json=json, params=params or None, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} /api/v2/{path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no login needed); empty when the api-server does not answer yet."""
        try:
            response = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return {}
        return response.json() if response.ok else {}

    # -- DAG runs ----------------------------------------------------------------------------------------------
    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"dags/{dag_id}", {"is_paused": False}, update_mask="is_paused")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        """Trigger a run now; its logical date is now, so waits measured from it really wait."""
        body = {"dag_run_id": run_id, "logical_date": dt.datetime.now(dt.timezone.utc).isoformat(), "conf": conf}
        return self.call("POST", f"dags/{dag_id}/dagRuns", body)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=200)
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 600,
        states: set[str] = FINISHED,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(2)

    def wait_for_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: set[str],
        *,
        timeout: float = 600,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            ti = self.task_instances(dag_id, run_id).get(task_id, {})
            if ti.get("state") in states:
                return ti
            if time.monotonic() > deadline:
                raise TimeoutError(f"{task_id} in {run_id} still {ti.get('state')} after {timeout:.0f}s")
            time.sleep(1)

    def clear(self, dag_id: str, run_id: str, task_ids: list[str], **options: Any) -> list[dict[str, Any]]:
        """Clear tasks for real, whatever their state, as the UI's Clear does (the endpoint's ``dry_run`` and
        ``only_failed`` default to true)."""
        body = {"dry_run": False, "only_failed": False, "dag_run_id": run_id, "task_ids": task_ids, **options}
        return self.call("POST", f"dags/{dag_id}/clearTaskInstances", body)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path)["value"]
