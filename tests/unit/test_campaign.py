"""The campaign's pure rules: params, names, confirm URLs, guards."""

from __future__ import annotations

import datetime as dt

import jsonschema
import pytest
from reengagement.campaign import (
    PARAMS_SCHEMA,
    CampaignParams,
    GuardFigures,
    InvalidParams,
    confirm_url_for,
    confirm_url_problems,
    default_campaign,
    guard_problems,
    is_cta_click,
    object_name,
    parse_duration,
)


def params(**overrides):
    return CampaignParams.from_params(overrides, default_campaign="dag 2026-Q4")


def test_defaults_make_a_valid_campaign():
    p = params()
    assert p.campaign == "dag 2026-Q4"
    assert p.wait == dt.timedelta(days=7)
    assert (p.rounds, p.inactivity_weeks, p.opt_out_scope, p.dry_run) == (1, 52, "all_email", False)


def test_every_param_has_a_title_a_description_and_a_valid_default():
    for name, spec in PARAMS_SCHEMA.items():
        assert spec.get("title") and spec.get("description"), name
        jsonschema.validate(spec["default"], {k: v for k, v in spec.items() if k not in ("title", "description")})


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("rounds", 4, "rounds"),
        ("rounds", "two", "rounds"),
        ("inactivity_weeks", 0, "inactivity_weeks"),
        ("opt_out_scope", "everything", "opt_out_scope"),
        ("max_opt_out_fraction", 1.5, "max_opt_out_fraction"),
        ("wait", "7 days", "wait"),
        ("confirm_url", "http://example.com/thanks", "confirm_url"),
        ("confirm_url", "https://example.com/hs/manage-preferences/unsubscribe", "preferences"),
        ("legal_basis", "BECAUSE", "legal_basis"),
        ("reply_to", "nobody", "reply_to"),
        ("dry_run", "yes", "dry_run"),
        ("min_emails_delivered", -1, "min_emails_delivered"),
        ("exclude_lifecycle_stages", "customer", "exclude_lifecycle_stages"),
        ("spare_recent_activity", "no", "spare_recent_activity"),
    ],
)
def test_bad_params_fail_naming_the_field(field, value, fragment):
    with pytest.raises(InvalidParams, match=fragment):
        params(**{field: value})


def test_all_problems_are_reported_at_once():
    with pytest.raises(InvalidParams) as err:
        params(rounds=9, inactivity_weeks=-1)
    assert "rounds" in str(err.value) and "inactivity_weeks" in str(err.value)


def test_default_campaign_is_the_dag_and_quarter():
    assert default_campaign("hubspot_reengagement", dt.datetime(2026, 11, 28)) == "hubspot_reengagement 2026-Q4"
    assert default_campaign("d", dt.datetime(2026, 1, 1)) == "d 2026-Q1"


def test_object_names_are_deterministic_and_distinct_per_role_and_round():
    names = {object_name("c", "recipients", 1), object_name("c", "recipients", 2), object_name("c", "confirmed")}
    assert len(names) == 3
    assert object_name("c", "unconfirmed", 2) == "c · r2 · unconfirmed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", dt.timedelta(days=7)),
        ("PT2M", dt.timedelta(minutes=2)),
        ("P1DT12H", dt.timedelta(days=1, hours=12)),
        ("P2W", dt.timedelta(weeks=2)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "7D", "P1Y"])
def test_parse_duration_rejects_what_it_cannot_measure(text):
    with pytest.raises(InvalidParams):
        parse_duration(text)


def test_confirm_url_carries_campaign_and_round_and_keeps_existing_query():
    url = confirm_url_for("https://example.com/thanks?utm_source=hs", "dag 2026-Q4", 2)
    assert url == "https://example.com/thanks?utm_source=hs&pp=dag+2026-Q4&pp_round=2"


def test_cta_match_ignores_query_order_and_host_case_but_not_the_round():
    cta = {confirm_url_for("https://example.com/thanks", "c", 1)}
    assert is_cta_click("https://EXAMPLE.com/thanks?pp_round=1&pp=c", cta)
    assert not is_cta_click("https://example.com/thanks?pp=c&pp_round=2", cta)
    assert not is_cta_click("https://example.com/hs/manage-preferences/unsubscribe?x=1", cta)
    assert not is_cta_click(None, cta)


