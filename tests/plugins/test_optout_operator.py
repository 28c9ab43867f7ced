"""The irreversible step: exactly one status change per contact, reruns change nothing, bad files change nothing,
and only contacts HubSpot sent the email and who did not confirm are ever opted out."""

from __future__ import annotations

import re
import threading
from argparse import Namespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException
from reengagement import audit
from reengagement.errors import HubSpotDailyLimitError, HubSpotTransientError, OptOutRefused
from reengagement.operators.emails import SendEmailOperator
from reengagement.operators.lists import ExportListOperator
from reengagement.operators.subscriptions import OptOutOperator
from reengagement.report import BadOptOutFile

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import contact_ids, create_op, make_list, run_operator

RUN = {"run_id": "scheduled__2026-10-01"}


def send_to(sandbox, hook, ids: list[str], name: str = "c · r1 · email") -> dict[str, Any]:
    """Mail ``ids`` the permission-pass email and let its events land: the send's result and who HubSpot sent."""
    recipients = make_list(hook, f"{name} recipients", ids)
    email = run_operator(create_op(recipients, email_name=name))
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=email["cta_url"]))
    sandbox.admin("POST", "clock", {"advance_seconds": 60})
    got = [r["contactId"] for r in sandbox.admin("GET", f"emails/{email['email_id']}/recipients")["recipients"]]
    return {"email": {**email, **sent}, "sent": got}


def export_of(hook, ids: list[str], tmp_path, run: dict[str, str] = RUN) -> str:
    list_id = make_list(hook, f"unconfirmed {len(ids)}", ids)
    op = ExportListOperator(
        task_id="export_unconfirmed", list_id=list_id, campaign="c", export_base=f"file://{tmp_path}", poll_interval=0.1
    )
    return run_operator(op, run)["export_uri"]


@pytest.fixture
def mailed(sandbox, hook):
    """170 mailable, unengaged contacts sent the email, none confirmed yet, and an empty list 1."""
    sandbox.admin("POST", "seed", {"contacts": 1000, "seed": 3})
    send = send_to(sandbox, hook, contact_ids(sandbox, "never_confirm")[:170])
    assert len(send["sent"]) >= 150, "the sandbox sent too few of the never-confirming contacts"
    return {**send, "confirmed": make_list(hook, "c · confirmed", []), "sandbox": sandbox}


@pytest.fixture
def exported(mailed, hook, tmp_path):
    """An exported list 2 of 150 contacts HubSpot sent the email."""
    ids = sorted(mailed["sent"], key=int)[:150]
    return {**mailed, "uri": export_of(hook, ids, tmp_path), "ids": ids}


def opt_out(exported: dict[str, Any], **kw) -> OptOutOperator:
    return OptOutOperator(
        task_id="opt_out_unconfirmed",
        export_uri=exported["uri"],
        emails=[exported["email"]],
        confirmed_list_id=exported["confirmed"],
        legal_basis_explanation="Did not confirm in campaign c",
        **kw,
    )


def click_cta(exported: dict[str, Any], contact_id: str) -> None:
    """The contact clicks the campaign's CTA (now, after list 2 was exported)."""
    email = exported["email"]
    exported["sandbox"].admin(
        "POST",
        "events",
        {"emailId": email["email_id"], "contactId": contact_id, "type": "CLICK", "url": email["cta_url"]},
    )


def changes(sandbox) -> list[dict]:
    return sandbox.admin("GET", "status-changes")["results"]


def test_opt_out_changes_each_contact_once_in_batches_of_100(exported):
    sandbox = exported["sandbox"]
    sandbox.admin("DELETE", "calls")
    result = run_operator(opt_out(exported), RUN)
    assert (result["rows"], result["opted_out"], result["already_opted_out"], result["errors"]) == (150, 150, 0, 0)
    log = changes(sandbox)
    assert sorted(c["contactId"] for c in log) == sorted(exported["ids"])
    assert {(c["subscriptionId"], c["to"]) for c in log} == {(None, "UNSUBSCRIBED")}
    assert sandbox.admin("GET", "calls")["subscriptions.v4.batch_unsubscribe_all"]["calls"] == 2


def test_rerun_after_finishing_changes_nothing_twice(exported):
    run_operator(opt_out(exported), RUN)
    again = run_operator(opt_out(exported), RUN)
    assert (again["opted_out"], again["already_opted_out"]) == (0, 150)
    assert len(changes(exported["sandbox"])) == 150


