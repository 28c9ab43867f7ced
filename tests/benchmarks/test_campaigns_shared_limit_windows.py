"""The shared-limit benchmark's arithmetic: when all campaigns are call-bound, and what each 10 s window holds.

The benchmark itself needs a deployment with three workers (``make bench``); its figures are only as good as
these functions, so they are checked here on call logs whose answers are known.
"""

from __future__ import annotations

import json

from tests.benchmarks import campaign_steps as steps
from tests.benchmarks.campaigns_shared_limit import Call, all_call_bound, call_bound_spans, read_calls, windows


def steady(dag: str, task: str, start: float, end: float, per_second: float) -> list[Call]:
    count = round((end - start) * per_second)
    return [Call(start + k / per_second, dag, task, 200, "e") for k in range(count + 1)]


def test_a_campaign_is_call_bound_only_inside_its_call_bound_tasks():
    calls = [
        *steady("a", "preflight", 0, 1, 10),  # 11 calls: not call-bound
        *steady("a", "opt_out", 5, 25, 10),  # 201 calls: more than one window holds
        *steady("a", "report", 30, 31, 10),
    ]
    assert steps.is_call_bound(201)
    assert call_bound_spans(calls) == {"a": [(5, 25)]}


def test_all_call_bound_is_where_every_campaign_is_inside_one_of_its_spans():
    spans = {"a": [(0, 30), (40, 60)], "b": [(10, 50)], "c": [(5, 45), (55, 70)]}
    assert all_call_bound(spans, ["a", "b", "c"]) == [(10, 30), (40, 45)]
    assert all_call_bound(spans, ["a", "b", "missing"]) == []


def test_windows_lie_wholly_inside_a_stretch_and_count_every_campaigns_calls():
    calls = sorted(
        [*steady("a", "x", 0, 40, 6), *steady("b", "y", 0, 40, 6), *steady("c", "z", 0, 40, 6)], key=lambda c: c.at
    )
    counts = windows(calls, [(10, 30.5)])
    assert len(counts) == 11  # windows starting at 10, 11, ..., 20
    assert set(counts) == {180}  # 3 campaigns x 6 calls a second x 10 s
    assert windows(calls, [(10, 19)]) == []  # shorter than a window


def test_the_call_log_is_read_by_user_agent_and_half_written_lines_are_skipped(tmp_path):
    log = tmp_path / "calls.jsonl"
    agent = "hubspot-reengagement (hubspot_reengagement__{})".format
    lines = [
        {"at": 2.0, "endpoint": "e2", "status": 429, "agent": agent("b/opt_out")},
        {"at": 1.0, "endpoint": "e1", "status": 200, "agent": agent("a/preflight")},
        {"at": 1.5, "endpoint": "e3", "status": 200, "agent": "curl/8"},
    ]
    log.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"at": 3.0, "endp')
    assert read_calls(log) == [
        Call(1.0, "hubspot_reengagement__a", "preflight", 200, "e1"),
        Call(2.0, "hubspot_reengagement__b", "opt_out", 429, "e2"),
    ]
