"""``make doctor``: a read-only check of the HubSpot portal a campaign would run against, a user's first step.

    python -m include.doctor [--dotenv .env]

The connection is ``HUBSPOT_CONNECTION`` from the environment or ``.env``, read exactly as ``make up`` reads it.
Its password is a Service Key or a legacy private app token. The check writes nothing to HubSpot: it makes GET
calls and read-only POSTs (token introspection, a batch status read) only. Each line says PASS, WARN or FAIL,
what was found and what the campaign will do about it. The exit code is 0 when every line is PASS or WARN, 1
when a check FAILs (HubSpot cannot be reached, the key is refused or lacks a scope a step needs, the API version
is unknown), 2 when there is no connection to check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from reengagement import api_versions, segments
from reengagement.campaign import is_cta_click, is_tracking_parameter
from reengagement.errors import HubSpotAuthError, HubSpotError, HubSpotScopeError
from reengagement.operators.settings import CapabilityProbe, run_probe

from include.airflow_stack.__main__ import hubspot_connection
from include.airflow_stack.stack import StackError
from include.hubspot_sandbox.process import PROJECT_ROOT

if TYPE_CHECKING:
    from reengagement.hook import HubSpotHook

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
DEFAULT_SUBSCRIPTION = "Marketing Information"
#: When HubSpot stops supporting legacy paths ("Legacy APIs and Apps: What's Going Unsupported and When").
LEGACY_UNSUPPORTED = "v4 paths from 30 March 2027, v1-v3 paths from September 2027"
WHERE_KEYS_ARE = "Development > Keys > Service keys"
ONLY_A_WRITE = "only a write could prove it"


@dataclass(frozen=True)
class Need:
    """Scopes a step needs (any one of ``scopes`` will do), and a read-only call HubSpot refuses without them.

    ``probe`` is None when only a write could tell: the doctor never writes.
    """

    scopes: tuple[str, ...]
    purpose: str
    probe: CapabilityProbe | None = None


@dataclass(frozen=True)
class Step:
    """A campaign step and the scopes its calls need."""

    name: str
    needs: tuple[Need, ...]


def _probe(key: str, path: str, *ok: int) -> CapabilityProbe:
    """A GET whose answer, unless HubSpot refuses the scopes, is one of ``ok`` (a made-up id answers 404)."""
    return CapabilityProbe(key, key, "GET", path, allowed=frozenset(ok or {200}))


CONTACTS = Need(
    ("crm.objects.contacts.read",),
    "contacts and their property types",
    _probe("contact property", "/crm/v3/properties/contacts/email"),
)
EMAIL_SCOPES = ("content", "marketing.email.read", "marketing.email.write")
EMAILS_PROBE = _probe("emails", "/marketing/v3/emails?limit=1")
#: Each campaign step with the scopes it needs, in the order a campaign runs them.
STEPS: tuple[Step, ...] = (
    Step(
        "review settings",
        (
            Need(
                ("communication_preferences.read", "communication_preferences.read_write"),
                "the subscription types",
                _probe("subscription types", "/communication-preferences/v4/definitions"),
            ),
            Need(("forms",), "the consent text on forms", _probe("forms", "/marketing/v3/forms?limit=1")),
            CONTACTS,
        ),
    ),
    Step(
        "build lists",
        (
            Need(("crm.lists.read",), "reading the campaign's lists", _probe("lists", "/crm/v3/lists?listIds=0")),
            Need(("crm.lists.write",), "creating the lists and adding the clickers"),
            CONTACTS,
        ),
    ),
    Step(
        "create/send email",
        (
            Need(EMAIL_SCOPES, "creating the email", EMAILS_PROBE),
            Need(("marketing-email", "transactional-email"), "publishing the email"),
        ),
    ),
    Step(
        "read events",
        (
            Need(
                ("content",),
                "the emails' SENT and CLICK events",
                _probe("email events", "/email/public/v1/events?limit=1"),
            ),
            Need(EMAIL_SCOPES, "the email's statistics", EMAILS_PROBE),
        ),
    ),
    Step(
        "export",
        (
            Need(
                ("crm.export",),
                "exporting list 2, the audit record of the opt-out",
                _probe("export status", "/crm/v3/exports/export/async/tasks/0/status", 200, 400, 404),
            ),
        ),
    ),
    Step("opt out", (Need(("communication_preferences.statuses.batch.write",), "batch status writes"),)),
)
#: HubSpot's daily limits for private apps by the account's highest tier (requests a day); an API limit
#: increase pack adds a million, so a high limit alone does not prove Enterprise.
DAILY_LIMIT_TIERS = (
    (1_000_000, "Enterprise, or an API limit increase"),
    (625_000, "Professional"),
    (250_000, "Free or Starter"),
)
#: Read-only: the Enterprise-only batch status scope, asked with no contacts.
BATCH_READ_PROBE = CapabilityProbe(
    "batch_read_statuses",
    "batch-read subscription statuses (Marketing Hub Enterprise)",
    "POST",
    "/communication-preferences/v4/statuses/batch/read?channel=EMAIL",
    {"inputs": []},
    frozenset({200, 207}),
)
CLICK_SAMPLE = 1000


@dataclass
class Line:
    """One result: PASS/WARN/FAIL, the check's name, what was found, and what the campaign does about it."""

    status: str
    check: str
    found: str
    action: str

    def render(self) -> str:
        return f"{self.status}  {self.check:<20} {self.found}\n{'':26}-> {self.action}"


