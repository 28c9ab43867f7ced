"""How the sandbox scales: seeding, the campaign's DYNAMIC list, paging, batches and email events at 10k-1M contacts.

``python -m tests.benchmarks.sandbox_bench [--sizes 10000,100000,1000000] [--out FILE]`` (``make bench``).
For each size a fresh sandbox process is started on a temporary database, with lists COMPLETE at once and a
rate limit too high to matter, so what is timed is the sandbox itself. The table is printed and appended to
``tests/benchmarks/results.md`` (or ``--out``) as a Markdown section.

Nothing here asserts a time (machines are shared); the targets are printed as PASS/FAIL lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from reengagement.segments import unengaged

from include.hubspot_sandbox.process import SandboxProcess

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
RESULTS = Path(__file__).with_name("results.md")
MARKETING = "33583163"
#: Lists COMPLETE at once and a limiter that never answers 429: the sandbox's own speed is measured.
SERVER_ARGS = ["--list-processing-seconds", "0", "--rate-limit", "1000000/10s,100000000/day"]
PAGE_LIMIT = 250
BATCH = 100
BATCH_READ_CALLS = 50
UNSUBSCRIBE_CALLS = 20
SEND_MEMBERS = 10_000
EVENTS_PAGE = 1000
#: The default response window is 600 s; two hours later every SENT event has landed.
CLOCK_ADVANCE_SECONDS = 7200
PAGE_TARGET_MS = 20.0
BATCH_TARGET_MS = 50.0
HTML = (
    '<p>Still there? <a href="https://acme.example/thank-you?pp=1">Yes, keep me subscribed</a></p>'
    '<p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>'
)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    digits: int = 1


METRICS = (
    Metric("seed_s", "seed (POST /_sandbox/seed)", "s", 2),
    Metric("seed_rate", "seed rate", "contacts/s", 0),
    Metric("list_create_ms", "unengaged DYNAMIC list: create (POST)", "ms"),
    Metric("list_complete_s", "unengaged DYNAMIC list: until GET says COMPLETE", "s", 2),
    Metric("list_size", "unengaged list size", "contacts", 0),
    Metric("ground_truth", "list size = ground truth (and same ids)", "yes/no"),
    Metric("pages", "memberships pages (limit 250)", "pages", 0),
    Metric("pages_per_s", "memberships paging", "pages/s", 0),
    Metric("records_per_s", "memberships paging", "records/s", 0),
    Metric("page_p50_ms", "memberships page p50", "ms", 2),
    Metric("page_p95_ms", "memberships page p95", "ms", 2),
    Metric("batch_read_p50_ms", "contacts batch/read of 100, p50 (50 calls)", "ms", 2),
    Metric("batch_read_p95_ms", "contacts batch/read of 100, p95", "ms", 2),
    Metric("unsubscribe_p50_ms", "v4 batch/unsubscribe-all of 100, p50 (20 calls)", "ms", 2),
    Metric("unsubscribe_p95_ms", "v4 batch/unsubscribe-all of 100, p95", "ms", 2),
    Metric("send_recipients", "email sent to (MANUAL list)", "contacts", 0),
    Metric("publish_s", "publish (= send) the email", "s", 2),
    Metric("land_s", "land the send's events after the clock moved", "s", 2),
    Metric("events_pages", "legacy events pages (SENT, limit 1000)", "pages", 0),
    Metric("events_page_p50_ms", "legacy events page p50", "ms", 2),
    Metric("peak_rss_mb", "sandbox peak RSS (VmHWM)", "MB", 0),
    Metric("db_mb", "SQLite db size (with WAL)", "MB", 0),
)

#: Ratios worth printing: the same latency at the largest size over the smallest.
RATIOS = ("page_p95_ms", "batch_read_p95_ms", "unsubscribe_p95_ms", "events_page_p50_ms")


# -- small helpers --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: honest for the small samples taken here."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    """A request and how long it took, in ms; any status but 2xx stops the benchmark."""
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    if not response.ok:
        raise RuntimeError(f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:500]}")
    return response, elapsed


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Bench:
    """One sandbox of ``size`` contacts and the measurements taken on it."""

    def __init__(self, box: SandboxProcess, size: int) -> None:
        self.box = box
        self.size = size
        self.session = box.session
        self.result: dict[str, Any] = {"size": size}
        self.rng = random.Random(1)

    def url(self, path: str) -> str:
        return f"{self.box.url}{path}"

    # -- the steps ------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.seed()
        list_id = self.dynamic_list()
        members = self.page_members(list_id)
        self.check_ground_truth(members)
        emails = self.batch_reads(members)
        self.send_and_page_events(members)
        self.unsubscribe_all(emails)
        self.resources()
        return self.result

    def seed(self) -> None:
        started = time.perf_counter()
        self.box.admin("POST", "seed", {"contacts": self.size, "seed": 1})
        seconds = time.perf_counter() - started
        self.result.update(seed_s=seconds, seed_rate=self.size / seconds)

    def dynamic_list(self) -> str:
        """The campaign's step-2 list, created as the campaign creates it; timed until COMPLETE."""
        body = {
            "name": "Unengaged (bench)",
            "objectTypeId": "0-1",
            "processingType": "DYNAMIC",
            "filterBranch": unengaged(subscription_id=MARKETING, inactivity_weeks=52),
        }
        started = time.perf_counter()
        created, create_ms = timed(lambda: self.session.post(self.url("/crm/v3/lists"), json=body, timeout=600))
        list_id = created.json()["list"]["listId"]
        while True:
            current = timed(lambda: self.session.get(self.url(f"/crm/v3/lists/{list_id}"), timeout=600))[0].json()
            if current["list"]["processingStatus"] == "COMPLETE":
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"list {list_id} still PROCESSING after 10 minutes")
            time.sleep(0.01)
        self.result.update(
            list_create_ms=create_ms, list_complete_s=time.perf_counter() - started, list_size=current["list"]["size"]
        )
        return list_id

    def page_members(self, list_id: str) -> list[str]:
        """Page the whole list with limit=250 on one keep-alive session, as the operators do."""
        members: list[str] = []
        latencies: list[float] = []
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        started = time.perf_counter()
        while True:
            response, ms = timed(
                lambda: self.session.get(self.url(f"/crm/v3/lists/{list_id}/memberships"), params=params, timeout=600)
            )
            latencies.append(ms)
            page = response.json()
            members.extend(item["recordId"] for item in page["results"])
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
            params["after"] = after
        seconds = time.perf_counter() - started
        self.result.update(
            pages=len(latencies),
            pages_per_s=len(latencies) / seconds,
            records_per_s=len(members) / seconds,
            page_p50_ms=percentile(latencies, 0.5),
            page_p95_ms=percentile(latencies, 0.95),
        )
        return members

    def check_ground_truth(self, members: list[str]) -> None:
        truth = self.box.admin("GET", "ground-truth", rounds=1)["unengaged"]
        same = self.result["list_size"] == len(truth) and set(members) == set(truth)
        self.result["ground_truth"] = "yes" if same else "no"

    def batch_reads(self, members: list[str]) -> list[list[str]]:
        """50 batch reads of 100 list members (distinct while the list allows); returns their emails per call."""
        pool = self._sample(members, BATCH_READ_CALLS * BATCH)
        latencies, emails = [], []
        for ids in chunks(pool, BATCH):
            body = {"inputs": [{"id": i} for i in ids], "properties": ["email", "firstname", "lastname"]}
            response, ms = timed(
                lambda body=body: self.session.post(
                    self.url("/crm/v3/objects/contacts/batch/read"), json=body, timeout=600
                )
            )
            latencies.append(ms)
            emails.append([r["properties"]["email"] for r in response.json()["results"]])
        self.result.update(batch_read_p50_ms=percentile(latencies, 0.5), batch_read_p95_ms=percentile(latencies, 0.95))
        return emails

    def _sample(self, members: list[str], count: int) -> list[str]:
        """``count`` members, each used once while there are enough, then again in a new order."""
        out: list[str] = []
        while len(out) < count and members:
            out.extend(self.rng.sample(members, min(len(members), count - len(out))))
        return out

    def send_and_page_events(self, members: list[str]) -> None:
        """Send one email to up to 10k list members, move the clock past the window, page its SENT events."""
        recipients = self._sample(members, min(SEND_MEMBERS, len(members)))
        list_id = self._manual_list(recipients)
        email = self._email(list_id)
        _, publish_ms = timed(
            lambda: self.session.post(self.url(f"/marketing/v3/emails/{email['id']}/publish"), timeout=600)
        )
        self.box.admin("POST", "clock", {"advance_seconds": CLOCK_ADVANCE_SECONDS})
        _, land_ms = timed(lambda: self.session.get(self.url("/marketing/v3/emails"), params={"limit": 1}, timeout=600))
        published = self.session.get(self.url(f"/marketing/v3/emails/{email['id']}"), timeout=600).json()
        latencies, events = self._page_events(published["primaryEmailCampaignId"])  # shown from publish on
        if events != len(recipients):
            raise RuntimeError(f"{len(recipients)} recipients but {events} SENT events")
        self.result.update(
            send_recipients=len(recipients),
            publish_s=publish_ms / 1000,
            land_s=land_ms / 1000,
            events_pages=len(latencies),
            events_page_p50_ms=percentile(latencies, 0.5),
        )

    def _manual_list(self, record_ids: list[str]) -> str:
        body = {"name": "Round 1 recipients (bench)", "objectTypeId": "0-1", "processingType": "MANUAL"}
        created, _ = timed(lambda: self.session.post(self.url("/crm/v3/lists"), json=body, timeout=600))
        list_id = created.json()["list"]["listId"]
        for part in chunks(record_ids, 1000):
            timed(
                lambda part=part: self.session.put(
                    self.url(f"/crm/v3/lists/{list_id}/memberships/add"), json=part, timeout=600
                )
            )
        return list_id

    def _email(self, list_id: str) -> dict[str, Any]:
        body = {
            "name": "Permission pass #1 (bench)",
            "subject": "Do you still want to hear from us?",
            "from": {"fromName": "ACME", "replyTo": "news@acme.example"},
            "to": {"contactIlsLists": {"include": [list_id], "exclude": []}, "suppressGraymail": False},
            "subscriptionDetails": {"subscriptionId": MARKETING},
            "content": {"widgets": {"module-1": {"body": {"html": HTML}, "order": 1}}},
        }
        response, _ = timed(lambda: self.session.post(self.url("/marketing/v3/emails"), json=body, timeout=600))
        return response.json()

    def _page_events(self, campaign_id: str) -> tuple[list[float], int]:
        params: dict[str, Any] = {"campaignId": campaign_id, "eventType": "SENT", "limit": EVENTS_PAGE}
        latencies: list[float] = []
        events = 0
        while True:
            response, ms = timed(
                lambda: self.session.get(self.url("/email/public/v1/events"), params=params, timeout=600)
            )
            latencies.append(ms)
            page = response.json()
            events += len(page["events"])
            if not page["hasMore"]:
                return latencies, events
            params["offset"] = page["offset"]

    def unsubscribe_all(self, emails: list[list[str]]) -> None:
        """20 v4 batch/unsubscribe-all calls of 100 addresses each, as the opt-out step sends them."""
        latencies = []
        for inputs in emails[:UNSUBSCRIBE_CALLS]:
            _, ms = timed(
                lambda inputs=inputs: self.session.post(
                    self.url("/communication-preferences/v4/statuses/batch/unsubscribe-all"),
                    params={"channel": "EMAIL", "verbose": "true"},
                    json={"inputs": inputs},
                    timeout=600,
                )
            )
            latencies.append(ms)
        self.result.update(
            unsubscribe_p50_ms=percentile(latencies, 0.5), unsubscribe_p95_ms=percentile(latencies, 0.95)
        )

    def resources(self) -> None:
        assert self.box.proc is not None
        status = Path(f"/proc/{self.box.proc.pid}/status").read_text()
        peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        files = [Path(self.box.db_path + suffix) for suffix in ("", "-wal", "-shm")]
        db_bytes = sum(f.stat().st_size for f in files if f.exists())
        self.result.update(peak_rss_mb=peak_kb / 1024, db_mb=db_bytes / 1024 / 1024)


