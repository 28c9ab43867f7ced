"""The campaign's rules in plain Python: its parameters, the names of its HubSpot objects, its guards.

Nothing here talks to HubSpot or imports Airflow, so the rules a marketer would recognise can be read
and tested on their own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

LEGAL_BASES = (
    "LEGITIMATE_INTEREST_OTHER",
    "LEGITIMATE_INTEREST_CLIENT",
    "LEGITIMATE_INTEREST_PQL",
    "CONSENT_WITH_NOTICE",
    "PERFORMANCE_OF_CONTRACT",
    "PROCESS_AND_STORE",
    "NON_GDPR",
)
OPT_OUT_SCOPES = ("all_email", "subscription_type")
MAX_ROUNDS = 3
#: The response windows offered in the trigger form; any other ISO 8601 duration of days to seconds works too.
WAIT_EXAMPLES = ("P7D", "P14D", "P3D", "P1D", "PT12H")
SEPARATOR = " · "

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_YEARS_OR_MONTHS = re.compile(r"^P(?:[^T]*[YM])")
_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DIGITS = re.compile(r"^\d+$")
#: Links whose clicks HubSpot does not track as CTA clicks, or that unsubscribe instead of confirming.
_HUBSPOT_PREFERENCE_PAGE = re.compile(
    r"(/hs/manage-preferences|/hs/preferences-center|/email-preferences|unsubscribe|/_hcms/preferences)",
    re.IGNORECASE,
)

#: JSON schema of every DAG param: Airflow renders it as the trigger form and validates it.
PARAMS_SCHEMA: dict[str, dict[str, Any]] = {
    "campaign": {
        "type": ["null", "string"],
        "default": None,
        "maxLength": 80,
        "title": "Campaign id",
        "description": "Names every HubSpot object of this run. Empty: the DAG id and the run's quarter "
        "(e.g. 'hubspot_reengagement 2026-Q4'). A rerun with the same id adopts what exists.",
    },
    "subscription_type": {
        "type": "string",
        "default": "Marketing Information",
        "minLength": 1,
        "title": "Subscription type",
        "description": "Id or name of the subscription type the permission pass is sent under (the one "
        "the unengaged contacts are subscribed to).",
    },
    "inactivity_weeks": {
        "type": "integer",
        "default": 52,
        "minimum": 4,
        "maximum": 260,
        "title": "Inactivity (weeks)",
        "description": "A contact is unengaged without a marketing-email open or click for this long, and "
        "must be at least this old.",
    },
    "focus_email": {
        "type": ["null", "string"],
        "default": None,
        "maxLength": 256,
        "title": "Focus email",
        "description": "Optional: a sent marketing email, by its numeric id (from its URL in HubSpot) or its exact "
        "name. Only contacts who received it and did not open it (machine opens do not count) are asked, "
        "besides the inactivity rule: HubSpot's second way to build the list.",
    },
    "min_emails_delivered": {
        "type": "integer",
        "default": 0,
        "minimum": 0,
        "maximum": 1000,
        "title": "Minimum emails delivered",
        "description": "Optional signal (0 = off): a contact counts as unengaged only after this many marketing "
        "emails were delivered to them (HubSpot property hs_email_delivered); a contact mailed twice in a "
        "year is not unengaged. Sunset policies commonly use 10.",
    },
    "spare_recent_activity": {
        "type": "boolean",
        "default": False,
        "title": "Spare recent site or form activity",
        "description": "Optional signal: leave out contacts who visited the website (hs_analytics_last_visit_"
        "timestamp) or submitted a form (recent_conversion_date) within the inactivity weeks.",
    },
    "exclude_lifecycle_stages": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "default": [],
        "examples": ["customer", "opportunity", "salesqualifiedlead", "evangelist"],
        "title": "Lifecycle stages to leave out",
        "description": "Optional signal: contacts in these lifecycle stages (HubSpot property lifecyclestage, "
        "internal values such as customer) are never asked. One stage per line.",
    },
    "notify_emails": {
        "type": "array",
        "items": {"type": "string", "format": "email"},
        "default": [],
        "title": "Notify by email",
        "description": "Optional: addresses told when a step fails, when the opt-out waits for approval, and when "
        "the run finishes (through Airflow's SMTP connection; a deployment can also set the Airflow Variable "
        "hubspot_reengagement_notifications). One address per line.",
    },
    "template_email_id": {
        "type": ["null", "string"],
        "default": None,
        "title": "Template email id",
        "description": "Optional: the numeric id of a designed marketing email to clone (from its URL in "
        "HubSpot). Empty: the built-in template.",
    },
    "subject": {
        "type": "string",
        "default": "Do you still want to hear from us?",
        "minLength": 1,
        "maxLength": 200,
        "title": "Subject",
        "description": "Subject line of the permission-pass email.",
    },
    "from_name": {
        "type": "string",
        "default": "The Marketing Team",
        "minLength": 1,
        "maxLength": 100,
        "title": "From name",
        "description": "Sender name shown to recipients.",
    },
    "reply_to": {
        "type": "string",
        "default": "marketing@example.com",
        "format": "email",
        "title": "Reply-to address",
        "description": "Address replies go to, e.g. marketing@example.com.",
    },
    "confirm_url": {
        "type": "string",
        "default": "https://www.example.com/still-subscribed",
        "minLength": 1,
        "title": "Confirmation page",
        "description": "The thank-you page the CTA links to (https, tracked by HubSpot; never a "
        "subscription-preferences or unsubscribe page). The campaign and round are added "
        "to its query string.",
    },
    "wait": {
        # The format sits under allOf: at the top level it would swap the form's text field with suggestions
        # for Airflow's bare duration field. Years and months (P1Y, P1M) pass the format; CampaignParams
        # refuses them.
        "type": "string",
        "default": "P7D",
        "examples": list(WAIT_EXAMPLES),
        "allOf": [{"format": "duration"}],
        "title": "Response window",
        "description": "How long to wait after each send before reading who confirmed, as an ISO 8601 "
        "duration: P7D = 7 days, P14D = 14 days, PT12H = 12 hours, P1DT6H = 1 day 6 hours.",
    },
    "rounds": {
        "type": "integer",
        "default": 1,
        "enum": list(range(1, MAX_ROUNDS + 1)),
        "title": "Rounds",
        "values_display": {"1": "1 email", "2": "2 emails (1 reminder)", "3": "3 emails (2 reminders)"},
        "description": "Emails to send before the opt-out: each later round goes only to those still unconfirmed.",
    },
    "opt_out_scope": {
        "type": "string",
        "default": "all_email",
        "enum": list(OPT_OUT_SCOPES),
        "title": "Opt-out scope",
        "values_display": {
            "all_email": "All email (like HubSpot's opt-out import)",
            "subscription_type": "Only the mailed subscription type",
        },
        "description": "all_email: unsubscribe from all email (what HubSpot's opt-out import does). "
        "subscription_type: unsubscribe from the mailed subscription type only.",
    },
    "legal_basis": {
        "type": "string",
        "default": "LEGITIMATE_INTEREST_OTHER",
        "enum": list(LEGAL_BASES),
        "values_display": {
            "LEGITIMATE_INTEREST_OTHER": "Legitimate interest (other)",
            "LEGITIMATE_INTEREST_CLIENT": "Legitimate interest (existing customer)",
            "LEGITIMATE_INTEREST_PQL": "Legitimate interest (product-qualified lead)",
            "CONSENT_WITH_NOTICE": "Consent with notice",
            "PERFORMANCE_OF_CONTRACT": "Performance of a contract",
            "PROCESS_AND_STORE": "Consent to process and store",
            "NON_GDPR": "Not subject to GDPR",
        },
        "title": "Legal basis",
        "description": "Kept with every change in the campaign's audit ledger. HubSpot records it too only with "
        "opt-out scope 'subscription_type': its all-email unsubscribe takes no legal basis.",
    },
    "legal_basis_explanation": {
        "type": "string",
        "default": "Did not confirm their subscription in a permission-pass campaign.",
        "minLength": 1,
        "maxLength": 500,
        "title": "Legal basis explanation",
        "description": "Kept with the legal basis (same rule); the campaign id is appended.",
    },
    "dry_run": {
        "type": "boolean",
        "default": False,
        "title": "Dry run",
        "description": "Run the campaign but opt nobody out: the would-be opt-out is written as a CSV and "
        "no subscription status changes in HubSpot.",
    },
    "require_approval": {
        "type": "boolean",
        "default": False,
        "title": "Require approval",
        "description": "Pause before the opt-out until a person approves it in the Airflow UI.",
    },
    "max_opt_out_fraction": {
        "type": "number",
        "default": 0.95,
        "minimum": 0,
        "maximum": 1,
        "title": "Max opt-out fraction",
        "description": "Stop before the opt-out if more than this share of those sent did not confirm. "
        "Permission passes typically confirm 5-20%, so up to 95% unconfirmed is normal; "
        "more usually means click tracking failed.",
    },
    "export_base": {
        "type": ["null", "string"],
        "default": None,
        "title": "Export folder",
        "description": "ObjectStoragePath URI for the exports and reports (file://, s3://, gs://). Empty: "
        "a folder in AIRFLOW_HOME. Use shared storage when workers run on several machines.",
    },
}


class InvalidParams(ValueError):
    """Raised before anything touches HubSpot; the message names every bad field."""


@dataclass(frozen=True)
class CampaignParams:
    campaign: str
    subscription_type: str
    inactivity_weeks: int
    focus_email: str | None
    min_emails_delivered: int
    spare_recent_activity: bool
    exclude_lifecycle_stages: tuple[str, ...]
    notify_emails: tuple[str, ...]
    template_email_id: str | None
    subject: str
    from_name: str
    reply_to: str
    confirm_url: str
    wait: dt.timedelta
    rounds: int
    opt_out_scope: str
    legal_basis: str
    legal_basis_explanation: str
    dry_run: bool
    require_approval: bool
    max_opt_out_fraction: float
    export_base: str | None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, default_campaign: str) -> CampaignParams:
        """Validate the run's params, saying in plain words what each bad one should be.

        The schema's checks run first (they are what the trigger form and the REST API enforce), then the
        rules the schema cannot say without a regular expression; each param is reported once.
        """
        problems = _schema_problems(params)
        values = {name: params.get(name, spec["default"]) for name, spec in PARAMS_SCHEMA.items()}
        for name, check in _RULE_CHECKS.items():
            if name not in problems and (found := check(values[name])):
                problems[name] = found
        if problems:
            raise InvalidParams("Invalid campaign params: " + "; ".join(problems.values()))
        values["campaign"] = (values["campaign"] or default_campaign).strip()
        values["wait"] = parse_duration(values["wait"])
        values["focus_email"] = (values["focus_email"] or "").strip() or None
        values["notify_emails"] = tuple(values["notify_emails"])
        values["exclude_lifecycle_stages"] = tuple(s.strip() for s in values["exclude_lifecycle_stages"] if s.strip())
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def name(self, role: str, round_no: int | None = None) -> str:
        return object_name(self.campaign, role, round_no)


def _schema_problems(params: Mapping[str, Any]) -> dict[str, str]:
    """One plain sentence per param the schema refuses (jsonschema's own messages can quote the schema)."""
    import jsonschema  # an Airflow dependency; imported here so parsing the DAG stays cheap

    schema = {"type": "object", "properties": PARAMS_SCHEMA}
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    problems: dict[str, str] = {}
    for error in sorted(validator.iter_errors(dict(params)), key=lambda e: [str(p) for p in e.path]):
        name = str(error.path[0]) if error.path else ""
        if name in PARAMS_SCHEMA:
            problems.setdefault(name, not_allowed(name, params[name]))
        else:
            problems.setdefault(name, f"params: {error.message}")
    return problems


def not_allowed(name: str, value: Any) -> str:
    """``<param>: <value> is not <what it must be>``: the message for any value a param refuses."""
    return f"{name}: {value!r} is not {expected(name)}"


def expected(name: str) -> str:
    """What a param must be, in the words of the trigger form (no regular expressions)."""
    spec = PARAMS_SCHEMA[name]
    rule = _RULES.get(name) or _rule_from_schema(spec)
    nullable = isinstance(spec["type"], list) and "null" in spec["type"]
    return f"{rule}, or empty" if nullable else rule


def _rule_from_schema(spec: Mapping[str, Any]) -> str:
    types = [t for t in (spec["type"] if isinstance(spec["type"], list) else [spec["type"]]) if t != "null"]
    if "enum" in spec:
        return "one of the allowed values " + _or_list([repr(v) for v in spec["enum"]])
    if types == ["boolean"]:
        return "true or false"
    if types == ["array"]:
        return "a list of texts of at least 1 character"
    if types[0] in ("integer", "number"):
        kind = "a whole number" if types[0] == "integer" else "a number"
        return f"{kind} from {spec['minimum']} to {spec['maximum']}"
    low, high = spec.get("minLength", 0), spec.get("maxLength")
    if high:
        return f"text of {low} to {high} characters" if low else f"text of at most {high} characters"
    return "text of at least 1 character" if low else "text"


def _or_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _is_email_id(value: str | None) -> bool:
    return not value or bool(_DIGITS.match(value))


#: Rules the schema does not state in words; every other param's rule is read from its schema.
_RULES = {
    "wait": "a duration like P7D (7 days) or PT12H (12 hours)",
    "reply_to": "an email address like marketing@example.com",
    "template_email_id": "the numeric id of a marketing email, e.g. 123456789",
    "confirm_url": "an https URL like https://www.example.com/still-subscribed",
    "export_base": "a folder URI like s3://bucket/reengagement or file:///data/reengagement",
    "notify_emails": "a list of email addresses like ops@example.com",
}


def _wait_problem(text: str) -> str | None:
    try:
        parse_duration(text)
    except InvalidParams as err:
        return str(err)
    return None


def _confirm_url_problem(url: str) -> str | None:
    return " ".join(confirm_url_problems(url)) or None


#: Checks after the schema's, for what a JSON schema could only say with a regular expression.
_RULE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "wait": _wait_problem,
    "reply_to": lambda v: None if _EMAIL_ADDRESS.match(v) else not_allowed("reply_to", v),
    "template_email_id": lambda v: None if _is_email_id(v) else not_allowed("template_email_id", v),
    "confirm_url": _confirm_url_problem,
}


