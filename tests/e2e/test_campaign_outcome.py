"""The whole campaign, run by Airflow against a seeded portal, ends exactly where the ground truth says."""

from __future__ import annotations

import re

import pytest
from reengagement.api_versions import DATED_VERSIONS, LEGACY_ONLY

from tests.e2e.conftest import states

#: HubSpot's semantic-version paths (v1-v4), which HubSpot stops supporting in 2027, and its date-based ones.
LEGACY_PATH = re.compile(r"^/[^/]+(/[^/]+)?/v\d+/")
DATED_PATH = re.compile("/(" + "|".join(DATED_VERSIONS) + ")(/|$)")
KEPT_LEGACY = {only.path for only in LEGACY_ONLY}


# The 2-round campaign speaks HubSpot's legacy paths, for portals that still need them; the others the default.
@pytest.mark.parametrize(("rounds", "api_version"), [(1, None), (2, "legacy"), (3, None)])
def test_opt_out_equals_the_ground_truth(campaign, rounds, api_version, capfd):
    campaign.speak(api_version)
    campaign.seed()
    dag_run = campaign.run(rounds=rounds)
    called = campaign.paths_called()  # the campaign's calls, before this test's own reads below
    assert str(dag_run.state) == "success", states(dag_run)
    truth = campaign.truth(rounds)
    assert campaign.opted_out() == truth["opt_out"]
    assert not campaign.opted_out() & truth["confirmed"]
    mailed = {c for e in campaign.emails() for c in campaign.recipients(e["id"])}
    assert not mailed & truth["never_mailed"]
    assert len(campaign.emails()) == rounds
    # Rounds that were skipped are read as absent, quietly: no ERROR line for their missing results.
    logs = capfd.readouterr()
    assert "Opt-out finished" in logs.out + logs.err and "XCom not found" not in logs.out + logs.err

    if api_version == "legacy":
        assert not any(DATED_PATH.search(path) for path in called), sorted(called)
    else:  # only the reads HubSpot has no date-based version of stay on legacy paths
        assert {path.rstrip("/") for path in called if LEGACY_PATH.match(path)} <= KEPT_LEGACY, sorted(called)
        assert any(DATED_PATH.search(path) for path in called)
    assert "/email/public/v1/events" in called