def bench_size(size: int, workdir: Path) -> dict[str, Any]:
    with SandboxProcess(workdir / f"bench-{size}.db", args=SERVER_ARGS, startup_timeout=120) as box:
        return Bench(box, size).run()


# -- reporting ------------------------------------------------------------------------------------------


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    header = ["metric", "unit", *(f"{r['size']:,}" for r in results)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in METRICS:
        cells = [metric.label, metric.unit, *(_cell(r[metric.key], metric.digits) for r in results)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results: list[dict[str, Any]]) -> list[str]:
    if len(results) < 2:
        return []
    small, large = results[0], results[-1]
    labels = {m.key: m.label for m in METRICS}
    return [
        f"- {labels[key]}: {large[key]:.2f} ms at {large['size']:,} / {small[key]:.2f} ms at {small['size']:,} "
        f"= x{large[key] / small[key]:.2f}"
        for key in RATIOS
        if small[key] > 0
    ]


def targets(results: list[dict[str, Any]]) -> list[str]:
    page = max(r["page_p95_ms"] for r in results)
    batch = max(max(r["batch_read_p95_ms"], r["unsubscribe_p95_ms"]) for r in results)
    return [
        f"{'PASS' if page < PAGE_TARGET_MS else 'FAIL'}: memberships page p95 < {PAGE_TARGET_MS:.0f} ms at every "
        f"size (worst {page:.2f} ms)",
        f"{'PASS' if batch < BATCH_TARGET_MS else 'FAIL'}: batch of 100 p95 < {BATCH_TARGET_MS:.0f} ms at every "
        f"size (worst {batch:.2f} ms)",
    ]


def machine() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpus} CPUs (nproc), {pages / 1024**3:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, SQLite {_sqlite_version()}"
    )


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def report(results: list[dict[str, Any]], total_s: float) -> str:
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"## Sandbox benchmark, {stamp}",
        "",
        f"Machine: {machine()}. Whole run: {total_s:.0f} s.",
        "",
        table(results),
        "",
    ]
    lines = ratios(results)
    if lines:
        parts += ["Largest size over smallest:", "", *lines, ""]
    parts += ["Targets:", "", *(f"- {line}" for line in targets(results)), ""]
    return "\n".join(parts)


def write_report(text: str, out: Path) -> None:
    if not out.exists():
        out.write_text(
            "# Sandbox benchmark results\n\n"
            "Appended by `make bench` (`python -m tests.benchmarks.sandbox_bench`); newest last.\n\n"
        )
    with out.open("a", encoding="utf-8") as fh:
        fh.write("\n" + text)


def publish(text: str, out: Path) -> None:
    """Print a benchmark's report and append it to the results file."""
    print(text, flush=True)
    write_report(text, out)
    print(f"appended to {out}", flush=True)


# -- command line ---------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"sizes must be integers, e.g. 10000,100000: {text!r}") from err
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("give at least one size of 100 contacts or more")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.sandbox_bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated portal sizes (default: 10000,100000,1000000)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown file to append to (default: %(default)s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        for size in args.sizes:
            print(f"benchmarking {size:,} contacts ...", flush=True)
            results.append(bench_size(size, Path(folder)))
    text = report(results, time.perf_counter() - started)
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