@dataclass
class Portal:
    """What the first calls learned, shared by the later checks."""

    headers: dict[str, str]
    #: The granted scopes, when HubSpot introspected the token (a legacy private app token); None otherwise.
    scopes: set[str] | None = None
    batch_read: str = "inconclusive"


def connect(hook: HubSpotHook) -> tuple[Line, Portal | None]:
    """The first call: does the token reach a portal? Its headers carry the limits."""
    try:
        details, headers = hook.request_with_headers("GET", "/account-info/v3/details")
    except HubSpotAuthError as err:
        return Line(
            FAIL,
            "connection",
            f"HubSpot refused the token: {err}",
            "nothing can run: put a valid Service Key (or legacy private app token) in HUBSPOT_CONNECTION",
        ), None
    except HubSpotScopeError as err:
        return Line(
            FAIL,
            "connection",
            f"the key may not read the account's details: it lacks {', '.join(err.missing_scopes) or 'a scope'}",
            f"nothing can run: grant it to the Service Key ({WHERE_KEYS_ARE}) or the private app",
        ), None
    except HubSpotError as err:
        return Line(
            FAIL,
            "connection",
            f"could not reach HubSpot at {hook.base_url}: {err}",
            "nothing can run: check the host in HUBSPOT_CONNECTION and the network",
        ), None
    found = (
        f"portal {details.get('portalId')} at {hook.base_url} ({details.get('uiDomain')}, time zone "
        f"{details.get('timeZone')})"
    )
    return Line(PASS, "connection", found, "every task reaches HubSpot through this connection"), Portal(headers)


def api_version_lines(hook: HubSpotHook, today: dt.date | None = None) -> list[Line]:
    """The API version the connection speaks, and each call that stays on a legacy path whatever it is."""
    try:
        version = hook.api_version
    except ValueError as err:
        return [
            Line(
                FAIL,
                "API version",
                str(err),
                'nothing can run: fix "api_version" in the connection\'s extra '
                f"or remove it for {api_versions.DEFAULT_API_VERSION}",
            )
        ]
    return [version_line(version), *legacy_only_lines(today or dt.datetime.now(dt.timezone.utc).date())]


def version_line(version: str) -> Line:
    """PASS for the newest date-based version; WARN for an older one or legacy paths, which HubSpot retires."""
    newest = api_versions.DEFAULT_API_VERSION
    if version == api_versions.LEGACY:
        return Line(
            WARN,
            "API version",
            f"legacy: every call goes to the v1-v4 paths; HubSpot stops supporting {LEGACY_UNSUPPORTED}",
            f'set the connection\'s extra "api_version" to "{newest}" (or remove '
            "it): the calls move to date-based paths",
        )
    example = api_versions.versioned_path("/crm/v3/lists", version)
    if version != newest:
        return Line(
            WARN,
            "API version",
            f"{version} (date-based, e.g. {example}); the newest is {newest}",
            f'HubSpot supports each date-based version about 18 months: set "api_version" to "{newest}"',
        )
    return Line(
        PASS,
        "API version",
        f"{version} (date-based, e.g. {example})",
        "every call goes to its date-based path, except the legacy-only ones below",
    )


