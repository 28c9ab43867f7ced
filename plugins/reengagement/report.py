"""Files of the campaign, with pandas: the opt-out list as exported, the opt-out result, the report.

Pure: frames in, frames or text out. Reading and writing happen in the operators, through
ObjectStoragePath, so the same code writes to a local folder, S3 or GCS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
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
    pairs = (
        f"{str(contact_id).strip()}\x00{email}"
        for contact_id, email in zip(frame["contact_id"], frame["email"], strict=True)
    )
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "big") for p in pairs),
        dtype=np.uint64,
        count=len(frame),
    )


def duplicate_emails(hashes: np.ndarray) -> int:
    """How many rows repeat an earlier email (``hashes`` from :func:`email_hashes`)."""
    return int(len(hashes) - len(np.unique(hashes)))


def email_hashes(emails: pd.Series) -> np.ndarray:
    """64-bit hashes of emails: duplicates of a million rows can be found in 8 MB."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(), "big") for e in emails),
        dtype=np.uint64,
        count=len(emails),
    )


# -- the campaign report ------------------------------------------------------------------------------------

#: The opt-out's figures, from the audit ledger, on the last round's row; empty when the opt-out did not run.
OPT_OUT_FIGURES = ["opted_out", "already_opted_out", "errors"]
FUNNEL_COLUMNS = [
    "round",
    "cohort",
    "recipients",
    "sent",
    "never_sent",
    "delivered",
    "opened",
    "confirmed",
    "unconfirmed",
    "unsubscribed_themselves",
    *OPT_OUT_FIGURES,
    "opt_out",
]
#: How the opt-out ended, in the ``opt_out`` column.
DONE, DRY_RUN, NOT_RUN, REJECTED = "done", "dry run", "did not run", "rejected"
#: The opt-out left no result but its tries changed contacts (it failed part way): the ledger says whom.
UNFINISHED = "did not finish"
#: What each figure means: the page's footnote (and :func:`funnel`'s docstring says the same).
DEFINITIONS = (
    ("recipients", "the size of the round's recipients list, a snapshot taken before the send"),
    ("sent", "distinct recipients with a SENT event of the round's email in HubSpot"),
    ("never sent", "recipients minus sent: contacts HubSpot skipped at send"),
    ("delivered, opened", "HubSpot's statistics of the round's email, as step 4 read them"),
    (
        "confirmed",
        "distinct contacts sent this round's email or an earlier one who clicked this round's CTA, "
        "not counted in an earlier round, clicks up to the cut-off",
    ),
    ("unconfirmed", "distinct contacts sent so far minus those confirmed so far"),
    ("cohort", "round 1: the unengaged list as step 2 built it; later rounds: the previous round's unconfirmed"),
    (
        "unsubscribed themselves",
        "distinct recipients who unsubscribed through the round's email (UNSUBSCRIBED "
        "events, or STATUSCHANGE events of their own doing), not counted in an earlier "
        "round, up to the cut-off",
    ),
    (
        "opted out",
        "contacts a try of this run changed, as HubSpot answered in the audit ledger, less those who "
        "unsubscribed themselves",
    ),
    (
        "already opted out",
        "contacts HubSpot answered NO_STATUS_CHANGE for whom no try changed, less those who unsubscribed themselves",
    ),
    ("errors", "contacts whose latest answer in the audit ledger is ERROR"),
    (
        "cut-off",
        "the time of the run's first opt-out change in the audit ledger, else the time the report ran: "
        "a rerun after the opt-out counts the same events",
    ),
    ("rates", "confirmed and opted out, over the distinct contacts sent any round's email"),
    (
        "dry run",
        "nobody was changed, so the ledger has no rows: opted out is the number the dry run would have "
        "opted out, from its summary",
    ),
)
_NO_KEYS = np.empty(0, dtype="S16")


@dataclass(frozen=True)
class RoundFacts:
    """What HubSpot holds about one round that was sent. Address keys are ``ledger.email_key`` (``S16``).

    :param number: the round, 1 to 3.
    :param recipients: size of the round's recipients snapshot list.
    :param sent: keys of the round's SENT recipients.
    :param clickers: keys of those who clicked the round's CTA, up to the cut-off.
    :param unsubscribed: keys of those who unsubscribed themselves through the round's email, up to the cut-off.
    :param delivered: HubSpot's statistic (``review_metrics``), ``None`` when it was not read.
    :param opened: likewise.
    """

    number: int
    recipients: int
    sent: np.ndarray = field(default_factory=lambda: _NO_KEYS)
    clickers: np.ndarray = field(default_factory=lambda: _NO_KEYS)
    unsubscribed: np.ndarray = field(default_factory=lambda: _NO_KEYS)
    delivered: int | None = None
    opened: int | None = None


