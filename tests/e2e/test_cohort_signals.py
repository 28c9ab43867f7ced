"""Step 2 in full: the focused variant and the optional engagement signals, each run end to end and checked
against the sandbox's ground truth, which derives the cohort from the seeded data, not from list filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import states
from tests.e2e.test_report_facts import list_size, xcom

FOCUS_NAME = "Spring newsletter 2026"
DRAFT_NAME = "Autumn newsletter draft"


def truth(campaign, rounds: int = 1, **params: Any) -> dict[str, Any]:
    query = {
        k: (",".join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
    }
    return campaign.sandbox.admin("GET", "ground-truth", rounds=rounds, **query)


def seeded_email(campaign, name: str) -> dict[str, Any]:
    page = campaign.sandbox.session.get(f"{campaign.sandbox.url}/marketing/v3/emails", params={"limit": 100}).json()
    (found,) = [e for e in page["results"] if e["name"] == name]
    return found


def assert_outcome(campaign, dag_run, expected: dict[str, Any]) -> None:
    assert str(dag_run.state) == "success", states(dag_run)
    assert campaign.opted_out() == set(expected["opt_out"])
    mailed = {c for e in campaign.emails() for c in campaign.recipients(e["id"])}
    assert not mailed & set(expected["never_mailed"])
    assert mailed >= set(expected["opt_out"]) | set(expected["confirmed"])


SIGNALS = [
    pytest.param({"min_emails_delivered": 10}, id="min_emails_delivered"),
    pytest.param({"spare_recent_activity": True}, id="spare_recent_activity"),
    pytest.param({"exclude_lifecycle_stages": ["customer"]}, id="exclude_lifecycle_stages"),
]


@pytest.mark.parametrize("signal", SIGNALS)
def test_each_signal_narrows_the_cohort_to_the_ground_truth_and_says_how_many_it_left_out(campaign, signal):
    campaign.seed()
    base, expected = truth(campaign), truth(campaign, **signal)
    (name,) = signal
    assert expected["removed_by"][name] > 0  # the seeded portal has contacts this signal spares
    assert len(expected["unengaged"]) == len(base["unengaged"]) - expected["removed_by"][name]
    dag_run = campaign.run(rounds=1, **signal)
    assert_outcome(campaign, dag_run, expected)
    effects = xcom(dag_run, "count_signal_effects")
    assert effects["removed_by"] == {name: expected["removed_by"][name]}
    assert effects["before_signals"] == len(base["unengaged"])
    assert effects["cohort"] == len(expected["unengaged"])


def test_all_signals_and_the_focus_email_together(campaign):
    campaign.seed()
    focus = seeded_email(campaign, FOCUS_NAME)
    signals = {
        "min_emails_delivered": 10,
        "spare_recent_activity": True,
        "exclude_lifecycle_stages": ["customer", "evangelist"],
    }
    expected = truth(campaign, focus_email_id=focus["id"], **signals)
    dag_run = campaign.run(rounds=2, focus_email=FOCUS_NAME, **signals)  # the focus email by its name
    assert_outcome(campaign, dag_run, {**expected, **truth(campaign, 2, focus_email_id=focus["id"], **signals)})
    effects = xcom(dag_run, "count_signal_effects")
    assert effects["removed_by"] == {k: v for k, v in expected["removed_by"].items() if k in {*signals, "focus_email"}}


def test_the_focused_variant_asks_only_those_who_received_the_focus_email_and_did_not_open_it(campaign):
    campaign.seed()
    focus = seeded_email(campaign, FOCUS_NAME)
    expected = truth(campaign, focus_email_id=focus["id"])
    assert 0 < len(expected["unengaged"]) < len(truth(campaign)["unengaged"])
    dag_run = campaign.run(rounds=1, focus_email=str(focus["id"]))  # by its id
    assert_outcome(campaign, dag_run, expected)
    preflight, focus_list = xcom(dag_run, "preflight"), xcom(dag_run, "build_focus_list")
    assert preflight["focus_email_id"] == str(focus["id"]) and preflight["focus_received"] > 0
    # Machine opens (bot-filtered) do not count: their recipients stay non-openers.
    assert focus_list["non_openers"] >= len(expected["unengaged"])
    assert focus_list["received"] == preflight["focus_received"]
    [unengaged] = [x for x in campaign.lists() if x["name"].endswith("· unengaged")]
    assert list_size(campaign, unengaged["listId"]) == len(expected["unengaged"])


def test_a_draft_or_an_unknown_focus_email_or_stage_stops_preflight_before_anything_is_sent(campaign, capfd):
    campaign.seed()
    dag_run = campaign.run(rounds=1, exclude_lifecycle_stages=["customer", "vip"])
    assert states(dag_run)["preflight"] == "failed" and not campaign.emails()
    logs = capfd.readouterr()
    assert "exclude_lifecycle_stages: 'vip' is not a lifecycle stage of this portal" in logs.out + logs.err
    dag_run = campaign.run(rounds=1, focus_email=DRAFT_NAME)
    assert str(dag_run.state) == "failed"
    assert states(dag_run)["preflight"] == "failed"
    assert not campaign.emails() and not campaign.opted_out()
    dag_run = campaign.run(rounds=1, focus_email="No such newsletter")
    assert states(dag_run)["preflight"] == "failed" and not campaign.emails()