def legacy_only_lines(today: dt.date) -> list[Line]:
    """One line per endpoint HubSpot offers no date-based equivalent for; WARN when its end is within a year."""
    lines = []
    for endpoint in api_versions.LEGACY_ONLY:
        ends = _month_start(endpoint.unsupported_from)
        soon = ends is None or ends <= _a_year_after(today)
        lines.append(
            Line(
                WARN if soon else PASS,
                _legacy_check_name(endpoint.path),
                f"{endpoint.path}, for {endpoint.purpose}: HubSpot's support ends {endpoint.unsupported_from}",
                f"stays on the legacy path, because {endpoint.why}",
            )
        )
    return lines


def credentials_line(hook: HubSpotHook, portal: Portal) -> Line:
    """A legacy private app token can be introspected; a Service Key's scopes are learnt from probes instead."""
    try:
        info = hook.access_token_info()
        portal.scopes = set(info.get("scopes") or [])
    except HubSpotError as err:
        return Line(
            PASS,
            "credentials",
            f"a Service Key, or a token HubSpot does not introspect ({err.status}): "
            "each step's scopes are learnt from read-only calls",
            "a scope only a write can prove is "
            "checked by preflight (publishing, batch status writes) or by the step that needs it",
        )
    return Line(
        PASS,
        "credentials",
        f"a legacy private app token with {len(portal.scopes)} scopes (HubSpot introspected it)",
        f"it keeps working; new integrations use a Service Key ({WHERE_KEYS_ARE})",
    )


def step_scope_lines(hook: HubSpotHook, portal: Portal) -> list[Line]:
    """One line per campaign step: FAIL naming the scopes the key lacks, WARN for what only a write could prove."""
    answers: dict[str, list[str] | str | None] = {}
    lines = []
    for step in STEPS:
        missing, unproven = [], []
        for need in step.needs:
            verdict = _granted(hook, portal, need, answers)
            if isinstance(verdict, list):
                missing.append(f"{', '.join(verdict)} ({need.purpose})")
            elif verdict is not None:
                unproven.append(f"{' or '.join(need.scopes)} ({need.purpose}; {verdict})")
        lines.append(_step_line(step, missing, unproven))
    return lines


def _granted(
    hook: HubSpotHook, portal: Portal, need: Need, answers: dict[str, list[str] | str | None]
) -> list[str] | str | None:
    """None if granted, the scopes HubSpot asks for if not, or why it cannot be told."""
    if portal.scopes is not None:
        return None if portal.scopes.intersection(need.scopes) else [" or ".join(need.scopes)]
    if need.probe is None:
        return ONLY_A_WRITE
    if need.probe.path not in answers:  # steps share reads: each is asked once
        answers[need.probe.path] = _probe_scopes(hook, need.probe, need.scopes)
    return answers[need.probe.path]


def _probe_scopes(hook: HubSpotHook, probe: CapabilityProbe, scopes: tuple[str, ...]) -> list[str] | str | None:
    """Ask HubSpot the probe's read: a MISSING_SCOPES refusal names the scopes in its errors' context."""
    try:
        hook.request(probe.method, probe.path)
    except HubSpotScopeError as err:
        return err.missing_scopes or [" or ".join(scopes)]
    except HubSpotError as err:
        if err.status in probe.allowed:
            return None
        return f"HubSpot answered {err.status or 'nothing'} to {probe.path}"
    except ValueError:  # a success whose body is not JSON: the scope check passed
        return None
    return None if 200 in probe.allowed else f"HubSpot answered {probe.path} unexpectedly"


def _step_line(step: Step, missing: list[str], unproven: list[str]) -> Line:
    if missing:
        return Line(
            FAIL,
            step.name,
            "lacks " + "; ".join(missing),
            f"grant the missing scopes to the Service Key ({WHERE_KEYS_ARE}; a key holds only scopes its "
            "creator has) or to the private app: the step cannot run until then",
        )
    if unproven:
        return Line(
            WARN,
            step.name,
            "not proven: " + "; ".join(unproven),
            "preflight probes publishing and batch status writes before every campaign; any other missing "
            "scope fails its step with HubSpot's message naming it",
        )
    granted = "; ".join(f"{' or '.join(need.scopes)} ({need.purpose})" for need in step.needs)
    return Line(PASS, step.name, "granted: " + granted, "the step can make its calls")


