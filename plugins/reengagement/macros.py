"""Jinja helpers the DAG's templates use, so names and links are built in one place (campaign.py)."""

from __future__ import annotations

import json
from typing import Any

from .campaign import confirm_url_for, human_duration, object_name

PREFLIGHT = "preflight"


def campaign_of(ti: Any) -> str:
    """The campaign id the preflight task resolved for this run."""
    return str(ti.xcom_pull(task_ids=PREFLIGHT)["campaign"])


def campaign_or_param(ti: Any, params: Any) -> str:
    """The campaign id for the report, which also runs when preflight did not succeed."""
    found = ti.xcom_pull(task_ids=PREFLIGHT) or {}
    return str(found.get("campaign") or params.get("campaign") or "campaign (did not start)")


def name_of(ti: Any, role: str, round_no: int | None = None) -> str:
    """``{{ name_of(ti, 'unengaged') }}``: the deterministic HubSpot name of a campaign object."""
    return object_name(campaign_of(ti), role, round_no)


def cta_of(ti: Any, base_url: str, round_no: int) -> str:
    """``{{ cta_of(ti, params.confirm_url, 1) }}``: the round's CTA link."""
    return confirm_url_for(base_url, campaign_of(ti), round_no)


def result_of(ti: Any, task_id: str, key: str) -> Any:
    """``{{ result_of(ti, 'build_unengaged_list', 'list_id') }}``: one field of a task's returned dict."""
    return ti.xcom_pull(task_ids=task_id)[key]


def outputs_of(ti: Any, *task_ids: str) -> str:
    """``{{ outputs_of(ti, 'round_1.send_email', 'round_2.send_email') }}``: their results as a JSON list.

    ``None`` stands for a task that left no result (a round that was skipped). Pulled together, as one
    request per task that asks for whatever is there, so a skipped task is not logged as a missing XCom.
    """
    return json.dumps(list(ti.xcom_pull(task_ids=list(task_ids))))


def served_url_of(ti: Any, uri: str) -> str:
    """``{{ served_url_of(ti, export_uri) }}``: where the Airflow api-server serves one of the run's files."""
    from .links import served_url

    return served_url(ti.dag_id, ti.run_id, str(uri).rstrip("/").rsplit("/", 1)[-1])


def ref(task_id: str, key: str) -> str:
    """The template that renders one field of ``task_id``'s result (for wiring in the DAG file)."""
    return f"{{{{ result_of(ti, {task_id!r}, {key!r}) }}}}"


#: ``{{ human_duration(params.wait) }}`` renders ``7 days`` for ``P7D`` in approval texts and reports.
MACROS = {
    "name_of": name_of,
    "cta_of": cta_of,
    "campaign_of": campaign_of,
    "result_of": result_of,
    "campaign_or_param": campaign_or_param,
    "human_duration": human_duration,
    "outputs_of": outputs_of,
    "served_url_of": served_url_of,
}


def outputs(*task_ids: str) -> str:
    """The template that renders ``task_ids``' results as a JSON list (see :func:`outputs_of`)."""
    return "{{ outputs_of(ti, " + ", ".join(repr(t) for t in task_ids) + ") }}"
