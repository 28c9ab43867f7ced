"""The DAG file imports cleanly, does no I/O at parse time, and has the tasks and params it promises."""

from __future__ import annotations

import socket

import pytest
from reengagement.campaign import PARAMS_SCHEMA

#: Steps 1-2 and step 6, each a TaskGroup whose tasks keep their plain ids.
SELECT_COHORT = {"preflight", "build_focus_list", "build_unengaged_list", "count_signal_effects", "has_unengaged"}
OPT_OUT = {
    "refresh_confirmed_list",
    "export_unconfirmed",
    "check_guards",
    "needs_approval",
    "approve_opt_out",
    "opt_out_unconfirmed",
}
BETWEEN = {"another_round_1", "another_round_2", "campaign_report", "fail_if_any_step_failed"}
ROUND_TASKS = (
    "build_recipients_list",
    "create_email",
    "send_email",
    "wait_for_responses",
    "review_metrics",
    "build_confirmed_list",
    "build_unconfirmed_list",
)
STEP_TASKS = SELECT_COHORT | OPT_OUT | BETWEEN | {f"round_{k}.{task}" for k in (1, 2, 3) for task in ROUND_TASKS}


def load(folder):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


@pytest.fixture(scope="module")
def bag():
    from tests.conftest import ROOT

    return load(ROOT / "dags")


