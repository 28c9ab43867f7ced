"""``make doctor``: a read-only check of the HubSpot portal a campaign would run against, a user's first step.

    python -m include.doctor [--dotenv .env]

The connection is ``HUBSPOT_CONNECTION`` from the environment or ``.env``, read exactly as ``make up`` reads it.
The check writes nothing to HubSpot: it makes GET calls and read-only POSTs (token introspection, a batch
status read) only. Each line says PASS, WARN or FAIL, what was found and what the campaign will do about it.
The exit code is 0 when every line is PASS or WARN, 1 when a check FAILs (HubSpot cannot be reached or the
token is refused), 2 when there is no connection to check.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from include.airflow_stack.__main__ import hubspot_connection
from include.airflow_stack.stack import StackError
from include.hubspot_sandbox.process import PROJECT_ROOT

if str(PROJECT_ROOT / "plugins") not in sys.path:  # as Airflow puts plugins/ on the path
    sys.path.append(str(PROJECT_ROOT / "plugins"))

from reengagement import segments
from reengagement.campaign import is_cta_click, is_tracking_parameter
from reengagement.errors import HubSpotAuthError, HubSpotError
from reengagement.operators.settings import CapabilityProbe, run_probe

if TYPE_CHECKING:
    from reengagement.hook import HubSpotHook

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
DEFAULT_SUBSCRIPTION = "Marketing Information"
#: Scopes the campaign uses, each with the step that fails without it (any one scope of a group will do).
NEEDED_SCOPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("crm.objects.contacts.read",), "reading contacts and their property types"),
    (("crm.lists.read",), "reading the campaign's lists"),
    (("crm.lists.write",), "creating the campaign's lists"),
    (("crm.export",), "exporting list 2, the audit record of the opt-out"),
    (("content", "marketing.email.read", "marketing.email.write"), "creating the email and reading its events"),
    (("marketing-email", "transactional-email"), "publishing (sending) the email"),
    (("communication_preferences.read", "communication_preferences.read_write"), "reading the subscription types"),
    (("communication_preferences.statuses.batch.write",), "the opt-out (batch status writes)"),
    (("forms",), "preflight's consent check of the forms"),
)
#: HubSpot's daily limits for private apps by the account's highest tier (requests a day); an API limit
#: increase pack adds a million, so a high limit alone does not prove Enterprise.
DAILY_LIMIT_TIERS = ((1_000_000, "Enterprise, or an API limit increase"), (625_000, "Professional"),
                     (250_000, "Free or Starter"))
#: Read-only: the Enterprise-only batch status scope, asked with no contacts.
BATCH_READ_PROBE = CapabilityProbe(
    "batch_read_statuses", "batch-read subscription statuses (Marketing Hub Enterprise)", "POST",
    "/communication-preferences/v4/statuses/batch/read?channel=EMAIL", {"inputs": []}, frozenset({200, 207}))
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
    scopes: set[str] | None = None
    batch_read: str = "inconclusive"


def connect(hook: HubSpotHook) -> tuple[Line, Portal | None]:
    """The first call: does the token reach a portal? Its headers carry the limits."""
    try:
        details, headers = hook.request_with_headers("GET", "/account-info/v3/details")
    except HubSpotAuthError as err:
        return Line(FAIL, "connection", f"HubSpot refused the token: {err}",
                    "nothing can run: put a valid private app token in HUBSPOT_CONNECTION"), None
    except HubSpotError as err:
        return Line(FAIL, "connection", f"could not reach HubSpot at {hook.base_url}: {err}",
                    "nothing can run: check the host in HUBSPOT_CONNECTION and the network"), None
    found = (f"portal {details.get('portalId')} at {hook.base_url} ({details.get('uiDomain')}, time zone "
             f"{details.get('timeZone')})")
    return Line(PASS, "connection", found, "every task reaches HubSpot through this connection"), Portal(headers)


def scopes_line(hook: HubSpotHook, portal: Portal) -> Line:
    try:
        info = hook.access_token_info()
        portal.scopes = set(info.get("scopes") or [])
    except HubSpotError as err:
        return Line(WARN, "scopes", f"unknown: HubSpot did not introspect the token ({err.status}; only private app "
                    "tokens can be)", "preflight probes publishing and batch status writes before every campaign "
                    "and stops it, listing what is missing")
    missing = [f"{' or '.join(group)} ({why})" for group, why in NEEDED_SCOPES
               if not portal.scopes.intersection(group)]
    if missing:
        return Line(WARN, "scopes", "missing: " + "; ".join(missing),
                    "preflight stops the campaign until they are granted in the private app's settings")
    return Line(PASS, "scopes", f"all {len(NEEDED_SCOPES)} scope groups the campaign uses are granted",
                "every step can make its calls")


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
        return Line(PASS, "tier", found + " -> Marketing Hub Enterprise",
                    "the email can be published through the API and the opt-out written in batches")
    return Line(WARN, "tier", found + " -> not Marketing Hub Enterprise, or the token lacks its scopes",
                "publishing through the API needs Marketing Hub Enterprise: preflight stops the campaign here")


def limits_line(hook: HubSpotHook, portal: Portal) -> Line:
    headers = portal.headers
    per_interval = _int(_header(headers, "X-HubSpot-RateLimit-Max"))
    interval_ms = _int(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
    usage = _daily_usage(hook)
    daily_part = (f"; {usage[1] - usage[0]:,} of {usage[1]:,} calls left today" if usage else "")
    if per_interval is None or not interval_ms:
        return Line(WARN, "API limits", "HubSpot sent no X-HubSpot-RateLimit headers" + daily_part,
                    "the hook keeps to 100 calls per 10 s (the lowest published limit) and backs off on a 429")
    found = (f"{per_interval} calls per {interval_ms / 1000:g} s "
             f"({_header(headers, 'X-HubSpot-RateLimit-Remaining')} left in this window)" + daily_part)
    return Line(PASS, "API limits", found, "the hook paces every task under this limit; preflight stops a "
                "campaign the day's remaining calls cannot cover")


def properties_lines(hook: HubSpotHook, subscription_id: str | None) -> list[Line]:
    sub = subscription_id or "<subscription id>"
    names = [n for n in segments.property_names(sub) if subscription_id or n != segments.optout_property(sub)]
    try:
        types = hook.property_types(names)
    except HubSpotError as err:
        return [Line(WARN, "property types", f"could not be read: {err}",
                     "preflight reads them again and stops the campaign if it cannot")]
    usual = segments.hubspot_types(sub)
    problems = [p for p in segments.type_problems(sub, types) if subscription_id or sub not in p]
    found = ", ".join(f"{name}={kind or 'missing'}" for name, kind in types.items())
    if problems:
        return [Line(WARN, "property types", found, "preflight stops the campaign: " + " ".join(problems))]
    unusual = [f"{n} is {types[n]} (HubSpot's usual: {usual[n]})" for n in names if types.get(n) != usual.get(n)]
    if unusual:
        return [Line(WARN, "property types", found + "; " + "; ".join(unusual),
                     "each filter of the unengaged list is built to fit the type the portal has")]
    return [Line(PASS, "property types", found, "each filter of the unengaged list is built to fit these types")]


def subscriptions_line(hook: HubSpotHook) -> tuple[Line, str | None]:
    try:
        definitions = hook.request("GET", "/communication-preferences/v4/definitions").get("results") or []
    except HubSpotError as err:
        return Line(WARN, "subscription types", f"could not be read: {err}",
                    "preflight reads them again and stops the campaign if the chosen type is missing"), None
    found = ", ".join(f"{d['name']} ({d['id']}{'' if d.get('isActive') else ', inactive'})" for d in definitions)
    default = next((d for d in definitions if d["name"].strip().lower() == DEFAULT_SUBSCRIPTION.lower()), None)
    if default is None or not default.get("isActive"):
        return Line(WARN, "subscription types", found or "none",
                    f"there is no active {DEFAULT_SUBSCRIPTION!r} type: set the campaign's subscription_type to "
                    "the type your marketing email goes out under"), None
    return Line(PASS, "subscription types", found,
                f"the campaign mails under {DEFAULT_SUBSCRIPTION!r} ({default['id']}) unless its "
                "subscription_type says otherwise"), str(default["id"])


def clicks_line(hook: HubSpotHook) -> Line:
    """Which tracking parameters HubSpot adds to the click URLs of the portal's most recent sent email."""
    try:
        email = _last_sent_email(hook)
        if email is None:
            return Line(WARN, "click URLs", "no sent marketing email to read clicks from",
                        "nothing to compare yet: the CTA match ignores utm_*, _hs* and __hs* parameters")
        urls = [e.get("url") for e in _clicks(hook, email)]
    except HubSpotError as err:
        return Line(WARN, "click URLs", f"could not be read: {err}",
                    "the CTA match ignores utm_*, _hs* and __hs* parameters whatever they are")
    where = f"email {email.get('name')!r} ({email.get('id')})"
    if not urls:
        return Line(WARN, "click URLs", f"{where}: no CLICK events",
                    "if click tracking is off nobody can confirm: the guards stop the opt-out of a round with no "
                    "clicks")
    links = [u for u in urls if u and is_cta_click(u, {u})]  # a link matches itself unless it unsubscribes
    tracking, own = _parameters(links)
    found = (f"{where}, {len(urls)} clicks, {len(links)} on links other than unsubscribe or preferences: tracking "
             f"parameters {', '.join(tracking) or 'none'}; the links' own parameters {', '.join(own) or 'none'}")
    return Line(PASS, "click URLs", found, "a CTA click is matched by scheme, host, path and the campaign's own "
                "parameters; utm_*, _hs* and __hs* are ignored")


