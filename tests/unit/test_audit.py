"""The audit ledger: a folder of parts written once each, read back in name (time) order as one ledger."""

from __future__ import annotations

import datetime as dt
import stat

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from reengagement import audit

CHANGED = "REQUESTED_CHANGE_OCCURRED"
ALL_GONE = "UNSUBSCRIBE_FROM_ALL_OCCURRED"


def row(
    contact_id: str,
    reason: str,
    *,
    status: str = "UNSUBSCRIBED",
    time: str = "2026-12-04T14:05:12.345+00:00",
    run_id: str = "manual__1",
    try_number: str = "1",
    email: str | None = None,
) -> dict[str, str]:
    return {
        "time": time,
        "run_id": run_id,
        "try_number": try_number,
        "contact_id": contact_id,
        "email": email if email is not None else f"c{contact_id}@example.com",
        "scope": "subscription_type",
        "subscription_id": "42",
        "legal_basis": "LEGITIMATE_INTEREST_OTHER",
        "legal_basis_explanation": "inactive for a year",
        "hubspot_legal_basis": "LEGITIMATE_INTEREST_OTHER",
        "hubspot_legal_basis_explanation": "inactive for a year",
        "status": status,
        "reason": reason,
    }


def frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=audit.COLUMNS)


def ledger_of(*rows: dict[str, str]) -> pd.DataFrame:
    return frame(*rows).astype("string")


def write_part(folder: ObjectStoragePath, stem: str, *rows: dict[str, str]) -> ObjectStoragePath:
    with audit.LedgerPart(folder, stem) as part:
        part.write(frame(*rows))
    assert part.path is not None
    return part.path


@pytest.fixture
def local(tmp_path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}") / "campaign" / audit.LEDGER_FOLDER


@pytest.fixture(params=["local", "memory"])
def folder(request) -> ObjectStoragePath:
    return request.getfixturevalue(request.param)


def test_the_ledger_sits_beside_the_campaigns_run_folders(tmp_path):
    run = ObjectStoragePath(f"file://{tmp_path}") / "campaign" / "manual__1"
    assert audit.ledger_folder(run) == ObjectStoragePath(f"file://{tmp_path}") / "campaign" / "audit_ledger"


def test_part_stems_are_utc_with_milliseconds_and_sort_in_time_order():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    started = dt.datetime(2026, 12, 4, 16, 5, 12, 345678, tzinfo=plus_two)
    assert audit.part_stem(started, "manual__2026-12-04T14:00:00+00:00", 2) == (
        "20261204T140512.345Z__manual__2026-12-04T14_00_00_00_00__try-2"
    )
    times = [dt.datetime(2026, 12, 4, 14, 5, 12, ms * 1000, tzinfo=dt.UTC) for ms in (999, 5, 120)]
    times.append(dt.datetime(2026, 12, 4, 13, 59, 59, tzinfo=dt.UTC))
    stems = [audit.part_stem(t, "run", 1) for t in times]
    assert sorted(stems) == [audit.part_stem(t, "run", 1) for t in sorted(times)]


def test_fresh_path_never_names_an_existing_file(folder):
    folder.mkdir(parents=True, exist_ok=True)
    first = audit.fresh_path(folder, "stem")
    assert first.name == "stem.csv" and not first.exists()
    names = []
    for _ in range(3):
        path = audit.fresh_path(folder, "stem")
        assert not path.exists()
        path.write_text("taken")
        names.append(path.name)
    assert names == ["stem.csv", "stem.2.csv", "stem.3.csv"]
    assert audit.fresh_path(folder, "stem", ".json").name == "stem.json"


def test_a_try_that_changed_nobody_adds_no_part(folder):
    with audit.LedgerPart(folder, "20261204T140512.345Z__run__try-1") as part:
        part.write(frame())
    assert part.path is None and part.rows == 0
    assert not folder.exists() and audit.parts(folder) == []


def test_a_part_is_flushed_batch_by_batch_and_never_overwritten(folder):
    stem = "20261204T140512.345Z__run__try-1"
    part = audit.LedgerPart(folder, stem)
    part.write(frame(row("1", CHANGED)))
    assert part.path is not None and part.path.name == f"{stem}.csv"
    # on record before the part is closed: a crash after this batch still leaves it
    assert audit.read_ledger(folder)["contact_id"].tolist() == ["1"]
    part.write(frame(row("2", CHANGED), row("3", "NO_STATUS_CHANGE")))
    part.close()
    assert part.rows == 3
    first = part.path.read_text()
    assert first.splitlines()[0] == ",".join(audit.COLUMNS) and len(first.splitlines()) == 4

    again = write_part(folder, stem, row("4", CHANGED, try_number="1"))
    assert again.name == f"{stem}.2.csv"
    assert part.path.read_text() == first
    assert audit.read_ledger(folder)["contact_id"].tolist() == ["1", "2", "3", "4"]


