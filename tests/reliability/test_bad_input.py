"""Bad input gets one clear error naming the problem, before anything irreversible happens.

Checks already made elsewhere are not repeated here: a preflight listing every problem of a portal
(tests/plugins/test_preflight_and_sensor.py), hand-edited files with wrong columns, a formula email, a
run id not theirs (tests/plugins/test_optout_operator.py), a taken list name at operator level
(tests/plugins/test_list_operators.py), an empty cohort and everyone confirming (tests/e2e/test_scenarios.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException
from reengagement.campaign import PARAMS_SCHEMA, CampaignParams, InvalidParams, object_name
from reengagement.errors import HubSpotAuthError, HubSpotScopeError
from reengagement.hook import HubSpotHook
from reengagement.operators.emails import SendEmailOperator
from reengagement.operators.lists import EnsureListOperator, ExportListOperator
from reengagement.operators.settings import PreflightFailed, PreflightOperator
from reengagement.operators.subscriptions import OptOutOperator
from reengagement.report import BadOptOutFile

from include.hubspot_sandbox.config import ALL_SCOPES, DEFAULT_TOKEN
from include.hubspot_sandbox.process import SandboxProcess
from include.hubspot_sandbox.seeding import MARKETING_SUBSCRIPTION_ID
from tests.plugins.conftest import connection_json, contact_ids, create_op, make_list, run_operator
from tests.reliability.lab import CAMPAIGN, EXIT_FAILED, CampaignLab
from tests.support.campaign import CAMPAIGN_SANDBOX

RUN = {"run_id": "manual__bad-input"}
NO_LISTS = "pat-no-lists-write"  # sandbox tokens, not secrets
NO_EMAIL = "pat-no-marketing-email"
WRONG = "pat-wrong-7f3a9c21"


# -- params -------------------------------------------------------------------------------------------
def _types(spec: dict[str, Any]) -> list[str]:
    return spec["type"] if isinstance(spec["type"], list) else [spec["type"]]


def _wrong_type(spec: dict[str, Any]) -> Any:
    types = _types(spec)
    if "string" in types:
        return 42
    return {"integer": "12", "number": "0.5", "boolean": "true", "array": "customer"}[types[0]]


def _out_of_range(spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    step = 1 if "integer" in _types(spec) else 0.1
    if "minimum" in spec:
        yield "below-minimum", spec["minimum"] - step
    if "maximum" in spec:
        yield "above-maximum", spec["maximum"] + step
    if "minLength" in spec:
        yield "too-short", ""
    if "maxLength" in spec:
        yield "too-long", "x" * (spec["maxLength"] + 1)
    if "pattern" in spec:
        yield "bad-pattern", "not valid!"
    if "enum" in spec:
        yield "not-allowed", "nonsense"


BAD_PARAMS = [(name, "wrong-type", _wrong_type(spec)) for name, spec in PARAMS_SCHEMA.items()] + [
    (name, kind, value) for name, spec in PARAMS_SCHEMA.items() for kind, value in _out_of_range(spec)
]


@pytest.mark.parametrize(("name", "kind", "value"), BAD_PARAMS, ids=[f"{n}-{k}" for n, k, _ in BAD_PARAMS])
def test_every_param_out_of_range_or_of_the_wrong_type_is_refused_by_name(name, kind, value):
    with pytest.raises(InvalidParams, match=rf"(^|; |: ){re.escape(name)}: "):
        CampaignParams.from_params({name: value}, default_campaign="c")


def test_every_param_is_tried():
    assert {name for name, _, _ in BAD_PARAMS} == set(PARAMS_SCHEMA)


# -- whole campaigns that must stop early ---------------------------------------------------------------------
def untouched(lab: CampaignLab) -> list[str]:
    """What the campaign changed in HubSpot that it should not have: no email, no send, no opt-out."""
    url = lab.sandbox.url
    seeded = {str(e["id"]) for e in lab.sandbox.admin("GET", "seeded-emails").values() if e}  # the portal's own
    emails = lab.sandbox.session.get(f"{url}/marketing/v3/emails", params={"limit": 100}).json()["results"]
    emails = [e for e in emails if str(e["id"]) not in seeded]
    calls = lab.sandbox.admin("GET", "calls")
    changed = []
    if emails:
        changed.append(f"{len(emails)} emails were created")
    if lab.sandbox.admin("GET", "status-changes")["results"]:
        changed.append("subscription statuses changed")
    if calls.get("exports.start"):
        changed.append("an export was started")
    return changed


def test_a_campaign_that_cannot_start_stops_at_preflight_with_one_message_and_touches_nothing(lab):
    lab.new_scenario("cannot start")
    lab.sandbox.admin("PUT", "settings", {"tier": "professional"})
    assert lab.run(subscription_type="Newsletter", template_email_id="999") == EXIT_FAILED
    states = lab.states()
    assert (states["preflight"], states["build_unengaged_list"]) == ("failed", "upstream_failed")
    assert lab.task_retries() == 0  # permanent: Airflow does not retry it
    log = lab.log_text()
    for problem in (
        "The campaign cannot start",
        "'Newsletter' does not exist",
        "publish marketing email",
        "batch-write subscription statuses",
        "Template email 999 does not exist",
    ):
        assert problem in log
    assert "lists.create" not in lab.sandbox.admin("GET", "calls")
    assert untouched(lab) == []


def test_a_list_name_taken_by_another_definition_stops_the_campaign_and_the_list_is_left_alone(lab):
    lab.new_scenario("list name taken")
    url, name = lab.sandbox.url, object_name(CAMPAIGN, "unengaged")
    taken = lab.sandbox.session.post(
        f"{url}/crm/v3/lists", json={"name": name, "objectTypeId": "0-1", "processingType": "MANUAL"}
    ).json()["list"]
    assert lab.run() == EXIT_FAILED
    assert lab.states()["build_unengaged_list"] == "failed"
    assert lab.task_retries() == 0
    assert (
        f"A HubSpot list named {name!r} already exists (id {taken['listId']}) with a different definition"
        in lab.log_text()
    )
    after = lab.sandbox.session.get(f"{url}/crm/v3/lists/{taken['listId']}").json()["list"]
    assert (after["processingType"], after["name"], after.get("size", 0)) == ("MANUAL", name, 0)
    assert untouched(lab) == []


# -- connection, token, scopes: operator level, on a portal with several private apps --------------------------
@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> Iterator[SandboxProcess]:
    apps = [
        DEFAULT_TOKEN,
        f"{NO_LISTS}={','.join(sorted(ALL_SCOPES - {'crm.lists.write'}))}",
        f"{NO_EMAIL}={','.join(sorted(ALL_SCOPES - {'marketing-email'}))}",
    ]
    args = [*CAMPAIGN_SANDBOX, "--seed-contacts", "300", "--seed", "7", *(a for app in apps for a in ("--token", app))]
    with SandboxProcess(tmp_path_factory.mktemp("bad-input") / "portal.db", args=args) as server:
        yield server


def connect(monkeypatch, portal: SandboxProcess, token: str = DEFAULT_TOKEN) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(portal.url, token))


def preflight() -> PreflightOperator:
    return PreflightOperator(
        task_id="preflight",
        subscription_type="Marketing Information",
        confirm_url="https://www.example.com/thanks",
        rounds=1,
    )


def test_a_missing_connection_is_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", raising=False)
    with pytest.raises(AirflowNotFoundException, match="hubspot_default"):
        run_operator(preflight())


def test_a_bad_token_is_called_so_without_being_repeated(monkeypatch, portal):
    connect(monkeypatch, portal, WRONG)
    with pytest.raises(HubSpotAuthError, match="rejected the token") as err:
        run_operator(preflight())
    assert WRONG not in str(err.value) and WRONG not in repr(err.value.body)


def test_a_missing_send_scope_is_named_by_preflight(monkeypatch, portal):
    connect(monkeypatch, portal, NO_EMAIL)
    with pytest.raises(PreflightFailed, match="lacks the scopes marketing-email"):
        run_operator(preflight())


def test_a_missing_list_scope_stops_the_first_list_naming_the_scope(monkeypatch, portal):
    connect(monkeypatch, portal, NO_LISTS)
    run_operator(preflight())  # preflight does not write lists; the first write says what is missing
    step = EnsureListOperator(
        task_id="build_unengaged_list",
        list_name="c · unengaged",
        processing_type="DYNAMIC",
        segment="unengaged",
        segment_args={"subscription_id": str(MARKETING_SUBSCRIPTION_ID), "inactivity_weeks": 52},
    )
    with pytest.raises(HubSpotScopeError, match=r"crm\.lists\.write"):
        run_operator(step)
    assert "lists.create" in portal.admin("GET", "calls")
    assert portal.admin("GET", "calls")["lists.create"]["errors"] >= 1


# -- the export CSV, edited by hand --------------------------------------------------------------------------
@pytest.fixture
def exported(monkeypatch, portal, tmp_path) -> dict[str, Any]:
    """List 2 of 100 unengaged contacts, exported as the opt-out reads it."""
    portal.admin("POST", "seed", {"contacts": 1000, "seed": 7})
    connect(monkeypatch, portal)
    ids = contact_ids(portal, "never_confirm")[:100]
    hook = HubSpotHook()
    list_id = make_list(hook, "unconfirmed", ids)
    # The opt-out opts out only contacts HubSpot sent the campaign's email: send it to them first.
    email = run_operator(create_op(list_id))
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=email["cta_url"]))
    portal.admin("POST", "clock", {"advance_seconds": 60})
    result = run_operator(
        ExportListOperator(
            task_id="export_unconfirmed",
            list_id=list_id,
            campaign="c",
            export_base=f"file://{tmp_path}",
            poll_interval=0.1,
        ),
        RUN,
    )
    return {
        "uri": result["export_uri"],
        "ids": ids,
        "email": {**email, **sent},
        "confirmed": make_list(hook, "c · confirmed", []),
    }


def edit(uri: str, change) -> None:
    path = ObjectStoragePath(uri).path
    frame = pd.read_csv(path, dtype="string", keep_default_na=False)
    change(frame).to_csv(path, index=False)


def opt_out(exported: dict[str, Any]) -> OptOutOperator:
    return OptOutOperator(
        task_id="opt_out_unconfirmed",
        export_uri=exported["uri"],
        emails=[exported["email"]],
        confirmed_list_id=exported["confirmed"],
        legal_basis_explanation="c",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # The same address twice, once in capitals and padded: a duplicate all the same.
        (lambda f: pd.concat([f, f.head(2).assign(email=" " + f.head(2)["email"].str.upper() + " ")]), "repeats 2"),
        (lambda f: f.assign(contact_id=f["contact_id"].where(f.index != 3, "=1+1")), "Row 5: contact id '=1\\+1'"),
        (lambda f: f.assign(email=f["email"].where(f.index != 0, "@SUM(A1:A9)")), "Row 2: '@sum\\(a1:a9\\)'"),
        (lambda f: f.drop(columns=["run_id"]), "must have the columns"),
        (lambda f: f.assign(extra="x"), "must have the columns"),
    ],
    ids=["duplicate-in-another-case", "formula-contact-id", "formula-email", "missing-column", "extra-column"],
)
def test_a_hand_edited_export_in_a_bad_shape_opts_out_nobody(exported, portal, change, message):
    edit(exported["uri"], change)
    with pytest.raises(BadOptOutFile, match=message):
        run_operator(opt_out(exported), RUN)
    assert portal.admin("GET", "status-changes")["results"] == []


def someone_else(portal, exported) -> dict[str, str]:
    """A contact of the portal that HubSpot did not put in list 2."""
    return next(c for c in portal.admin("GET", "contacts")["results"] if c["id"] not in exported["ids"] and c["email"])


@pytest.mark.parametrize("how", ["email changed", "contact id changed", "row added"])
def test_a_row_changed_or_added_by_hand_opts_out_nobody(exported, portal, how):
    other = someone_else(portal, exported)
    if how == "email changed":
        edit(exported["uri"], lambda f: f.assign(email=f["email"].where(f.index != 4, other["email"])))
    elif how == "contact id changed":
        edit(exported["uri"], lambda f: f.assign(contact_id=f["contact_id"].where(f.index != 4, other["id"])))
    else:
        edit(exported["uri"], lambda f: pd.concat([f, f.head(1).assign(contact_id=other["id"], email=other["email"])]))
    with pytest.raises(BadOptOutFile, match=r"not a row HubSpot exported: 1 row\(s\).*Only removing rows is allowed"):
        run_operator(opt_out(exported), RUN)
    assert portal.admin("GET", "status-changes")["results"] == []


def test_rows_removed_by_hand_spare_those_contacts(exported, portal):
    edit(exported["uri"], lambda f: f.iloc[10:])
    assert run_operator(opt_out(exported), RUN)["opted_out"] == 90
    changed = {c["contactId"] for c in portal.admin("GET", "status-changes")["results"]}
    assert changed == set(exported["ids"][10:])