def exports_line() -> Line:
    return Line(WARN, "exports left today", "unknown: HubSpot shows no count; it allows 30 exports a day",
                "a campaign run starts one export of list 2, and a rerun reuses it while its file is usable")


def run(hook: HubSpotHook) -> list[Line]:
    """Every check, in the order a user reads them; a failed connection ends the check there."""
    first, portal = connect(hook)
    if portal is None:
        return [first]
    subscription, subscription_id = subscriptions_line(hook)
    checks: list[Callable[[], Line | list[Line]]] = [
        lambda: scopes_line(hook, portal), lambda: tier_line(hook, portal), lambda: limits_line(hook, portal),
        lambda: subscription, lambda: properties_lines(hook, subscription_id), lambda: clicks_line(hook),
        exports_line,
    ]
    lines = [first]
    for check in checks:
        result = check()
        lines += result if isinstance(result, list) else [result]
    return lines


# -- reading HubSpot ----------------------------------------------------------------------------------


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
    page = hook.request("GET", "/marketing/v3/emails", params={
        "isPublished": "true", "sort": "-publishedAt", "limit": 10, "archived": "false"})
    return next((e for e in page.get("results") or [] if e.get("type", "BATCH_EMAIL") == "BATCH_EMAIL"), None)


def _clicks(hook: HubSpotHook, email: dict[str, Any]) -> list[dict[str, Any]]:
    """Up to one page of the email's CLICK events, by the campaign ids the published email shows."""
    ids = [str(i) for i in email.get("allEmailCampaignIds") or []] or [str(email.get("primaryEmailCampaignId") or "")]
    events: list[dict[str, Any]] = []
    for campaign_id in filter(None, ids):
        page = hook.request("GET", "/email/public/v1/events", params={
            "campaignId": campaign_id, "eventType": "CLICK", "limit": CLICK_SAMPLE})
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
Airflow connection URI or JSON, with a private app token as the password:

    echo "HUBSPOT_CONNECTION=http://:$HUBSPOT_PRIVATE_APP_TOKEN@api.hubapi.com/https" >> .env
    make doctor

`make up` and `make demo` without it use the local HubSpot sandbox, which needs no check."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--dotenv", type=Path, default=PROJECT_ROOT / ".env",
                        help="the .env file read when HUBSPOT_CONNECTION is not in the environment")
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