def test_a_local_part_and_its_folder_are_owner_only(local):
    path = write_part(local, "20261204T140512.345Z__run__try-1", row("1", CHANGED))
    assert stat.S_IMODE(local.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_parts_read_back_in_name_order_as_one_ledger(folder):
    late = write_part(folder, "20261204T150000.000Z__run__try-2", row("3", CHANGED, try_number="2"))
    early = write_part(folder, "20261204T140000.000Z__run__try-1", row("1", CHANGED), row("2", CHANGED))
    for number in range(2, 11):  # the same stem written again and again: .2 ... .10 after the first
        audit.fresh_path(folder, early.stem).write_text(early.read_text().replace(",1,c1@", f",1{number},c1@"))
    (folder / ".hidden.csv").write_text("not,a,part\n")
    (folder / "notes.txt").write_text("not a part")

    names = [p.name for p in audit.parts(folder)]
    assert names == [
        "20261204T140000.000Z__run__try-1.csv",
        *(f"20261204T140000.000Z__run__try-1.{n}.csv" for n in range(2, 11)),
        "20261204T150000.000Z__run__try-2.csv",
    ]
    assert late.name == names[-1]
    ledger = audit.read_ledger(folder)
    assert list(ledger.columns) == audit.COLUMNS
    assert ledger["contact_id"].tolist() == ["1", "2", *(x for n in range(2, 11) for x in (f"1{n}", "2")), "3"]
    assert ledger.index.tolist() == list(range(len(ledger)))


def test_one_runs_rows_can_be_read_alone(folder):
    write_part(folder, "20261204T140000.000Z__a__try-1", row("1", CHANGED, run_id="a"))
    write_part(folder, "20261204T150000.000Z__b__try-1", row("2", CHANGED, run_id="b"))
    write_part(folder, "20261204T160000.000Z__a__try-2", row("3", CHANGED, run_id="a", try_number="2"))
    assert audit.read_ledger(folder, "a")["contact_id"].tolist() == ["1", "3"]
    assert audit.read_ledger(folder, "b")["contact_id"].tolist() == ["2"]
    nobody = audit.read_ledger(folder, "c")
    assert nobody.empty and list(nobody.columns) == audit.COLUMNS


def test_a_missing_or_empty_ledger_reads_as_empty(folder):
    for _ in range(2):
        ledger = audit.read_ledger(folder)
        assert ledger.empty and list(ledger.columns) == audit.COLUMNS
        assert audit.opted_out_ids(ledger) == set() and audit.changed_ids(ledger) == set()
        assert audit.first_change_at(ledger) is None
        folder.mkdir(parents=True, exist_ok=True)
    assert audit.parts(folder) == []


def test_a_file_of_another_shape_is_refused(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "20261204T140000.000Z__run__try-1.csv").write_text("contact_id,email\n1,a@example.com\n")
    with pytest.raises(ValueError, match="not a part of the audit ledger"):
        audit.read_ledger(folder)


def test_awkward_addresses_and_explanations_survive_the_csv_round_trip(folder):
    awkward = [
        "o'brien@example.com",
        '"quoted, with comma"@example.com',
        "=cmd|' /C calc'!A0@example.com",
        "+plus@example.com",
        "'already quoted@example.com",
        "ünïcödé@exämple.com",
    ]
    rows = [row(str(i), CHANGED, email=email) for i, email in enumerate(awkward)]
    rows[0]["legal_basis_explanation"] = "asked, by phone, on 'Monday'"
    write_part(folder, "20261204T140000.000Z__run__try-1", *rows)
    text = audit.parts(folder)[0].read_text()
    assert "\n=cmd" not in text and ",=cmd" not in text  # no cell a spreadsheet would run
    ledger = audit.read_ledger(folder)
    assert ledger["email"].tolist() == awkward
    assert ledger.loc[0, "legal_basis_explanation"] == "asked, by phone, on 'Monday'"
    assert ledger["contact_id"].tolist() == [str(i) for i in range(len(awkward))]


def test_opted_out_counts_changes_and_those_already_opted_out_but_not_errors():
    ledger = ledger_of(
        row("1", CHANGED),
        row("2", ALL_GONE),
        row("3", "NO_STATUS_CHANGE"),
        row("4", "Invalid email", status="ERROR"),
        row("5", "NO_STATUS_CHANGE", status="ERROR"),
        row("6", "HubSpot returned no result", status="ERROR"),
        row("6", CHANGED, try_number="2"),  # a later try got through
        row("7", "SOMETHING_ELSE"),
        row("8", CHANGED, status="ERROR"),  # an error is never a change, whatever its reason says
    )
    assert audit.opted_out_ids(ledger) == {"1", "2", "3", "6"}
    assert audit.changed_ids(ledger) == {"1", "2", "6"}


def test_opted_out_and_changed_ids_from_a_ledger_read_back(folder):
    write_part(folder, "20261204T140000.000Z__run__try-1", row("1", CHANGED), row("2", "boom", status="ERROR"))
    write_part(folder, "20261204T150000.000Z__run__try-2", row("2", "NO_STATUS_CHANGE", try_number="2"))
    ledger = audit.read_ledger(folder)
    assert audit.opted_out_ids(ledger) == {"1", "2"}
    assert audit.changed_ids(ledger) == {"1"}


def test_first_change_at_is_the_earliest_time_whatever_the_order():
    ledger = ledger_of(
        row("1", CHANGED, time="2026-12-04T14:05:12.345+00:00"),
        row("2", CHANGED, time="2026-12-04T09:00:00.001+00:00"),
        row("3", "boom", status="ERROR", time="2026-12-04T11:00:00.000+00:00"),
    )
    assert audit.first_change_at(ledger) == "2026-12-04T09:00:00.001+00:00"
    assert audit.first_change_at(ledger_of(row("1", CHANGED, time="2026-12-05T00:00:00.000+00:00"))) == (
        "2026-12-05T00:00:00.000+00:00"
    )
