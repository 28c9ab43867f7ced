"""The fewest HubSpot calls each campaign step needs, and the rate-limit floor of its wall time.

A step's minimum is what an idempotent, safe implementation of its job needs when earlier steps have
done theirs and pass on only ids, counts and timestamps (what XCom may carry): a look-up by name before
each create, one status read of anything HubSpot processes asynchronously, full pages and full batches,
and no contact looked up twice. "Safe" costs two things beyond that, both stated in the formulas:

- every read of list 1 reads every click of every email so far, not only those since the last read.
  HubSpot does not document that a click is visible by the time its timestamp has passed; one missed
  late click would opt out a contact who confirmed, which cannot be undone. One page holds 1,000 clicks.
- the last read before the opt-out pages through list 1 (250 members a page) to check that every
  clicker is still in it: one removed by hand would otherwise be opted out.
- right before its first change, the opt-out reads again who HubSpot sent each email (SENT events), who
  unsubscribed themselves (UNSUBSCRIBED and STATUSCHANGE events), every CTA click and list 1's members:
  HubSpot's lists lag, and a contact never sent, or who confirmed after the export, must not be opted
  out. Only the rows left are opted out, in batches of 100.

Polls beyond the first status read are waiting for HubSpot, not work, and count against the step. The
UI links need no call: preflight's result carries the portal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: HubSpot's Enterprise limit, which the benchmark's sandbox enforces: 190 calls per rolling 10 s.
RATE_LIMIT = 190
INTERVAL_S = 10.0
BATCH = 100
EVENTS_PAGE = 1000

_ROUND = re.compile(r"^round_(\d+)\.(.+)$")


def pages(items: int, size: int) -> int:
    """Pages to read ``items`` (an empty result still takes one call)."""
    return max(1, math.ceil(items / size))


def batches(items: int, size: int = BATCH) -> int:
    """Batch calls to write or read ``items`` (none when there is nothing to do)."""
    return math.ceil(items / size)


def floor_seconds(calls: int) -> float:
    """The least wall time of ``calls`` at the limit's rate: calls / (190 per 10 s), as the issue defines it.

    A client may send one window's worth at once, so a step of a few hundred calls can beat this; for
    long steps it is the steady rate. Steps of at most 190 calls are not call-bound (see ``is_call_bound``).
    """
    return calls * INTERVAL_S / RATE_LIMIT


def is_call_bound(calls: int) -> bool:
    return calls > RATE_LIMIT


@dataclass(frozen=True)
class Facts:
    """What the run's outcome says about the cohort (from XCom and HubSpot after the run)."""

    rounds: int
    #: CTA clickers resolved to contacts, cumulative after each round's ``build_confirmed_list``.
    confirmed: tuple[int, ...]
    #: Clickers added by ``refresh_confirmed_list`` (clicks that arrived after the last round's read).
    late_confirmed: int
    #: Non-filtered CLICK events of each round's email (CTA, unsubscribe link, ...).
    click_events: tuple[int, ...]
    #: Rows of the exported list 2: the contacts to opt out.
    opt_out_rows: int
    #: Members of list 1 when the last read before the opt-out checked it.
    confirmed_list_size: int = 0
    #: SENT, UNSUBSCRIBED and STATUSCHANGE events of each round's email (the opt-out reads all three).
    sent_events: tuple[int, ...] = ()
    unsubscribe_events: tuple[int, ...] = ()
    status_events: tuple[int, ...] = ()
    #: Rows of the export left to opt out once the never-sent and the confirmed are spared.
    to_opt_out: int | None = None
    #: Members of list 1 when the opt-out read it (after ``refresh_confirmed_list``'s additions).
    list_one_size: int | None = None


@dataclass(frozen=True)
class Minimum:
    calls: int
    formula: str
    grows: bool  # whether the minimum grows with the cohort (O(n)) or is a constant (O(1))


FIXED: dict[str, Minimum] = {
    "preflight": Minimum(
        17,
        "O(1): subscription types, forms page, 2 capability probes, contact count, "
        "API usage, portal, 10 property definitions (the unengaged list's filters)",
        False,
    ),
    "build_unengaged_list": Minimum(3, "O(1): look-up by name, create, 1 status read", False),
    "build_recipients_list": Minimum(3, "O(1): look-up by name, create, 1 status read", False),
    "build_unconfirmed_list": Minimum(3, "O(1): look-up by name, create, 1 status read", False),
    "create_email": Minimum(2, "O(1): look-up by name, create", False),
    "send_email": Minimum(3, "O(1): read state, publish, read the send time", False),
    "review_metrics": Minimum(1, "O(1): read the statistics", False),
    "export_unconfirmed": Minimum(
        3,
        "O(1): start, 1 status read, 1 status read for a fresh download URL (the CSV download is not an API call)",
        False,
    ),
}