def tier_line(hook: HubSpotHook, portal: Portal) -> Line:
    """HubSpot has no API that names the Marketing Hub tier: read it from the daily limit and a read-only probe."""
    portal.batch_read = run_probe(hook, BATCH_READ_PROBE).verdict
    usage = None if _header(portal.headers, "X-HubSpot-RateLimit-Daily") else _daily_usage(hook)
    daily = _int(_header(portal.headers, "X-HubSpot-RateLimit-Daily")) or (usage[1] if usage else None)
    account = next((name for limit, name in DAILY_LIMIT_TIERS if daily is not None and daily >= limit), "unknown")
    found = f"daily API limit {daily:,} (account tier: {account})" if daily else "daily API limit unknown"
    found += f"; Enterprise-only batch status read: {portal.batch_read}"
    publish = portal.scopes is None or bool(portal.scopes.intersection(("marketing-email", "transactional-email")))
    if portal.batch_read == "allowed" and publish:
        return Line(
            PASS,
            "tier",
            found + " -> Marketing Hub Enterprise",
            "the email can be published through the API and the opt-out written in batches",
        )
    return Line(
        WARN,
        "tier",
        found + " -> not Marketing Hub Enterprise, or the token lacks its scopes",
        "publishing through the API needs Marketing Hub Enterprise: preflight stops the campaign here",
    )


