"""The irreversible step: exactly one status change per contact, reruns change nothing, bad files change nothing."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from reengagement.errors import HubSpotDailyLimitError, HubSpotTransientError
from reengagement.operators.lists import ExportListOperator
from reengagement.operators.subscriptions import OptOutOperator
from reengagement.report import BadOptOutFile

from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import contact_ids, make_list, run_operator

RUN = {"run_id": "scheduled__2026-10-01"}


@pytest.fixture
def exported(sandbox, hook, tmp_path):
    """An exported list 2 of 150 mailable, unengaged contacts."""
    sandbox.admin("POST", "seed", {"contacts": 1000, "seed": 3})
    seeded = sandbox
    ids = contact_ids(seeded, "never_confirm")[:150]
    list_id = make_list(hook, "unconfirmed", ids)
    op = ExportListOperator(task_id="export_unconfirmed", list_id=list_id, campaign="c",
                            export_base=f"file://{tmp_path}", poll_interval=0.1)
    result = run_operator(op, RUN)
    return {"uri": result["export_uri"], "ids": ids, "sandbox": seeded}


def opt_out(uri: str, **kw) -> OptOutOperator:
    return OptOutOperator(task_id="opt_out_unconfirmed", export_uri=uri,
                          legal_basis_explanation="Did not confirm in campaign c", **kw)


def changes(sandbox) -> list[dict]:
    return sandbox.admin("GET", "status-changes")["results"]


def test_opt_out_changes_each_contact_once_in_batches_of_100(exported):
    sandbox = exported["sandbox"]
    sandbox.admin("DELETE", "calls")
    result = run_operator(opt_out(exported["uri"]), RUN)
    assert (result["rows"], result["opted_out"], result["already_opted_out"], result["errors"]) == (150, 150, 0, 0)
    log = changes(sandbox)
    assert sorted(c["contactId"] for c in log) == sorted(exported["ids"])
    assert {(c["subscriptionId"], c["to"]) for c in log} == {(None, "UNSUBSCRIBED")}
    assert sandbox.admin("GET", "calls")["subscriptions.v4.batch_unsubscribe_all"]["calls"] == 2


def test_rerun_after_finishing_changes_nothing_twice(exported):
    run_operator(opt_out(exported["uri"]), RUN)
    again = run_operator(opt_out(exported["uri"]), RUN)
    assert (again["opted_out"], again["already_opted_out"]) == (0, 150)
    assert len(changes(exported["sandbox"])) == 150


def test_rerun_after_a_failure_mid_way_finishes_the_rest_and_repeats_no_change(exported):
    sandbox = exported["sandbox"]
    sandbox.admin("POST", "faults", {"endpoint": "subscriptions.v4.batch_unsubscribe_all", "kind": "error",
                                     "status": 500, "skip": 1, "count": 100})
    failing = opt_out(exported["uri"])
    failing.hook.transport._backoff = lambda state: 0.01
    with pytest.raises(HubSpotTransientError):
        run_operator(failing, RUN)
    # The two batches are in flight together: the one HubSpot answers first goes through, the other never does.
    went_through = len(changes(sandbox))
    assert went_through in (100, 50)
    sandbox.admin("DELETE", "faults")
    rerun = run_operator(opt_out(exported["uri"]), RUN)
    assert (rerun["opted_out"], rerun["already_opted_out"]) == (150 - went_through, went_through)
    assert sorted(c["contactId"] for c in changes(sandbox)) == sorted(exported["ids"])


def test_the_daily_limit_mid_way_fails_with_the_progress_and_the_next_day_finishes_the_rest(exported):
    sandbox = exported["sandbox"]
    used = sandbox.admin("GET", "settings")["daily_used"]
    sandbox.admin("PUT", "settings", {"rate_limit": f"190/10s,{used + 1}/day"})  # room for one of the two batches
    with pytest.raises(HubSpotDailyLimitError, match=r"daily API limit is spent") as failure:
        run_operator(opt_out(exported["uri"]), RUN)
    # The two batches are in flight together: either may get the last call of the day, and the message,
    # the result file and HubSpot agree on which one did.
    processed = int(re.search(r" (\d+) of 150 contacts were processed", str(failure.value))[1])
    changed = {c["contactId"] for c in changes(sandbox)}
    assert processed in (100, 50) and len(changed) == processed
    written = pd.read_csv(ObjectStoragePath(exported["uri"]).parent.joinpath("opt_out_result.csv").path, dtype="string")
    assert set(written["contact_id"]) == changed
    sandbox.admin("POST", "clock", {"advance_seconds": 86_400})  # the portal's next day: a new budget
    rerun = run_operator(opt_out(exported["uri"]), RUN)
    assert (rerun["opted_out"], rerun["already_opted_out"]) == (150 - processed, processed)
    assert sorted(c["contactId"] for c in changes(sandbox)) == sorted(exported["ids"])


def test_a_lost_answer_is_sent_again_safely(exported):
    sandbox = exported["sandbox"]
    sandbox.admin("POST", "faults", {"endpoint": "subscriptions.v4.batch_unsubscribe_all", "kind": "drop_after",
                                     "count": 1})
    result = run_operator(opt_out(exported["uri"]), RUN)
    assert result["opted_out"] + result["already_opted_out"] == 150
    assert len(changes(sandbox)) == 150


def test_subscription_scope_unsubscribes_from_that_type_only(exported):
    result = run_operator(opt_out(exported["uri"], scope="subscription_type",
                                  subscription_id=str(MARKETING_SUBSCRIPTION_ID)), RUN)
    assert result["opted_out"] == 150
    log = changes(exported["sandbox"])
    assert {(c["subscriptionId"], c["legalBasis"]) for c in log} == {
        (MARKETING_SUBSCRIPTION_ID, "LEGITIMATE_INTEREST_OTHER")}
    assert {c["legalBasisExplanation"] for c in log} == {"Did not confirm in campaign c"}


def test_dry_run_changes_nothing_and_writes_the_would_be_result(exported):
    result = run_operator(opt_out(exported["uri"], dry_run="True"), RUN)
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
        (lambda f: f.assign(email=f["email"].where(f.index != 5, "=HYPERLINK(\"x\")")), "Row 7"),
        (lambda f: f.assign(contact_id=f["contact_id"].where(f.index != 0, "12a")), "contact id"),
        (lambda f: f.assign(run_id="another_run"), "belongs to run"),
    ],
)
def test_a_hand_edited_file_in_a_bad_shape_changes_nothing(exported, change, message):
    edit(exported["uri"], change)
    with pytest.raises(BadOptOutFile, match=message):
        run_operator(opt_out(exported["uri"]), RUN)
    assert changes(exported["sandbox"]) == []


def test_emails_with_odd_case_and_spaces_are_normalised(exported):
    edit(exported["uri"], lambda f: f.assign(email="  " + f["email"].str.upper() + " "))
    assert run_operator(opt_out(exported["uri"]), RUN)["opted_out"] == 150


def test_an_empty_list_two_opts_out_nobody(sandbox, hook, tmp_path):
    list_id = make_list(hook, "nobody left", [])
    export = run_operator(ExportListOperator(task_id="export_unconfirmed", list_id=list_id, campaign="c",
                                             export_base=f"file://{tmp_path}", poll_interval=0.1), RUN)
    assert export["rows"] == 0
    result = run_operator(opt_out(export["export_uri"]), RUN)
    assert (result["rows"], result["opted_out"]) == (0, 0)
