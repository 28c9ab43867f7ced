"""List 1 across reads: every click read again, each clicker looked up once, the last read checks the list."""

from __future__ import annotations

import math
import stat
import threading

import numpy as np
import pytest
from airflow.sdk import ObjectStoragePath
from reengagement.ledger import FILE_NAME, Clickers, email_key
from reengagement.operators.emails import SendEmailOperator
from reengagement.operators.lists import BuildConfirmedListOperator, iter_new_clickers, read_clickers
from reengagement.storage import run_folder

from tests.plugins.conftest import calls, contact_ids, create_op, run_operator

RUN = {"run_id": "scheduled__2026-10-01"}


@pytest.fixture
def clicked(seeded, recipients, tmp_path):
    """Round 1 sent and answered: the send's result, its clickers' ids, and an exports folder."""
    created = run_operator(create_op(recipients["list_id"]))
    email = run_operator(
        SendEmailOperator(task_id="send_email", email_id=created["email_id"], cta_url=created["cta_url"])
    )
    seeded.admin("POST", "clock", {"advance_seconds": 60})
    return {"email": email, "ids": set(contact_ids(seeded, "confirm_r1")), "base": f"file://{tmp_path}/exports"}


def build(clicked, **kw) -> BuildConfirmedListOperator:
    return BuildConfirmedListOperator(
        task_id="build_confirmed_list",
        list_name="c · confirmed",
        emails=[clicked["email"]],
        campaign="c",
        export_base=clicked["base"],
        **kw,
    )


def members(operator: BuildConfirmedListOperator, list_id: str) -> set[str]:
    return set(operator.hook.iter_list_memberships(list_id))


def ledger_path(clicked) -> ObjectStoragePath:
    return run_folder(clicked["base"], "c", RUN["run_id"]) / FILE_NAME


def test_a_later_read_looks_up_only_new_clickers(seeded, clicked):
    first = build(clicked)
    result = run_operator(first, RUN)
    assert result["confirmed"] == result["added"] == result["size"] == len(clicked["ids"])
    assert members(first, result["list_id"]) == clicked["ids"]

    seeded.admin("DELETE", "calls")
    again = run_operator(build(clicked), RUN)

    assert calls(seeded, "events.list") == math.ceil(len(clicked["ids"]) / 1000)  # every click is read again
    assert calls(seeded, "contacts.batch_read") == 0 and calls(seeded, "lists.memberships_add") == 0
    assert again == {**result, "added": 0}


def test_the_ledger_keeps_no_address_and_only_its_owner_can_read_it(seeded, clicked):
    run_operator(build(clicked), RUN)
    path = ledger_path(clicked)
    entries = np.load(path.path, allow_pickle=False)
    assert sorted(map(str, entries["contact_id"])) == sorted(clicked["ids"])
    addresses = [c["email"] for c in seeded.admin("GET", "contacts")["results"] if c["id"] in clicked["ids"]]
    written = path.read_bytes()
    assert addresses and not [a for a in addresses if a.encode() in written or a.split("@")[0].encode() in written]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("damage", ["cut short", "manifest missing", "another list"])
def test_a_damaged_or_foreign_ledger_is_ignored_and_every_clicker_is_looked_up(seeded, clicked, damage):
    result = run_operator(build(clicked), RUN)
    path = ledger_path(clicked)
    manifest = path.parent / (path.name + ".json")
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:-48])
    elif damage == "manifest missing":
        manifest.unlink()
    else:
        manifest.write_text(manifest.read_text().replace(f'"{result["list_id"]}"', '"999999"'))

    seeded.admin("DELETE", "calls")
    again = run_operator(build(clicked), RUN)

    assert calls(seeded, "contacts.batch_read") == math.ceil(len(clicked["ids"]) / 100)
    assert again == {**result, "added": 0}


def test_without_a_campaign_folder_every_read_looks_everyone_up(seeded, clicked):
    plain = {"task_id": "build_confirmed_list", "list_name": "c · confirmed", "emails": [clicked["email"]]}
    result = run_operator(BuildConfirmedListOperator(**plain), RUN)
    seeded.admin("DELETE", "calls")
    again = run_operator(BuildConfirmedListOperator(**plain), RUN)
    assert calls(seeded, "contacts.batch_read") == math.ceil(len(clicked["ids"]) / 100)
    assert again == {**result, "added": 0}