def test_rerun_after_a_failure_mid_way_finishes_the_rest_and_repeats_no_change(exported):
    sandbox = exported["sandbox"]
    sandbox.admin(
        "POST",
        "faults",
        {"endpoint": "subscriptions.v4.batch_unsubscribe_all", "kind": "error", "status": 500, "skip": 1, "count": 100},
    )
    failing = opt_out(exported)
    failing.hook.transport._backoff = lambda state: 0.01
    with pytest.raises(HubSpotTransientError):
        run_operator(failing, RUN)
    # The two batches are in flight together: the one HubSpot answers first goes through, the other never does.
    went_through = len(changes(sandbox))
    assert went_through in (100, 50)
    sandbox.admin("DELETE", "faults")
    rerun = run_operator(opt_out(exported), RUN)
    assert (rerun["opted_out"], rerun["already_opted_out"]) == (150 - went_through, went_through)
    assert sorted(c["contactId"] for c in changes(sandbox)) == sorted(exported["ids"])


def test_the_daily_limit_mid_way_fails_with_the_progress_and_the_next_day_finishes_the_rest(exported):
    sandbox = exported["sandbox"]
    before = sandbox.admin("GET", "settings")["daily_used"]
    run_operator(opt_out(exported, simulate=True), RUN)  # the reads before the first change, counted
    used = sandbox.admin("GET", "settings")["daily_used"]
    reads = used - before
    # Room for the reads and one of the two batches.
    sandbox.admin("PUT", "settings", {"rate_limit": f"190/10s,{used + reads + 1}/day"})
    with pytest.raises(HubSpotDailyLimitError, match=r"daily API limit is spent") as failure:
        run_operator(opt_out(exported), RUN)
    # The two batches are in flight together: either may get the last call of the day, and the message,
    # the result file and HubSpot agree on which one did.
    processed = int(re.search(r" (\d+) of 150 contacts were processed", str(failure.value))[1])
    changed = {c["contactId"] for c in changes(sandbox)}
    assert processed in (100, 50) and len(changed) == processed
    (first_try,) = ObjectStoragePath(exported["uri"]).parent.glob("opt_out_result.try-*.csv")
    assert first_try.name in str(failure.value)
    written = pd.read_csv(first_try.path, dtype="string")
    assert set(written["contact_id"]) == changed
    sandbox.admin("POST", "clock", {"advance_seconds": 86_400})  # the portal's next day: a new budget
    rerun = run_operator(opt_out(exported), RUN)
    assert (rerun["opted_out"], rerun["already_opted_out"]) == (150 - processed, processed)
    assert sorted(c["contactId"] for c in changes(sandbox)) == sorted(exported["ids"])


def test_a_lost_answer_is_sent_again_safely(exported):
    sandbox = exported["sandbox"]
    sandbox.admin(
        "POST", "faults", {"endpoint": "subscriptions.v4.batch_unsubscribe_all", "kind": "drop_after", "count": 1}
    )
    result = run_operator(opt_out(exported), RUN)
    assert result["opted_out"] + result["already_opted_out"] == 150
    assert len(changes(sandbox)) == 150


def test_subscription_scope_unsubscribes_from_that_type_only(exported):
    result = run_operator(
        opt_out(exported, scope="subscription_type", subscription_id=str(MARKETING_SUBSCRIPTION_ID)), RUN
    )
    assert result["opted_out"] == 150
    log = changes(exported["sandbox"])
    assert {(c["subscriptionId"], c["legalBasis"]) for c in log} == {
        (MARKETING_SUBSCRIPTION_ID, "LEGITIMATE_INTEREST_OTHER")
    }
    assert {c["legalBasisExplanation"] for c in log} == {"Did not confirm in campaign c"}


def test_dry_run_changes_nothing_and_writes_the_would_be_result(exported):
    result = run_operator(opt_out(exported, simulate="True"), RUN)
    assert result["dry_run"] and result["rows"] == 150 and result["opted_out"] == 0
    assert changes(exported["sandbox"]) == []
    frame = pd.read_csv(ObjectStoragePath(result["result_uri"]).path, dtype="string")
    assert sorted(frame["contact_id"], key=int) == sorted(exported["ids"], key=int)
    assert set(frame["status"]) == {"DRY_RUN"}