@dataclass(frozen=True)
class Totals:
    """The campaign's totals over every round: the denominators of the rates."""

    sent: int
    confirmed: int
    opted_out: int | None  # None: the opt-out did not run

    def rate(self, count: int | None) -> float | None:
        return count / self.sent if count is not None and self.sent else None


def address_keys(emails: Iterable[str]) -> np.ndarray:
    """``ledger.email_key`` of each address, 16 bytes each, in order."""
    from .ledger import email_key

    return np.frombuffer(b"".join(email_key(str(e)) for e in emails), dtype="S16")


def cut_off(first_change_at: str | None, now: dt.datetime) -> tuple[dt.datetime, bool]:
    """The time events are counted up to, and whether it is the opt-out's first change (else ``now``).

    Fixed by the ledger once the opt-out changed anybody, so a rerun of the report later reads the same.
    """
    if first_change_at:
        when = dt.datetime.fromisoformat(first_change_at.replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), True
    return now, False


def epoch_ms(when: dt.datetime) -> int:
    """Milliseconds since the epoch, exactly (HubSpot's event times)."""
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def opt_out_state(opt_out: Mapping[str, object] | None, *, rejected: bool = False, ledger_rows: int = 0) -> str:
    """``done``, ``dry run``, ``rejected``, ``did not finish`` or ``did not run``: never a failed opt-out as 0."""
    if opt_out:
        return DRY_RUN if opt_out.get("dry_run") else DONE
    if ledger_rows:
        return UNFINISHED
    return REJECTED if rejected else NOT_RUN