def _click_pages(facts: Facts, emails: int) -> tuple[int, str]:
    counts = facts.click_events[:emails]
    return (
        sum(pages(n, EVENTS_PAGE) for n in counts),
        " + ".join(f"ceil({n:,}/1000)" for n in counts) + " click pages",
    )


def _confirmed_list(round_no: int, facts: Facts) -> Minimum:
    before = facts.confirmed[round_no - 2] if round_no > 1 else 0
    new = facts.confirmed[round_no - 1] - before
    click_pages, clicks = _click_pages(facts, round_no)
    fixed = 3 if round_no == 1 else 1  # look-up (+ create and status read of list 1 in round 1)
    calls = fixed + click_pages + 2 * batches(new)
    formula = f"{fixed} + {clicks} (every email so far) + 2 x ceil({new:,} new clickers/100) (look-up, add)"
    return Minimum(calls, formula, True)


def _refresh(facts: Facts) -> Minimum:
    late = facts.late_confirmed
    click_pages, clicks = _click_pages(facts, facts.rounds)
    member_pages = pages(facts.confirmed_list_size, 250)
    calls = 1 + click_pages + member_pages + 2 * batches(late)
    formula = (
        f"1 look-up + {clicks} + ceil({facts.confirmed_list_size:,} members/250) (the check) "
        f"+ 2 x ceil({late:,} late/100)"
    )
    return Minimum(calls, formula, True)


def _events_pages(counts: tuple[int, ...], emails: int, kind: str) -> tuple[int, str]:
    counts = (counts + (0,) * emails)[:emails]  # an email with no such event still takes one call
    return sum(pages(n, EVENTS_PAGE) for n in counts), " + ".join(f"ceil({n:,}/1000)" for n in counts) + f" {kind}"


def _report(facts: Facts) -> Minimum:
    """Each round's facts again (a rerun must not move the report): its SENT, CLICK, UNSUBSCRIBED and
    STATUSCHANGE pages, and its snapshot list's size."""
    parts = [
        _events_pages(counts, facts.rounds, kind)
        for counts, kind in (
            (facts.sent_events, "SENT pages"),
            (facts.click_events, "CLICK pages"),
            (facts.unsubscribe_events, "UNSUBSCRIBED pages"),
            (facts.status_events, "STATUSCHANGE pages"),
        )
    ]
    calls = sum(n for n, _ in parts) + facts.rounds
    formula = " + ".join(text for _, text in parts) + f" + {facts.rounds} recipients list read(s)"
    return Minimum(calls, formula, True)


def _opt_out(facts: Facts) -> Minimum:
    sent_pages, sent = _events_pages(facts.sent_events, facts.rounds, "SENT pages")
    unsubscribe_pages, unsubscribed = _events_pages(facts.unsubscribe_events, facts.rounds, "UNSUBSCRIBED pages")
    status_pages, changed = _events_pages(facts.status_events, facts.rounds, "STATUSCHANGE pages")
    click_pages, clicks = _click_pages(facts, facts.rounds)
    members = facts.list_one_size if facts.list_one_size is not None else facts.confirmed_list_size
    rows = facts.to_opt_out if facts.to_opt_out is not None else facts.opt_out_rows
    if not facts.opt_out_rows:
        return Minimum(0, "0: an empty export needs no reads", True)
    calls = sent_pages + unsubscribe_pages + status_pages + click_pages + pages(members, 250) + batches(rows)
    formula = (
        f"{sent} + {unsubscribed} + {changed} + {clicks} + ceil({members:,} list 1 members/250) "
        f"+ ceil({rows:,} left to opt out/100) batches"
    )
    return Minimum(calls, formula, True)


def minimum(task_id: str, facts: Facts) -> Minimum | None:
    """The minimum of one task of the campaign DAG, or ``None`` for tasks that do not call HubSpot."""
    match = _ROUND.match(task_id)
    round_no, step = (int(match[1]), match[2]) if match else (0, task_id)
    if step in FIXED:
        return FIXED[step]
    if step == "build_confirmed_list":
        return _confirmed_list(round_no, facts)
    if step == "refresh_confirmed_list":
        return _refresh(facts)
    if step == "opt_out_unconfirmed":
        return _opt_out(facts)
    if step == "campaign_report":
        return _report(facts)
    return None


def plain_minimum(members: int, with_email: int) -> int:
    """Calls of the per-contact script: the pages, one look-up per member, one unsubscribe per address."""
    return pages(members, 250) + members + with_email


def as_floor_rate(calls: int) -> float:
    """Seconds ``calls`` take at the limit's steady rate (for long scripts, where the burst is noise)."""
    return calls * INTERVAL_S / RATE_LIMIT