def test_imports_without_errors(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["hubspot_ledger_to_warehouse", "hubspot_reengagement"]


def test_no_network_at_parse_time(monkeypatch):
    from tests.conftest import ROOT

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while parsing the DAG: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert load(ROOT / "dags").import_errors == {}


def test_tasks_are_the_steps(bag):
    dag = bag.dags["hubspot_reengagement"]
    assert set(dag.task_ids) == STEP_TASKS
    for task in dag.tasks:
        assert task.doc_md, f"{task.task_id} has no doc_md"
    assert dag.get_task("round_1.send_email").retries == 0
    assert dag.get_task("round_1.wait_for_responses").deferrable
    assert dag.get_task("build_unengaged_list").pool == "hubspot_api"
    assert dag.get_task("build_unengaged_list").retries == 3


def test_the_graph_reads_as_the_seven_steps(bag):
    dag = bag.dags["hubspot_reengagement"]
    groups = {task.task_id: task.task_group.group_id for task in dag.tasks}
    assert {t for t, g in groups.items() if g == "select_cohort"} == SELECT_COHORT
    assert {t for t, g in groups.items() if g == "opt_out"} == OPT_OUT
    assert {t for t, g in groups.items() if g == "round_2"} == {f"round_2.{task}" for task in ROUND_TASKS}
    assert {t for t, g in groups.items() if g is None} == BETWEEN
    # The watcher draws two edges, not one from each of the 33 other tasks ...
    watcher = dag.get_task("fail_if_any_step_failed")
    assert watcher.upstream_task_ids == {"opt_out_unconfirmed", "campaign_report"}
    # ... which is enough: every task but the report leads to the opt-out, so a failure anywhere reaches it.
    assert dag.get_task("opt_out_unconfirmed").get_flat_relative_ids(upstream=True) == STEP_TASKS - {
        "opt_out_unconfirmed",
        "campaign_report",
        "fail_if_any_step_failed",
    }


def test_schedule_and_run_limits(bag):
    dag = bag.dags["hubspot_reengagement"]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.schedule == "@quarterly"


def test_a_deployment_can_turn_the_schedule_off_and_still_run_what_the_assets_schedule(monkeypatch, tmp_path):
    from reengagement.campaign_dag import build_campaign_dag

    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__SCHEDULE", "none")
    assert build_campaign_dag("off").timetable.can_be_scheduled is False
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__SCHEDULE", "0 6 1 */3 *")
    assert build_campaign_dag("early").schedule == "0 6 1 */3 *"
    assert build_campaign_dag("own", schedule="@monthly").schedule == "@monthly"  # a campaign's own wins


def test_the_files_are_assets_a_downstream_dag_is_scheduled_on(bag):
    from airflow.sdk import Asset
    from reengagement.assets import campaign_assets

    dag = bag.dags["hubspot_reengagement"]
    assets = campaign_assets("hubspot_reengagement")
    assert dag.get_task("export_unconfirmed").outlets == [assets["unconfirmed_export"]]
    assert dag.get_task("opt_out_unconfirmed").outlets == [assets["opt_out_results"], assets["audit_ledger"]]
    produced = {o for t in dag.tasks for o in t.outlets if isinstance(o, Asset)}
    assert produced == set(assets.values())
    assert all(a.extra == {"dag_id": "hubspot_reengagement", "kind": k} for k, a in assets.items())
    consumer = bag.dags["hubspot_ledger_to_warehouse"]
    assert list(consumer.timetable.asset_condition.objects) == [assets["audit_ledger"]]


def test_params_are_the_schema_and_their_defaults_validate(bag):
    dag = bag.dags["hubspot_reengagement"]
    assert set(dag.params.keys()) == set(PARAMS_SCHEMA)
    dag.params.validate()
    for name in PARAMS_SCHEMA:
        param = dag.params.get_param(name)
        assert param.description and param.schema.get("title"), name


def test_the_form_validates_in_the_dialect_the_campaign_checks_with(bag):
    """Airflow picks each param's validator from its ``$schema``: the trigger form and the campaign's own
    check (Draft 7) then accept and refuse the same values, at a third of the default dialect's cost."""
    import jsonschema

    dag = bag.dags["hubspot_reengagement"]
    for name in PARAMS_SCHEMA:
        schema = dag.params.get_param(name).schema
        assert jsonschema.validators.validator_for(schema) is jsonschema.Draft7Validator, name


def test_bad_params_are_refused_naming_the_field(bag):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(bag.dags["hubspot_reengagement"].params)
    with pytest.raises(ParamValidationError, match="rounds"):
        params["rounds"] = 4


def test_the_dag_is_bound_to_the_file_in_dags_not_to_the_package(bag):
    from tests.conftest import ROOT

    dag = bag.dags["hubspot_reengagement"]
    assert dag.fileloc == str(ROOT / "dags" / "hubspot_reengagement.py")
    assert (ROOT / "dags" / "hubspot_reengagement.py").read_text().count("\n") == 1  # the one-line file


def test_a_dags_file_can_build_other_campaigns_with_their_own_connection_schedule_and_defaults(tmp_path):
    # Airflow's safe mode parses only files that mention both "airflow" and "dag": the comment says it.
    (tmp_path / "regions.py").write_text(
        "# Airflow DAGs of the regional campaigns\n"
        "from reengagement.campaign_dag import build_campaign_dag\n"
        "emea = build_campaign_dag('hubspot_reengagement_emea', hubspot_conn_id='hubspot_emea', schedule=None,\n"
        "                          params={'rounds': 2, 'wait': 'P14D'})\n"
    )
    bag = load(tmp_path)
    assert bag.import_errors == {}
    assert list(bag.dag_ids) == ["hubspot_reengagement_emea"]  # importing the factory builds no default DAG
    dag = bag.dags["hubspot_reengagement_emea"]
    assert dag.schedule is None
    assert (dag.params["rounds"], dag.params["wait"], dag.params["dry_run"]) == (2, "P14D", False)
    hubspot_tasks = [t for t in dag.tasks if hasattr(t, "hubspot_conn_id")]
    assert len(hubspot_tasks) > 20
    assert {t.hubspot_conn_id for t in hubspot_tasks} == {"hubspot_emea"}


def test_an_unknown_or_invalid_default_is_refused_naming_it(tmp_path):
    from airflow.sdk.exceptions import ParamValidationError
    from reengagement.campaign_dag import build_campaign_dag

    with pytest.raises(ValueError, match=r"emea: unknown param\(s\) round; known: .*rounds"):
        build_campaign_dag("emea", params={"round": 2})
    (tmp_path / "bad.py").write_text(
        "# Airflow DAG\n"
        "from reengagement.campaign_dag import build_campaign_dag\n"
        "bad = build_campaign_dag('bad', params={'rounds': 5})\n"
    )
    [error] = load(tmp_path).import_errors.values()
    assert "ValueError: bad: the default of param 'rounds' is invalid: 5 is not one of [1, 2, 3]" in error
    with pytest.raises(ValueError, match="rounds") as refused:
        build_campaign_dag("bad", params={"rounds": 5})
    assert isinstance(refused.value.__cause__, ParamValidationError)


def test_the_module_offers_only_the_default_campaign_by_name():
    import reengagement.campaign_dag as module

    assert module.hubspot_reengagement.dag_id == "hubspot_reengagement"
    with pytest.raises(AttributeError, match="no attribute 'hubspot_reengagement_emea'"):
        module.hubspot_reengagement_emea  # noqa: B018
