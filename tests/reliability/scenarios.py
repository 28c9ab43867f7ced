"""The faults of the reliability suite, each played against a freshly seeded portal.

A scenario sets faults in the sandbox, runs the campaign (and reruns it when a fault stops it), and
notes anything that went differently from a healthy run. :func:`judge` then compares HubSpot's final
state with the fault-free run of the same seed (:mod:`tests.reliability.outcome`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.reliability.lab import (
    CAMPAIGN,
    EXIT_FAILED,
    EXIT_SUCCESS,
    CampaignChild,
    CampaignLab,
    Traffic,
    calls_to,
    client_timeout,
    fired,
    wait_until,
)
from tests.reliability.outcome import Outcome, differences, snapshot

OPT_OUT = "subscriptions.v4.batch_unsubscribe_all"
PUBLISH = "emails.publish"
#: Writes that may be applied although their answer is lost, with the calls to let pass first
#: (preflight probes publish once with an email that does not exist).
WRITES = {"lists.create": 0, "emails.create": 0, PUBLISH: 1, "lists.memberships_add": 0, "exports.start": 0, OPT_OUT: 0}
#: The HubSpot-writing steps, each with the endpoint whose request is in flight when the task is killed.
STEPS = {
    "build lists": ("lists.create", 0),
    "create email": ("emails.create", 0),
    "send email": (PUBLISH, 1),
    "build confirmed list": ("lists.memberships_add", 0),
    "export": ("exports.start", 0),
    "opt-out": (OPT_OUT, 0),
}
#: Seconds a request stays in flight in the sandbox: the window in which a task is killed.
IN_FLIGHT = 3.0
DEFAULT_LIMIT = "190/10s,1000000/day"


@dataclass
class Played:
    """What a scenario did: how many runs (a task rerun counts as one) and what looked wrong on the way."""

    runs: int = 0
    notes: list[str] = field(default_factory=list)

    def expect(self, lab: CampaignLab, code: int, wanted: int, what: str) -> None:
        self.runs += 1
        if code != wanted:
            failed = sorted(t for t, s in lab.states().items() if s in ("failed", "upstream_failed"))
            self.notes.append(f"{what} ended with {code}, expected {wanted} (failed: {failed}); see {lab.logs[-1]}")


@dataclass
class FaultResult:
    fault: str
    runs: int
    traffic: Traffic
    problems: list[str]

    @property
    def identical(self) -> bool:
        return not self.problems


Scenario = Callable[[CampaignLab], Played]


def fault_free(lab: CampaignLab) -> Outcome:
    """The baseline: the campaign on the seeded portal without any fault."""
    lab.new_scenario("fault-free")
    played = Played()
    played.expect(lab, lab.run(), EXIT_SUCCESS, "the fault-free run")
    outcome = snapshot(lab.sandbox, CAMPAIGN)
    if played.notes or outcome.problems:
        problems = played.notes + list(outcome.problems)
        raise AssertionError("the fault-free run itself went wrong: " + "; ".join(problems))
    return outcome


def judge(lab: CampaignLab, name: str, scenario: Scenario, baseline: Outcome) -> FaultResult:
    """Play ``scenario`` on a fresh portal and compare HubSpot's final state with ``baseline``."""
    lab.new_scenario(name)
    played = scenario(lab)
    traffic = lab.traffic()
    lab.sandbox.admin("DELETE", "faults")  # read the outcome without faults
    lab.sandbox.admin("PUT", "settings", {"rate_limit": DEFAULT_LIMIT})
    problems = played.notes + differences(baseline, snapshot(lab.sandbox, CAMPAIGN))
    return FaultResult(name, played.runs, traffic, problems)


# -- faults that one run must absorb ----------------------------------------------------------------------
def errors_5xx(lab: CampaignLab) -> Played:
    """10% of all responses are a 503, on every endpoint, from a seeded generator."""
    lab.fault("*", "error", status=503, probability=0.1, seed=11)
    played = Played()
    played.expect(lab, lab.run(), EXIT_SUCCESS, "the run")
    return played


