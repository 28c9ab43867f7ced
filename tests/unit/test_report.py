"""The opt-out file format: what the export writes, the opt-out reads back, and what it refuses."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest
from reengagement import audit, report


def written(frame: pd.DataFrame) -> io.StringIO:
    out = io.StringIO()
    report.to_csv_rows(frame, out, header=True)
    out.seek(0)
    return out


def test_header_only_file_reads_as_no_rows():
    assert list(report.read_opt_out_file(io.StringIO("contact_id,email,run_id\n"), "r")) == []


def test_formula_like_cells_are_neutralised_and_read_back_unchanged():
    frame = pd.DataFrame({"contact_id": ["1"], "email": ["-dash@example.com"], "run_id": ["=run"]})
    text = written(frame).getvalue()
    assert "'-dash@example.com" in text and "'=run" in text
    (chunk,) = report.read_opt_out_file(io.StringIO(text))
    assert chunk["email"].tolist() == ["-dash@example.com"]


def test_hubspot_export_columns_become_the_opt_out_columns():
    export = pd.DataFrame({"Record ID": ["7"], "Email": [" Ada@Example.com "]})
    (frame,) = report.from_hubspot_export([export], "run-1")
    assert frame.to_dict("records") == [{"contact_id": "7", "email": "ada@example.com", "run_id": "run-1"}]


def test_export_without_email_column_is_refused():
    with pytest.raises(report.BadOptOutFile, match="lacks the columns"):
        list(report.from_hubspot_export([pd.DataFrame({"Record ID": ["7"]})], "r"))


ADDRESSES = [
    "o'brien@example.com",
    "'lead@example.com",
    "''two@example.com",
    "ada+news@example.com",
    "+plus@example.com",
    '"quoted"@example.com',
    '"john doe"@example.com',
    "josé.garcía@example.com",
    "用户@例子.中国",
    "anna@bücher.de",
    "karl@xn--bcher-kva.de",
    "=sum@example.com",
    "-dash@example.com",
]


def test_every_address_hubspot_holds_is_read_back_exactly():
    frame = pd.DataFrame({"contact_id": [str(i) for i in range(len(ADDRESSES))], "email": ADDRESSES, "run_id": "r"})
    (chunk,) = report.read_opt_out_file(written(frame), "r")
    assert chunk["email"].tolist() == [a.lower() for a in ADDRESSES]


@pytest.mark.parametrize("value", ["", "no-at-sign", "@example.com", "ada@", "tab\t@example.com"])
def test_a_cell_that_is_no_address_at_all_is_refused(value):
    frame = pd.DataFrame({"contact_id": ["1"], "email": [value], "run_id": ["r"]})
    with pytest.raises(report.BadOptOutFile, match="Row 2"):
        list(report.read_opt_out_file(written(frame), "r"))


def test_hubspot_export_with_internal_names_becomes_the_opt_out_columns():
    export = pd.DataFrame({"hs_object_id": ["7"], "email": ["O'Brien@Example.com"]})
    (frame,) = report.from_hubspot_export([export], "run-1")
    assert frame.to_dict("records") == [{"contact_id": "7", "email": "o'brien@example.com", "run_id": "run-1"}]


# -- the campaign report: a function of HubSpot's facts and the audit ledger -------------------------------------


def keys(*names: str) -> np.ndarray:
    return np.unique(report.address_keys(f"{n}@example.com" for n in names))


def ledger_rows(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """``(contact id, name, status, reason)`` rows in written order, as ``audit.read_ledger`` gives them."""
    frame = pd.DataFrame(
        [
            dict.fromkeys(audit.COLUMNS, "")
            | {
                "contact_id": cid,
                "email": f"{name}@example.com",
                "status": status,
                "reason": reason,
                "try_number": "1",
                "time": f"2026-12-04T14:00:0{i}.000+00:00",
            }
            for i, (cid, name, status, reason) in enumerate(rows)
        ],
        columns=audit.COLUMNS,
    )
    return frame.astype("string")


TWO_ROUNDS = [
    report.RoundFacts(
        number=1,
        recipients=7,
        sent=keys("a", "b", "c", "d", "e", "g"),
        clickers=keys("a", "b", "z"),
        unsubscribed=keys("e"),
        delivered=6,
        opened=3,
    ),
    report.RoundFacts(
        number=2,
        recipients=4,
        sent=keys("c", "d", "e"),
        clickers=keys("a", "c", "g"),
        unsubscribed=keys("e", "d"),
        delivered=None,
        opened=None,
    ),
]


def test_each_round_follows_the_definitions():
    frame, totals = report.funnel(10, TWO_ROUNDS, {"opted_out": 1, "already_opted_out": 0, "errors": 0}, report.DONE)
    rows = frame.set_index("round")
    # Round 1: z clicked but was never sent; round 2: a was counted in round 1, g (sent in round 1) counts now.
    assert rows.loc[1, ["cohort", "recipients", "sent", "never_sent", "confirmed", "unconfirmed"]].tolist() == [
        10,
        7,
        6,
        1,
        2,
        4,
    ]
    assert rows.loc[2, ["cohort", "recipients", "sent", "never_sent", "confirmed", "unconfirmed"]].tolist() == [
        4,
        4,
        3,
        1,
        2,
        2,
    ]
    assert rows["unsubscribed_themselves"].tolist() == [1, 1]  # e once, then d
    assert rows.loc[1, "delivered"] == 6 and pd.isna(rows.loc[2, "delivered"])  # metrics not read: empty, not 0
    assert rows["opted_out"].tolist() == [0, 1] and rows["opt_out"].tolist() == ["", "done"]
    assert (totals.sent, totals.confirmed, totals.opted_out) == (6, 4, 1)
    assert totals.rate(totals.confirmed) == pytest.approx(4 / 6)


def test_the_ledger_gives_opted_out_already_and_errors():
    ledger = ledger_rows(
        ("1", "a", "UNSUBSCRIBED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("2", "b", "UNSUBSCRIBED", "NO_STATUS_CHANGE"),
        ("3", "c", "UNSUBSCRIBED", "REQUESTED_CHANGE_OCCURRED"),
        ("4", "d", "ERROR", "HubSpot returned no result"),
        ("6", "f", "ERROR", "boom"),
        ("7", "g", "UNSUBSCRIBED", "NO_STATUS_CHANGE"),  # unsubscribed themselves: on their own line
        # a rerun: everyone opted out already; d changed now; f failed again
        ("3", "c", "UNSUBSCRIBED", "NO_STATUS_CHANGE"),
        ("4", "d", "UNSUBSCRIBED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("6", "f", "ERROR", "boom"),
    )
    figures = report.ledger_figures(ledger, keys("g"))
    assert figures == {"opted_out": 3, "already_opted_out": 1, "errors": 1}
    assert figures["opted_out"] == len(audit.changed_ids(ledger))


def test_the_cut_off_is_the_first_change_so_a_later_rerun_counts_the_same():
    ledger = ledger_rows(
        ("1", "a", "UNSUBSCRIBED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"), ("2", "b", "UNSUBSCRIBED", "NO_STATUS_CHANGE")
    )
    first = report.cut_off(audit.first_change_at(ledger), dt.datetime(2026, 12, 5, tzinfo=dt.UTC))
    later = report.cut_off(audit.first_change_at(ledger), dt.datetime(2027, 1, 5, tzinfo=dt.UTC))
    assert first == later == (dt.datetime(2026, 12, 4, 14, 0, 0, tzinfo=dt.UTC), True)
    now = dt.datetime(2026, 12, 5, 1, 2, 3, 456000, tzinfo=dt.UTC)
    assert report.cut_off(None, now) == (now, False)
    assert report.epoch_ms(now) == 1796432523456  # exact, no float rounding


class FakeHook:
    """HubSpot's events and list sizes, as the hook pages them (``end_ms`` ignored, as a lax server might)."""

    def __init__(self, events: dict[tuple[str, str], list[dict]], sizes: dict[str, int]) -> None:
        self.events, self.calls, self.sizes = events, [], sizes

    def get_list(self, list_id, **kwargs):
        return {"listId": list_id, "processingStatus": "COMPLETE", "size": self.sizes[list_id]}

    def iter_email_events(self, campaign_id, event_type, **kwargs):
        self.calls.append((str(campaign_id), event_type, kwargs.get("end_ms")))
        yield from self.events.get((str(campaign_id), event_type), [])