def edit(uri: str, change) -> None:
    path = ObjectStoragePath(uri).path
    frame = pd.read_csv(path, dtype="string", keep_default_na=False)
    change(frame).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.rename(columns={"email": "Email"}), "columns"),
        (lambda f: pd.concat([f, f.head(3)]), "repeats 3"),
        (lambda f: f.assign(email=f["email"].where(f.index != 5, '=HYPERLINK("x")')), "Row 7"),
        (lambda f: f.assign(contact_id=f["contact_id"].where(f.index != 0, "12a")), "contact id"),
        (lambda f: f.assign(run_id="another_run"), "belongs to run"),
    ],
)
def test_a_hand_edited_file_in_a_bad_shape_changes_nothing(exported, change, message):
    edit(exported["uri"], change)
    with pytest.raises(BadOptOutFile, match=message):
        run_operator(opt_out(exported), RUN)
    assert changes(exported["sandbox"]) == []


def test_emails_with_odd_case_and_spaces_are_normalised(exported):
    edit(exported["uri"], lambda f: f.assign(email="  " + f["email"].str.upper() + " "))
    assert run_operator(opt_out(exported), RUN)["opted_out"] == 150


def test_an_empty_list_two_opts_out_nobody(mailed, hook, tmp_path):
    uri = export_of(hook, [], tmp_path)
    result = run_operator(opt_out({**mailed, "uri": uri}), RUN)
    assert (result["rows"], result["opted_out"]) == (0, 0)


