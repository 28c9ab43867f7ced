"""The campaign benchmark's machinery at 2,000 contacts, so ``make bench`` does not rot between runs.

One real campaign (``airflow dags test`` against a rate-limited sandbox), the plain script on the same
cohort and a few DAG parses; the assertions are about what was counted, never about how long it took.
"""

from __future__ import annotations

import math
import re

import pytest

from tests.benchmarks import campaign_bench, campaign_steps, dag_parse
from tests.benchmarks.sandbox_bench import write_report

SIZE = 2000


@pytest.fixture(scope="module")
def measured(tmp_path_factory, airflow_db):
    workdir = tmp_path_factory.mktemp("campaign-bench")
    airflow = campaign_bench.AirflowHome(workdir / "airflow", migrated=airflow_db)  # the session's, as it was
    run = campaign_bench.run_campaign(SIZE, 1, workdir, airflow, "PT4S")
    plain = campaign_bench.run_plain(SIZE, run.opt_out_ids, workdir)
    parse = dag_parse.measure(repetitions=3)
    return run, plain, parse


def test_every_call_is_attributed_to_a_step_and_adds_up_to_the_sandboxs_totals(measured):
    run, _, _ = measured

    assert run.unattributed == 0
    assert run.log_matches_sandbox
    for task_id in (
        "preflight",
        "build_unengaged_list",
        "round_1.send_email",
        "round_1.build_confirmed_list",
        "export_unconfirmed",
        "opt_out_unconfirmed",
    ):
        assert run.calls.get(task_id, 0) > 0, task_id
    assert "check_guards" not in run.calls  # it does not call HubSpot
    # The report reads each round's facts again, so that a rerun cannot move it.
    assert run.calls["campaign_report"] == campaign_steps.minimum("campaign_report", run.facts).calls


def test_the_campaign_opts_out_the_ground_truth_in_minimum_batches_without_a_429(measured):
    run, _, _ = measured

    assert run.outcome_ok, run.outcome
    assert run.failed == []
    assert run.rate_limited == {}
    assert run.facts.opt_out_rows >= len(run.opt_out_ids) > 0  # list 2 also holds who unsubscribed themselves
    # The reads before the first change, then one batch per 100 contacts opted out.
    facts = run.facts
    reads = sum(
        campaign_steps.pages(n, 1000)
        for n in facts.sent_events + facts.unsubscribe_events + facts.status_events + facts.click_events
    ) + campaign_steps.pages(facts.list_one_size or 0, 250)
    # Left to opt out: the ground truth, and those who unsubscribed themselves (HubSpot answers NO_STATUS_CHANGE).
    assert facts.to_opt_out is not None and facts.to_opt_out >= len(run.opt_out_ids)
    assert run.calls["opt_out_unconfirmed"] == reads + math.ceil(facts.to_opt_out / 100)
    assert campaign_steps.minimum("opt_out_unconfirmed", run.facts).calls == run.calls["opt_out_unconfirmed"]
    assert run.peak_rss_mb > 50
    rows = {r["step"]: r for r in run.rows()}
    assert all(r["minimum"] > 0 for r in rows.values())


def test_every_step_makes_exactly_its_minimum_of_calls(measured):
    run, _, _ = measured
    over = {r["step"]: (r["calls"], r["minimum"]) for r in run.rows() if r["calls"] != r["minimum"]}
    assert over == {}


def test_the_plain_script_makes_two_calls_per_contact_on_the_same_cohort(measured):
    run, plain, _ = measured

    assert plain.outcome_ok and plain.members == len(run.opt_out_ids)
    assert plain.by_kind == {
        "pages": math.ceil(plain.members / 250),
        "look-ups": plain.members,
        "unsubscribes": plain.members,
    }
    assert plain.calls == plain.minimum == sum(plain.by_kind.values())
    assert plain.calls > 50 * campaign_bench.project_path_calls(run)


def test_the_dag_parses_without_network_and_both_baselines_are_cheaper(measured):
    _, _, parse = measured

    assert parse["network_attempts"] == 0
    assert parse["tasks"] > 20
    assert parse["one_task_ms"] < parse["campaign_ms"] and parse["same_shape_ms"] < parse["campaign_ms"]


def test_the_report_has_every_table_and_a_verdict_per_target(measured, tmp_path, capsys):
    run, plain, parse = measured
    out = tmp_path / "results.md"

    args = campaign_bench.build_parser().parse_args(["--wait", "PT4S", "--latency-ms", "0"])
    write_report(campaign_bench.report([run], [plain], parse, 60.0, args, []), out)

    written = out.read_text()
    assert "## Campaign benchmark, " in written and "CPUs (nproc)" in written
    assert "| opt_out_unconfirmed | " in written and "| **total** |" in written
    assert "### Against the plain per-contact script" in written and "### DAG file parse time" in written
    for target in (
        r"calls/minimum <= 1.1 for every step",
        r"zero 429s",
        r"DAG parse time <= 1.5 x",
        r"every run opted out exactly the ground truth",
    ):
        assert re.search(rf"^- (PASS|FAIL): {target}", written, re.M), target
    assert re.search(r"^- PASS: zero 429s", written, re.M)
    assert re.search(r"^- PASS: every run opted out exactly the ground truth", written, re.M)


@pytest.mark.parametrize(("calls", "floor"), [(0, 0.0), (19, 1.0), (190, 10.0), (3800, 200.0)])
def test_the_floor_is_the_calls_at_the_limits_rate(calls, floor):
    assert campaign_steps.floor_seconds(calls) == pytest.approx(floor)
    assert campaign_steps.is_call_bound(calls) == (calls > 190)


def test_every_read_of_list_1_pages_every_click_but_looks_up_only_new_clickers():
    facts = campaign_steps.Facts(
        rounds=2,
        confirmed=(1000, 1500),
        late_confirmed=30,
        click_events=(1200, 600),
        opt_out_rows=2500,
        confirmed_list_size=1500,
    )

    first = campaign_steps.minimum("round_1.build_confirmed_list", facts)
    second = campaign_steps.minimum("round_2.build_confirmed_list", facts)
    refresh = campaign_steps.minimum("refresh_confirmed_list", facts)

    assert first.calls == 3 + 2 + 2 * 10 and first.grows
    assert second.calls == 1 + (2 + 1) + 2 * 5
    assert refresh.calls == 1 + (2 + 1) + 6 + 2 * 1 and "(the check)" in refresh.formula
    # No SENT, UNSUBSCRIBED or STATUSCHANGE counts given: still one page of each per email.
    assert campaign_steps.minimum("opt_out_unconfirmed", facts).calls == 2 + 2 + 2 + (2 + 1) + 6 + 25
    read = campaign_steps.Facts(
        **{
            **facts.__dict__,
            "sent_events": (2500, 1300),
            "unsubscribe_events": (40, 0),
            "status_events": (1001, 3),
            "to_opt_out": 2400,
            "list_one_size": 1530,
        }
    )
    assert campaign_steps.minimum("opt_out_unconfirmed", read).calls == (3 + 2) + 2 + (2 + 1) + (2 + 1) + 7 + 24
    assert campaign_steps.minimum("round_2.build_recipients_list", facts).calls == 3
    assert campaign_steps.minimum("check_guards", facts) is None