def rate_limit_bursts(lab: CampaignLab) -> Played:
    """Bursts of consecutive 429 TEN_SECONDLY_ROLLING answers, whatever the endpoint."""
    for skip in (5, 40, 80, 120):
        lab.fault("*", "rate_limit", count=3, skip=skip)
    played = Played()
    played.expect(lab, lab.run(), EXIT_SUCCESS, "the run")
    return played


def latency_past_timeout(lab: CampaignLab) -> Played:
    """Answers slower than the client waits: each write once (it is applied after the client gave up), and
    3% of all requests at random."""
    for endpoint, skip in WRITES.items():
        lab.fault(endpoint, "latency", seconds=4.5, count=1, skip=skip)
    lab.fault("*", "latency", seconds=4.5, probability=0.03, seed=13)
    played = Played()
    with client_timeout(2.0, 3.0):
        played.expect(lab, lab.run(), EXIT_SUCCESS, "the run")
    return played


def dropped_connections(lab: CampaignLab) -> Played:
    """Connections cut mid-response: after each write was applied (the answer is lost), before a list create
    and a later publish were applied, and 3% of all requests at random."""
    for endpoint, skip in WRITES.items():
        lab.fault(endpoint, "drop_after", count=1, skip=skip)
    lab.fault("lists.create", "drop_before", count=1, skip=1)
    lab.fault(PUBLISH, "drop_before", count=1, skip=2)  # the next publish after the first send's lost answer
    lab.fault("*", "drop_before", probability=0.03, seed=17)
    played = Played()
    played.expect(lab, lab.run(), EXIT_SUCCESS, "the run")
    return played


def sandbox_restarts(lab: CampaignLab) -> Played:
    """The HubSpot side goes away twice and comes back with its SQLite state: right after the first send, and
    while an opt-out batch is in flight."""
    sandbox = lab.sandbox

    def restart_twice(_: CampaignChild) -> None:
        wait_until(lambda: calls_to(sandbox, PUBLISH) >= 2)
        lab.restart_sandbox()
        sandbox.admin("POST", "faults", {"endpoint": OPT_OUT, "kind": "latency", "seconds": 2, "count": 1})
        wait_until(lambda: fired(sandbox, OPT_OUT) >= 1)
        lab.restart_sandbox()

    played = Played()
    played.expect(lab, lab.run(during=restart_twice), EXIT_SUCCESS, "the run")
    return played


# -- faults that stop a run ---------------------------------------------------------------------------------
def kill_in_flight(lab: CampaignLab, played: Played, endpoint: str, skip: int) -> None:
    """SIGKILL the campaign while a request to ``endpoint`` is in flight, then let that request land.

    The request is applied after the kill (the client never hears of it). Airflow retries a killed task
    only after its retry delay, by when HubSpot has long finished the request; the wait stands for it.
    """
    lab.fault(endpoint, "latency", seconds=IN_FLIGHT, count=1, skip=skip)

    def kill(child: CampaignChild) -> None:
        wait_until(lambda: fired(lab.sandbox, endpoint) >= 1)
        child.kill()

    played.expect(lab, lab.run(during=kill), -9, f"the run killed during {endpoint}")
    time.sleep(IN_FLIGHT + 1)


def killed_during(endpoint: str, skip: int) -> Scenario:
    """The campaign killed with ``endpoint``'s request in flight, then its DAG run cleared and run again."""

    def play(lab: CampaignLab) -> Played:
        played = Played()
        kill_in_flight(lab, played, endpoint, skip)
        played.expect(lab, lab.run(), EXIT_SUCCESS, "the rerun")
        return played

    return play


