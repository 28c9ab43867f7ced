"""Campaign history: a second campaign of the same portal shows the first in its report, as the first reported it."""

from __future__ import annotations

import csv
import io
import json
import re

from tests.e2e.conftest import states
from tests.e2e.test_rerun import rerun

COLUMNS = ["date", "quarter", "campaign", "run_id", "cohort", "sent", "confirmed", "opted_out", "opt_out"]


def history_section(page: str) -> str:
    (section,) = re.findall(r"<section class='history'>.*?</section>", page, re.S)
    return section


def history_rows(page: str) -> list[dict[str, str]]:
    """The rows of the page's campaign history table, as text."""
    section = history_section(page)
    (table,) = re.findall(r'<table[^>]*class="[^"]*history[^"]*".*?</table>', section, re.S)
    rows = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    return [dict(zip(COLUMNS, cells, strict=True)) for cells in rows if cells]


def test_the_second_campaign_shows_the_first_as_its_own_report_said(campaign):
    campaign.seed()
    first = campaign.run(rounds=1, campaign="history-a")
    assert str(first.state) == "success", states(first)
    (folder_a,) = (p.parent for p in campaign.exports.glob("history-a/*/report.html"))
    page_a, outcome_a = (folder_a / "report.html").read_bytes(), json.loads((folder_a / "outcome.json").read_text())
    (round_1,) = csv.DictReader((folder_a / "report.csv").open())
    # The outcome is the report's own figures.
    assert outcome_a["campaign"] == "history-a" and outcome_a["run_id"] == first.run_id
    assert outcome_a["opt_out"] == round_1["opt_out"] == "done"
    assert [outcome_a[k] for k in ("cohort", "sent", "confirmed", "opted_out")] == [
        int(round_1[k]) for k in ("cohort", "sent", "confirmed", "opted_out")
    ]
    assert outcome_a["cohort"] > 100 and outcome_a["opted_out"] > 0
    assert "There is no earlier campaign of portal" in page_a.decode()

    # The next quarter: those who did not confirm were opted out, those who did engaged; the report tells.
    second = campaign.run(rounds=1, campaign="history-b")
    assert str(second.state) == "success", states(second)
    (folder_b,) = (p.parent for p in campaign.exports.glob("history-b/*/report.html"))
    outcome_b = json.loads((folder_b / "outcome.json").read_text())
    assert outcome_b["portal_id"] == outcome_a["portal_id"] and outcome_b["date"] > outcome_a["date"]
    page_b = (folder_b / "report.html").read_text()
    assert f"Campaign history (portal {outcome_a['portal_id']})" in page_b
    assert f"This run and 1 earlier run(s) of portal {outcome_a['portal_id']}" in page_b
    earlier, this = history_rows(page_b)
    assert (earlier["campaign"], earlier["run_id"], earlier["quarter"]) == (
        "history-a",
        first.run_id,
        outcome_a["quarter"],
    )
    assert [earlier[k] for k in ("cohort", "sent", "confirmed", "opted_out", "opt_out")] == [
        str(outcome_a[k]) for k in ("cohort", "sent", "confirmed", "opted_out", "opt_out")
    ]
    # Nobody is left unengaged (the rest confirmed or were opted out): no round ran, and the history says so.
    assert list(csv.DictReader((folder_b / "report.csv").open())) == []
    assert this["campaign"] == "history-b" and this["run_id"] == second.run_id
    assert [this[k] for k in ("cohort", "sent", "confirmed", "opted_out")] == ["0", "0", "0", ""]  # none opted out
    assert (outcome_b["cohort"], outcome_b["opted_out"], outcome_b["opt_out"]) == (0, None, "did not run")
    chart = page_b[page_b.index("<section class='history'>") :]
    assert ">history-a<" in chart
    assert f">{outcome_a['cohort']:,}<" in chart and f">{outcome_a['opted_out']:,}<" in chart
    written = list(csv.DictReader((folder_b / "history.csv").open()))
    assert [r["campaign"] for r in written] == ["history-a", "history-b"]
    assert {r["run_id"] for r in written} == {second.run_id}

    # The later campaign leaves the first's report as it was; rerun after it, the first's report still shows
    # only what came before it.
    assert (folder_a / "report.html").read_bytes() == page_a
    outcome_file, history_file = (folder_a / "outcome.json").read_bytes(), (folder_a / "history.csv").read_bytes()
    rerun(campaign, first, "campaign_report")
    assert (folder_a / "report.html").read_bytes() == page_a
    assert (folder_a / "outcome.json").read_bytes() == outcome_file
    assert (folder_a / "history.csv").read_bytes() == history_file
    assert [r["campaign"] for r in csv.DictReader(io.StringIO(history_file.decode()))] == ["history-a"]