def result_rows(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    frame = pd.read_csv(ObjectStoragePath(result["result_uri"]).path, dtype="string", keep_default_na=False)
    return {row.contact_id: (row.status, row.reason) for row in frame.itertuples(index=False)}


def test_a_late_clicker_and_a_contact_added_to_list_one_are_spared_though_the_export_shows_them(exported, hook):
    sandbox = exported["sandbox"]
    late, by_hand = exported["ids"][:2]
    # Both confirm after list 2 was exported: the export still lists them, as HubSpot's lagging lists would.
    click_cta(exported, late)
    hook.client.crm.lists.memberships_api.add(exported["confirmed"], [by_hand])
    result = run_operator(opt_out(exported), RUN)
    assert {c["contactId"] for c in changes(sandbox)} == set(exported["ids"]) - {late, by_hand}
    assert (result["rows"], result["to_opt_out"], result["opted_out"], result["spared_confirmed"]) == (150, 148, 148, 2)
    written = result_rows(result)
    assert written[late] == written[by_hand] == ("SKIPPED", "CONFIRMED")
    assert len(written) == 150


def test_a_contact_in_the_export_who_was_never_sent_is_not_opted_out_and_is_reported(mailed, hook, tmp_path):
    sandbox = mailed["sandbox"]
    unsent = [c for c in contact_ids(sandbox, "confirm_r3") if c not in set(mailed["sent"])][:3]  # never mailed
    assert len(unsent) == 3
    ids = sorted(mailed["sent"], key=int)[:50]
    exported = {**mailed, "uri": export_of(hook, ids + unsent, tmp_path)}
    result = run_operator(opt_out(exported), RUN)
    assert {c["contactId"] for c in changes(sandbox)} == set(ids)
    assert (result["rows"], result["opted_out"], result["never_sent"], result["spared_confirmed"]) == (53, 50, 3, 0)
    written = result_rows(result)
    assert {written[c] for c in unsent} == {("SKIPPED", "NOT_SENT")}


def test_without_the_campaign_ids_nobody_is_opted_out_and_the_task_is_not_retried(exported):
    refusing = OptOutOperator(
        task_id="opt_out_unconfirmed",
        export_uri=exported["uri"],
        emails=[{"email_id": exported["email"]["email_id"], "cta_url": "https://x"}],
        confirmed_list_id=exported["confirmed"],
    )
    with pytest.raises(OptOutRefused, match="nobody was opted out") as refused:
        run_operator(refusing, RUN)
    assert isinstance(refused.value, AirflowFailException) and exported["uri"] in str(refused.value)
    assert changes(exported["sandbox"]) == []


def test_a_bad_file_is_a_permanent_failure_that_names_the_file_and_says_nobody_was_opted_out(exported):
    edit(exported["uri"], lambda f: f.assign(run_id="another_run"))
    with pytest.raises(OptOutRefused) as refused:
        run_operator(opt_out(exported), RUN)
    assert isinstance(refused.value, AirflowFailException)  # Airflow fails the task without its retries
    assert exported["uri"] in str(refused.value) and "nobody was opted out" in str(refused.value)


#: Addresses HubSpot accepts (RFC 2822, no quoted local part, a known TLD, unicode TLDs included:
#: https://legacydocs.hubspot.com/docs/faq/how-does-hubspot-validate-email-addresses).
ADDRESSES = [
    "o'brien@example.com",
    "'lead@example.com",
    "ada+news@example.com",
    "+plus@example.com",
    "d'angelo.o'neil@example.ie",
    "josé.garcía@example.com",
    "用户@例子.中国",
    "anna@bücher.de",
    "karl@xn--bcher-kva.de",
    "-dash@example.com",
]


def test_every_address_hubspot_holds_is_opted_out(sandbox, hook, tmp_path):
    sandbox.admin("POST", "seed", {"contacts": 20, "seed": 1})  # the portal's subscription types
    made = sandbox.admin(
        "POST",
        "contacts",
        {"contacts": [{"email": address, "profile": "never_confirm", "last_open": None} for address in ADDRESSES]},
    )["ids"]
    send = send_to(sandbox, hook, made)
    assert sorted(send["sent"], key=int) == sorted(made, key=int), "the sandbox did not send to every address"
    exported = {
        **send,
        "sandbox": sandbox,
        "confirmed": make_list(hook, "c · confirmed", []),
        "uri": export_of(hook, made, tmp_path),
    }
    result = run_operator(opt_out(exported), RUN)
    assert (result["rows"], result["opted_out"], result["never_sent"], result["errors"]) == (10, 10, 0, 0)
    assert {c["email"] for c in changes(sandbox)} == {a.lower() for a in ADDRESSES}


@pytest.mark.parametrize("event_type", ["STATUSCHANGE", "UNSUBSCRIBED"])
def test_contacts_who_unsubscribed_themselves_are_counted_apart_from_those_the_campaign_opted_out(
    sandbox, hook, tmp_path, event_type
):
    sandbox.admin("POST", "seed", {"contacts": 1000, "seed": 3})
    sandbox.admin("PUT", "sending", {"unsubscribeEventType": event_type})
    themselves = contact_ids(sandbox, "unsubscribe_click")[:5]
    others = contact_ids(sandbox, "never_confirm")[:20]
    send = send_to(sandbox, hook, themselves + others)
    assert set(send["sent"]) == set(themselves + others)
    exported = {
        **send,
        "sandbox": sandbox,
        "confirmed": make_list(hook, "c · confirmed", []),
        "uri": export_of(hook, themselves + others, tmp_path),
    }
    result = run_operator(opt_out(exported), RUN)
    assert (result["rows"], result["to_opt_out"], result["opted_out"]) == (25, 25, 20)
    assert (result["unsubscribed_themselves"], result["unsubscribed_themselves_in_file"]) == (5, 5)
    assert result["already_opted_out"] == 0 and result["errors"] == 0
    assert {c["contactId"] for c in changes(sandbox)} == set(others)


def test_a_tripped_guard_is_a_permanent_failure_that_names_the_file_and_says_nobody_was_opted_out():
    from reengagement.operators.flow import CheckGuardsOperator, GuardTripped

    export = {"export_uri": "file:///exports/c/run/unconfirmed.csv", "rows": 99}
    guards = CheckGuardsOperator(
        task_id="check_guards",
        metrics=[{"sent": 100, "delivered": 100, "click": 1}],
        confirmed={"confirmed": 1},
        export=export,
        max_fraction=0.5,
    )
    with pytest.raises(GuardTripped) as tripped:
        guards.execute({})
    assert isinstance(tripped.value, AirflowFailException)
    assert "Nobody was opted out from file:///exports/c/run/unconfirmed.csv" in str(tripped.value)


# -- the audit ledger: each try adds its own part, nothing is rewritten --------------------------------------------
def ledger_of(exported: dict[str, Any]) -> pd.DataFrame:
    return audit.read_ledger(audit.ledger_folder(ObjectStoragePath(exported["uri"]).parent))


def test_each_try_writes_its_own_result_and_adds_to_the_ledger_without_rewriting_it(exported):
    first = run_operator(opt_out(exported), {**RUN, "ti": Namespace(try_number=1)})
    after_first = ledger_of(exported)
    parts_before = {
        p.name: p.read_bytes() for p in audit.parts(audit.ledger_folder(ObjectStoragePath(exported["uri"]).parent))
    }
    second = run_operator(opt_out(exported), {**RUN, "ti": Namespace(try_number=2)})
    assert first["result_uri"] != second["result_uri"]
    assert (first["opted_out"], second["opted_out"], second["already_opted_out"]) == (150, 0, 150)
    # The first try's record is still there, byte for byte; the second added its own part.
    folder = audit.ledger_folder(ObjectStoragePath(exported["uri"]).parent)
    assert {p.name: p.read_bytes() for p in audit.parts(folder) if p.name in parts_before} == parts_before
    assert len(audit.parts(folder)) == 2
    ledger = ledger_of(exported)
    assert ledger.head(len(after_first)).equals(after_first)
    assert list(ledger["try_number"].value_counts().sort_index().items()) == [("1", 150), ("2", 150)]
    assert set(ledger.loc[ledger["try_number"] == "1", "reason"]) == {"UNSUBSCRIBE_FROM_ALL_OCCURRED"}
    assert set(ledger.loc[ledger["try_number"] == "2", "reason"]) == {"NO_STATUS_CHANGE"}
    assert audit.changed_ids(ledger) == audit.opted_out_ids(ledger) == set(exported["ids"])
    assert set(ledger["run_id"]) == {RUN["run_id"]} and set(ledger["scope"]) == {"all_email"}
    tries = ledger.groupby("try_number")["time"]
    assert tries.max()["1"] <= tries.min()["2"]  # each row's time is when HubSpot answered its batch
    # The same try number again (``airflow tasks test``) still never overwrites.
    third = run_operator(opt_out(exported), {**RUN, "ti": Namespace(try_number=2)})
    assert third["result_uri"] not in (first["result_uri"], second["result_uri"])
    assert len(audit.parts(folder)) == 3


def test_the_ledger_records_our_legal_basis_always_and_hubspots_where_the_api_takes_it(exported):
    run_operator(opt_out(exported, scope="subscription_type", subscription_id=str(MARKETING_SUBSCRIPTION_ID)), RUN)
    by_type = ledger_of(exported)
    assert set(by_type["legal_basis"]) == set(by_type["hubspot_legal_basis"]) == {"LEGITIMATE_INTEREST_OTHER"}
    assert set(by_type["hubspot_legal_basis_explanation"]) == {"Did not confirm in campaign c"}
    assert set(by_type["subscription_id"]) == {str(MARKETING_SUBSCRIPTION_ID)}
    run_operator(opt_out(exported), RUN)  # all email: unsubscribe-all takes no legal basis
    wide = ledger_of(exported).iloc[len(by_type) :]
    assert set(wide["legal_basis"]) == {"LEGITIMATE_INTEREST_OTHER"}
    assert set(wide["hubspot_legal_basis"]) == {""} and set(wide["subscription_id"]) == {""}


def test_a_dry_run_and_spared_contacts_add_nothing_to_the_ledger(exported, hook):
    run_operator(opt_out(exported, simulate="True"), RUN)
    assert ledger_of(exported).empty
    late = exported["ids"][0]
    click_cta(exported, late)
    run_operator(opt_out(exported), RUN)
    assert late not in set(ledger_of(exported)["contact_id"]) and len(ledger_of(exported)) == 149


class ReadsThatMeet:
    """A HubSpot whose five audience reads (SENT, UNSUBSCRIBED, STATUSCHANGE and CLICK events, list 1's members)
    each wait at their first page until all five are under way: run one after another, the first one times out."""

    def __init__(self, in_flight: int) -> None:
        self.in_flight = in_flight
        self.all_reading = threading.Barrier(5, timeout=30)

    def iter_email_events(self, campaign_id, event_type, exclude_filtered=True):
        self.all_reading.wait()
        recipient = {"SENT": "a@x.com", "CLICK": "b@x.com"}.get(event_type)
        if recipient:
            yield {"recipient": recipient, "url": "https://example.com/thanks", "filteredEvent": False}

    def iter_list_memberships(self, list_id):
        self.all_reading.wait()
        yield "7"


def audience_op(hook: ReadsThatMeet) -> OptOutOperator:
    operator = OptOutOperator(
        task_id="opt_out",
        export_uri="file:///nowhere/unconfirmed.csv",
        emails=[{"campaign_ids": ["1"], "cta_url": "https://example.com/thanks"}],
        confirmed_list_id="9",
    )
    operator.__dict__["hook"] = hook  # the cached hook, in place of one built from a connection
    return operator


def test_the_audience_reads_run_side_by_side_unless_the_connection_asks_for_one_at_a_time(tmp_path):
    audience = audience_op(ReadsThatMeet(in_flight=5))._audience(ObjectStoragePath(f"file://{tmp_path}/u.csv"), "r")
    assert (len(audience.sent), len(audience.clickers), list(audience.confirmed_ids)) == (1, 1, [7])
    with pytest.raises(threading.BrokenBarrierError):  # one read at a time, as a connection can ask
        hook = ReadsThatMeet(in_flight=1)
        hook.all_reading = threading.Barrier(5, timeout=0.5)
        audience_op(hook)._audience(ObjectStoragePath(f"file://{tmp_path}/u.csv"), "r")