CTA = "https://example.com/thanks?campaign=c&round=1"


def event(name: str, created: int, **more) -> dict:
    return {"recipient": f"{name.upper()}@Example.com", "created": created, **more}


def test_the_operator_reads_clicks_and_unsubscribes_up_to_the_cut_off_and_skips_unsent_rounds():
    from reengagement.operators.reporting import CampaignReportOperator, EventsUntil

    hook = FakeHook(
        {
            ("11", "SENT"): [event(n, 100) for n in ("a", "b", "c", "d", "e")],
            ("11", "CLICK"): [
                event("a", 200, url=CTA + "&utm_source=hs_email&_hsenc=x"),
                event("b", 200, url="https://example.com/thanks?campaign=c&round=2"),  # another CTA
                event("c", 200, url=CTA, filteredEvent=True),  # a scanner
                event("d", 900, url=CTA),
            ],  # after the cut-off
            ("11", "STATUSCHANGE"): [
                event("e", 300, source="SOURCE_RECIPIENT", portalSubscriptionStatus="UNSUBSCRIBED"),
                event("b", 300, source="SOURCE_HUBSPOT_CUSTOMER", portalSubscriptionStatus="UNSUBSCRIBED"),
            ],  # the campaign's own change
            ("11", "UNSUBSCRIBED"): [event("b", 950)],  # after the cut-off
        },
        {"L1": 6},
    )
    operator = CampaignReportOperator(
        task_id="campaign_report",
        campaign="c",
        unengaged={"size": 9},
        recipients=json.dumps([{"list_id": "L1", "size": 6}, None, None]),
        emails=json.dumps([{"email_id": "E1", "campaign_ids": ["11"], "cta_url": CTA}, None, None]),
        metrics=[{"delivered": 5, "open": 2}],
    )
    operator.__dict__["hook"] = hook
    (facts,) = operator._rounds(EventsUntil(hook, 500))
    frame, _ = report.funnel(9, [facts], None, report.NOT_RUN)
    row = frame.iloc[0]
    assert row[
        [
            "recipients",
            "sent",
            "never_sent",
            "delivered",
            "opened",
            "confirmed",
            "unconfirmed",
            "unsubscribed_themselves",
        ]
    ].tolist() == [6, 5, 1, 5, 2, 1, 4, 1]
    assert {end for _, _, end in hook.calls} == {500}  # HubSpot is asked for events up to the cut-off too


