"""Faults during a campaign leave HubSpot exactly as a fault-free run of the same seed does.

The full matrix (every fault on its own, each step killed) is ``make reliability``; these are its
smaller set, several faults per run, for ``make test``.
"""

from __future__ import annotations

from tests.reliability.scenarios import judge, killed_send_then_daily_limit, slow_answers_and_restarts


def test_slow_answers_and_hubspot_restarts_leave_the_fault_free_outcome(lab, baseline):
    result = judge(lab, "slow answers and restarts", slow_answers_and_restarts, baseline.outcome)
    assert result.identical, result.problems
    assert result.traffic.faulted >= 3  # the faults did fire
    assert result.traffic.client_retries > 0


def test_a_killed_send_and_a_daily_limit_mid_opt_out_end_like_the_fault_free_run(lab, baseline):
    result = judge(lab, "killed send, daily limit", killed_send_then_daily_limit, baseline.outcome)
    assert result.identical, result.problems
    assert result.runs == 3  # killed, stopped by the daily limit, the opt-out rerun the next day
