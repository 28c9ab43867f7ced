"""CRM Lists v3 in the sandbox, driven through the real hubspot-api-client where it covers the endpoint."""

from __future__ import annotations

import time

import pytest
from hubspot.crm.lists import ApiException, ListCreateRequest, ListSearchRequest, MembershipChangeRequest

LISTS = "/crm/v3/lists"


def wait_complete(client, list_id: str, timeout: float = 5.0):
    """Poll the list until HubSpot (the sandbox) says processing is COMPLETE, as a careful client does."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.crm.lists.lists_api.get_by_id(list_id).list
        if found.processing_status == "COMPLETE" or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def and_branch(*filters):
    return {"filterBranchType": "AND", "filterBranchOperator": "AND", "filters": list(filters), "filterBranches": []}


def or_root(*branches):
    return {"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": list(branches)}


def optout_filter(value: bool):
    return {
        "filterType": "PROPERTY",
        "property": "hs_email_optout",
        "operation": {
            "operationType": "BOOL",
            "operator": "IS_EQUAL_TO",
            "value": value,
            "includeObjectsWithNoValueSet": False,
        },
    }


def in_list(list_id: str, operator: str = "IN_LIST"):
    return {"filterType": "IN_LIST", "listId": list_id, "operator": operator}


def create(client, name: str, processing_type: str = "MANUAL", branch=None):
    request = ListCreateRequest(name=name, object_type_id="0-1", processing_type=processing_type, filter_branch=branch)
    return client.crm.lists.lists_api.create(request).list


def members(client, list_id: str) -> list[str]:
    ids, after = [], None
    while True:
        page = client.crm.lists.memberships_api.get_page(list_id, after=after, limit=250)
        ids.extend(r.record_id for r in page.results)
        if not page.paging or not page.paging.next:
            return ids
        after = page.paging.next.after


def wait_members(client, list_id: str, condition, timeout: float = 5.0) -> list[str]:
    """Read the list's members until ``condition(members)`` holds: a DYNAMIC list catches up after the lag."""
    deadline = time.monotonic() + timeout
    while True:
        found = members(client, list_id)
        if condition(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"list {list_id} did not reach the expected members in {timeout}s: {found}")
        time.sleep(0.05)


def contacts(sandbox, profile: str | None = None) -> list[str]:
    params = {"profile": profile} if profile else {}
    return [c["id"] for c in sandbox.admin("GET", "contacts", **params)["results"]]


def add_contacts(sandbox, *items) -> list[str]:
    return sandbox.admin("POST", "contacts", {"contacts": list(items)})["ids"]


# -- create / fetch -----------------------------------------------------------------------------------------


def test_manual_list_is_created_processing_then_complete_with_size(client, seeded):
    created = create(client, "Hand picked")
    assert created.processing_type == "MANUAL"
    assert created.processing_status == "PROCESSING"
    assert created.size is None
    assert int(created.list_id) > 0
    done = wait_complete(client, created.list_id)
    assert done.processing_status == "COMPLETE"
    assert done.size == 0
    assert done.name == "Hand picked"
    assert done.object_type_id == "0-1"


