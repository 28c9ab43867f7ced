"""The campaign history of a HubSpot portal: each run's outcome in a small file, read back for the report.

Each run's report writes ``outcome.json`` in its run folder (``<base>/<campaign>/<run>/``). A later report
scans the export base for the outcomes of the same portal, so list health over time is visible in one
chart. Only runs under the same export base are seen: the files are the history, not HubSpot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd
from airflow.sdk import ObjectStoragePath

from .audit import LEDGER_FOLDER
from .report import DRY_RUN, Totals, to_csv_rows
from .storage import restrict

log = logging.getLogger(__name__)

OUTCOME_FILE = "outcome.json"
HISTORY_FILE = "history.csv"
COLUMNS = [
    "date",
    "quarter",
    "campaign",
    "run_id",
    "dag_id",
    "portal_id",
    "cohort",
    "sent",
    "confirmed",
    "opted_out",
    "opt_out",
]
COUNTS = ["cohort", "sent", "confirmed", "opted_out"]
#: The chart draws the latest runs only, so a portal with years of campaigns still gets a readable page.
CHART_RUNS = 12


def run_date(logical: dt.datetime | None, run_after: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """The date a run is filed under: its logical date, else when it was due (Airflow 3), else now; in UTC."""
    when = logical or run_after or now
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def quarter(when: dt.datetime) -> str:
    """``2026-Q4``: how campaigns are named and compared."""
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def outcome(
    *,
    portal_id: str,
    dag_id: str,
    campaign: str,
    run_id: str,
    when: dt.datetime,
    cohort: int | None,
    totals: Totals,
    state: str,
) -> dict[str, Any]:
    """The run's line of history, from the same facts as its report (a rerun writes the same)."""
    return {
        "portal_id": str(portal_id),
        "dag_id": dag_id,
        "campaign": campaign,
        "run_id": run_id,
        "date": when.isoformat(),
        "quarter": quarter(when),
        "cohort": cohort,
        "sent": totals.sent,
        "confirmed": totals.confirmed,
        "opted_out": totals.opted_out,
        "opt_out": state,
    }


def write_outcome(folder: ObjectStoragePath, facts: Mapping[str, Any]) -> ObjectStoragePath:
    path = folder / OUTCOME_FILE
    with path.open("w") as out:
        json.dump(dict(facts), out, indent=2)
        out.write("\n")
    restrict(path)
    return path


def read_history(base: ObjectStoragePath, portal_id: str, until: dt.datetime) -> pd.DataFrame:
    """Outcomes of ``portal_id``'s runs under ``base`` dated at or before ``until``, oldest first.

    Later runs are left out, so an old run's report reads the same after newer campaigns. A file that
    cannot be read is logged and skipped: the history never stops the report.
    """
    rows = [facts for path in _outcome_files(base) if (facts := _read_outcome(path)) is not None]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"], utc=True, format="ISO8601")
    keep = (frame["portal_id"] == str(portal_id)) & (frame["date"] <= _utc(pd.Timestamp(until)))
    frame = frame[keep].sort_values(["date", "campaign", "run_id"], kind="stable").reset_index(drop=True)
    return frame.astype({c: "Int64" for c in COUNTS})


def _utc(when: pd.Timestamp) -> pd.Timestamp:
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def _outcome_files(base: ObjectStoragePath) -> list[ObjectStoragePath]:
    """``<base>/<campaign>/<run>/outcome.json``; the campaigns' ledger folders are not runs."""
    if not base.exists():
        return []
    found = []
    for campaign in base.iterdir():
        if not campaign.is_dir() or campaign.name.startswith("."):
            continue
        for run in campaign.iterdir():
            candidate = run / OUTCOME_FILE
            if run.name != LEDGER_FOLDER and run.is_dir() and candidate.exists():
                found.append(candidate)
    return found


def _read_outcome(path: ObjectStoragePath) -> dict[str, Any] | None:
    try:
        with path.open("r") as handle:
            facts = json.load(handle)
        if not isinstance(facts, dict):
            raise ValueError("not a JSON object")
        row = {name: facts.get(name) for name in COLUMNS}
        for name in ("date", "portal_id", "campaign", "run_id"):
            if not row[name]:
                raise ValueError(f"no {name}")
            row[name] = str(row[name])
        date = _utc(pd.Timestamp(str(row["date"])))
        row["date"] = date.isoformat()
        for name in COUNTS:
            value = row[name]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} is not a count: {value!r}")
        row["quarter"] = str(row["quarter"] or quarter(date.to_pydatetime()))
        row["opt_out"] = str(row["opt_out"] or "")
    except (OSError, ValueError, TypeError) as error:
        log.warning("Campaign history: skipping %s, which cannot be read (%s)", path, error)
        return None
    return row


def write_history(folder: ObjectStoragePath, frame: pd.DataFrame, run_id: str) -> ObjectStoragePath:
    """``history.csv``, cells neutralised against spreadsheet formulas (campaign names are user text). Like
    every CSV in a run folder, each row's ``run_id`` is the run that wrote it; ``outcome_run_id`` is the run
    the row is about."""
    out = frame.assign(date=frame["date"].map(lambda d: d.isoformat())).rename(columns={"run_id": "outcome_run_id"})
    path = folder / HISTORY_FILE
    with path.open("w") as handle:
        to_csv_rows(out.assign(run_id=run_id), handle, header=True)
    restrict(path)
    return path


