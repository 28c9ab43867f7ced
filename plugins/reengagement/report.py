"""Files of the campaign, with pandas: the opt-out list as exported, the opt-out result, the funnel.

Pure: frames in, frames or text out. Reading and writing happen in the operators, through
ObjectStoragePath, so the same code writes to a local folder, S3 or GCS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np
import pandas as pd

#: Columns of the opt-out list the project writes (and accepts back, if someone edits it).
OPT_OUT_COLUMNS = ["contact_id", "email", "run_id"]
RESULT_COLUMNS = ["contact_id", "email", "status", "reason", "run_id"]
#: HubSpot's list export names its columns by internal property name when asked for ``NAMES`` (what the
#: export task asks for), by property label otherwise; either is read.
HUBSPOT_COLUMNS = {"hs_object_id": "contact_id", "email": "email"}
HUBSPOT_LABELS = {"Record ID": "contact_id", "Email": "email"}
CHUNK_ROWS = 10_000

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A cell that starts with the neutralising quote is quoted too, so reading back is exact for every address.
_QUOTED_START = (*_FORMULA_START, "'")


class BadOptOutFile(ValueError):
    """The opt-out CSV is not in the shape the project wrote; nothing has been changed in HubSpot."""


def neutralise(value: object) -> object:
    """Prefix a cell a spreadsheet would run as a formula with ``'`` (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(_QUOTED_START):
        return "'" + value
    return value


def unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_QUOTED_START) else value


def is_address(value: str) -> bool:
    """An address HubSpot could hold: something on each side of the last ``@``, no control characters.

    Deliberately loose: HubSpot exports quotes, apostrophes, plus signs, non-ASCII local parts and
    internationalised domains, and a stricter pattern once refused a whole file for one apostrophe.
    Whether a row belongs in the file is decided by its structure (run id, numeric id, exported row hash).
    """
    local, at, domain = value.rpartition("@")
    return bool(local and at and domain) and value.isprintable()


def normalise_email(value: object) -> str:
    return unneutralise(str(value).strip()).strip().lower() if isinstance(value, str) else ""


def from_hubspot_export(chunks: Iterable[pd.DataFrame], run_id: str) -> Iterator[pd.DataFrame]:
    """HubSpot's export of list 2, as the project's opt-out list: id, normalised email, run id."""
    for chunk in chunks:
        names = HUBSPOT_COLUMNS if all(c in chunk.columns for c in HUBSPOT_COLUMNS) else HUBSPOT_LABELS
        missing = [c for c in names if c not in chunk.columns]
        if missing:
            raise BadOptOutFile(f"HubSpot's export lacks the columns {missing}; it has {list(chunk.columns)}")
        frame = chunk.rename(columns=names)[["contact_id", "email"]].copy()
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
        if chunk.empty:
            continue
        chunk = chunk.copy()
        chunk["email"] = chunk["email"].map(normalise_email)
        chunk["contact_id"] = chunk["contact_id"].map(lambda v: unneutralise(str(v).strip()))
        _check_chunk(chunk, number, run_id)
        yield chunk


def _check_chunk(chunk: pd.DataFrame, number: int, run_id: str | None) -> None:
    first_row = number * CHUNK_ROWS + 2  # 1-based, after the header
    bad_email = ~chunk["email"].map(is_address).astype(bool)
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


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """64-bit hashes of (contact id, normalised email) per row: what HubSpot exported, in 8 bytes a row.

    The export keeps them beside the CSV; the opt-out refuses a row whose key is not among them (a row
    changed or added by hand), while rows removed by hand are simply not opted out.
    """
    pairs = (f"{str(contact_id).strip()}\x00{email}" for contact_id, email in zip(frame["contact_id"], frame["email"],
                                                                                strict=True))
    return np.fromiter((int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "big") for p in pairs),
                       dtype=np.uint64, count=len(frame))


def duplicate_emails(hashes: np.ndarray) -> int:
    """How many rows repeat an earlier email (``hashes`` from :func:`email_hashes`)."""
    return int(len(hashes) - len(np.unique(hashes)))


