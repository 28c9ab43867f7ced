"""CRM contacts v3 reads: by id, by email, in batches (with 207 partial results) and page by page."""

from __future__ import annotations

import pytest
from hubspot.crm.contacts import ApiException, BatchReadInputSimplePublicObjectId, SimplePublicObjectId

DEFAULT_PROPERTIES = {"email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id"}


def _contacts(sandbox):
    return [c for c in sandbox.admin("GET", "contacts")["results"] if c["email"]]


def _batch(ids, properties=None, id_property=None):
    return BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=str(i)) for i in ids],
        properties=properties or [],
        properties_with_history=[],
        id_property=id_property,
    )


def test_contact_by_id_has_hubspots_default_properties(seeded, client):
    contact = _contacts(seeded)[0]
    found = client.crm.contacts.basic_api.get_by_id(contact["id"])
    assert found.id == contact["id"]
    assert set(found.properties) == DEFAULT_PROPERTIES
    assert found.properties["email"] == contact["email"]
    assert found.properties["hs_object_id"] == contact["id"]
    assert found.archived is False and found.created_at is not None


def test_contact_by_email_with_id_property_is_case_insensitive(seeded, client):
    contact = _contacts(seeded)[1]
    found = client.crm.contacts.basic_api.get_by_id(
        contact["email"].upper(), id_property="email", properties=["email", "hs_email_optout", "no_such_property"]
    )
    assert found.id == contact["id"]
    assert found.properties["email"] == contact["email"]
    assert found.properties["hs_email_optout"] == ("true" if contact["optout"] else "false")
    assert "no_such_property" not in found.properties


def test_unknown_contact_is_404_object_not_found(seeded, client):
    with pytest.raises(ApiException) as err:
        client.crm.contacts.basic_api.get_by_id("999999999")
    assert err.value.status == 404
    assert '"OBJECT_NOT_FOUND"' in err.value.body
    with pytest.raises(ApiException) as err:
        client.crm.contacts.basic_api.get_by_id("nobody@example.com", id_property="email")
    assert err.value.status == 404


def test_unique_id_property_other_than_email_is_rejected(seeded, sandbox):
    contact = _contacts(seeded)[0]
    response = sandbox.session.get(
        f"{sandbox.url}/crm/v3/objects/contacts/{contact['id']}", params={"idProperty": "firstname"}
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_batch_read_by_id_returns_every_contact_asked_for(seeded, client):
    contacts = _contacts(seeded)[:100]
    response = client.crm.contacts.batch_api.read(_batch([c["id"] for c in contacts], ["email"]))
    assert response.status == "COMPLETE"
    assert not getattr(response, "errors", None)
    by_id = {r.id: r.properties for r in response.results}
    assert by_id == {
        c["id"]: {
            "email": c["email"],
            "createdate": by_id[c["id"]]["createdate"],
            "lastmodifieddate": by_id[c["id"]]["lastmodifieddate"],
            "hs_object_id": c["id"],
        }
        for c in contacts
    }


def test_batch_read_by_email_answers_207_naming_the_missing_inputs(seeded, client, sandbox):
    contacts = _contacts(seeded)[:3]
    emails = [c["email"] for c in contacts] + ["ghost@example.com"]
    response = client.crm.contacts.batch_api.read(_batch(emails, ["firstname"], id_property="email"))
    assert sorted(r.id for r in response.results) == sorted(c["id"] for c in contacts)
    assert all("email" not in r.properties and "firstname" in r.properties for r in response.results)
    assert response.num_errors == 1
    assert response.errors[0].category == "OBJECT_NOT_FOUND"
    assert response.errors[0].context == {"ids": ["ghost@example.com"]}
    raw = sandbox.session.post(
        f"{sandbox.url}/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": "1"}], "properties": [], "propertiesWithHistory": []},
    )
    assert raw.status_code == 207


def test_batch_read_of_more_than_100_inputs_is_400(seeded, client):
    with pytest.raises(ApiException) as err:
        client.crm.contacts.batch_api.read(_batch(range(1, 102)))
    assert err.value.status == 400
    assert '"VALIDATION_ERROR"' in err.value.body


def test_paging_visits_every_contact_exactly_once_in_id_order(seeded, client):
    seen, after = [], None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=100, after=after, properties=["email"])
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    expected = [c["id"] for c in seeded.admin("GET", "contacts")["results"]]
    assert seen == expected
    assert len(seen) == 300


def test_page_limit_above_100_is_rejected(seeded, sandbox):
    response = sandbox.session.get(f"{sandbox.url}/crm/v3/objects/contacts", params={"limit": 101})
    assert response.status_code == 400


def test_search_without_filters_gives_the_portals_total_through_the_sdk(seeded, client):
    from hubspot.crm.contacts import PublicObjectSearchRequest

    request = PublicObjectSearchRequest(filter_groups=[], sorts=[], properties=["email"], limit=2, after="0")
    page = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert page.total == 300
    assert len(page.results) == 2
    following = client.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[], sorts=[], properties=["email"], limit=2, after=page.paging.next.after
        )
    )
    assert following.results[0].id != page.results[1].id


def test_search_with_filters_is_refused_clearly(sandbox):
    response = sandbox.session.post(
        f"{sandbox.url}/crm/v3/objects/contacts/search",
        json={
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}],
            "sorts": [],
            "properties": [],
            "limit": 1,
            "after": "0",
        },
    )
    assert response.status_code == 400
    assert "filterGroups" in response.json()["message"]


# -- property definitions ------------------------------------------------------------------------------------

MARKETING = 33583163


@pytest.mark.parametrize(
    ("name", "kind", "field_type"),
    [
        ("email", "string", "text"),
        ("createdate", "datetime", "date"),
        ("hs_email_last_open_date", "datetime", "date"),
        ("hs_email_last_click_date", "datetime", "date"),
        ("hs_email_optout", "bool", "booleancheckbox"),
        (f"hs_email_optout_{MARKETING}", "enumeration", "booleancheckbox"),
        ("hs_marketable_status", "enumeration", "booleancheckbox"),
        ("hs_emailconfirmationstatus", "enumeration", "select"),
        ("hs_email_hard_bounce_reason_enum", "enumeration", "select"),
        ("hs_email_quarantined", "bool", "booleancheckbox"),
    ],
)
def test_each_filtered_property_has_hubspots_type(seeded, client, name, kind, field_type):
    found = client.crm.properties.core_api.get_by_name("contacts", name)
    assert (found.name, found.type, found.field_type) == (name, kind, field_type)


def test_yes_no_properties_list_true_and_false_as_options(seeded, client):
    for name in (f"hs_email_optout_{MARKETING}", "hs_email_optout", "hs_marketable_status"):
        options = client.crm.properties.core_api.get_by_name("contacts", name).options
        assert [o.value for o in options] == ["true", "false"]
    options = client.crm.properties.core_api.get_by_name("contacts", "hs_emailconfirmationstatus").options
    assert "Confirmation Pending" in {o.value for o in options}


def test_a_property_the_portal_does_not_have_is_404(seeded, sandbox):
    # hs_email_optout_<id> exists only for the portal's subscription types.
    for name in ("no_such_property", "hs_email_optout_999999"):
        response = sandbox.session.get(f"{sandbox.url}/crm/v3/properties/contacts/{name}")
        assert response.status_code == 404
        assert response.json()["category"] == "OBJECT_NOT_FOUND"
    assert sandbox.session.get(f"{sandbox.url}/crm/v3/properties/0-1/email").json()["type"] == "string"
