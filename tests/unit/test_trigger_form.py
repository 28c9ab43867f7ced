"""The trigger form: every param offers choices or refuses a bad value in plain words, never with a regex."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from reengagement.campaign import (
    PARAMS_SCHEMA,
    WAIT_EXAMPLES,
    CampaignParams,
    InvalidParams,
    human_duration,
    parse_duration,
)
from reengagement.macros import MACROS

#: What a regular expression leaves in a message; none of it belongs in a plain-language error.
REGEX_MARKS = ("^", "$", "\\d", "\\s", "[^", "(?", ".*", "does not match")

#: One invalid value per param and a fragment of the rule its message must state.
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("campaign", "x" * 81, "at most 80 characters"),
    ("subscription_type", "", "at least 1 character"),
    ("inactivity_weeks", 0, "whole number from 4 to 260"),
    ("focus_email", "x" * 257, "at most 256 characters"),
    ("min_emails_delivered", -1, "whole number from 0 to 1000"),
    ("spare_recent_activity", "yes", "true or false"),
    ("exclude_lifecycle_stages", [""], "a list of texts of at least 1 character"),
    ("notify_emails", "ops@example.com", "a list of email addresses like ops@example.com"),
    ("template_email_id", "latest", "numeric id of a marketing email"),
    ("subject", "", "1 to 200 characters"),
    ("from_name", "x" * 101, "1 to 100 characters"),
    ("reply_to", "marketing@example", "email address like marketing@example.com"),
    ("confirm_url", "http://www.example.com/thanks", "https URL"),
    ("wait", "P7X", "duration like P7D (7 days) or PT12H (12 hours)"),
    ("rounds", 5, "allowed values 1, 2 or 3"),
    ("opt_out_scope", "everything", "'all_email' or 'subscription_type'"),
    ("legal_basis", "BECAUSE", "'NON_GDPR'"),
    ("legal_basis_explanation", "", "1 to 500 characters"),
    ("dry_run", "yes", "true or false"),
    ("require_approval", 1, "true or false"),
    ("max_opt_out_fraction", 1.5, "number from 0 to 1"),
    ("export_base", 42, "folder URI"),
]


def campaign_params(**overrides: Any) -> CampaignParams:
    return CampaignParams.from_params(overrides, default_campaign="dag 2026-Q4")


def refusal(**overrides: Any) -> str:
    with pytest.raises(InvalidParams) as err:
        campaign_params(**overrides)
    return str(err.value)


def airflow_refusal(name: str, value: Any) -> str | None:
    """What Airflow says when a run is created with ``{name: value}`` as conf (None: it accepts the value)."""
    from airflow.exceptions import ParamValidationError
    from airflow.serialization.definitions.param import SerializedParam, SerializedParamsDict

    params = SerializedParamsDict(
        {
            n: SerializedParam(
                spec["default"],
                spec["description"],
                **{k: v for k, v in spec.items() if k not in ("default", "description")},
            )
            for n, spec in PARAMS_SCHEMA.items()
        }
    )
    try:
        params.deep_merge({name: value}).validate()
    except ParamValidationError as err:
        return str(err)
    return None


def test_every_param_is_tried():
    assert [name for name, _, _ in BAD_VALUES] == list(PARAMS_SCHEMA)


@pytest.mark.parametrize(("name", "value", "rule"), BAD_VALUES, ids=[n for n, _, _ in BAD_VALUES])
def test_a_bad_value_is_refused_naming_the_param_and_the_rule_without_a_regex(name, value, rule):
    message = refusal(**{name: value})
    assert f"{name}: {value!r}" in message
    assert rule in message
    assert not [mark for mark in REGEX_MARKS if mark in message], message


@pytest.mark.parametrize(("name", "value", "rule"), BAD_VALUES, ids=[n for n, _, _ in BAD_VALUES])
def test_what_airflow_refuses_at_run_creation_quotes_no_regex(name, value, rule):
    message = airflow_refusal(name, value)
    if message is not None:
        assert f"Invalid input for param {name}" in message
        assert "pattern" not in message and "\\" not in message, message


def test_the_schema_has_no_pattern_for_the_form_to_quote():
    assert '"pattern"' not in json.dumps(PARAMS_SCHEMA)


def test_each_problem_is_reported_once_and_all_at_once():
    message = refusal(rounds="nonsense", reply_to="nobody", wait="P1X")
    assert message.count("rounds:") == 1
    assert all(f"{name}:" in message for name in ("rounds", "reply_to", "wait"))


# -- rounds ---------------------------------------------------------------------------------------------
def test_rounds_is_a_choice_of_one_to_three_emails_with_readable_labels():
    spec = PARAMS_SCHEMA["rounds"]
    assert spec["enum"] == [1, 2, 3]
    assert spec["values_display"] == {"1": "1 email", "2": "2 emails (1 reminder)", "3": "3 emails (2 reminders)"}
    assert "minimum" not in spec and "maximum" not in spec  # a number field would clamp 5 to 3


@pytest.mark.parametrize("rounds", [0, 4, 5])
def test_airflow_refuses_a_run_with_rounds_outside_the_choices_naming_them(rounds):
    assert "is not one of [1, 2, 3]" in (airflow_refusal("rounds", rounds) or "")
    assert f"rounds: {rounds} is not one of the allowed values 1, 2 or 3" in refusal(rounds=rounds)


def test_rounds_given_as_text_is_refused_and_the_choices_are_named():
    assert "is not of type 'integer'" in (airflow_refusal("rounds", "2") or "")
    assert "rounds: '2' is not one of the allowed values 1, 2 or 3" in refusal(rounds="2")


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_each_offered_round_count_is_accepted(rounds):
    assert airflow_refusal("rounds", rounds) is None
    assert campaign_params(rounds=rounds).rounds == rounds


# -- wait -----------------------------------------------------------------------------------------------
def test_wait_is_a_text_field_with_suggestions_and_keeps_its_default():
    spec = PARAMS_SCHEMA["wait"]
    assert spec["default"] == "P7D" and spec["default"] in spec["examples"]
    assert spec["examples"] == list(WAIT_EXAMPLES)
    # A top-level format would make Airflow's form render its bare duration field, without the suggestions.
    assert "format" not in spec and "enum" not in spec


@pytest.mark.parametrize("wait", [*WAIT_EXAMPLES, "PT4S", "PT90M", "P2W", "P1DT6H", "PT1H30M15S", "P0D"])
def test_wait_accepts_the_suggestions_and_any_iso_duration_of_days_to_seconds(wait):
    assert airflow_refusal("wait", wait) is None
    assert campaign_params(wait=wait).wait == parse_duration(wait)


@pytest.mark.parametrize("wait", ["P7X", "7 days", "", "P", "PT", "p7d", "P7D "])
def test_airflow_and_campaign_params_refuse_a_malformed_wait_in_plain_words(wait):
    assert "is not a 'duration'" in (airflow_refusal("wait", wait) or "")
    assert f"wait: {wait!r} is not a duration like P7D (7 days) or PT12H (12 hours)" in refusal(wait=wait)


@pytest.mark.parametrize("wait", ["P1Y", "P1M", "P1Y2M3D"])
def test_years_and_months_are_refused_with_the_reason(wait):
    assert "years and months vary in length" in refusal(wait=wait)


# -- choices and defaults -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n, spec in PARAMS_SCHEMA.items() if "enum" in spec])
def test_every_choice_list_has_a_readable_label_for_each_value(name):
    spec = PARAMS_SCHEMA[name]
    assert set(spec["values_display"]) == {str(value) for value in spec["enum"]}
    assert spec["default"] in spec["enum"]


def test_defaults_are_unchanged():
    defaults = {name: spec["default"] for name, spec in PARAMS_SCHEMA.items()}
    assert defaults == {
        "campaign": None,
        "subscription_type": "Marketing Information",
        "inactivity_weeks": 52,
        "focus_email": None,
        "min_emails_delivered": 0,
        "spare_recent_activity": False,
        "exclude_lifecycle_stages": [],
        "notify_emails": [],
        "template_email_id": None,
        "subject": "Do you still want to hear from us?",
        "from_name": "The Marketing Team",
        "reply_to": "marketing@example.com",
        "confirm_url": "https://www.example.com/still-subscribed",
        "wait": "P7D",
        "rounds": 1,
        "opt_out_scope": "all_email",
        "legal_basis": "LEGITIMATE_INTEREST_OTHER",
        "legal_basis_explanation": "Did not confirm their subscription in a permission-pass campaign.",
        "dry_run": False,
        "require_approval": False,
        "max_opt_out_fraction": 0.95,
        "export_base": None,
    }
    assert all(airflow_refusal(name, value) is None for name, value in defaults.items())


def test_email_ids_are_digits_and_the_focus_email_is_an_id_or_a_name():
    assert campaign_params(template_email_id="123456789").template_email_id == "123456789"
    assert campaign_params(template_email_id="", focus_email="").focus_email is None
    assert campaign_params(focus_email="123456789").focus_email == "123456789"
    assert campaign_params(focus_email="  Spring newsletter 2026 ").focus_email == "Spring newsletter 2026"


def test_the_signals_are_off_by_default_and_stages_are_trimmed():
    params = campaign_params()
    assert (params.min_emails_delivered, params.spare_recent_activity, params.exclude_lifecycle_stages) == (
        0,
        False,
        (),
    )
    assert campaign_params(exclude_lifecycle_stages=[" customer ", "lead"]).exclude_lifecycle_stages == (
        "customer",
        "lead",
    )


# -- durations as people write them ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (dt.timedelta(days=7), "7 days"),
        (dt.timedelta(hours=12), "12 hours"),
        (dt.timedelta(minutes=2), "2 minutes"),
        (dt.timedelta(days=1, hours=6), "1 day 6 hours"),
        (dt.timedelta(days=1, seconds=1), "1 day 1 second"),
        (dt.timedelta(weeks=2), "14 days"),
        (dt.timedelta(seconds=4, microseconds=500), "4 seconds"),
        (dt.timedelta(0), "0 seconds"),
        (dt.timedelta(hours=-2), "minus 2 hours"),
        ("P7D", "7 days"),
        ("PT4S", "4 seconds"),
        ("P1DT6H", "1 day 6 hours"),
    ],
)
def test_human_duration(duration, text):
    assert human_duration(duration) == text


def test_human_duration_is_a_template_macro():
    assert MACROS["human_duration"]("PT12H") == "12 hours"
