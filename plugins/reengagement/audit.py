"""The campaign's audit ledger: every answer HubSpot gave to the opt-out, kept for good, added to by each try.

One ledger per campaign, beside its run folders: a folder of parts, one per opt-out try, each written
once and never rewritten. A rerun therefore adds to the record and never replaces it. Parts (not one
growing file) because object stores such as S3 and GCS cannot append; read together, in name order
(each name starts with the try's UTC start time), they are one ledger.

The ledger holds who was asked to change, when, by which run and try, under which scope and legal
basis (as the campaign recorded it, and as HubSpot's answer recorded it), and what HubSpot answered.
Rows the campaign spared without a call (confirmed, never sent) and dry runs are not changes, so they
are only in the try's result file, not here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

import pandas as pd
from airflow.sdk import ObjectStoragePath

from .storage import restrict, slug

LEDGER_FOLDER = "audit_ledger"
COLUMNS = [
    "time",
    "run_id",
    "try_number",
    "contact_id",
    "email",
    "scope",
    "subscription_id",
    "legal_basis",
    "legal_basis_explanation",
    "hubspot_legal_basis",
    "hubspot_legal_basis_explanation",
    "status",
    "reason",
]
#: HubSpot's answers that mean the contact is opted out now: by this change, or already before it.
CHANGED = frozenset({"REQUESTED_CHANGE_OCCURRED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"})
ALREADY = "NO_STATUS_CHANGE"


def ledger_folder(run_folder: ObjectStoragePath) -> ObjectStoragePath:
    """``<base>/<campaign>/audit_ledger/``: the campaign's, shared by all its runs."""
    return run_folder.parent / LEDGER_FOLDER


def fresh_path(folder: ObjectStoragePath, stem: str, suffix: str = ".csv") -> ObjectStoragePath:
    """A path in ``folder`` that no file has yet: ``stem.csv``, else ``stem.2.csv``, ... (never overwrite)."""
    candidate, number = folder / f"{stem}{suffix}", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}.{number}{suffix}"
    return candidate


def part_stem(started: dt.datetime, run_id: str, try_number: int) -> str:
    """``20261204T140512.345Z__<run>__try-2``: name order is time order."""
    when = started.astimezone(dt.UTC)
    return f"{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}Z__{slug(run_id)}__try-{try_number}"


def _written_order(path: ObjectStoragePath) -> tuple[str, int]:
    """``stem.csv`` before ``stem.2.csv`` before ``stem.10.csv`` (see :func:`fresh_path`)."""
    found = re.fullmatch(r"(.*?)(?:\.(\d+))?\.csv", path.name)
    return (found[1], int(found[2] or 1)) if found else (path.name, 0)


class LedgerPart:
    """One try's part of the ledger, created with its first row (a try that changed nobody adds nothing)."""

    def __init__(self, folder: ObjectStoragePath, stem: str) -> None:
        self.folder, self.stem = folder, stem
        self.path: ObjectStoragePath | None = None
        self.rows = 0
        self._out: IO[str] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Add rows (``COLUMNS``) and flush them: what HubSpot changed is on record before the next batch."""
        if frame.empty:
            return
        from .report import to_csv_rows

        if self._out is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            restrict(self.folder, directory=True)
            self.path = fresh_path(self.folder, self.stem)
            self._out = self.path.open("w")
            restrict(self.path)  # it holds email addresses
            self._out.write(",".join(COLUMNS) + "\n")
        to_csv_rows(frame[COLUMNS], self._out, header=False)
        self._out.flush()
        self.rows += len(frame)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> LedgerPart:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def parts(folder: ObjectStoragePath) -> list[ObjectStoragePath]:
    """The ledger's parts in name (time) order; none when the campaign never changed anybody."""
    if not folder.exists():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.name.endswith(".csv") and not p.name.startswith(".")), key=_written_order
    )


def read_parts(folder: ObjectStoragePath) -> Iterator[pd.DataFrame]:
    """Each part as a frame of strings, addresses as written (neutralised cells restored)."""
    return read_parts_of(parts(folder))


def read_parts_of(found: Iterable[ObjectStoragePath]) -> Iterator[pd.DataFrame]:
    """The given parts (of :func:`parts`), each as a frame of strings, as :func:`read_parts` reads them."""
    from .report import unneutralise

    for part in found:
        with part.open("r") as handle:
            frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
        if list(frame.columns) != COLUMNS:
            raise ValueError(f"{part} is not a part of the audit ledger: its columns are {list(frame.columns)}")
        yield frame.map(unneutralise)


def read_ledger(folder: ObjectStoragePath, run_id: str | None = None) -> pd.DataFrame:
    """The whole ledger (or one run's rows of it), in the order it was written."""
    frames = [f if run_id is None else f[f["run_id"] == run_id] for f in read_parts(folder)]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS, dtype="string")


def opted_out_ids(ledger: pd.DataFrame) -> set[str]:
    """Contact ids HubSpot reported as opted out by any try (changed now, or already opted out)."""
    done = ledger["reason"].isin(CHANGED) | (ledger["reason"] == ALREADY)
    return set(ledger.loc[done & (ledger["status"] != "ERROR"), "contact_id"])


def changed_ids(ledger: pd.DataFrame) -> set[str]:
    """Contact ids whose status a try of the campaign actually changed (HubSpot said so)."""
    return set(ledger.loc[ledger["reason"].isin(CHANGED) & (ledger["status"] != "ERROR"), "contact_id"])


def first_change_at(ledger: pd.DataFrame) -> str | None:
    """When the campaign first asked HubSpot for a change (ISO 8601, UTC), or ``None``."""
    return str(ledger["time"].min()) if len(ledger) else None
