"""HubSpot's final state after a campaign, in a form two runs of the same seed can be compared in.

A faulty run is judged against a fault-free run of the same seeded portal: the same lists with the
same members, one email per round, one send per recipient, the same opt-out set and no subscription
status changed twice. Ids HubSpot assigns (lists, emails) differ between runs, so objects are keyed by
their name without the campaign prefix (``r1 · recipients``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reengagement.campaign import SEPARATOR

if TYPE_CHECKING:
    from include.hubspot_sandbox.process import SandboxProcess


@dataclass(frozen=True)
class Outcome:
    """What a campaign left in HubSpot, keyed by role names."""

    lists: dict[str, tuple[str, ...]]  # role -> sorted member ids
    emails: dict[str, int]  # role -> how many emails carry the name
    sends: dict[str, dict[str, int]]  # email role -> contact id -> emails received
    changes: dict[str, int]  # contact id -> subscription status changes
    problems: tuple[str, ...] = field(default=())  # broken invariants, whatever the baseline

    @property
    def opted_out(self) -> frozenset[str]:
        return frozenset(self.changes)


def _role(name: str, campaign: str) -> str | None:
    prefix = campaign + SEPARATOR
    return name[len(prefix) :] if name.startswith(prefix) else None


def _members(sandbox: SandboxProcess, list_id: str) -> tuple[str, ...]:
    members: list[str] = []
    after: str | None = None
    while True:
        page = sandbox.session.get(
            f"{sandbox.url}/crm/v3/lists/{list_id}/memberships",
            params={"limit": 250, **({"after": after} if after else {})},
            timeout=60,
        ).json()
        members.extend(str(m["recordId"]) for m in page.get("results", []))
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return tuple(sorted(members, key=int))


def _campaign_lists(sandbox: SandboxProcess, campaign: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = sandbox.session.post(
            f"{sandbox.url}/crm/v3/lists/search",
            json={"query": "", "offset": offset, "count": 500, "additionalProperties": []},
            timeout=60,
        ).json()
        found.extend(item for item in page["lists"] if _role(item["name"], campaign))
        if not page.get("hasMore"):
            return found
        offset = page["offset"]


def _campaign_emails(sandbox: SandboxProcess, campaign: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = sandbox.session.get(
            f"{sandbox.url}/marketing/v3/emails",
            params={"limit": 100, **({"after": after} if after else {})},
            timeout=60,
        ).json()
        found.extend(e for e in page.get("results", []) if _role(e["name"], campaign))
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return found


def snapshot(sandbox: SandboxProcess, campaign: str) -> Outcome:
    """Read the campaign's lists, emails, sends and status changes back from the sandbox."""
    problems: list[str] = []
    lists: dict[str, tuple[str, ...]] = {}
    # DYNAMIC lists lag behind the campaign's last changes, by a time that depends on when they were read:
    # compare what HubSpot shows once it has caught up.
    sandbox.admin("POST", "lists/settle")
    for item in _campaign_lists(sandbox, campaign):
        role = str(_role(item["name"], campaign))
        if role in lists:
            problems.append(f"two lists are called {item['name']!r}")
        lists[role] = _members(sandbox, str(item["listId"]))
    emails: Counter[str] = Counter()
    sends: dict[str, dict[str, int]] = {}
    for email in _campaign_emails(sandbox, campaign):
        role = str(_role(email["name"], campaign))
        emails[role] += 1
        received = Counter(
            r["contactId"] for r in sandbox.admin("GET", f"emails/{email['id']}/recipients")["recipients"]
        )
        for contact, count in received.items():
            sends.setdefault(role, {})[contact] = sends.get(role, {}).get(contact, 0) + count
    changes = Counter(c["contactId"] for c in sandbox.admin("GET", "status-changes")["results"])
    problems += [f"{count} emails are called {role!r}" for role, count in emails.items() if count > 1]
    problems += [
        f"{role}: {sum(1 for n in got.values() if n > 1)} contacts received it more than once"
        for role, got in sends.items()
        if any(n > 1 for n in got.values())
    ]
    twice = sorted((c for c, n in changes.items() if n > 1), key=int)
    if twice:
        problems.append(f"{len(twice)} contacts had their subscription status changed more than once: {twice[:5]}")
    return Outcome(lists, dict(emails), sends, dict(changes), tuple(problems))


def differences(expected: Outcome, got: Outcome) -> list[str]:
    """Every way ``got`` departs from ``expected`` (the fault-free run), plus its own broken invariants."""
    found = list(got.problems)
    if set(got.lists) != set(expected.lists):
        found.append(
            f"lists differ: missing {sorted(set(expected.lists) - set(got.lists))}, "
            f"extra {sorted(set(got.lists) - set(expected.lists))}"
        )
    for role in sorted(set(got.lists) & set(expected.lists)):
        if got.lists[role] != expected.lists[role]:
            found.append(
                f"list {role!r} has {len(got.lists[role])} members, the fault-free run "
                f"{len(expected.lists[role])} ({_delta(expected.lists[role], got.lists[role])})"
            )
    if got.emails != expected.emails:
        found.append(f"emails differ: {got.emails} instead of {expected.emails}")
    for role in sorted(set(got.sends) | set(expected.sends)):
        want, have = set(expected.sends.get(role, {})), set(got.sends.get(role, {}))
        if want != have:
            found.append(
                f"email {role!r} went to {len(have)} contacts, in the fault-free run {len(want)} ({_delta(want, have)})"
            )
    if got.opted_out != expected.opted_out:
        found.append(
            f"{len(got.opted_out)} contacts opted out, in the fault-free run {len(expected.opted_out)} "
            f"({_delta(expected.opted_out, got.opted_out)})"
        )
    return found


def _delta(want: Any, have: Any) -> str:
    missing, extra = sorted(set(want) - set(have), key=int), sorted(set(have) - set(want), key=int)
    return f"missing {_few(missing)}, extra {_few(extra)}"


def _few(ids: list[str]) -> str:
    return f"{len(ids)}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}" if ids else "none"
