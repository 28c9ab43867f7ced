"""HubSpotHook against a real sandbox server, through the real SDK."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from reengagement import errors
from reengagement.hook import HubSpotHook
from reengagement.operators.emails import is_sent

from include.hubspot_sandbox.process import SandboxProcess
from tests.plugins.conftest import SUB, calls, connection_json, contact_ids, make_list


def test_building_a_hook_touches_nothing(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    hook = HubSpotHook("nowhere")
    assert hook.hubspot_conn_id == "nowhere"  # no connection read, no client built yet


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"conn_type": "http", "password": "t"}, "https://api.hubapi.com"),
        ({"conn_type": "http", "host": "api.hubapi.com", "schema": "https", "password": "t"}, "https://api.hubapi.com"),
        (
            {"conn_type": "http", "host": "127.0.0.1", "schema": "http", "port": 8099, "password": "t"},
            "http://127.0.0.1:8099",
        ),
        ({"conn_type": "http", "host": "http://localhost:9000/", "password": "t"}, "http://localhost:9000"),
    ],
)
def test_base_url_comes_from_the_connection(conn, expected, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HS_TEST", json.dumps(conn))
    assert HubSpotHook("hs_test").base_url == expected


def test_connection_without_token_fails_clearly(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HS_TEST", json.dumps({"conn_type": "http", "host": "x"}))
    with pytest.raises(errors.HubSpotAuthError, match="'hs_test' has no password") as err:
        _ = HubSpotHook("hs_test").client
    message = str(err.value)
    assert message.index("Service Key") < message.index("legacy private app token")


@pytest.mark.parametrize(
    ("extra", "argument", "expected"), [(None, None, 5), ({"in_flight": 2}, None, 2), ({"in_flight": 2}, 1, 1)]
)
def test_calls_in_flight_come_from_the_hook_then_the_connection_then_the_default(
    extra, argument, expected, monkeypatch
):
    conn = {"conn_type": "http", "password": "t", **({"extra": extra} if extra else {})}
    monkeypatch.setenv("AIRFLOW_CONN_HS_TEST", json.dumps(conn))
    assert HubSpotHook("hs_test", in_flight=argument).in_flight == expected


@pytest.mark.parametrize("bad", [0, -1, "4", 2.5, True])
def test_a_bad_in_flight_in_the_connection_is_refused_by_name(bad, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HS_TEST", json.dumps({"conn_type": "http", "password": "t", "extra": {"in_flight": bad}})
    )
    with pytest.raises(ValueError, match="'hs_test': extra 'in_flight' must be a whole number"):
        _ = HubSpotHook("hs_test").in_flight


def test_many_lookups_in_flight_give_the_same_answer_as_one_at_a_time(seeded, hubspot_conn):
    emails = [c["email"] for c in seeded.admin("GET", "contacts")["results"]] + ["nobody@example.com"]
    one = list(HubSpotHook(in_flight=1).contact_ids_by_email(emails))
    many = list(HubSpotHook(in_flight=4).contact_ids_by_email(emails))
    assert many == one and len(one) > 250 and "nobody@example.com" not in dict(one)


def test_ui_field_behaviour_names_the_service_key_and_the_api_version():
    behaviour = HubSpotHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "Service Key (or legacy private app token)"
    assert json.loads(behaviour["placeholders"]["extra"]) == {"api_version": "2026-09", "in_flight": 5}


def test_test_connection_reports_the_portal(hook):
    ok, message = hook.test_connection()
    assert ok and "46801234" in message


def test_test_connection_says_the_token_is_wrong(hubspot_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(hubspot_conn.url, "pat-wrong"))
    ok, message = HubSpotHook().test_connection()
    assert not ok and "rejected the token" in message
    assert "pat-wrong" not in message


def test_test_connection_names_missing_scopes(tmp_path, monkeypatch):
    with SandboxProcess(tmp_path / "p.db", args=["--token", "pat-forms=forms"], token="pat-forms") as sb:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sb.url, sb.token))
        ok, message = HubSpotHook().test_connection()
    assert not ok and "oauth" in message


def test_test_connection_says_the_host_is_unreachable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json("http://127.0.0.1:9", "t"))
    ok, message = HubSpotHook().test_connection()
    assert not ok and "Could not connect to http://127.0.0.1:9" in message


def test_memberships_are_paged_as_a_generator(seeded, hook):
    ids = contact_ids(seeded)[:260]
    list_id = make_list(hook, "paged", ids)
    seeded.admin("DELETE", "calls")
    pages = hook.iter_list_memberships(list_id, page_size=100)
    assert next(pages) == ids[0]  # nothing beyond the first page was fetched yet
    assert [ids[0], *pages] == sorted(ids, key=int)
    assert seeded.admin("GET", "calls")["lists.memberships"]["calls"] == 3


def test_contact_ids_by_email_batches_by_100_and_skips_unknown(seeded, hook):
    contacts = [c for c in seeded.admin("GET", "contacts")["results"] if c["email"]][:250]
    emails = [c["email"].upper() + " " for c in contacts] + ["nobody@example.com"]
    seeded.admin("DELETE", "calls")
    found = dict(hook.contact_ids_by_email(emails))
    assert found == {c["email"]: c["id"] for c in contacts}
    assert seeded.admin("GET", "calls")["contacts.batch_read"]["calls"] == 3


def test_raw_requests_share_the_error_mapping(hook):
    with pytest.raises(errors.HubSpotNotFound):
        hook.request("GET", "/communication-preferences/v4/statuses/nobody@example.com", params={"channel": "EMAIL"})
    with pytest.raises(errors.HubSpotValidationError, match="channel"):
        hook.request(
            "POST",
            "/communication-preferences/v4/statuses/batch/unsubscribe-all",
            params={"channel": "SMS"},
            json_body={"inputs": []},
        )


def test_missing_scope_names_the_scope(tmp_path, monkeypatch):
    with SandboxProcess(tmp_path / "p.db", args=["--token", "pat-ro=crm.lists.read"], token="pat-ro") as sb:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sb.url, sb.token))
        from hubspot.crm.lists import ListCreateRequest

        with pytest.raises(errors.HubSpotScopeError) as err:
            HubSpotHook().client.crm.lists.lists_api.create(
                ListCreateRequest(name="x", object_type_id="0-1", processing_type="MANUAL")
            )
    assert err.value.missing_scopes == ["crm.lists.write"]


def test_daily_limit_is_a_clear_error(sandbox, hook):
    sandbox.admin("PUT", "settings", {"rate_limit": "190/10s,10/day", "daily_used": 10})
    with pytest.raises(errors.HubSpotDailyLimitError, match="daily API limit"):
        hook.request("GET", "/account-info/v3/details")


def test_a_burst_five_windows_long_never_sees_a_429_and_stays_under_the_limit(sandbox, hook):
    """190 per window, as HubSpot's Enterprise limit, on a 2 s window so the burst takes seconds, not minutes:
    950 calls from 5 threads (five windows' worth) see no 429, and no window holds more than the limit.

    The limiter adopts the window from the ``X-HubSpot-RateLimit-*`` headers, so it is the same code path
    as HubSpot's 10 s window.
    """
    limit, window, calls_made = 190, 2, 950
    sandbox.admin("PUT", "settings", {"rate_limit": f"{limit}/{window}s"})
    sent: list[float] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for _ in range(n):
            hook.request("GET", "/account-info/v3/details")
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(calls_made // 5,)) for _ in range(5)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    calls = sandbox.admin("GET", "calls")["account.details"]
    assert calls["calls"] == calls_made
    assert calls["rateLimited"] == 0
    assert hook.transport.rate_limited == 0
    floor = calls_made / limit * window
    print(
        f"\n{calls_made} calls in {elapsed:.1f}s; floor at {limit}/{window}s {floor:.1f}s; ratio {elapsed / floor:.3f}"
    )
    sent.sort()
    assert max(sum(1 for t in sent if s <= t < s + window) for s in sent) <= limit


def test_random_429s_and_5xx_do_not_change_the_result(seeded, hook):
    ids = contact_ids(seeded)[:300]
    list_id = make_list(hook, "faulty", ids)
    clean = list(hook.iter_list_memberships(list_id))
    seeded.admin("POST", "faults", {"endpoint": "*", "kind": "error", "status": 503, "probability": 0.15, "seed": 1})
    seeded.admin("POST", "faults", {"endpoint": "*", "kind": "rate_limit", "probability": 0.15, "seed": 2})
    hook.transport._backoff = lambda state: 0.01  # keep the test fast; the policy is what is tested
    assert list(hook.iter_list_memberships(list_id, page_size=50)) == clean
    emails = [c["email"] for c in seeded.admin("GET", "contacts")["results"] if c["email"]][:150]
    assert len(dict(hook.contact_ids_by_email(emails))) == 150
    assert hook.transport.retries > 0


def test_token_never_reaches_logs_or_errors(hubspot_conn, caplog):
    caplog.set_level(logging.DEBUG)
    hook = HubSpotHook()
    hook.test_connection()
    captured = []
    for call in (
        lambda: hook.request("GET", "/crm/v3/lists/999"),
        lambda: hook.request("POST", "/crm/v3/lists", json_body={"name": ""}),
    ):
        with pytest.raises(errors.HubSpotError) as err:
            call()
        captured.append(str(err.value))
        captured.append(repr(err.value.body))
    text = "\n".join(captured + [r.getMessage() for r in caplog.records])
    assert hubspot_conn.token not in text


def test_a_list_is_found_by_its_exact_name_and_a_missing_one_is_none(seeded, hook):
    for n in range(3):
        make_list(hook, f"campaign x · r{n}", [])
    found = hook.get_list_by_name("campaign x · r1")
    assert found["name"] == "campaign x · r1" and found["processingType"] == "MANUAL"
    assert hook.get_list_by_name("campaign x") is None
    assert hook.get_list_by_name("missing") is None


# -- domain methods: each is the same single HubSpot call the operators made through the SDK -----------------
def test_lists_are_created_and_read_by_id_in_one_shape(seeded, hook):
    created = hook.create_list("domain · manual", "MANUAL")
    assert created["name"] == "domain · manual" and created["processingType"] == "MANUAL"
    seeded.admin("DELETE", "calls")
    found = hook.get_list(created["listId"])
    assert found["listId"] == created["listId"] and "processingStatus" in found
    assert hook.get_list(created["listId"], include_filters=False)["listId"] == created["listId"]
    assert calls(seeded, "lists.get") == 2
    filled = make_list(hook, "domain · filled", contact_ids(seeded)[:3])
    assert hook.get_list(filled)["size"] == 3
    with pytest.raises(errors.HubSpotNotFound):
        hook.get_list("999999")


def test_a_dynamic_list_is_created_with_its_filters(seeded, hook):
    from reengagement import segments

    definition = segments.build("unengaged", {"subscription_id": SUB, "inactivity_weeks": 52})
    created = hook.create_list("domain · dynamic", "DYNAMIC", definition)
    assert created["processingType"] == "DYNAMIC"
    assert segments.same_definition(definition, hook.get_list_by_name("domain · dynamic")["filterBranch"])
    assert calls(seeded, "lists.create") == 1


def test_emails_are_created_found_by_name_cloned_updated_and_read(seeded, hook):
    assert hook.find_email_by_name("domain · email") is None
    created = hook.create_email({"name": "domain · email", "subject": "Hello"})
    assert hook.find_email_by_name("domain · email")["id"] == created["id"]
    clone = hook.clone_email(created["id"], "domain · clone")
    assert clone["name"] == "domain · clone" and clone["id"] != created["id"]
    updated = hook.update_email(clone["id"], {"subject": "Hello again"})
    assert updated["subject"] == "Hello again"
    assert hook.get_email(clone["id"])["subject"] == "Hello again"
    assert not is_sent(hook.get_email(created["id"]))
    assert all(not value for value in hook.email_counters(created["id"]).values())
    assert {name: calls(seeded, f"emails.{name}") for name in ("create", "clone", "update")} == dict.fromkeys(
        ("create", "clone", "update"), 1
    )
    with pytest.raises(errors.HubSpotNotFound):
        hook.get_email("999999")


def test_publishing_sends_once_and_the_counters_show_it(seeded, hook):
    list_id = make_list(hook, "domain · recipients", contact_ids(seeded, "engaged")[:3])
    email = hook.create_email(
        {
            "name": "domain · send",
            "subject": "Still with us?",
            "from": {"fromName": "Team", "replyTo": "team@example.com"},
            "to": {"contactIlsLists": {"include": [list_id], "exclude": []}, "suppressGraymail": False},
            "subscriptionDetails": {"subscriptionId": SUB},
            "content": {"templatePath": "@hubspot/email/dnd/plain_text.html", "widgets": {}},
        }
    )
    hook.publish_email(email["id"])
    assert is_sent(hook.get_email(email["id"]))
    assert hook.email_counters(email["id"])["selected"] == 3  # sends show as events arrive; selected at once
    with pytest.raises(errors.HubSpotValidationError, match="only once"):
        hook.publish_email(email["id"])
    assert calls(seeded, "emails.publish") == 2


def test_subscription_definitions_forms_contacts_and_usage(seeded, hook):
    from reengagement.operators.settings import subscription_definitions

    seeded.admin("DELETE", "calls")
    assert SUB in {str(d["id"]) for d in subscription_definitions(hook.subscription_definitions())}
    forms = list(hook.iter_forms())
    assert forms and all("legalConsentOptions" in form or "name" in form for form in forms)
    assert [f["id"] for f in hook.iter_forms(page_size=1)] == [f["id"] for f in forms]
    assert hook.count_contacts() == len(contact_ids(seeded))
    (usage,) = hook.daily_api_usage()
    assert int(usage["usageLimit"]) >= int(usage["currentUsage"]) > 0
    assert calls(seeded, "contacts.search") == 1 and calls(seeded, "account.api_usage") == 1


def test_opt_outs_are_one_batch_call_each_and_answer_per_address(seeded, hook):
    first, second = [c["email"] for c in seeded.admin("GET", "contacts")["results"] if c["email"]][:2]
    seeded.admin("DELETE", "calls")
    answer = hook.unsubscribe_all([first])
    assert [str(r["subscriberIdString"]).lower() for r in answer["results"]] == [first.lower()]
    inputs = [
        {
            "subscriberIdString": second,
            "subscriptionId": int(SUB),
            "statusState": "UNSUBSCRIBED",
            "channel": "EMAIL",
            "legalBasis": "LEGITIMATE_INTEREST_OTHER",
            "legalBasisExplanation": "No answer to the permission pass.",
        }
    ]
    answer = hook.write_statuses(inputs)
    assert [(str(r["subscriberIdString"]).lower(), r["status"]) for r in answer["results"]] == [
        (second.lower(), "UNSUBSCRIBED")
    ]
    assert calls(seeded, "subscriptions.v4.batch_unsubscribe_all") == 1
    assert calls(seeded, "subscriptions.v4.batch_write") == 1


def test_a_probe_passes_hubspots_refusals_on_unchanged(seeded, hook, tmp_path, monkeypatch):
    with pytest.raises(errors.HubSpotNotFound) as err:
        hook.probe("POST", "/marketing/v3/emails/0/publish")
    assert err.value.status == 404
    with SandboxProcess(tmp_path / "p.db", args=["--token", "pat-ro=crm.lists.read"], token="pat-ro") as sb:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sb.url, sb.token))
        with pytest.raises(errors.HubSpotScopeError):
            HubSpotHook().probe("POST", "/communication-preferences/v4/statuses/batch/write", json_body={"inputs": []})


def test_lookups_start_before_the_stream_of_addresses_ends(seeded, hubspot_conn):
    """The first answers come after the first batches of addresses: a stream being read (clicks page by page) is
    looked up while it is still coming."""
    emails = [c["email"] for c in seeded.admin("GET", "contacts")["results"] if c["email"]]
    taken: list[str] = []

    def stream():
        for email in emails:
            taken.append(email)
            yield email.upper()  # and trimmed and lowercased on the way

    hook = HubSpotHook(in_flight=2)
    answers = hook.contact_ids_by_email(stream())
    first = next(answers)
    assert len(emails) > 250 and len(taken) <= 2 * 100 + 1
    assert [first, *answers] == list(HubSpotHook(in_flight=1).contact_ids_by_email(emails + emails))
