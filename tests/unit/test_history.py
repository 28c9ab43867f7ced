"""The campaign history: outcome files written per run, read back per portal and up to a date, charted."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging

import pandas as pd
import pytest
from reengagement import history, report
from reengagement.storage import slug

OCTOBER = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)


def file_outcome(base, campaign: str, *, when: dt.datetime, portal: str = "111", **figures) -> dict:
    facts = history.outcome(
        portal_id=portal,
        dag_id="hubspot_permission_pass",
        campaign=campaign,
        run_id=f"manual__{when.isoformat()}",
        when=when,
        cohort=figures.get("cohort", 100),
        totals=report.Totals(sent=figures.get("sent", 90), confirmed=figures.get("confirmed", 30), opted_out=50),
        state=figures.get("state", report.DONE),
    )
    folder = base / slug(campaign) / f"run-{when:%Y%m%d%H%M}"
    folder.mkdir(parents=True, exist_ok=True)
    history.write_outcome(folder, facts)
    return facts


def test_a_run_is_filed_under_its_logical_date_else_when_it_was_due():
    after, now = OCTOBER + dt.timedelta(days=1), OCTOBER + dt.timedelta(days=2)
    assert history.run_date(OCTOBER, after, now) == OCTOBER
    assert history.run_date(None, after, now) == after
    assert history.run_date(None, None, now) == now
    assert history.run_date(dt.datetime(2026, 3, 31, 23, 0), None, now).tzinfo == dt.UTC
    assert [history.quarter(dt.datetime(2026, m, 1)) for m in (1, 3, 4, 9, 10, 12)] == [
        "2026-Q1",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
        "2026-Q4",
    ]


def test_the_outcome_file_is_what_the_history_reads_back(memory):
    facts = file_outcome(memory, "q4", when=OCTOBER, cohort=120, sent=110, confirmed=40)
    assert json.loads((memory / "q4" / "run-202610010900" / history.OUTCOME_FILE).read_text()) == facts
    assert facts["quarter"] == "2026-Q4" and facts["opted_out"] == 50 and facts["opt_out"] == "done"
    frame = history.read_history(memory, "111", OCTOBER)
    (row,) = frame.to_dict("records")
    assert row["date"] == pd.Timestamp(OCTOBER)
    assert {k: row[k] for k in ("campaign", "cohort", "sent", "confirmed", "opted_out", "opt_out")} == {
        "campaign": "q4",
        "cohort": 120,
        "sent": 110,
        "confirmed": 40,
        "opted_out": 50,
        "opt_out": "done",
    }


def test_only_the_same_portal_up_to_the_run_oldest_first(memory):
    file_outcome(memory, "q3", when=OCTOBER - dt.timedelta(days=90))
    file_outcome(memory, "q4", when=OCTOBER)
    file_outcome(memory, "q2", when=OCTOBER - dt.timedelta(days=180))
    file_outcome(memory, "other-portal", when=OCTOBER - dt.timedelta(days=30), portal="222")
    file_outcome(memory, "later", when=OCTOBER + dt.timedelta(days=60))
    (memory / "q4" / "audit_ledger").mkdir(parents=True)
    (memory / "q4" / "audit_ledger" / history.OUTCOME_FILE).write_text('{"portal_id": "111"}')
    frame = history.read_history(memory, "111", OCTOBER)
    assert frame["campaign"].tolist() == ["q2", "q3", "q4"]
    assert frame["quarter"].tolist() == ["2026-Q2", "2026-Q3", "2026-Q4"]
    # The later campaign's report sees the rest; the earlier report still reads as it did.
    assert history.read_history(memory, "111", OCTOBER + dt.timedelta(days=60))["campaign"].tolist()[-1] == "later"
    assert history.read_history(memory, "222", OCTOBER)["campaign"].tolist() == ["other-portal"]
    assert history.read_history(memory / "nothing here", "111", OCTOBER).empty


@pytest.mark.parametrize(
    "text",
    ['{"portal_id": "111", "date": "2026-0', "[1, 2]", '{"portal_id": "111", "campaign": "x", "run_id": "r"}'],
)
def test_a_file_that_cannot_be_read_is_skipped_with_a_warning(memory, caplog, text):
    file_outcome(memory, "good", when=OCTOBER)
    broken = memory / "broken" / "run"
    broken.mkdir(parents=True)
    (broken / history.OUTCOME_FILE).write_text(text)
    with caplog.at_level(logging.WARNING, logger="reengagement.history"):
        frame = history.read_history(memory, "111", OCTOBER)
    assert frame["campaign"].tolist() == ["good"]
    assert "skipping" in caplog.text and "broken" in caplog.text


def test_a_count_that_is_not_a_number_is_refused_not_charted(memory, caplog):
    facts = file_outcome(memory, "good", when=OCTOBER)
    odd = memory / "odd" / "run"
    odd.mkdir(parents=True)
    (odd / history.OUTCOME_FILE).write_text(json.dumps({**facts, "campaign": "odd", "cohort": "12<b>"}))
    with caplog.at_level(logging.WARNING, logger="reengagement.history"):
        assert history.read_history(memory, "111", OCTOBER)["campaign"].tolist() == ["good"]
    assert "cohort is not a count" in caplog.text


def test_the_chart_escapes_campaign_names_and_marks_a_dry_run(memory):
    file_outcome(memory, "q3 <script>alert(1)</script>", when=OCTOBER - dt.timedelta(days=60), cohort=200)
    file_outcome(memory, "q4 & co", when=OCTOBER, state=report.DRY_RUN, confirmed=31)
    frame = history.read_history(memory, "111", OCTOBER)
    section = history.history_html(frame, "111")
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert "q4 &amp; co" in section and "q4 & co" not in section
    assert section.count("<svg") == 1 and "<table" in section
    assert "Campaign history (portal 111)" in section and "1 earlier run(s) of portal 111" in section
    assert "dry run: would opt out" in section and "would opt out 50" in section
    assert "opted out 50" in section  # the first run's bar's title
    assert ">200<" in section and ">31<" in section  # the figures are written on the bars


def test_with_one_run_the_section_says_there_is_no_earlier_campaign(memory):
    file_outcome(memory, "first", when=OCTOBER)
    section = history.history_html(history.read_history(memory, "111", OCTOBER), "111")
    assert "There is no earlier campaign of portal 111 under this export base" in section
    assert section.count("<rect") >= 3


def test_an_opt_out_that_did_not_run_is_not_charted_as_zero(memory):
    facts = file_outcome(memory, "rejected", when=OCTOBER, state=report.REJECTED)
    (memory / "rejected" / "run-202610010900" / history.OUTCOME_FILE).write_text(
        json.dumps({**facts, "opted_out": None})
    )
    frame = history.read_history(memory, "111", OCTOBER)
    assert pd.isna(frame["opted_out"].iloc[0])
    section = history.history_chart(frame)
    assert "opted out rejected" in section and ">n/a<" in section
    table = history.history_table(frame)
    assert "<td>50</td>" not in table and "<td></td>" in table and "NA" not in table
    written = history.write_history(memory / "rejected" / "run-202610010900", frame, "r").read_text()
    assert next(csv.DictReader(io.StringIO(written)))["opted_out"] == ""


def test_history_csv_carries_the_writing_run_and_neutralises_formulas(memory):
    file_outcome(memory, "=HYPERLINK(1)", when=OCTOBER - dt.timedelta(days=1))
    file_outcome(memory, "q4", when=OCTOBER)
    frame = history.read_history(memory, "111", OCTOBER)
    path = history.write_history(memory / "q4" / "run-202610010900", frame, "this-run")
    assert path.name == "history.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["campaign"] for r in rows] == ["'=HYPERLINK(1)", "q4"]
    assert {r["run_id"] for r in rows} == {"this-run"}
    assert rows[1]["outcome_run_id"] == "manual__2026-10-01T09:00:00+00:00"
    assert rows[1]["date"] == "2026-10-01T09:00:00+00:00"
    assert "quarter 2026-Q4" not in history.describe(frame.iloc[1])
    assert history.describe(frame.iloc[1]).startswith("2026-Q4 q4 (run manual__")


def test_the_page_carries_the_section_and_leaves_missing_figures_empty():
    frame, _ = report.funnel(10, [report.RoundFacts(number=1, recipients=5)], None, report.NOT_RUN)
    page = report.html_page("t", "s", frame, history_html="<section class='history'>h</section>")
    assert page.index("</table><section class='history'>") < page.index("<footer>")
    assert "NA" not in page and "<td></td>" in page  # the opt-out's figures of a run without one


def test_the_chart_draws_the_latest_runs_and_the_table_all_of_them(memory):
    for month in range(14):
        file_outcome(memory, f"m{month:02d}", when=OCTOBER - dt.timedelta(days=30 * month))
    frame = history.read_history(memory, "111", OCTOBER)
    section = history.history_html(frame, "111")
    chart = history.history_chart(frame)
    assert f"the last {history.CHART_RUNS} of 14 runs" in chart
    assert ">m00<" in chart and ">m13<" not in chart
    assert "<td>m13</td>" in section and section.count("<td>manual__") == 14
