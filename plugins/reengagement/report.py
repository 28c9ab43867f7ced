"""Files of the campaign, with pandas: the opt-out list as exported, the opt-out result, the funnel.

Pure: frames in, frames or text out. Reading and writing happen in the operators, through
ObjectStoragePath, so the same code writes to a local folder, S3 or GCS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np
import pandas as pd

#: Columns of the opt-out list the project writes (and accepts back, if someone edits it).
OPT_OUT_COLUMNS = ["contact_id", "email", "run_id"]
RESULT_COLUMNS = ["contact_id", "email", "status", "reason", "run_id"]
#: HubSpot's list export names columns by property label.
HUBSPOT_COLUMNS = {"Record ID": "contact_id", "Email": "email"}
CHUNK_ROWS = 10_000

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")


class BadOptOutFile(ValueError):
    """The opt-out CSV is not in the shape the project wrote; nothing has been changed in HubSpot."""


def neutralise(value: object) -> object:
    """Prefix a cell a spreadsheet would run as a formula with ``'`` (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def normalise_email(value: object) -> str:
    return unneutralise(str(value).strip()).strip().lower() if isinstance(value, str) else ""


def from_hubspot_export(chunks: Iterable[pd.DataFrame], run_id: str) -> Iterator[pd.DataFrame]:
    """HubSpot's export of list 2, as the project's opt-out list: id, normalised email, run id."""
    for chunk in chunks:
        missing = [c for c in HUBSPOT_COLUMNS if c not in chunk.columns]
        if missing:
            raise BadOptOutFile(f"HubSpot's export lacks the columns {missing}; it has {list(chunk.columns)}")
        frame = chunk.rename(columns=HUBSPOT_COLUMNS)[["contact_id", "email"]].copy()
        frame["contact_id"] = frame["contact_id"].astype("string")
        frame["email"] = frame["email"].map(normalise_email)
        frame["run_id"] = run_id
        yield frame


def to_csv_rows(frame: pd.DataFrame, out: IO[str], *, header: bool) -> None:
    """Write a frame with every text cell neutralised against spreadsheet formulas."""
    safe = frame.astype("object").map(neutralise)
    safe.to_csv(out, index=False, header=header, lineterminator="\n")


def read_opt_out_file(handle: IO[str], run_id: str | None = None) -> Iterator[pd.DataFrame]:
    """Read an opt-out list back in chunks, refusing any shape the project did not write."""
    reader = pd.read_csv(handle, dtype="string", keep_default_na=False, chunksize=CHUNK_ROWS)
    for number, chunk in enumerate(reader):
        if list(chunk.columns) != OPT_OUT_COLUMNS:
            raise BadOptOutFile(f"The opt-out CSV must have the columns {OPT_OUT_COLUMNS}, not {list(chunk.columns)}")
        chunk = chunk.copy()
        chunk["email"] = chunk["email"].map(normalise_email)
        chunk["contact_id"] = chunk["contact_id"].map(lambda v: unneutralise(str(v).strip()))
        _check_chunk(chunk, number, run_id)
        yield chunk


def _check_chunk(chunk: pd.DataFrame, number: int, run_id: str | None) -> None:
    first_row = number * CHUNK_ROWS + 2  # 1-based, after the header
    bad_email = ~chunk["email"].map(lambda e: bool(_EMAIL.match(e)))
    if bad_email.any():
        row = int(np.flatnonzero(bad_email.to_numpy())[0])
        raise BadOptOutFile(f"Row {first_row + row}: {chunk['email'].iloc[row]!r} is not an email address")
    bad_id = ~chunk["contact_id"].str.fullmatch(r"\d+").fillna(False)
    if bad_id.any():
        row = int(np.flatnonzero(bad_id.to_numpy())[0])
        raise BadOptOutFile(f"Row {first_row + row}: contact id {chunk['contact_id'].iloc[row]!r} is not a number")
    if run_id is not None and (chunk["run_id"] != run_id).any():
        row = int(np.flatnonzero((chunk["run_id"] != run_id).to_numpy())[0])
        raise BadOptOutFile(f"Row {first_row + row} belongs to run {chunk['run_id'].iloc[row]!r}, not {run_id!r}")


def duplicate_emails(hashes: np.ndarray) -> int:
    """How many rows repeat an earlier email (``hashes`` from :func:`email_hashes`)."""
    return int(len(hashes) - len(np.unique(hashes)))


def email_hashes(emails: pd.Series) -> np.ndarray:
    """64-bit hashes of emails: duplicates of a million rows can be found in 8 MB."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(), "big") for e in emails),
                       dtype=np.uint64, count=len(emails))
