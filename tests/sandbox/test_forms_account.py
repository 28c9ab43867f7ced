"""Marketing forms v3 (consent variants through the SDK) and account info v3 (details, daily API usage)."""

from __future__ import annotations

import pytest
from hubspot.marketing.forms import ApiException

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID

FORM = "6b0e8f44-0000-4000-8000-00000000000{}"


def test_forms_page_lists_every_consent_variant(seeded, client):
    page = client.marketing.forms.forms_api.get_page()
    assert page.paging is None
    kinds = {form.name: form.legal_consent_options.type for form in page.results}
    assert sorted(kinds.values()) == sorted(
        ["explicit_consent_to_process", "legitimate_interest", "implicit_consent_to_process", "none"]
    )
    assert all(form.form_type == "hubspot" and form.archived is False for form in page.results)


def test_form_by_id_carries_its_checkboxes_and_an_email_field(seeded, client):
    explicit = client.marketing.forms.forms_api.get_by_id(FORM.format(1))
    consent = explicit.legal_consent_options
    assert consent.type == "explicit_consent_to_process"
    assert consent.communications_checkboxes[0].subscription_type_id == MARKETING_SUBSCRIPTION_ID
    assert consent.consent_to_process_checkbox_label and consent.privacy_text
    assert explicit.field_groups[0].fields[0].name == "email"

    legitimate = client.marketing.forms.forms_api.get_by_id(FORM.format(2)).legal_consent_options
    assert legitimate.lawful_basis == "lead" and legitimate.subscription_type_ids == [MARKETING_SUBSCRIPTION_ID]
    implicit = client.marketing.forms.forms_api.get_by_id(FORM.format(3)).legal_consent_options
    assert [c.subscription_type_id for c in implicit.communications_checkboxes] == [33583164]
    assert client.marketing.forms.forms_api.get_by_id(FORM.format(4)).legal_consent_options.type == "none"


def test_forms_page_by_page_and_filtered_by_type(seeded, client):
    first = client.marketing.forms.forms_api.get_page(limit=3)
    assert len(first.results) == 3 and first.paging.next.after
    rest = client.marketing.forms.forms_api.get_page(limit=3, after=first.paging.next.after)
    assert len(rest.results) == 1 and rest.paging is None
    assert {f.id for f in first.results + rest.results} == {FORM.format(i) for i in range(1, 5)}
    assert client.marketing.forms.forms_api.get_page(form_types=["captured"]).results == []
    assert client.marketing.forms.forms_api.get_page(archived=True).results == []


def test_unknown_form_is_404(seeded, client):
    with pytest.raises(ApiException) as err:
        client.marketing.forms.forms_api.get_by_id("no-such-form")
    assert err.value.status == 404


def test_account_details_name_the_portal(sandbox):
    details = sandbox.session.get(f"{sandbox.url}/account-info/v3/details").json()
    settings = sandbox.admin("GET", "settings")
    assert details["portalId"] == settings["portal_id"]
    assert details["uiDomain"] == settings["ui_domain"] and details["timeZone"] == settings["time_zone"]
    assert details["accountType"] == "STANDARD"
    assert details["utcOffset"] in ("-05:00", "-04:00")
    assert details["utcOffsetMilliseconds"] in (-5 * 3_600_000, -4 * 3_600_000)


def test_daily_api_usage_counts_requests(sandbox):
    url = f"{sandbox.url}/account-info/v3/api-usage/daily/private-apps"
    first = sandbox.session.get(url).json()["results"][0]
    sandbox.session.get(f"{sandbox.url}/account-info/v3/details")
    second = sandbox.session.get(url).json()["results"][0]
    assert second["currentUsage"] == first["currentUsage"] + 2
    assert first["usageLimit"] == int(sandbox.admin("GET", "settings")["rate_limit"].split(",")[1].split("/")[0])
    assert first["name"] == "private-apps-api-calls-daily" and first["fetchStatus"] == "SUCCESS"
    assert first["resetsAt"].endswith("T00:00:00.000Z")