def test_a_dry_run_shows_its_would_be_figures_marked_as_a_dry_run():
    summary = {
        "rows": 10,
        "to_opt_out": 8,
        "opted_out": 0,
        "already_opted_out": 0,
        "unsubscribed_themselves_in_file": 1,
        "errors": 0,
        "dry_run": True,
    }
    state = report.opt_out_state(summary)
    frame, totals = report.funnel(12, TWO_ROUNDS[:1], report.dry_run_figures(summary), state)
    assert state == report.DRY_RUN and frame["opt_out"].tolist() == ["dry run"]
    assert frame["opted_out"].tolist() == [7]
    text = report.summary("c", 12, frame, totals, state)
    assert "the dry run would opt out 7" in text
    lines = dict(report.header_lines("logical date x", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), False, totals, state))
    assert lines["Would opt out (dry run)"] == "7 of 6 sent (116.7%)"
    assert "would opt out" in report.html_page("t", text, frame, lines=list(lines.items()))


@pytest.mark.parametrize(
    ("rejected", "state", "says"),
    [
        (False, "did not run", "the opt-out did not run, nobody was opted out"),
        (True, "rejected", "the opt-out was rejected at the approval step; nobody was opted out"),
    ],
)
def test_an_opt_out_that_did_not_run_says_so_instead_of_zero(rejected, state, says):
    assert report.opt_out_state(None, rejected=rejected) == state
    frame, totals = report.funnel(10, TWO_ROUNDS, None, state)
    out = io.StringIO()
    frame.to_csv(out, index=False)
    header, _, last = out.getvalue().splitlines()
    cells = dict(zip(header.split(","), last.split(","), strict=True))
    assert cells["opt_out"] == state
    assert all(cells[figure] == "" for figure in report.OPT_OUT_FIGURES)
    assert totals.opted_out is None
    text = report.summary("c", 10, frame, totals, state)
    assert says in text
    assert state in report.html_page("t", text, frame)


def test_an_opt_out_that_failed_part_way_is_reported_from_its_ledger():
    assert report.opt_out_state(None, rejected=False, ledger_rows=3) == report.UNFINISHED
    frame, totals = report.funnel(
        10, TWO_ROUNDS, {"opted_out": 2, "already_opted_out": 0, "errors": 1}, report.UNFINISHED
    )
    assert "the opt-out did not finish; its tries opted out 2" in report.summary(
        "c", 10, frame, totals, report.UNFINISHED
    )


def test_rounds_not_sent_have_no_row_and_nobody_unengaged_says_so():
    frame, _ = report.funnel(10, TWO_ROUNDS[:1], None, report.NOT_RUN)
    assert frame["round"].tolist() == [1] and frame["opt_out"].tolist() == ["did not run"]
    empty, nothing = report.funnel(0, [], None, report.NOT_RUN)
    assert list(empty.columns) == report.FUNNEL_COLUMNS and empty.empty and nothing.sent == 0
    assert "nobody is unengaged" in report.summary("c", 0, empty, nothing, report.NOT_RUN)
    assert "No round ran" in report.html_page("t", "s", empty)


def test_the_page_has_the_run_date_params_rates_and_definitions():
    frame, totals = report.funnel(10, TWO_ROUNDS, {"opted_out": 1, "already_opted_out": 0, "errors": 0}, report.DONE)
    lines = report.header_lines(
        "logical date 2026-10-01T00:00:00+00:00", dt.datetime(2026, 12, 4, tzinfo=dt.UTC), True, totals, report.DONE
    )
    params = report.shown_params({"rounds": 2, "dry_run": False, "focus_email": None, "api_token": "s3cret"})
    page = report.html_page("Permission pass c", "s", frame, lines=lines, params=params)
    assert "logical date 2026-10-01T00:00:00+00:00" in page
    assert "2026-12-04T00:00:00.000+00:00 (the opt-out&#x27;s first change, from the audit ledger)" in page
    assert "4 of 6 sent (66.7%)" in page and "1 of 6 sent (16.7%)" in page
    assert "<th>rounds</th><td>2</td>" in page and "<th>focus_email</th><td></td>" in page
    assert "s3cret" not in page and "api_token" not in page
    assert page.count("<svg") == 2 and "<footer><h3>Definitions</h3>" in page
    assert all(f"<dt>{name}</dt>" in page for name, _ in report.DEFINITIONS)
