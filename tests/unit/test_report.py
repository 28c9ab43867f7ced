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
    frame = report.funnel([{"recipients": 10, "sent": 10}, {"recipients": 6, "sent": 6}], opted_out=4, errors=1)
    assert frame["opted_out"].tolist() == [0, 4] and frame["errors"].tolist() == [0, 1]
    page = report.html_page("t", "summary", frame)
    assert page.count("<svg") == 2 and "summary" in page
