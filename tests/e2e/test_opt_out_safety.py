"""The irreversible step in a whole campaign: changes after the export are honoured, a bad file changes nobody.

Both run with ``require_approval``: the export is written before the approval, and whatever happens while
the approval waits (days, on a real portal) happens after every list was read for the last time. Only the
opt-out's own reads right before its first change stand between those contacts and an opt-out.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tests.e2e.conftest import Campaign, states
from tests.e2e.test_scenarios import CAMPAIGN_ID, answer_approval


def exported_file(campaign: Campaign, timeout: float = 300) -> Path:
    """The export, once complete (its manifest is written last)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for manifest in campaign.exports.glob("*/*/unconfirmed.csv.json"):
            return manifest.with_suffix("")
        time.sleep(0.2)
    raise TimeoutError("export_unconfirmed wrote no file")


def before_approving(campaign: Campaign, change: Callable[[Path], None]) -> Callable[[], None]:
    """Once list 2 is exported, ``change`` it (or HubSpot), then approve the opt-out."""
    approve = answer_approval(campaign, "Approve")

    def helper() -> None:
        change(exported_file(campaign))
        approve()

    return helper


def report_row(campaign: Campaign) -> dict[str, str]:
    (report,) = campaign.exports.glob("*/*/report.csv")
    with report.open() as handle:
        return list(csv.DictReader(handle))[-1]


def test_contacts_who_confirm_after_the_export_are_not_opted_out(campaign):
    campaign.seed()
    late, by_hand = (c["id"] for c in campaign.contacts("never_confirm")[:2])

    def confirm(export: Path) -> None:
        listed = set(pd.read_csv(export, dtype="string")["contact_id"])
        assert {late, by_hand} <= listed  # the export, the audit record, still shows them
        campaign.confirm_late(clicker=late, by_hand=by_hand, campaign_id=CAMPAIGN_ID)

    dag_run = campaign.run(rounds=1, require_approval=True, during=before_approving(campaign, confirm))
    assert str(dag_run.state) == "success", states(dag_run)
    assert campaign.opted_out() == campaign.truth(1)["opt_out"] - {late, by_hand}
    (result,) = campaign.exports.glob("*/*/opt_out_result.try-*.csv")
    spared = pd.read_csv(result, dtype="string").set_index("contact_id")
    assert spared.loc[late, "status"] == spared.loc[by_hand, "status"] == "SKIPPED"
    assert spared.loc[late, "reason"] == spared.loc[by_hand, "reason"] == "CONFIRMED"
    row = report_row(campaign)
    assert (row["opt_out"], row["opted_out"]) == ("done", str(len(campaign.opted_out())))


def test_a_file_changed_by_hand_fails_the_opt_out_once_and_the_report_says_it_did_not_run(campaign):
    campaign.seed()

    def add_a_row(export: Path) -> None:
        rows = export.read_text().splitlines()
        _, _, run_id = rows[1].split(",")
        export.write_text("\n".join([*rows, f"99999999,stranger@example.com,{run_id}"]) + "\n")

    dag_run = campaign.run(rounds=1, require_approval=True, during=before_approving(campaign, add_a_row))
    got = states(dag_run)
    assert str(dag_run.state) == "failed"
    assert got["opt_out_unconfirmed"] == "failed" and got["campaign_report"] == "success", got
    (opt_out,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == "opt_out_unconfirmed"]
    assert opt_out.try_number == 1  # a deterministic failure: not retried
    assert campaign.status_changes() == []
    row = report_row(campaign)
    assert row["opt_out"] == "did not run" and row["opted_out"] == "" and row["errors"] == ""
    (page,) = campaign.exports.glob("*/*/report.html")
    assert "the opt-out did not run, nobody was opted out" in page.read_text()