def describe(row: pd.Series) -> str:
    """One run's line in the log."""
    return (
        f"{row['quarter']} {row['campaign']} (run {row['run_id']}, {row['date'].isoformat()}): "
        f"cohort {_number(row['cohort'])}, confirmed {_number(row['confirmed'])}, "
        f"{_opt_out_name(row)} {_number(row['opted_out'])} ({row['opt_out']})"
    )


# -- the page's section ---------------------------------------------------------------------------------

_BARS = (("cohort", "#90caf9"), ("confirmed", "#66bb6a"), ("opted_out", "#ef5350"))
_BAR, _GAP, _PLOT, _TOP, _LEFT = 44, 36, 200, 40, 10


def history_html(frame: pd.DataFrame, portal_id: str) -> str:
    """The report's section: a heading, the chart, and the same rows as a table."""
    earlier = len(frame) - 1
    if earlier < 1:
        intro = f"There is no earlier campaign of portal {portal_id} under this export base; only this run is shown."
    else:
        intro = (
            f"This run and {earlier} earlier run(s) of portal {portal_id} under this export base, "
            "oldest first (runs elsewhere are not seen)."
        )
    return (
        f"<section class='history'><h2>Campaign history (portal {escape(str(portal_id))})</h2>"
        f"<p>{escape(intro)}</p>{history_chart(frame)}{history_table(frame)}</section>"
    )


def history_chart(frame: pd.DataFrame) -> str:
    """Inline SVG: per run, bars for its cohort, confirmed and opted out, labelled by quarter and campaign."""
    shown = frame.tail(CHART_RUNS)
    values = [int(v) for name, _ in _BARS for v in shown[name] if not pd.isna(v)]
    top = max([*values, 1])
    group = len(_BARS) * _BAR + _GAP
    width = max(_LEFT + len(shown) * group + 20, 660)  # the legend's width at least
    height = _TOP + _PLOT + 70
    parts = [_legend()]
    for index, (_, row) in enumerate(shown.iterrows()):
        parts.append(_group(row, _LEFT + index * group, top))
    caption = f"the last {len(shown)} of {len(frame)} runs" if len(shown) < len(frame) else f"{len(frame)} run(s)"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="campaign history, {escape(caption)}">' + "".join(parts) + "</svg>"
    )


def _legend() -> str:
    items = []
    for index, (name, colour) in enumerate(_BARS):
        x = _LEFT + index * 130
        items.append(
            f'<rect x="{x}" y="6" width="14" height="14" fill="{colour}"/>'
            f'<text x="{x + 20}" y="18" font-size="13">{escape(name.replace("_", " "))}</text>'
        )
    items.append(
        f'<text x="{_LEFT + len(_BARS) * 130}" y="18" font-size="13">(pale, dashed: would opt out, a dry run)</text>'
    )
    return "".join(items)


def _group(row: pd.Series, x: float, top: int) -> str:
    dry = row["opt_out"] == DRY_RUN
    base_y = _TOP + _PLOT
    label = f"{row['quarter']} {row['campaign']}"
    parts = [f"<g><title>{escape(label)}</title>"]
    for index, (name, colour) in enumerate(_BARS):
        value = row[name]
        known = not pd.isna(value)
        size = _PLOT * int(value) / top if known else 0.0
        bar_x = x + index * _BAR
        title = f"{label}: {_bar_name(name, dry)} {_number(value) if known else row['opt_out']}"
        style = ' fill-opacity="0.4" stroke="#b71c1c" stroke-dasharray="3,2"' if dry and name == "opted_out" else ""
        parts.append(
            f'<rect x="{bar_x}" y="{base_y - size:.1f}" width="{_BAR - 4}" height="{size:.1f}" fill="{colour}"'
            f"{style}><title>{escape(title)}</title></rect>"
            f'<text x="{bar_x + (_BAR - 4) / 2}" y="{base_y - size - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{_number(value)}</text>'
        )
    centre = x + len(_BARS) * _BAR / 2
    lines = [str(row["quarter"]), _shorten(str(row["campaign"]))]
    if dry:
        lines.append("dry run: would opt out")
    for number, text in enumerate(lines):
        parts.append(
            f'<text x="{centre}" y="{base_y + 16 + 15 * number}" font-size="12" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def history_table(frame: pd.DataFrame) -> str:
    shown = frame.assign(date=frame["date"].map(lambda d: d.strftime("%Y-%m-%d %H:%M UTC")))
    shown = shown[["date", "quarter", "campaign", "run_id", *COUNTS, "opt_out"]]
    # An opt-out that did not run has no figure: an empty cell, never 0 (``na_rep`` misses pandas' NA).
    shown = shown.assign(**{c: shown[c].map(lambda v: "" if pd.isna(v) else str(v)) for c in COUNTS})
    table: str = shown.to_html(index=False, border=0, classes="history", escape=True)
    return table


def _bar_name(name: str, dry: bool) -> str:
    return "would opt out" if dry and name == "opted_out" else name.replace("_", " ")


def _opt_out_name(row: pd.Series) -> str:
    return _bar_name("opted_out", row["opt_out"] == DRY_RUN)


def _number(value: object) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{int(value):,}"  # type: ignore[call-overload]


def _shorten(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
