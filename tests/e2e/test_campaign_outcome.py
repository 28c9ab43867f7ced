"""The whole campaign, run by Airflow against a seeded portal, ends exactly where the ground truth says."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import states


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_opt_out_equals_the_ground_truth(campaign, rounds):
    campaign.seed()
    dag_run = campaign.run(rounds=rounds)
    assert str(dag_run.state) == "success", states(dag_run)
    truth = campaign.truth(rounds)
    assert campaign.opted_out() == truth["opt_out"]
    assert not campaign.opted_out() & truth["confirmed"]
    mailed = {c for e in campaign.emails() for c in campaign.recipients(e["id"])}
    assert not mailed & truth["never_mailed"]
    assert len(campaign.emails()) == rounds