CTA = "https://example.com/thanks?pp=c&pp_round=1"


@pytest.mark.parametrize(
    "clicked",
    [
        # HubSpot's tracking parameters after, before and around the link's own, in any order.
        "https://example.com/thanks?pp=c&pp_round=1&utm_campaign=Q3&utm_medium=email&_hsenc=p2ANqtz-8Xq"
        "&_hsmi=80000123&utm_content=80000123&utm_source=hs_email",
        "https://example.com/thanks?_hsmi=80000123&utm_source=hs_email&pp_round=1&pp=c&_hsenc=p2ANqtz-8Xq",
        "https://example.com/thanks?utm_medium=email&pp=c&__hstc=1.2.3&__hssc=4.5&__hsfp=99&pp_round=1",
        "https://example.com/thanks/?pp_round=1&utm_content=80000123&pp=c#top",
        "https://EXAMPLE.com:443/thanks?pp=c&pp_round=1&_hsenc=p2ANqtz-unsubscribeish",
    ],
)
def test_a_cta_click_counts_whatever_tracking_parameters_hubspot_added(clicked):
    assert is_cta_click(clicked, {CTA})


@pytest.mark.parametrize(
    "clicked",
    [
        "https://example.com/thanks?pp=c&pp_round=2&utm_source=hs_email",  # another round
        "https://example.com/thanks?pp=other&pp_round=1&utm_source=hs_email",  # another campaign
        "https://example.com/thanks?pp_round=1&utm_source=hs_email&_hsmi=1",  # no campaign at all
        "https://example.org/thanks?pp=c&pp_round=1",  # another host
        "https://example.com:8443/thanks?pp=c&pp_round=1",  # another port
        "https://example.com/thanks-again?pp=c&pp_round=1",  # another path
        "http://example.com/thanks?pp=c&pp_round=1",  # another scheme
        "https://example.com/hs/manage-preferences/unsubscribe?pp=c&pp_round=1&utm_source=hs_email",
        "https://example.com/thanks?pp=c&pp_round=1&unsubscribe=1",
        "https://example.com/hs/preferences-center/en/page?pp=c&pp_round=1",
        "",
    ],
)
def test_other_links_and_unsubscribe_links_never_count(clicked):
    assert not is_cta_click(clicked, {CTA})


def test_tracking_parameters_in_the_cta_itself_are_not_required_of_the_click():
    assert is_cta_click(
        "https://example.com/thanks?pp=c&pp_round=1&_hsmi=5",
        {"https://example.com/thanks?utm_source=newsletter&pp=c&pp_round=1"},
    )


def test_plain_thank_you_page_is_fine():
    assert confirm_url_problems("https://example.com/still-subscribed") == []


def figures(**kw):
    base = {
        "sent": 1000,
        "delivered": 980,
        "click_stat": 120,
        "cta_clickers": 100,
        "to_opt_out": 880,
        "max_fraction": 0.95,
    }
    return GuardFigures(**{**base, **kw})


def test_guards_pass_a_normal_campaign():
    assert guard_problems(figures()) == []


def test_guard_no_clicks_tracked():
    problems = guard_problems(figures(click_stat=0, cta_clickers=0, to_opt_out=900, max_fraction=1.0))
    assert len(problems) == 1 and "No clicks were tracked" in problems[0]


def test_guard_list_one_disagrees_with_click_stats():
    assert any("disagrees" in p for p in guard_problems(figures(click_stat=10, cta_clickers=100)))


def test_guard_clicks_but_none_on_the_cta():
    assert any("none clicked the CTA" in p for p in guard_problems(figures(click_stat=40, cta_clickers=0)))


def test_guard_fraction_above_the_limit():
    problems = guard_problems(figures(to_opt_out=990))
    assert len(problems) == 1 and "99.0%" in problems[0]


def test_small_campaign_without_clicks_is_not_called_broken():
    assert guard_problems(figures(sent=10, delivered=10, click_stat=0, cta_clickers=0, to_opt_out=9)) == []
