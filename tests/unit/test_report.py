"""The opt-out file format: what the export writes, the opt-out reads back, and what it refuses."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from reengagement import report


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


def test_funnel_counts_the_opt_out_on_the_last_round():
    opt_out = {"opted_out": 4, "errors": 1, "never_sent": 2, "spared_confirmed": 1, "unsubscribed_themselves": 3}
    frame = report.funnel([{"recipients": 10, "sent": 10}, {"recipients": 6, "sent": 6}], opt_out)
    assert frame["opted_out"].tolist() == [0, 4] and frame["errors"].tolist() == [0, 1]
    assert frame["never_sent"].tolist() == [0, 2] and frame["unsubscribed_themselves"].tolist() == [0, 3]
    assert frame["opt_out"].tolist() == ["", "done"]
    page = report.html_page("t", "summary", frame)
    assert page.count("<svg") == 2 and "summary" in page and "unsubscribed themselves" in page


@pytest.mark.parametrize(("rejected", "state"), [(False, "did not run"), (True, "rejected")])
def test_a_funnel_whose_opt_out_did_not_run_says_so_instead_of_zero(rejected, state):
    frame = report.funnel([{"recipients": 10, "sent": 10}], None, rejected=rejected)
    out = io.StringIO()
    frame.to_csv(out, index=False)
    header, row = out.getvalue().splitlines()
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["opt_out"] == state
    assert all(cells[figure] == "" for figure in report.OPT_OUT_FIGURES)
    assert state in report.html_page("t", "s", frame)


ADDRESSES = ["o'brien@example.com", "'lead@example.com", "''two@example.com", "ada+news@example.com",
             "+plus@example.com", '"quoted"@example.com', '"john doe"@example.com', "josé.garcía@example.com",
             "用户@例子.中国", "anna@bücher.de", "karl@xn--bcher-kva.de", "=sum@example.com", "-dash@example.com"]


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