def spend_the_day_during_opt_out(lab: CampaignLab, played: Played) -> None:
    """Run the campaign and let the daily API budget run out between two opt-out batches.

    The first batch is held in flight for a moment; meanwhile the daily limit is set to what has been used,
    so that batch still counts and the next one gets HubSpot's 429 DAILY. The lab's list 2 is two batches,
    so the connection sends one at a time here (``in_flight`` 1): with both in flight, both would land
    before the limit. The operator's own test covers the limit striking with batches in flight.
    """
    sandbox = lab.sandbox
    lab.one_call_at_a_time()
    lab.fault(OPT_OUT, "latency", seconds=1.5, count=1)

    def spend(_: CampaignChild) -> None:
        wait_until(lambda: fired(sandbox, OPT_OUT) >= 1)
        used = sandbox.admin("GET", "settings")["daily_used"]
        sandbox.admin("PUT", "settings", {"rate_limit": f"190/10s,{used}/day"})

    played.expect(lab, lab.run(during=spend), EXIT_FAILED, "the run meeting the daily limit")
    if lab.states().get("opt_out_unconfirmed") != "failed":
        played.notes.append(f"opt_out_unconfirmed did not fail at the daily limit: {lab.states()}")
    if "daily API limit is spent" not in lab.log_text():
        played.notes.append("the failed opt-out does not say that the daily API limit is spent")
    changed = len(sandbox.admin("GET", "status-changes")["results"])
    if not changed:
        played.notes.append("nobody was opted out before the daily limit: the limit did not strike mid-opt-out")


def next_day_rerun(lab: CampaignLab, played: Played) -> None:
    """Move the portal clock a day ahead (a new daily budget) and rerun the failed opt-out."""
    lab.sandbox.admin("POST", "clock", {"advance_seconds": 86_400})
    played.expect(lab, lab.rerun_task("opt_out_unconfirmed"), EXIT_SUCCESS, "the next day's rerun of the opt-out")


def daily_limit_mid_opt_out(lab: CampaignLab) -> Played:
    played = Played()
    spend_the_day_during_opt_out(lab, played)
    next_day_rerun(lab, played)
    return played


# -- the smaller set of ``make test``: several faults per run ------------------------------------------------
def slow_answers_and_restarts(lab: CampaignLab) -> Played:
    """A list create and an opt-out batch answered after the client gave up, the send held in flight while
    HubSpot restarts, and another restart mid-opt-out."""
    lab.fault("lists.create", "latency", seconds=4.5, count=1)
    lab.fault(PUBLISH, "latency", seconds=4.5, count=1, skip=1)
    sandbox = lab.sandbox

    def restart_twice(_: CampaignChild) -> None:
        wait_until(lambda: fired(sandbox, PUBLISH) >= 1)
        lab.restart_sandbox()
        sandbox.admin("POST", "faults", {"endpoint": OPT_OUT, "kind": "latency", "seconds": 4.5, "count": 1})
        wait_until(lambda: fired(sandbox, OPT_OUT) >= 1)
        time.sleep(3.5)  # past the client's timeout: it is retrying when HubSpot goes away
        lab.restart_sandbox()

    played = Played()
    with client_timeout(2.0, 3.0):
        played.expect(lab, lab.run(during=restart_twice), EXIT_SUCCESS, "the run")
    return played


def killed_send_then_daily_limit(lab: CampaignLab) -> Played:
    """The campaign killed with the send in flight; its rerun meets the daily limit mid-opt-out; the opt-out
    is rerun the next day."""
    played = Played()
    kill_in_flight(lab, played, PUBLISH, 1)
    spend_the_day_during_opt_out(lab, played)
    next_day_rerun(lab, played)
    return played


#: The full matrix of ``make reliability``: table label -> scenario.
MATRIX: dict[str, Scenario] = {
    "10% of responses 5xx (every endpoint)": errors_5xx,
    "429 bursts, TEN_SECONDLY_ROLLING (every endpoint)": rate_limit_bursts,
    "latency past the client timeout (each write once, 3% of all)": latency_past_timeout,
    "connections dropped mid-response (each write once, 3% of all)": dropped_connections,
    "sandbox restarted mid-run (twice)": sandbox_restarts,
    **{f"task SIGKILLed during {step}, run again": killed_during(*where) for step, where in STEPS.items()},
    "daily limit reached mid-opt-out, rerun the next day": daily_limit_mid_opt_out,
}
