"""The reliability tests share one lab (the session's campaign sandbox and DAG) and one fault-free run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.plugins.conftest import connection_json
from tests.reliability.lab import CampaignLab
from tests.reliability.outcome import Outcome
from tests.reliability.scenarios import fault_free


@dataclass(frozen=True)
class Baseline:
    """The fault-free run: HubSpot's final state, and every text the run left behind."""

    outcome: Outcome
    run_id: str
    artefacts: dict[str, str]
    xcom: dict[str, object]
    exports: list[str]


@pytest.fixture(scope="session")
def lab(dag, campaign_sandbox, tmp_path_factory) -> Iterator[CampaignLab]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(campaign_sandbox.url, campaign_sandbox.token))
        yield CampaignLab(dag, campaign_sandbox, tmp_path_factory.mktemp("reliability"), rounds=1)


@pytest.fixture(scope="session")
def baseline(lab: CampaignLab) -> Baseline:
    outcome = fault_free(lab)
    exports = sorted(str(p) for p in lab.exports.rglob("*") if p.is_file())
    return Baseline(outcome, lab.run_id(), lab.artefacts(), lab.xcom_values(), exports)
