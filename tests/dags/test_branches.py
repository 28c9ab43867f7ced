"""A branch skips the whole path it did not take at once, exactly the tasks Airflow would skip level by level."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dag():
    from tests.support.campaign import load_dag

    return load_dag()


def skipped_by(dag, branch_id: str, chosen: str) -> set[str]:
    """What the branch skips when it follows ``chosen``: Airflow's own first level, then the rest of the path."""
    branch = dag.get_task(branch_id)
    followed = {chosen, *dag.get_task(chosen).get_flat_relative_ids(upstream=False)}
    others = [(t.task_id, -1) for t in branch.downstream_list if t.task_id not in followed]
    return {task_id for task_id, _ in branch._whole_paths(others)}


def test_going_to_the_opt_out_after_round_1_skips_every_later_round_at_once(dag):
    skipped = skipped_by(dag, "another_round_1", chosen="refresh_confirmed_list")
    later_rounds = {t.task_id for t in dag.tasks if t.task_id.startswith(("round_2.", "round_3."))}
    assert later_rounds | {"another_round_2"} == skipped


def test_the_opt_out_path_and_the_report_are_never_skipped_by_a_branch(dag):
    skipped = skipped_by(dag, "another_round_1", chosen="refresh_confirmed_list")
    for task_id in (
        "refresh_confirmed_list",
        "export_unconfirmed",
        "opt_out_unconfirmed",
        "campaign_report",
        "fail_if_any_step_failed",
    ):
        assert task_id not in skipped
        # Each of them waits for skipped rounds by its trigger rule; skipping it early would be wrong.
        assert dag.get_task(task_id).trigger_rule != "all_success"


def test_an_empty_cohort_skips_all_three_rounds_at_once(dag):
    skipped = skipped_by(dag, "has_unengaged", chosen="campaign_report")
    rounds = {t.task_id for t in dag.tasks if t.task_id.startswith(("round_", "another_round_"))}
    assert rounds == skipped