def test_dynamic_list_echoes_normalised_filters_and_finds_members(client, seeded):
    created = create(client, "Opted out", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    branch = created.filter_branch
    assert branch.filter_branch_type == "OR"
    assert branch.filter_branch_operator == "OR"
    assert branch.filter_branches[0].filter_branch_operator == "AND"
    done = wait_complete(client, created.list_id)
    expected = sorted(contacts(seeded, "already_unsubscribed"), key=int)
    assert done.size == len(expected) > 0
    assert members(client, created.list_id) == expected


def test_get_by_id_includes_filters_only_when_asked(client, seeded):
    created = create(client, "Subscribed", "DYNAMIC", or_root(and_branch(optout_filter(False))))
    api = client.crm.lists.lists_api
    assert api.get_by_id(created.list_id).list.filter_branch is None
    assert api.get_by_id(created.list_id, include_filters=True).list.filter_branch.filter_branch_type == "OR"


def test_get_many_by_ids_skips_unknown_ids(client, sandbox):
    first, second = create(client, "A"), create(client, "B")
    found = client.crm.lists.lists_api.get_all(list_ids=[first.list_id, "999999", second.list_id]).lists
    assert [x.list_id for x in found] == [first.list_id, second.list_id]


def test_get_by_name_is_case_insensitive_and_404_when_missing(client, sandbox):
    created = create(client, "PP-2026Q3 unengaged 52w")
    found = client.crm.lists.lists_api.get_by_name("pp-2026q3 UNENGAGED 52w", "0-1").list
    assert found.list_id == created.list_id
    with pytest.raises(ApiException) as err:
        client.crm.lists.lists_api.get_by_name("nope", "0-1")
    assert err.value.status == 404


def test_unknown_list_id_is_404_and_non_numeric_is_400(client, sandbox):
    with pytest.raises(ApiException) as err:
        client.crm.lists.lists_api.get_by_id("424242")
    assert err.value.status == 404
    response = sandbox.session.get(f"{sandbox.url}{LISTS}/abc")
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# -- memberships --------------------------------------------------------------------------------------------


def test_manual_memberships_add_remove_and_missing_ids(client, seeded):
    ids = contacts(seeded)[:5]
    created = create(client, "Manual members")
    api = client.crm.lists.memberships_api
    result = api.add(created.list_id, [*ids[:3], "999999999", "not-a-number"])
    assert sorted(result.records_ids_added, key=int) == sorted(ids[:3], key=int)
    assert set(result.record_ids_missing) == {"999999999", "not-a-number"}
    again = api.add(created.list_id, ids[:4])
    assert again.records_ids_added == [ids[3]]
    removed = api.remove(created.list_id, [ids[0], ids[4]])
    assert removed.record_ids_removed == [ids[0]]
    wait_complete(client, created.list_id)
    assert members(client, created.list_id) == sorted(ids[1:4], key=int)


def test_add_and_remove_in_one_call(client, seeded):
    ids = contacts(seeded)[:4]
    created = create(client, "Add and remove")
    api = client.crm.lists.memberships_api
    api.add(created.list_id, ids[:2])
    result = api.add_and_remove(
        created.list_id, MembershipChangeRequest(record_ids_to_add=ids[2:], record_ids_to_remove=ids[:1])
    )
    assert sorted(result.records_ids_added) == sorted(ids[2:])
    assert result.record_ids_removed == ids[:1]
    wait_complete(client, created.list_id)
    assert members(client, created.list_id) == sorted(ids[1:], key=int)


def test_memberships_of_a_processing_list_read_empty(client, seeded):
    created = create(client, "Not yet")
    client.crm.lists.memberships_api.add(created.list_id, contacts(seeded)[:3])
    page = client.crm.lists.memberships_api.get_page(created.list_id)
    assert page.results == []
    assert page.total == 0
    wait_complete(client, created.list_id)
    assert client.crm.lists.memberships_api.get_page(created.list_id).total == 3


def test_memberships_paging_by_record_id_with_after_and_limit(client, seeded):
    ids = sorted(contacts(seeded), key=int)[:7]
    created = create(client, "Paged")
    client.crm.lists.memberships_api.add(created.list_id, list(reversed(ids)))
    wait_complete(client, created.list_id)
    api = client.crm.lists.memberships_api
    first = api.get_page(created.list_id, limit=3)
    assert [r.record_id for r in first.results] == ids[:3]
    assert first.total == 7
    assert first.paging.next.after == ids[2]
    second = api.get_page(created.list_id, after=first.paging.next.after, limit=3)
    assert [r.record_id for r in second.results] == ids[3:6]
    last = api.get_page(created.list_id, after=second.paging.next.after, limit=3)
    assert [r.record_id for r in last.results] == ids[6:]
    assert last.paging is None
    back = api.get_page(created.list_id, before=ids[6], limit=2)
    assert [r.record_id for r in back.results] == ids[4:6]
    assert back.paging.prev.before == ids[4]
    assert back.paging.next.after == ids[5]
    assert all(r.membership_timestamp is not None for r in first.results)


@pytest.mark.parametrize("query", ["limit=251", "limit=0", "limit=x", "after=abc"])
def test_memberships_page_rejects_bad_paging_with_400(client, sandbox, query):
    created = create(client, "Paging errors")
    response = sandbox.session.get(f"{sandbox.url}{LISTS}/{created.list_id}/memberships?{query}")
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_join_order_pages_members_in_the_order_they_joined(client, seeded):
    ids = sorted(contacts(seeded), key=int)[:4]
    created = create(client, "Joined")
    api = client.crm.lists.memberships_api
    for record_id in (ids[2], ids[0], ids[3], ids[1]):
        api.add(created.list_id, [record_id])
        time.sleep(0.002)
    wait_complete(client, created.list_id)
    first = api.get_page_ordered_by_added_to_list_date(created.list_id, limit=3)
    assert [r.record_id for r in first.results] == [ids[2], ids[0], ids[3]]
    rest = api.get_page_ordered_by_added_to_list_date(created.list_id, after=first.paging.next.after, limit=3)
    assert [r.record_id for r in rest.results] == [ids[1]]
    assert rest.paging is None


def test_duplicate_name_is_409_naming_the_existing_list(client, sandbox):
    first = create(client, "Confirmed r1")
    with pytest.raises(ApiException) as err:
        create(client, "CONFIRMED R1")
    assert err.value.status == 409
    body = err.value.body
    assert '"CONFLICT"' in body and "Confirmed r1" in body and first.list_id in body


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "objectTypeId": "0-1", "processingType": "MANUAL"},
        {"name": "x", "objectTypeId": "0-2", "processingType": "MANUAL"},
        {"name": "x", "objectTypeId": "0-1", "processingType": "STATIC"},
        {"name": "x", "objectTypeId": "0-1", "processingType": "DYNAMIC"},
        {
            "name": "x",
            "objectTypeId": "0-1",
            "processingType": "MANUAL",
            "filterBranch": {"filterBranchType": "OR", "filterBranches": []},
        },
        {"objectTypeId": "0-1", "processingType": "MANUAL"},
        [],
    ],
)
def test_bad_create_requests_are_400(sandbox, body):
    response = sandbox.session.post(f"{sandbox.url}{LISTS}", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_delete_frees_the_name_and_restore_brings_the_list_back(client, sandbox):
    api = client.crm.lists.lists_api
    first = create(client, "Recipients r1")
    api.remove(first.list_id)
    with pytest.raises(ApiException) as gone:
        api.get_by_id(first.list_id)
    assert gone.value.status == 404
    assert api.get_all(list_ids=[first.list_id]).lists == []
    second = create(client, "Recipients r1")
    with pytest.raises(ApiException) as taken:
        api.restore(first.list_id)
    assert taken.value.status == 409
    api.remove(second.list_id)
    api.restore(first.list_id)
    assert api.get_by_id(first.list_id).list.name == "Recipients r1"
    with pytest.raises(ApiException) as twice:
        api.remove(second.list_id)
    assert twice.value.status == 404


def test_rename_checks_uniqueness(client, sandbox):
    api = client.crm.lists.lists_api
    first, second = create(client, "Old name"), create(client, "Other")
    renamed = api.update_name(first.list_id, list_name="New name").updated_list
    assert renamed.name == "New name"
    assert api.get_by_name("New name", "0-1").list.list_id == first.list_id
    with pytest.raises(ApiException) as err:
        api.update_name(second.list_id, list_name="new NAME")
    assert err.value.status == 409
    with pytest.raises(ApiException) as empty:
        api.update_name(second.list_id, list_name="")
    assert empty.value.status == 400


def test_dynamic_list_memberships_cannot_be_written(client, seeded):
    branch = or_root(and_branch(optout_filter(True)))
    created = create(client, "Dynamic", "DYNAMIC", branch)
    api = client.crm.lists.memberships_api
    for call in (
        lambda: api.add(created.list_id, contacts(seeded)[:1]),
        lambda: api.remove(created.list_id, contacts(seeded)[:1]),
        lambda: api.remove_all(created.list_id),
    ):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 400
        assert "DYNAMIC" in err.value.body


def test_filters_of_manual_lists_cannot_be_updated(client, sandbox):
    from hubspot.crm.lists import ListFilterUpdateRequest

    created = create(client, "Manual")
    request = ListFilterUpdateRequest(filter_branch=or_root(and_branch(optout_filter(True))))
    with pytest.raises(ApiException) as err:
        client.crm.lists.lists_api.update_list_filters(created.list_id, request)
    assert err.value.status == 400


def test_snapshot_is_frozen_while_dynamic_follows_new_contacts(client, seeded):
    branch = or_root(and_branch(optout_filter(True)))
    snapshot = create(client, "Snapshot", "SNAPSHOT", branch)
    dynamic = create(client, "Dynamic", "DYNAMIC", branch)
    new_id = add_contacts(seeded, {"email": "late@example.com", "optout": True})[0]
    wait_complete(client, snapshot.list_id)
    wait_complete(client, dynamic.list_id)
    assert new_id not in members(client, snapshot.list_id)
    wait_members(client, dynamic.list_id, lambda found: new_id in found)
    assert len(members(client, dynamic.list_id)) == len(members(client, snapshot.list_id)) + 1
    # A SNAPSHOT list then behaves like a MANUAL one.
    client.crm.lists.memberships_api.add(snapshot.list_id, [new_id])
    assert new_id in members(client, snapshot.list_id)


def test_dynamic_members_keep_their_join_time_across_re_evaluations(client, seeded):
    created = create(client, "Stable", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    wait_complete(client, created.list_id)
    before = {
        r.record_id: r.membership_timestamp
        for r in client.crm.lists.memberships_api.get_page(created.list_id, limit=250).results
    }
    add_contacts(seeded, {"email": "another@example.com", "optout": True})
    wait_members(client, created.list_id, lambda found: len(found) == len(before) + 1)
    after = {
        r.record_id: r.membership_timestamp
        for r in client.crm.lists.memberships_api.get_page(created.list_id, limit=250).results
    }
    assert len(after) == len(before) + 1
    assert all(after[k] == v for k, v in before.items())


def test_add_from_copies_members_and_delete_memberships_empties(client, seeded):
    source = create(client, "Source", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    target = create(client, "Target")
    api = client.crm.lists.memberships_api
    api.add_all_from_list(target.list_id, source.list_id)
    wait_complete(client, source.list_id)
    wait_complete(client, target.list_id)
    assert members(client, target.list_id) == members(client, source.list_id) != []
    api.remove_all(target.list_id)
    assert members(client, target.list_id) == []
    with pytest.raises(ApiException) as err:
        api.add_all_from_list(target.list_id, "987654")
    assert err.value.status == 404


def test_record_memberships_lists_the_lists_a_contact_is_in(client, seeded):
    record = contacts(seeded, "already_unsubscribed")[0]
    manual = create(client, "Manual with record")
    client.crm.lists.memberships_api.add(manual.list_id, [record])
    dynamic = create(client, "Dynamic with record", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    create(client, "Without record")
    wait_complete(client, dynamic.list_id)
    wait_complete(client, manual.list_id)
    found = client.crm.lists.memberships_api.get_lists("0-1", record)
    assert sorted(r.list_id for r in found.results) == sorted([manual.list_id, dynamic.list_id])
    assert all(r.list_version == 1 and r.first_added_timestamp for r in found.results)
    response = seeded.session.get(f"{seeded.url}{LISTS}/records/0-2/{record}/memberships")
    assert response.status_code == 400


def test_search_by_name_with_paging_types_and_list_size(client, seeded):
    for i in range(5):
        create(client, f"PP-2026Q3 round {i}")
    create(client, "Something else")
    dynamic = create(client, "pp-2026q3 unengaged", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    wait_complete(client, dynamic.list_id)
    api = client.crm.lists.lists_api
    page = api.do_search(ListSearchRequest(query="pp-2026Q3", offset=0, count=4, additional_properties=[]))
    assert page.total == 6 and page.has_more is True and page.offset == 4
    assert len(page.lists) == 4
    rest = api.do_search(ListSearchRequest(query="PP-2026Q3", offset=page.offset, count=4, additional_properties=[]))
    assert len(rest.lists) == 2 and rest.has_more is False
    names = {x.name for x in page.lists + rest.lists}
    assert "Something else" not in names and len(names) == 6
    only_dynamic = api.do_search(
        ListSearchRequest(
            query="2026q3", offset=0, processing_types=["DYNAMIC"], additional_properties=["hs_list_size"]
        )
    )
    assert [x.list_id for x in only_dynamic.lists] == [dynamic.list_id]
    size = dynamic_size = api.get_by_id(dynamic.list_id).list.size
    assert only_dynamic.lists[0].additional_properties["hs_list_size"] == str(size) and dynamic_size > 0
    by_id = api.do_search(ListSearchRequest(offset=0, list_ids=[dynamic.list_id], additional_properties=[]))
    assert by_id.total == 1


@pytest.mark.parametrize(
    "body",
    [
        {"offset": 0, "count": 501, "additionalProperties": []},
        {"offset": -1, "additionalProperties": []},
        {"offset": 0, "processingTypes": ["STATIC"], "additionalProperties": []},
        {"offset": 0, "sort": "size", "additionalProperties": []},
        {"offset": "0", "additionalProperties": []},
    ],
)
def test_search_rejects_bad_requests_with_400(sandbox, body):
    response = sandbox.session.post(f"{sandbox.url}{LISTS}/search", json=body)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/{id}/memberships/add", {"not": "a list"}),
        ("PUT", "/{id}/memberships/add", [None]),
        ("PUT", "/{id}/memberships/add", "[1, 2"),
        ("PUT", "/{id}/memberships/add-and-remove", ["1"]),
        ("PUT", "/{id}/memberships/add-and-remove", {"recordIdsToAdd": "1", "recordIdsToRemove": []}),
        ("PUT", "/{id}/memberships/add-from/xyz", None),
        ("PUT", "/{id}/update-list-filters", {}),
        ("PUT", "/{id}/update-list-filters", {"filterBranch": None}),
        ("PUT", "/{id}/update-list-name", None),
        ("PUT", "/{id}/restore", None),
        ("GET", "/{id}/memberships/join-order?after=nope", None),
        ("GET", "/records/0-1/abc/memberships", None),
        ("POST", "/search", "{"),
        ("POST", "/search", {"query": 5, "offset": 0, "additionalProperties": []}),
    ],
)
def test_bad_input_is_a_4xx_never_a_500(client, sandbox, method, path, body):
    created = create(client, "Target of bad input")
    url = f"{sandbox.url}{LISTS}{path.format(id=created.list_id)}"
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    response = sandbox.session.request(method, url, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["category"] in ("VALIDATION_ERROR", "OBJECT_NOT_FOUND")


def test_every_lists_route_requires_the_scopes_hubspots_spec_names():
    import json

    from include.hubspot_sandbox.routes import lists
    from tests.support.contract import openapi_dir

    spec = json.loads((openapi_dir() / "crm-lists-v3.json").read_text())
    for route in lists.endpoints.router.routes:
        gate = route.dependencies[0].dependency
        path = route.path.rstrip("/").replace("{listName:path}", "{listName}")
        (method,) = route.methods
        security = spec["paths"][path][method.lower()]["security"]
        expected = {frozenset(alternative["oauth2"]) for alternative in security}
        assert set(gate.scopes) == expected, (method, path)


def test_filter_update_makes_the_list_process_again(client, seeded):
    from hubspot.crm.lists import ListFilterUpdateRequest

    created = create(client, "Reprocessed", "DYNAMIC", or_root(and_branch(optout_filter(True))))
    done = wait_complete(client, created.list_id)
    assert done.list_version == 1 and done.size > 0
    request = ListFilterUpdateRequest(filter_branch=or_root(and_branch(optout_filter(False))))
    updated = client.crm.lists.lists_api.update_list_filters(created.list_id, request).updated_list
    assert updated.processing_status == "PROCESSING" and updated.list_version == 2
    assert client.crm.lists.memberships_api.get_page(created.list_id).total == 0
    again = wait_complete(client, created.list_id)
    assert again.size == len(contacts(seeded)) - done.size


# -- the background re-evaluation lag -------------------------------------------------------------------------


#: The session sandbox's lag (tests/conftest.py FAST).
LAG_SECONDS = 0.5


def unconfirmed_setup(client, seeded):
    """Recipients (MANUAL), confirmed (MANUAL, empty) and unconfirmed = recipients AND NOT_IN_LIST confirmed."""
    ids = contacts(seeded)[:5]
    recipients = create(client, "Recipients")
    client.crm.lists.memberships_api.add(recipients.list_id, ids)
    confirmed = create(client, "Confirmed")
    unconfirmed = create(
        client,
        "Unconfirmed",
        "DYNAMIC",
        or_root(and_branch(in_list(recipients.list_id), in_list(confirmed.list_id, "NOT_IN_LIST"))),
    )
    wait_complete(client, unconfirmed.list_id)
    wait_complete(client, confirmed.list_id)
    return ids, confirmed.list_id, unconfirmed.list_id


def test_dynamic_list_shows_a_new_list_1_member_only_after_the_lag(client, seeded):
    ids, confirmed, unconfirmed = unconfirmed_setup(client, seeded)
    assert sorted(members(client, unconfirmed)) == sorted(ids)
    client.crm.lists.memberships_api.add(confirmed, [ids[0]])
    changed = time.monotonic()

    # Right after the change, every read still shows the old members: pages, size and record memberships.
    assert ids[0] in members(client, unconfirmed)
    assert client.crm.lists.lists_api.get_by_id(unconfirmed).list.size == len(ids)
    listed = client.crm.lists.memberships_api.get_lists("0-1", ids[0])
    assert unconfirmed in [r.list_id for r in listed.results]

    wait_members(client, unconfirmed, lambda found: ids[0] not in found)
    assert time.monotonic() - changed >= LAG_SECONDS
    assert sorted(members(client, unconfirmed)) == sorted(ids[1:])
    assert client.crm.lists.lists_api.get_by_id(unconfirmed).list.size == len(ids) - 1


def test_list_lag_is_on_by_default_and_zero_turns_it_off():
    from include.hubspot_sandbox.__main__ import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["serve"])).list_lag_seconds == 5.0
    off = build_parser().parse_args(["serve", "--list-lag-seconds", "0"])
    assert config_from_args(off).list_lag_seconds == 0
