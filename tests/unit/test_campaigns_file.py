"""campaigns.yaml: every campaign becomes a DAG, and every mistake names its line, campaign and field."""

from __future__ import annotations

import textwrap

import pytest
from reengagement.campaign_dag import FROM_CONFIG
from reengagement.campaigns_file import (
    INVALID_DAG_ID,
    Campaign,
    CampaignsFileError,
    build_campaign_dags,
    configured_campaigns_file,
    load_campaigns,
)

from tests.conftest import ROOT


def write(folder, text, name="campaigns.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems_of(path):
    return [str(problem) for problem in load_campaigns(path).problems]


def test_a_campaign_needs_only_an_id_and_a_subscription_type(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            subscription_type: Marketing Information
        """,
    )
    declared = load_campaigns(path)
    assert declared.problems == []
    assert declared.campaigns == [Campaign(id="emea", subscription_type="Marketing Information")]
    (campaign,) = declared.campaigns
    assert (campaign.connection_id, campaign.business_unit, campaign.schedule, campaign.params) == (
        "hubspot_default",
        0,
        FROM_CONFIG,
        {},
    )
    assert campaign.dag_id == "hubspot_reengagement__emea"


def test_each_campaign_is_a_dag_with_its_connection_business_unit_schedule_and_defaults(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            connection_id: hubspot_emea
            business_unit: 1234567
            subscription_type: EMEA News
            schedule: "0 6 1 */3 *"
            params: {rounds: 2, wait: P14D}
          - id: us
            subscription_type: "987654"
            schedule: null
          - id: apac
            subscription_type: APAC News
        """,
    )
    dags = build_campaign_dags(path)
    assert list(dags) == ["hubspot_reengagement__emea", "hubspot_reengagement__us", "hubspot_reengagement__apac"]
    emea = dags["hubspot_reengagement__emea"]
    assert emea.schedule == "0 6 1 */3 *"
    assert (emea.params["subscription_type"], emea.params["rounds"], emea.params["wait"]) == ("EMEA News", 2, "P14D")
    assert emea.params["dry_run"] is False  # the built-in defaults stay for what the file does not set
    preflight = emea.get_task("preflight")
    assert (preflight.hubspot_conn_id, preflight.business_unit_id) == ("hubspot_emea", 1234567)
    us = dags["hubspot_reengagement__us"]
    assert us.schedule is None
    assert us.params["subscription_type"] == "987654"
    assert us.get_task("preflight").business_unit_id == 0
    assert us.get_task("preflight").hubspot_conn_id == "hubspot_default"
    assert dags["hubspot_reengagement__apac"].schedule == "@quarterly"  # the deployment's default


def test_a_subscription_type_id_may_be_a_number_and_params_may_be_empty(tmp_path):
    path = write(tmp_path, "campaigns:\n  - id: emea\n    subscription_type: 12345678\n    params:\n")
    (campaign,) = load_campaigns(path).campaigns
    assert (campaign.subscription_type, campaign.params) == ("12345678", {})
    assert build_campaign_dags(path)["hubspot_reengagement__emea"].params["subscription_type"] == "12345678"


def test_the_deployments_schedule_applies_to_campaigns_without_one(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__SCHEDULE", "0 5 * * 1")
    path = write(
        tmp_path, "campaigns:\n  - {id: a, subscription_type: x}\n  - {id: b, subscription_type: x, schedule: none}\n"
    )
    dags = build_campaign_dags(path)
    assert dags["hubspot_reengagement__a"].schedule == "0 5 * * 1"
    assert dags["hubspot_reengagement__b"].schedule is None


@pytest.mark.parametrize(
    ("campaign", "expected"),
    [
        (
            "  - id: EMEA\n    subscription_type: x\n",
            'line 3, campaign "EMEA", field "id": \'EMEA\' is not a slug',
        ),
        (
            "  - id: emea\n    schedule: '@daily'\n",
            'line 3, campaign "emea", field "subscription_type": is required',
        ),
        (
            "  - id: emea\n    subscription_type: x\n    business_unit: -1\n",
            'line 5, campaign "emea", field "business_unit": -1 is less than the minimum of 0',
        ),
        (
            "  - id: emea\n    subscription_type: x\n    business_unit: one\n",
            "line 5, campaign \"emea\", field \"business_unit\": 'one' is not of type 'integer'",
        ),
        (
            "  - id: emea\n    subscription_type: x\n    shedule: '@daily'\n",
            'line 5, campaign "emea", field "shedule": unknown field; known: id, connection_id',
        ),
        (
            "  - id: emea\n    subscription_type: x\n    schedule: 5\n",
            "line 5, campaign \"emea\", field \"schedule\": 5 is not of type 'string', 'null'",
        ),
        (
            "  - id: emea\n    subscription_type: x\n    schedule: every monday\n",
            'line 5, campaign "emea", field "schedule": \'every monday\' is not a cron expression or preset',
        ),
        (
            "  - id: emea\n    subscription_type: x\n    params: [rounds]\n",
            "line 5, campaign \"emea\", field \"params\": ['rounds'] is not of type 'object'",
        ),
        (
            "  - id: emea\n    subscription_type: x\n    params:\n      subscription_type: y\n",
            'line 6, campaign "emea", field "params.subscription_type": set it as the campaign\'s subscription_type',
        ),
        (
            "  - id: emea\n    subscription_type: x\n    subscription_type: y\n",
            'line 5, campaign "emea", field "subscription_type": given more than once (lines 4 and 5)',
        ),
        (
            "  - emea\n",
            "line 3, campaign \"#1\": 'emea' is not a campaign",
        ),
    ],
)
def test_a_mistake_names_the_file_line_campaign_and_field(tmp_path, campaign, expected):
    path = write(tmp_path, "# the campaigns\ncampaigns:\n" + campaign)
    (problem,) = problems_of(path)
    assert problem.startswith("campaigns.yaml " + expected), problem
    assert load_campaigns(path).campaigns == []


def test_each_mistake_of_a_campaign_is_named(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            connection_id: "hubspot emea"
            extra: 1
        """,
    )
    assert problems_of(path) == [
        'campaigns.yaml line 2, campaign "emea", field "subscription_type": is required (the id or name of the '
        "subscription type the permission pass is sent under)",
        'campaigns.yaml line 3, campaign "emea", field "connection_id": \'hubspot emea\' is not an Airflow '
        "connection id: letters, digits and _ - . : / \\ # ! ( ), no spaces",
        'campaigns.yaml line 4, campaign "emea", field "extra": unknown field; known: id, connection_id, '
        "business_unit, subscription_type, schedule, params",
    ]


def test_a_duplicate_id_is_an_error_and_the_first_campaign_keeps_it(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            subscription_type: x
          - id: us
            subscription_type: x
          - id: emea
            subscription_type: y
        """,
    )
    declared = load_campaigns(path)
    assert [c.id for c in declared.campaigns] == ["emea", "us"]
    assert declared.campaigns[0].subscription_type == "x"
    assert [str(p) for p in declared.problems] == [
        'campaigns.yaml line 6, campaign "emea", field "id": the id is already used by the campaign on line 2'
    ]


def test_an_unknown_param_is_named_at_its_line(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            subscription_type: x
            params:
              rounds: 2
              round: 3
        """,
    )
    (problem,) = problems_of(path)
    assert problem.startswith('campaigns.yaml line 6, campaign "emea", field "params.round": unknown param; known: ')
    assert "rounds" in problem


def test_an_invalid_param_default_is_build_campaign_dags_refusal_at_its_line(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - id: emea
            subscription_type: x
            params:
              wait: P7D
              rounds: 4
          - id: us
            subscription_type: x
        """,
    )
    dags = build_campaign_dags(path)
    assert set(dags) == {"hubspot_reengagement__us", INVALID_DAG_ID}
    with pytest.raises(CampaignsFileError) as raised:
        dags[INVALID_DAG_ID].validate()
    head, problem = str(raised.value).splitlines()
    assert head == f"Campaigns left out of {path} (the others in it load):"
    assert problem.startswith(
        'campaigns.yaml line 6, campaign "emea", field "params.rounds": the default of param \'rounds\' is invalid: '
    )
    assert "hubspot_reengagement__emea:" not in problem  # the campaign is named once, the file's way


def test_every_left_out_campaign_is_in_the_one_message(tmp_path):
    path = write(
        tmp_path,
        """
        campaigns:
          - {id: a, subscription_type: x, params: {rounds: 0}}
          - {id: b, subscription_type: x}
          - {id: c, subscription_type: x, business_unit: -2}
        """,
    )
    dags = build_campaign_dags(path)
    assert set(dags) == {"hubspot_reengagement__b", INVALID_DAG_ID}
    with pytest.raises(CampaignsFileError) as raised:
        dags[INVALID_DAG_ID].validate()
    lines = str(raised.value).splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == [
        'campaigns.yaml line 2, campaign "a", field "params.rounds"',
        'campaigns.yaml line 4, campaign "c", field "business_unit"',
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("campaigns:\n  - id: emea\n    subscription_type: [x\n", "campaigns.yaml line 4: not valid YAML"),
        ("- id: emea\n  subscription_type: x\n", "campaigns.yaml line 1: the file must be a mapping with a list"),
        ("campaigns:\n  id: emea\n", "campaigns.yaml line 1: the file must be a mapping with a list"),
        ("campains:\n  - id: emea\n", "campaigns.yaml line 1: 'campaigns' is a required property"),
        ("", "campaigns.yaml line 1: the file must be a mapping with a list"),
        ("campaigns: []\ncampaigns: []\n", "campaigns.yaml line 2: 'campaigns' is given more than once"),
    ],
)
def test_a_file_that_is_not_a_campaigns_file_fails_as_a_whole(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(CampaignsFileError) as raised:
        load_campaigns(path)
    assert str(raised.value).startswith(expected), raised.value
    dags = build_campaign_dags(path)
    assert list(dags) == [INVALID_DAG_ID]
    with pytest.raises(CampaignsFileError, match=expected):
        dags[INVALID_DAG_ID].validate()


def test_no_file_builds_nothing(tmp_path):
    assert build_campaign_dags(tmp_path / "campaigns.yaml") == {}
    assert build_campaign_dags(write(tmp_path, "campaigns: []\n")) == {}


def test_the_file_is_next_to_the_dags_file_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE", raising=False)
    assert configured_campaigns_file(tmp_path) == tmp_path / "campaigns.yaml"
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE", "config/brands.yaml")
    assert configured_campaigns_file(tmp_path) == tmp_path / "config" / "brands.yaml"
    monkeypatch.setenv("AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE", "/etc/campaigns.yaml")
    assert str(configured_campaigns_file(tmp_path)) == "/etc/campaigns.yaml"


def test_the_example_file_is_valid():
    path = ROOT / "campaigns.example.yaml"
    declared = load_campaigns(path)
    assert declared.problems == []
    assert [c.id for c in declared.campaigns] == ["emea", "outdoor-brand", "product-updates"]
    assert INVALID_DAG_ID not in build_campaign_dags(path)


def test_the_schema_is_package_data():
    from importlib import resources

    assert resources.files("reengagement").joinpath("schemas", "campaigns.schema.json").is_file()


def test_the_cycle_collector_is_left_as_it_was(tmp_path):
    import gc

    path = write(tmp_path, "campaigns:\n  - {id: a, subscription_type: x}\n  - {id: b, subscription_type: x}\n")
    assert gc.isenabled()
    assert len(build_campaign_dags(path)) == 2
    assert gc.isenabled()
    gc.disable()
    try:
        build_campaign_dags(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