def ledger_figures(ledger: pd.DataFrame, unsubscribed: np.ndarray) -> dict[str, int]:
    """Opted out, already opted out and errors, from the run's audit ledger (``audit.read_ledger``).

    ``unsubscribed``: address keys of those who unsubscribed themselves; they are counted on their own line.
    Contact ids as ``int64`` arrays: flat memory at a million rows.
    """
    from . import audit

    ids = pd.to_numeric(ledger["contact_id"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
    reason = ledger["reason"].astype("string").fillna("")
    own = np.unique(ids[np.isin(address_keys(ledger["email"]), unsubscribed)])
    changed = np.unique(ids[reason.isin(audit.CHANGED).to_numpy()])
    already = np.unique(ids[(reason == audit.ALREADY).to_numpy()])
    latest = ~ledger["contact_id"].duplicated(keep="last").to_numpy()
    errors = np.unique(ids[latest & (ledger["status"] == "ERROR").to_numpy(dtype=bool, na_value=False)])
    return {
        "opted_out": len(np.setdiff1d(changed, own)),
        "already_opted_out": len(np.setdiff1d(np.setdiff1d(already, changed), own)),
        "errors": len(errors),
    }


def dry_run_figures(summary: Mapping[str, object]) -> dict[str, int]:
    """What a dry run would have done, from its summary: those it would opt out, less those who unsubscribed
    themselves (HubSpot would answer that they already are)."""
    would = _count_of(summary, "to_opt_out") - _count_of(summary, "unsubscribed_themselves_in_file")
    return {
        "opted_out": max(would, 0),
        "already_opted_out": _count_of(summary, "already_opted_out"),
        "errors": _count_of(summary, "errors"),
    }


def _count_of(summary: Mapping[str, object], key: str) -> int:
    value = summary.get(key)
    return int(value) if isinstance(value, (int, float, str)) and str(value).strip() else 0


def funnel(
    cohort: int, rounds: Sequence[RoundFacts], figures: Mapping[str, int] | None, state: str
) -> tuple[pd.DataFrame, Totals]:
    """One row per round that was sent, and the campaign's totals, from facts a rerun does not move.

    For round k: ``recipients`` = size of its snapshot list; ``sent`` = distinct SENT recipients of its email;
    ``never_sent`` = recipients - sent; ``delivered``/``opened`` = HubSpot's statistics (``review_metrics``);
    ``confirmed`` = distinct contacts sent in round k or earlier who clicked round k's CTA up to the cut-off,
    not counted in an earlier round; ``unconfirmed`` = distinct contacts sent through round k minus those
    confirmed so far; ``cohort`` = the unengaged list's size for round 1, else the previous ``unconfirmed``;
    ``unsubscribed_themselves`` = distinct recipients who unsubscribed through round k's email, not counted
    earlier. The opt-out's ``figures`` (see :func:`ledger_figures`, :func:`dry_run_figures`) go on the last
    round's row, whose list 2 it applied to; ``None`` (the opt-out did not run) leaves them empty, not 0.
    Totals: distinct contacts sent any round, confirmed, opted out.
    """
    rows: list[dict[str, object]] = []
    sent_so_far, confirmed, unsubscribed = _NO_KEYS, _NO_KEYS, _NO_KEYS
    for facts in sorted(rounds, key=lambda r: r.number):
        sent = np.unique(facts.sent)
        sent_so_far = np.union1d(sent_so_far, sent)
        new = np.setdiff1d(np.intersect1d(np.unique(facts.clickers), sent_so_far), confirmed)
        confirmed = np.union1d(confirmed, new)
        themselves = np.setdiff1d(np.unique(facts.unsubscribed), unsubscribed)
        unsubscribed = np.union1d(unsubscribed, themselves)
        rows.append(
            {
                "round": facts.number,
                "cohort": rows[-1]["unconfirmed"] if rows else cohort,
                "recipients": facts.recipients,
                "sent": len(sent),
                "never_sent": facts.recipients - len(sent),
                "delivered": _or_na(facts.delivered),
                "opened": _or_na(facts.opened),
                "confirmed": len(new),
                "unconfirmed": len(sent_so_far) - len(confirmed),
                "unsubscribed_themselves": len(themselves),
                **dict.fromkeys(OPT_OUT_FIGURES, 0),
                "opt_out": "",
            }
        )
    if rows:
        rows[-1].update({name: (figures[name] if figures is not None else pd.NA) for name in OPT_OUT_FIGURES})
        rows[-1]["opt_out"] = state
    numbers = [c for c in FUNNEL_COLUMNS if c != "opt_out"]
    frame = pd.DataFrame(rows, columns=FUNNEL_COLUMNS).astype({c: "Int64" for c in numbers})
    return frame, Totals(
        sent=len(sent_so_far),
        confirmed=len(confirmed),
        opted_out=None if figures is None else int(figures["opted_out"]),
    )


def _or_na(value: int | None) -> object:
    return pd.NA if value is None else int(value)


def summary(campaign: str, cohort: int | None, frame: pd.DataFrame, totals: Totals, state: str) -> str:
    """One sentence: what the campaign did, never a failed or skipped opt-out as 0."""
    if cohort == 0:
        return f"{campaign}: nobody is unengaged; nothing was sent and nobody was opted out."
    if not len(frame):
        head = f"{campaign}: no email was sent"
    else:
        last = frame.iloc[-1]
        head = (
            f"{campaign}: {len(frame)} round(s), {totals.sent:,} sent, {totals.confirmed:,} confirmed, "
            f"{int(last['unconfirmed']):,} unconfirmed"
        )
    if state in (DONE, DRY_RUN, UNFINISHED) and len(frame):
        last = frame.iloc[-1]
        verb = {
            DONE: "the campaign opted out",
            DRY_RUN: "the dry run would opt out",
            UNFINISHED: "the opt-out did not finish; its tries opted out",
        }[state]
        return (
            f"{head}; {verb} {int(last['opted_out']):,} ({int(last['already_opted_out']):,} already opted out, "
            f"{int(last['errors']):,} errors); {int(frame['unsubscribed_themselves'].sum()):,} unsubscribed "
            f"themselves; HubSpot skipped {int(frame['never_sent'].sum()):,} recipient(s) at send."
        )
    if state == REJECTED:
        return f"{head}; the opt-out was rejected at the approval step; nobody was opted out."
    return f"{head}; the opt-out did not run, nobody was opted out."


def header_lines(
    run_date: str, counted_until: dt.datetime, from_ledger: bool, totals: Totals, state: str
) -> list[tuple[str, str]]:
    """The page's first lines: when the run was, the cut-off, and the rates."""
    until = counted_until.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    why = "the opt-out's first change, from the audit ledger" if from_ledger else "when this report ran"
    lines = [
        ("Run date", run_date),
        ("Events counted up to", f"{until} ({why})"),
        ("Confirmed", _rate_text(totals.confirmed, totals)),
    ]
    verb = "Would opt out (dry run)" if state == DRY_RUN else "Opted out"
    lines.append((verb, _rate_text(totals.opted_out, totals) if totals.opted_out is not None else state))
    return lines


def _rate_text(count: int | None, totals: Totals) -> str:
    rate = totals.rate(count)
    return f"{count or 0:,} of {totals.sent:,} sent" + (f" ({rate:.1%})" if rate is not None else "")


def shown_params(params: Mapping[str, object]) -> list[tuple[str, str]]:
    """The run's parameters as text, in their order; anything named like a secret is left out."""
    secret = ("token", "password", "secret", "api_key")
    return [
        (str(name), "" if value is None else str(value))
        for name, value in params.items()
        if not any(word in str(name).lower() for word in secret)
    ]


def text_table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if len(frame) else "(no round ran)"


#: The chart's bars: every figure of the funnel but the round, its cohort and how the opt-out ended.
_STAGES = [c for c in FUNNEL_COLUMNS if c not in ("round", "cohort", "opt_out")]
_COLOURS = [
    "#90caf9",
    "#64b5f6",
    "#bdbdbd",
    "#42a5f5",
    "#7e57c2",
    "#66bb6a",
    "#ffa726",
    "#8d6e63",
    "#ef5350",
    "#e57373",
    "#b71c1c",
]


def _chart(row: pd.Series) -> str:
    top = max(int(row["recipients"]), 1)
    dry = row["opt_out"] == DRY_RUN
    bars = []
    for i, (stage, colour) in enumerate(zip(_STAGES, _COLOURS, strict=True)):
        ran = not pd.isna(row[stage])
        value = int(row[stage]) if ran else 0
        width = 520 * min(value / top, 1.5)
        y = 10 + i * 30
        label = f"{value:,}" if ran else escape(str(row["opt_out"]))
        name = "would opt out" if dry and stage == "opted_out" else stage.replace("_", " ")
        bars.append(
            f'<text x="0" y="{y + 16}" font-size="13">{escape(name)}</text>'
            f'<rect x="170" y="{y}" width="{width:.1f}" height="22" fill="{colour}" rx="3"/>'
            f'<text x="{176 + width:.1f}" y="{y + 16}" font-size="13">{label}</text>'
        )
    number = int(row["round"])
    return (
        f'<h2>Round {number}</h2><svg xmlns="http://www.w3.org/2000/svg" width="980" '
        f'height="{20 + 30 * len(_STAGES)}" role="img" aria-label="funnel of round {number}">'
        + "".join(bars)
        + "</svg>"
    )


def html_page(
    title: str,
    summary: str,
    frame: pd.DataFrame,
    *,
    lines: Sequence[tuple[str, str]] = (),
    params: Sequence[tuple[str, str]] = (),
    history_html: str = "",
) -> str:
    """A self-contained page: header lines and the run's parameters, the funnel as horizontal bars (inline SVG)
    per round, the table, the portal's campaign history (``history_html``, already escaped HTML from
    :func:`reengagement.history.history_html`), and the definitions as a footnote."""
    head = "".join(f"<li><b>{escape(name)}:</b> {escape(value)}</li>" for name, value in lines)
    param_rows = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in params)
    param_table = f"<table class='params'><caption>Parameters</caption>{param_rows}</table>" if params else ""
    # Empty cells for figures that do not exist (``na_rep`` misses pandas' NA in nullable integer columns).
    cells = frame.astype(object).where(frame.notna(), "")
    table = cells.to_html(index=False, border=0, classes="funnel") if len(frame) else "<p>No round ran.</p>"
    notes = "".join(f"<dt>{escape(name)}</dt><dd>{escape(text)}.</dd>" for name, text in DEFINITIONS)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table.funnel{border-collapse:collapse}"
        "table.funnel td,table.funnel th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "table.params{border-collapse:collapse;margin:1em 0}table.params caption{text-align:left;font-weight:bold}"
        "table.params th,table.params td{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}"
        "footer{margin-top:2em;font-size:13px;color:#555}footer dt{font-weight:bold;float:left;clear:left;"
        "width:12em}footer dd{margin-left:13em}table.history{border-collapse:collapse;margin-top:1em}"
        "table.history td,table.history th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}"
        f"</style></head><body><h1>{escape(title)}</h1><ul>{head}</ul>{param_table}<p>{escape(summary)}</p>"
        f"{''.join(_chart(row) for _, row in frame.iterrows())}{table}{history_html}"
        f"<footer><h3>Definitions</h3><dl>{notes}</dl></footer></body></html>"
    )