def default_campaign(dag_id: str, when: dt.datetime) -> str:
    """``<dag id> <year>-Q<quarter>`` of the run's date: one campaign per quarter by default."""
    return f"{dag_id} {when.year}-Q{(when.month - 1) // 3 + 1}"


def object_name(campaign: str, role: str, round_no: int | None = None) -> str:
    """The deterministic HubSpot name of one of the campaign's objects, e.g. ``c · r1 · recipients``."""
    parts = [campaign] + ([f"r{round_no}"] if round_no is not None else []) + [role]
    return SEPARATOR.join(parts)


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (``P7D``, ``PT2M``, ``P1DT12H``).

    Years and months are refused: their length varies, and a response window should not.
    """
    match = _DURATION.match(text or "") if isinstance(text, str) else None
    if not match:
        hint = " (years and months vary in length: count days, e.g. P30D)" if _YEARS_OR_MONTHS.match(str(text)) else ""
        raise InvalidParams(not_allowed("wait", text) + hint)
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return dt.timedelta(**parts)


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(duration: dt.timedelta | str) -> str:
    """A duration as people write it: ``7 days``, ``12 hours``, ``1 day 6 hours`` (never ``7 days, 0:00:00``).

    Accepts a ``timedelta`` or an ISO 8601 duration such as the ``wait`` param. Parts below a second are dropped.
    """
    delta = parse_duration(duration) if isinstance(duration, str) else duration
    seconds = int(abs(delta.total_seconds()))
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    text = " ".join(parts) or "0 seconds"
    return f"minus {text}" if delta < dt.timedelta(0) and parts else text


def confirm_url_problems(url: str) -> list[str]:
    """Why a confirmation URL cannot be used: it must be https and not a HubSpot preference page."""
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https" or not parts.netloc:
        problems.append(f"confirm_url: {url!r} must be an absolute https URL")
    if _HUBSPOT_PREFERENCE_PAGE.search(parts.path + "?" + parts.query):
        problems.append(
            f"confirm_url: {url!r} looks like a subscription-preferences or unsubscribe page; clicks there "
            "are not tracked as confirmations. Link to a plain thank-you page."
        )
    return problems


def confirm_url_for(base: str, campaign: str, round_no: int) -> str:
    """The CTA link of one round: the thank-you page with the campaign and round in its query string."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("pp", "pp_round")]
    query += [("pp", campaign), ("pp_round", str(round_no))]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def is_cta_click(url: str | None, cta_urls: set[str]) -> bool:
    """Whether a click event's URL is one of the campaign's CTA links.

    HubSpot's click tracking adds its own parameters (``utm_*``, ``_hsenc``, ``_hsmi``, ``__hs*``) to the link's
    query, in any order, so a click matches a CTA by scheme, host and path and by every query parameter of the
    CTA itself (the campaign and round among them); tracking and other added parameters are ignored.
    Unsubscribe and preference-page links never count.
    """
    if not url:
        return False
    parts = urlsplit(url.strip())
    clicked_query = _own_query(parts.query)
    own = "&".join(f"{name}={value}" for name, values in clicked_query.items() for value in values)
    if _HUBSPOT_PREFERENCE_PAGE.search(parts.path + "?" + own):
        return False
    clicked = _link_key(parts)
    for cta in cta_urls:
        cta_parts = urlsplit(cta.strip())
        if _link_key(cta_parts) != clicked:
            continue
        wanted = _own_query(cta_parts.query)
        if all(clicked_query.get(name) == values for name, values in wanted.items()):
            return True
    return False