def email_hashes(emails: pd.Series) -> np.ndarray:
    """64-bit hashes of emails: duplicates of a million rows can be found in 8 MB."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(), "big") for e in emails),
                       dtype=np.uint64, count=len(emails))


#: What the opt-out found and did, on the last round's row; empty when it did not run.
OPT_OUT_FIGURES = ["never_sent", "spared_confirmed", "unsubscribed_themselves", "opted_out", "errors"]
FUNNEL_COLUMNS = ["round", "cohort", "recipients", "sent", "delivered", "opened", "confirmed", "unconfirmed",
                  *OPT_OUT_FIGURES, "opt_out"]
#: How the opt-out ended, in the ``opt_out`` column.
DONE, DRY_RUN, NOT_RUN, REJECTED = "done", "dry run", "did not run", "rejected"


def opt_out_state(opt_out: dict[str, object] | None, *, rejected: bool = False) -> str:
    """``done``, ``dry run``, ``rejected`` or ``did not run``: a funnel must never show a failed opt-out as 0."""
    if opt_out:
        return DRY_RUN if opt_out.get("dry_run") else DONE
    return REJECTED if rejected else NOT_RUN


def funnel(rounds: list[dict[str, int]], opt_out: dict[str, object] | None, *, rejected: bool = False) -> pd.DataFrame:
    """One row per round that ran; the opt-out is on the last round, whose list 2 it applied to.

    When the opt-out did not run, its figures are empty (not 0) and ``opt_out`` says why.
    """
    state = opt_out_state(opt_out, rejected=rejected)
    rows = []
    for number, r in enumerate(rounds, start=1):
        last = number == len(rounds)
        row: dict[str, object] = {
            "round": number, "cohort": r.get("cohort", 0), "recipients": r.get("recipients", 0),
            "sent": r.get("sent", 0), "delivered": r.get("delivered", 0), "opened": r.get("opened", 0),
            "confirmed": r.get("confirmed", 0), "unconfirmed": r.get("unconfirmed", 0),
            "opt_out": state if last else ""}
        for figure in OPT_OUT_FIGURES:  # the opt-out task's summary uses the same keys
            row[figure] = (_count_of(opt_out, figure) if opt_out else pd.NA) if last else 0
        rows.append(row)
    frame = pd.DataFrame(rows, columns=FUNNEL_COLUMNS)
    return frame.astype({figure: "Int64" for figure in OPT_OUT_FIGURES})


def _count_of(summary: dict[str, object], key: str) -> int:
    value = summary.get(key)
    return int(value) if isinstance(value, (int, float, str)) and str(value).strip() else 0


def text_table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if len(frame) else "(no round ran)"


def html_page(title: str, summary: str, frame: pd.DataFrame) -> str:
    """A self-contained page: the funnel as horizontal bars (inline SVG) above the table."""
    from html import escape

    stages = ["recipients", "sent", "delivered", "opened", "confirmed", "unconfirmed", "never_sent",
              "unsubscribed_themselves", "opted_out"]
    colours = ["#90caf9", "#64b5f6", "#42a5f5", "#7e57c2", "#66bb6a", "#ffa726", "#bdbdbd", "#8d6e63", "#ef5350"]
    charts = []
    for _, row in frame.iterrows():
        top = max(int(row["recipients"]), 1)
        bars = []
        for i, (stage, colour) in enumerate(zip(stages, colours, strict=True)):
            ran = not pd.isna(row[stage])
            value = int(row[stage]) if ran else 0
            width = 520 * value / top
            y = 10 + i * 30
            label = f"{value:,}" if ran else escape(str(row["opt_out"]))
            bars.append(f'<text x="0" y="{y + 16}" font-size="13">{escape(stage.replace("_", " "))}</text>'
                        f'<rect x="170" y="{y}" width="{width:.1f}" height="22" fill="{colour}" rx="3"/>'
                        f'<text x="{176 + width:.1f}" y="{y + 16}" font-size="13">{label}</text>')
        height = 20 + 30 * len(stages)
        charts.append(f'<h2>Round {int(row["round"])}</h2><svg xmlns="http://www.w3.org/2000/svg" width="820" '
                      f'height="{height}" role="img" aria-label="funnel of round {int(row["round"])}">'
                      + "".join(bars) + "</svg>")
    table = (frame.to_html(index=False, border=0, classes="funnel", na_rep="") if len(frame)
             else "<p>No round ran.</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table.funnel{border-collapse:collapse}"
            "table.funnel td,table.funnel th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}"
            f"</style></head><body><h1>{escape(title)}</h1><p>{escape(summary)}</p>{''.join(charts)}{table}"
            "</body></html>")