def limits_line(hook: HubSpotHook, portal: Portal) -> Line:
    headers = portal.headers
    per_interval = _int(_header(headers, "X-HubSpot-RateLimit-Max"))
    interval_ms = _int(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
    usage = _daily_usage(hook)
    daily_part = f"; {usage[1] - usage[0]:,} of {usage[1]:,} calls left today" if usage else ""
    if per_interval is None or not interval_ms:
        return Line(
            WARN,
            "API limits",
            "HubSpot sent no X-HubSpot-RateLimit headers" + daily_part,
            "the hook keeps to 100 calls per 10 s (the lowest published limit) and backs off on a 429",
        )
    found = (
        f"{per_interval} calls per {interval_ms / 1000:g} s "
        f"({_header(headers, 'X-HubSpot-RateLimit-Remaining')} left in this window)" + daily_part
    )
    return Line(
        PASS,
        "API limits",
        found,
        "the hook paces every task under this limit; preflight stops a campaign the day's remaining calls cannot cover",
    )


def properties_lines(hook: HubSpotHook, subscription_id: str | None) -> list[Line]:
    sub = subscription_id or "<subscription id>"
    names = [n for n in segments.property_names(sub) if subscription_id or n != segments.optout_property(sub)]
    try:
        types = hook.property_types(names)
    except HubSpotError as err:
        return [
            Line(
                WARN,
                "property types",
                f"could not be read: {err}",
                "preflight reads them again and stops the campaign if it cannot",
            )
        ]
    usual = segments.hubspot_types(sub)
    problems = [p for p in segments.type_problems(sub, types) if subscription_id or sub not in p]
    found = ", ".join(f"{name}={kind or 'missing'}" for name, kind in types.items())
    if problems:
        return [Line(WARN, "property types", found, "preflight stops the campaign: " + " ".join(problems))]
    unusual = [f"{n} is {types[n]} (HubSpot's usual: {usual[n]})" for n in names if types.get(n) != usual.get(n)]
    if unusual:
        return [
            Line(
                WARN,
                "property types",
                found + "; " + "; ".join(unusual),
                "each filter of the unengaged list is built to fit the type the portal has",
            )
        ]
    return [Line(PASS, "property types", found, "each filter of the unengaged list is built to fit these types")]


def subscriptions_line(hook: HubSpotHook) -> tuple[Line, str | None]:
    try:
        definitions = hook.request("GET", "/communication-preferences/v4/definitions").get("results") or []
    except HubSpotError as err:
        return Line(
            WARN,
            "subscription types",
            f"could not be read: {err}",
            "preflight reads them again and stops the campaign if the chosen type is missing",
        ), None
    found = ", ".join(f"{d['name']} ({d['id']}{'' if d.get('isActive') else ', inactive'})" for d in definitions)
    default = next((d for d in definitions if d["name"].strip().lower() == DEFAULT_SUBSCRIPTION.lower()), None)
    if default is None or not default.get("isActive"):
        return Line(
            WARN,
            "subscription types",
            found or "none",
            f"there is no active {DEFAULT_SUBSCRIPTION!r} type: set the campaign's subscription_type to "
            "the type your marketing email goes out under",
        ), None
    return Line(
        PASS,
        "subscription types",
        found,
        f"the campaign mails under {DEFAULT_SUBSCRIPTION!r} ({default['id']}) unless its "
        "subscription_type says otherwise",
    ), str(default["id"])


def clicks_line(hook: HubSpotHook) -> Line:
    """Which tracking parameters HubSpot adds to the click URLs of the portal's most recent sent email."""
    try:
        email = _last_sent_email(hook)
        if email is None:
            return Line(
                WARN,
                "click URLs",
                "no sent marketing email to read clicks from",
                "nothing to compare yet: the CTA match ignores utm_*, _hs* and __hs* parameters",
            )
        urls = [e.get("url") for e in _clicks(hook, email)]
    except HubSpotError as err:
        return Line(
            WARN,
            "click URLs",
            f"could not be read: {err}",
            "the CTA match ignores utm_*, _hs* and __hs* parameters whatever they are",
        )
    where = f"email {email.get('name')!r} ({email.get('id')})"
    if not urls:
        return Line(
            WARN,
            "click URLs",
            f"{where}: no CLICK events",
            "if click tracking is off nobody can confirm: the guards stop the opt-out of a round with no clicks",
        )
    links = [u for u in urls if u and is_cta_click(u, {u})]  # a link matches itself unless it unsubscribes
    tracking, own = _parameters(links)
    found = (
        f"{where}, {len(urls)} clicks, {len(links)} on links other than unsubscribe or preferences: tracking "
        f"parameters {', '.join(tracking) or 'none'}; the links' own parameters {', '.join(own) or 'none'}"
    )
    return Line(
        PASS,
        "click URLs",
        found,
        "a CTA click is matched by scheme, host, path and the campaign's own "
        "parameters; utm_*, _hs* and __hs* are ignored",
    )


#: What the bot filter means for the campaign, whichever way it is set.
MACHINE_OPENS_ACTION = (
    "decisions rest on CTA clicks, never opens. Filter on (HubSpot's default): machine opens (Apple Mail Privacy "
    "Protection, security scanners) do not count, so an Apple Mail reader can look unengaged and is asked; "
    "confirming costs one click. Filter off: machine opens count, so a dead address whose mail server opens "
    "everything looks engaged and is never asked. The focused variant counts non-filtered opens only. The "
    "setting: Settings > Tracking & Analytics > Tracking Code > Advanced Tracking > Email Bot filtering"
)


def machine_opens_line(hook: HubSpotHook) -> Line:
    """Whether HubSpot filters machine opens, as its events show it: the API has no field for the setting itself.

    HubSpot marks an open it takes for a bot (``filteredEvent``) only while bot filtering is on, so filtered
    opens of the latest sent email prove it on; none among many opens suggests it is off.
    """
    try:
        email = _last_sent_email(hook)
        opens = _events(hook, email, "OPEN") if email else []
    except HubSpotError as err:
        return Line(WARN, "machine opens", f"could not be read: {err}", MACHINE_OPENS_ACTION)
    if email is None or not opens:
        what = "no sent marketing email" if email is None else f"email {email.get('name')!r} has no OPEN events"
        return Line(WARN, "machine opens", f"{what}: the bot-filter setting cannot be told yet", MACHINE_OPENS_ACTION)
    filtered = sum(1 for event in opens if event.get("filteredEvent"))
    where = f"email {email.get('name')!r} ({email.get('id')})"
    if filtered:
        found = f"{where}: {filtered} of {len(opens)} opens are marked as machine opens: bot filtering is on"
        return Line(PASS, "machine opens", found, MACHINE_OPENS_ACTION)
    found = f"{where}: none of {len(opens)} opens is marked as a machine open: bot filtering looks off"
    return Line(WARN, "machine opens", found, MACHINE_OPENS_ACTION)


def exports_line() -> Line:
    return Line(
        WARN,
        "exports left today",
        "unknown: HubSpot shows no count; it allows 30 exports a day",
        "a campaign run starts one export of list 2, and a rerun reuses it while its file is usable",
    )


def run(hook: HubSpotHook) -> list[Line]:
    """Every check, in the order a user reads them; an unknown API version or a failed connection ends it there."""
    versions = api_version_lines(hook)
    if versions[0].status == FAIL:
        return versions
    first, portal = connect(hook)
    if portal is None:
        return [*versions, first]
    subscription, subscription_id = subscriptions_line(hook)
    checks: list[Callable[[], Line | list[Line]]] = [
        lambda: credentials_line(hook, portal),
        lambda: step_scope_lines(hook, portal),
        lambda: tier_line(hook, portal),
        lambda: limits_line(hook, portal),
        lambda: subscription,
        lambda: properties_lines(hook, subscription_id),
        lambda: clicks_line(hook),
        lambda: machine_opens_line(hook),
        exports_line,
    ]
    lines = [*versions, first]
    for check in checks:
        result = check()
        lines += result if isinstance(result, list) else [result]
    return lines


# -- reading HubSpot ----------------------------------------------------------------------------------


def _month_start(text: str) -> dt.date | None:
    """``"September 2027"`` or ``"30 March 2027"`` as a date (a month alone: its first day)."""
    for layout in ("%d %B %Y", "%B %Y"):
        try:
            return dt.datetime.strptime(text, layout).date()
        except ValueError:
            continue
    return None


def _a_year_after(day: dt.date) -> dt.date:
    return day.replace(year=day.year + 1, day=28 if (day.month, day.day) == (2, 29) else day.day)


def _legacy_check_name(path: str) -> str:
    """``/email/public/v1/events`` -> ``legacy events v1``: short enough for the check column."""
    parts = [p for p in path.split("/") if p]
    version = next((p for p in parts if re.fullmatch(r"v\d+", p)), "")
    return f"legacy {parts[-1]} {version}".strip()


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _daily_usage(hook: HubSpotHook) -> tuple[int, int] | None:
    """(used, limit) of the private app's calls today, as preflight reads them."""
    try:
        results = hook.request("GET", "/account-info/v3/api-usage/daily/private-apps").get("results") or []
    except HubSpotError:
        return None
    if not results:
        return None
    return int(results[0]["currentUsage"]), int(results[0]["usageLimit"])


def _last_sent_email(hook: HubSpotHook) -> dict[str, Any] | None:
    page = hook.request(
        "GET",
        "/marketing/v3/emails",
        params={"isPublished": "true", "sort": "-publishedAt", "limit": 10, "archived": "false"},
    )
    return next((e for e in page.get("results") or [] if e.get("type", "BATCH_EMAIL") == "BATCH_EMAIL"), None)


def _clicks(hook: HubSpotHook, email: dict[str, Any]) -> list[dict[str, Any]]:
    return _events(hook, email, "CLICK")


def _events(hook: HubSpotHook, email: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    """Up to one page of the email's events of a type (filtered ones included), by its campaign ids."""
    ids = [str(i) for i in email.get("allEmailCampaignIds") or []] or [str(email.get("primaryEmailCampaignId") or "")]
    events: list[dict[str, Any]] = []
    for campaign_id in filter(None, ids):
        page = hook.request(
            "GET",
            "/email/public/v1/events",
            params={"campaignId": campaign_id, "eventType": event_type, "limit": CLICK_SAMPLE},
        )
        events += page.get("events") or []
    return events


def _parameters(urls: Iterable[str]) -> tuple[list[str], list[str]]:
    """Query parameter names of the URLs: (tracking ones, the links' own), each sorted."""
    tracking, own = set(), set()
    for url in urls:
        for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            (tracking if is_tracking_parameter(name) else own).add(name)
    return sorted(tracking), sorted(own)


# -- command line -------------------------------------------------------------------------------------

NO_CONNECTION = """No HubSpot connection to check.

Give the portal's connection as HUBSPOT_CONNECTION, in the environment or in .env (ignored by git), as an
Airflow connection URI or JSON, with a Service Key (HubSpot: Development > Keys > Service keys) as the password;
a legacy private app token works too:

    echo "HUBSPOT_CONNECTION=http://:$HUBSPOT_SERVICE_KEY@api.hubapi.com/https" >> .env
    make doctor

`make up` and `make demo` without it use the local HubSpot sandbox, which needs no check."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dotenv",
        type=Path,
        default=PROJECT_ROOT / ".env",
        help="the .env file read when HUBSPOT_CONNECTION is not in the environment",
    )
    args = parser.parse_args(argv)
    try:
        connection = hubspot_connection(args.dotenv)
    except StackError as err:
        print(f"FAIL  connection           {err}")
        return 1
    if not connection:
        print(NO_CONNECTION)
        return 2
    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = connection
    from reengagement.hook import HubSpotHook

    lines = run(HubSpotHook(timeout=(10.0, 30.0), max_attempts=2, caller="doctor"))
    for line in lines:
        print(line.render())
    failed = sum(line.status == FAIL for line in lines)
    warned = sum(line.status == WARN for line in lines)
    print(f"\n{len(lines)} checks: {failed} failed, {warned} to note. Nothing was written to HubSpot.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