def is_tracking_parameter(name: str) -> bool:
    """A query parameter HubSpot's click tracking or analytics adds to a link (never the link's own)."""
    lowered = name.lower()
    return lowered.startswith(("utm_", "_hs", "__hs"))


def _link_key(parts: SplitResult) -> tuple[str, str, str]:
    host = (parts.hostname or "").lower()
    default_port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    return parts.scheme.lower(), netloc, parts.path.rstrip("/")


def _own_query(query: str) -> dict[str, list[str]]:
    own: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if not is_tracking_parameter(name):
            own.setdefault(name, []).append(value)
    return {name: sorted(values) for name, values in own.items()}


@dataclass(frozen=True)
class GuardFigures:
    """What is known just before the opt-out."""

    sent: int
    delivered: int
    click_stat: int  # unique clickers HubSpot's email statistics count, all rounds
    cta_clickers: int  # contacts whose CTA click was found in the events, all rounds
    to_opt_out: int  # rows of the exported unconfirmed list
    max_fraction: float


#: Below this many deliveries, "nobody clicked" is plausible and says nothing about tracking.
MIN_DELIVERED_FOR_CLICK_CHECK = 50


def guard_problems(g: GuardFigures) -> list[str]:
    """Reasons not to opt anybody out. An empty list means the opt-out may go ahead."""
    problems = []
    if g.delivered >= MIN_DELIVERED_FOR_CLICK_CHECK and g.click_stat == 0 and g.cta_clickers == 0:
        problems.append(
            f"No clicks were tracked at all although {g.delivered} emails were delivered: click tracking is "
            "probably broken (e.g. the CTA points at a preferences page or tracking is off)."
        )
    if g.cta_clickers > g.click_stat:
        problems.append(
            f"List 1 disagrees with HubSpot's click statistics: {g.cta_clickers} contacts clicked the CTA "
            f"according to the events, but the emails' statistics count only {g.click_stat} clickers."
        )
    elif g.click_stat >= MIN_DELIVERED_FOR_CLICK_CHECK // 5 and g.cta_clickers == 0:
        problems.append(
            f"HubSpot counted {g.click_stat} clickers but none clicked the CTA link: the link in the email "
            "probably does not match the confirmation URL, so list 1 would be empty."
        )
    if g.sent and g.to_opt_out / g.sent > g.max_fraction:
        problems.append(
            f"{g.to_opt_out} of {g.sent} contacts sent ({g.to_opt_out / g.sent:.1%}) would be opted out, more "
            f"than max_opt_out_fraction={g.max_fraction:.0%}."
        )
    if g.to_opt_out > g.sent:
        problems.append(f"The opt-out list has {g.to_opt_out} contacts but only {g.sent} were sent the email.")
    return problems


def estimated_calls(contacts: int, rounds: int) -> int:
    """An upper bound of the API calls one campaign makes on a portal of ``contacts`` contacts.

    Lists, emails, exports and polling are a few dozen calls per round whatever the size; what grows
    with the cohort is the opt-out (100 contacts per call), reading list 1's members (250 per page) and
    the click events (1000 per page) with their id look-ups (100 per call). The bound assumes everybody
    could be unengaged and clicks at most once.
    """
    per_round_fixed = 40
    grows = -(-contacts // 100) + rounds * (-(-contacts // 250) + -(-contacts // 1000) + -(-contacts // 100))
    return 50 + rounds * per_round_fixed + grows


def another_round(round_no: int, rounds: int, unconfirmed: int) -> bool:
    """Step 7: mail the still-unconfirmed again only if more rounds were asked for and anyone is left."""
    return round_no < rounds and unconfirmed > 0


def last_done(results: Sequence[Mapping[str, Any] | None]) -> Mapping[str, Any]:
    """The result of the last round that ran (later rounds may have been skipped)."""
    done = [r for r in results if r]
    if not done:
        raise ValueError("no round has finished")
    return done[-1]
