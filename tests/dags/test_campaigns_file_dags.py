"""dags/hubspot_campaigns.py through Airflow's own DagBag: a DAG per campaign, and a bad campaign named alone."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.conftest import ROOT

DAGS_FILE = ROOT / "dags" / "hubspot_campaigns.py"
THREE_CAMPAIGNS = """\
campaigns:
  - id: emea
    connection_id: hubspot_emea
    business_unit: 42
    subscription_type: EMEA News
    params: {rounds: 2}
  - id: us
    subscription_type: US News
    schedule: "@monthly"
    params:
      inactivity_weeks: 1
  - id: apac
    subscription_type: APAC News
    schedule: null
"""


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while parsing the DAG: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def dags_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(DAGS_FILE, folder)
    return folder


def load(folder):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def test_one_bad_campaign_is_one_import_error_and_the_others_load(dags_folder, no_network):
    (dags_folder / "campaigns.yaml").write_text(THREE_CAMPAIGNS)
    bag = load(dags_folder)
    assert sorted(bag.dag_ids) == ["hubspot_reengagement__apac", "hubspot_reengagement__emea"]
    assert list(bag.import_errors) == [str(dags_folder / "hubspot_campaigns.py")]
    (message,) = bag.import_errors.values()
    assert message.splitlines() == [
        f"CampaignsFileError: Campaigns left out of {dags_folder / 'campaigns.yaml'} (the others in it load):",
        'campaigns.yaml line 11, campaign "us", field "params.inactivity_weeks": the default of param '
        "'inactivity_weeks' is invalid: 1 is less than the minimum of 4",
    ]


def test_the_campaigns_are_the_files_dags_with_their_own_settings(dags_folder, no_network):
    (dags_folder / "campaigns.yaml").write_text(THREE_CAMPAIGNS.replace("inactivity_weeks: 1", "inactivity_weeks: 8"))
    bag = load(dags_folder)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [f"hubspot_reengagement__{c}" for c in ("apac", "emea", "us")]
    for dag in bag.dags.values():
        assert dag.fileloc == str(dags_folder / "hubspot_campaigns.py")  # Airflow binds them to the dags file
    emea, us, apac = (bag.dags[f"hubspot_reengagement__{c}"] for c in ("emea", "us", "apac"))
    assert (emea.schedule, us.schedule, apac.schedule) == ("@quarterly", "@monthly", None)
    assert (emea.params["subscription_type"], emea.params["rounds"]) == ("EMEA News", 2)
    assert (us.params["subscription_type"], us.params["inactivity_weeks"]) == ("US News", 8)
    hubspot_tasks = [t for t in emea.tasks if hasattr(t, "hubspot_conn_id")]
    assert len(hubspot_tasks) > 20
    assert {(t.hubspot_conn_id, t.business_unit_id) for t in hubspot_tasks} == {("hubspot_emea", 42)}


def test_a_file_that_is_not_a_campaigns_file_is_one_import_error_and_no_dags(dags_folder, no_network):
    (dags_folder / "campaigns.yaml").write_text("campaigns:\n  - id: emea\n    subscription_type: [oops\n")
    bag = load(dags_folder)
    assert bag.dag_ids == []
    (message,) = bag.import_errors.values()
    assert message.startswith("CampaignsFileError: campaigns.yaml line 4: not valid YAML")


def test_without_a_campaigns_file_the_dags_file_builds_nothing(dags_folder, no_network):
    bag = load(dags_folder)
    assert (bag.dag_ids, bag.import_errors) == ([], {})


def test_the_deployment_can_keep_the_file_elsewhere(dags_folder, tmp_path, monkeypatch, no_network):
    elsewhere = tmp_path / "config" / "brands.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(THREE_CAMPAIGNS.replace("inactivity_weeks: 1", "inactivity_weeks: 8"))
    (dags_folder / "campaigns.yaml").write_text("campaigns: []\n")  # not the configured one
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE", str(elsewhere))
    bag = load(dags_folder)
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == 3
