"""The Celery configuration the deployment's workers use: Airflow's own, with the campaign imported up front."""

from __future__ import annotations

import json
import subprocess
import sys

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from reengagement.celery_worker import CELERY_CONFIG, PRELOADED

#: A Celery worker's start, up to the point where it would fork its pool: which of PRELOADED are imported then.
WORKER_START = """
import json, sys
from celery import Celery
from reengagement.celery_worker import CELERY_CONFIG, PRELOADED
before = [m for m in PRELOADED if m in sys.modules]
Celery(config_source=CELERY_CONFIG).loader.init_worker()
print(json.dumps({"before": before, "after": [m for m in PRELOADED if m in sys.modules]}))
"""


def test_it_keeps_every_setting_of_airflows_default():
    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == DEFAULT_CELERY_CONFIG
    assert "imports" not in DEFAULT_CELERY_CONFIG


def test_a_worker_imports_the_campaign_and_the_sdk_clients_before_it_forks():
    done = subprocess.run([sys.executable, "-c", WORKER_START], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout.splitlines()[-1])
    assert imported["before"] == []  # the configuration itself imports none of them
    assert imported["after"] == list(PRELOADED)
