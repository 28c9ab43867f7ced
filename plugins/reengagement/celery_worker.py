"""A Celery configuration for the workers that run campaigns: Airflow's, plus the campaign imported up front.

Airflow's Celery worker forks a process for every task, and that process imports the DAG file. Imported once
in the worker, before its pool forks, the provider, its operators and the HubSpot SDK's clients are already
there in every task's process: each task starts about a second sooner on two busy cores, and spends that
much less CPU. Set ``[celery] celery_config_options`` to ``reengagement.celery_worker.CELERY_CONFIG``.

The price: a worker runs the provider it started with, so restart the workers after upgrading the provider
(a new image does). DAG files are still read afresh by every task.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: What the worker imports when it starts (Celery's ``imports``): the campaign and the SDK clients it calls.
PRELOADED: tuple[str, ...] = (
    "reengagement.campaign_dag",
    "hubspot.crm.contacts",
    "hubspot.crm.lists",
    "hubspot.marketing.emails",
)

CELERY_CONFIG: dict[str, Any] = {**DEFAULT_CELERY_CONFIG, "imports": PRELOADED}