def test_the_check_before_the_opt_out_puts_back_a_clicker_removed_by_hand(seeded, clicked, capsys):
    first = build(clicked)
    list_id = run_operator(first, RUN)["list_id"]
    removed = sorted(clicked["ids"], key=int)[0]
    first.hook.client.crm.lists.memberships_api.remove(list_id, [removed])

    assert run_operator(build(clicked), RUN)["added"] == 0  # a round's read trusts the ledger
    assert removed not in members(first, list_id)
    capsys.readouterr()
    checked = run_operator(build(clicked, verify_members=True), RUN)

    assert checked["added"] == 1 and members(first, list_id) == clicked["ids"]
    assert "1 clicker(s) were removed from list 1" in capsys.readouterr().out


def test_list_one_takes_members_while_clicks_are_still_read_and_only_once_hubspot_has_processed_it(
    seeded, clicked, monkeypatch
):
    """Adds start with the first contacts found, not after the last click page: paging is one call after another
    and would leave HubSpot's limit idle. None reaches a list 1 that HubSpot still shows as PROCESSING."""
    monkeypatch.setattr("reengagement.hook.BATCH_SIZE", 5)
    operator = build(clicked)
    hook = operator.hook
    monkeypatch.setattr(hook, "in_flight", 2)
    memberships = type(hook.client.crm.lists.memberships_api)  # the SDK makes a new API object on each access
    add, read_events = memberships.add, hook.iter_email_events
    added, statuses = threading.Event(), []

    def watched_add(api, list_id, chunk, *args, **kwargs):
        statuses.append(hook.get_list(list_id).get("processingStatus"))
        answer = add(api, list_id, chunk, *args, **kwargs)
        added.set()
        return answer

    def events_whose_last_waits_for_an_add(*args, **kwargs):
        events = list(read_events(*args, **kwargs))
        yield from events[:-1]
        waited.append(added.wait(timeout=10))
        yield events[-1]

    waited: list[bool] = []
    monkeypatch.setattr(memberships, "add", watched_add)
    monkeypatch.setattr(hook, "iter_email_events", events_whose_last_waits_for_an_add)
    result = run_operator(operator, RUN)

    assert waited == [True]  # an add landed before the last click was read
    assert len(statuses) >= math.ceil(len(clicked["ids"]) / 5) and set(statuses) == {"COMPLETE"}
    assert result["added"] == result["size"] == len(clicked["ids"])
    assert members(operator, result["list_id"]) == clicked["ids"]


class PagedClicks:
    """An email's CTA clicks, 3 to a page, counting the pages read so far."""

    def __init__(self, cta: str, recipients: list[str]) -> None:
        self.cta, self.recipients, self.pages_read = cta, recipients, 0

    def iter_email_events(self, campaign_id, event_type, exclude_filtered=True):
        for start in range(0, len(self.recipients), 3):
            self.pages_read += 1
            for recipient in self.recipients[start : start + 3]:
                yield {"recipient": recipient, "url": self.cta, "filteredEvent": False}


def test_new_clickers_come_out_page_by_page_each_once_and_every_click_is_counted():
    cta = "https://example.com/thanks"
    source = PagedClicks(cta, ["A@x.com", "b@x.com", "a@x.com", "c@x.com", "d@x.com", "b@x.com", "e@x.com"])
    known = Clickers.of(np.array([email_key("c@x.com")], dtype="S16"), np.array([3], dtype=np.int64))
    keys = bytearray()
    stream = iter_new_clickers(source, [{"cta_url": cta, "campaign_ids": ["1"]}], known, keys)

    assert next(stream) == "a@x.com" and source.pages_read == 1  # before the next page is read
    assert list(stream) == ["b@x.com", "d@x.com", "e@x.com"] and source.pages_read == 3
    assert len(keys) == 7 * 16  # every click counted, the known and the repeated ones too
    clicked, new = read_clickers(source, [{"cta_url": cta, "campaign_ids": ["1"]}], known)
    assert len(clicked) == 5 and sorted(new.values()) == ["a@x.com", "b@x.com", "d@x.com", "e@x.com"]
