"""Settings of one sandbox portal: who may call it, how fast, and how HubSpot-like its timing is."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

TIERS = ("starter", "professional", "enterprise")

#: HubSpot's published limits per tier: (requests per 10 s per app, requests per day per account).
TIER_LIMITS = {
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
}

#: Scopes that HubSpot only lets an app hold on a Marketing Hub Enterprise portal.
ENTERPRISE_ONLY_SCOPES = frozenset(
    {
        "communication_preferences.statuses.batch.read",
        "communication_preferences.statuses.batch.write",
        "marketing-email",
    }
)

#: Everything a private app for this project would be granted.
ALL_SCOPES = frozenset(
    {
        "oauth",
        "crm.lists.read",
        "crm.lists.write",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.export",
        "crm.import",
        "content",
        "marketing.email.read",
        "marketing.email.write",
        "forms",
        "communication_preferences.read",
        "communication_preferences.write",
        "communication_preferences.read_write",
    }
    | ENTERPRISE_ONLY_SCOPES
)

DEFAULT_TOKEN = "pat-sandbox-0000"  # noqa: S105 - the sandbox's well-known local token, not a secret
#: The sandbox's well-known local Service Key (HubSpot's newer credential, sent as a bearer token too).
DEFAULT_SERVICE_KEY = "svc-sandbox-0000"

#: The kinds of credential HubSpot accepts as ``Authorization: Bearer``.
PRIVATE_APP = "private_app"
SERVICE_KEY = "service_key"
#: ``--token service-key:KEY[=SCOPES]`` names a Service Key; a bare ``--token`` names a private app token.
SERVICE_KEY_PREFIX = "service-key:"


@dataclass(frozen=True)
class TokenGrant:
    """A bearer credential the sandbox accepts: a private app token or a Service Key, with its scopes."""

    token: str
    scopes: frozenset[str] = ALL_SCOPES
    kind: str = PRIVATE_APP

    @property
    def is_service_key(self) -> bool:
        return self.kind == SERVICE_KEY

    @classmethod
    def parse(cls, text: str) -> TokenGrant:
        """Parse ``[service-key:]TOKEN`` (all scopes) or ``[service-key:]TOKEN=scope1,scope2``.

        The well-known :data:`DEFAULT_SERVICE_KEY` is a Service Key without the prefix too.
        """
        kind = SERVICE_KEY if text.startswith(SERVICE_KEY_PREFIX) else PRIVATE_APP
        token, _, scopes = text.removeprefix(SERVICE_KEY_PREFIX).partition("=")
        if not token:
            raise ValueError(f"empty token in {text!r}")
        if token == DEFAULT_SERVICE_KEY:
            kind = SERVICE_KEY
        if not scopes:
            return cls(token, kind=kind)
        return cls(token, frozenset(s.strip() for s in scopes.split(",") if s.strip()), kind=kind)


#: Accepted when no token is named: the local private app token and the local Service Key, all scopes.
DEFAULT_GRANTS = (TokenGrant(DEFAULT_TOKEN), TokenGrant(DEFAULT_SERVICE_KEY, kind=SERVICE_KEY))


@dataclass(frozen=True)
class RateLimit:
    """Requests allowed per rolling window and per day, as HubSpot enforces them per app."""

    per_interval: int
    interval_ms: int = 10_000
    daily: int = 1_000_000

    _PART = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*(s|sec|seconds?|day|d)\s*$")

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse e.g. ``190/10s``, ``190/10s,1000000/day`` or ``100/10s, 5000/day``."""
        per_interval, interval_ms, daily = None, 10_000, 1_000_000
        for part in text.split(","):
            match = cls._PART.match(part)
            if not match:
                raise ValueError(f"bad rate limit {part.strip()!r}: use e.g. 190/10s,1000000/day")
            count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
            if unit in ("day", "d"):
                daily = count
            else:
                per_interval, interval_ms = count, amount * 1000
        if per_interval is None:
            raise ValueError(f"rate limit {text!r} has no per-interval part (e.g. 190/10s)")
        return cls(per_interval, interval_ms, daily)

    def header_value(self) -> str:
        return f"{self.per_interval}/{self.interval_ms // 1000}s,{self.daily}/day"


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox portal. Defaults give a small Enterprise portal."""

    host: str = "127.0.0.1"
    port: int = 8099
    db_path: str = "hubspot_sandbox.db"
    tier: str = "enterprise"
    tokens: tuple[TokenGrant, ...] = DEFAULT_GRANTS
    rate_limit: RateLimit | None = None
    portal_id: int = 46_801_234
    ui_domain: str = "app.hubspot.com"
    time_zone: str = "US/Eastern"
    #: How long a new list stays PROCESSING before its members can be read.
    list_processing_seconds: float = 2.0
    #: How long an export stays PROCESSING before its CSV can be downloaded.
    export_processing_seconds: float = 2.0
    #: A DYNAMIC list shows a change of the data it depends on only this long after a read found it behind
    #: (HubSpot recomputes such lists in the background); 0 re-evaluates at once.
    list_lag_seconds: float = 5.0
    #: A download URL handed out by an export's status works this long (HubSpot: five minutes).
    export_url_seconds: float = 300.0
    #: A CSV export larger than this many bytes comes as a zip holding the CSV (HubSpot: 2 MB).
    export_zip_bytes: int = 2 * 1024 * 1024
    #: Rows per CSV file; a larger export comes as a zip of several files (HubSpot: 1,000,000).
    export_rows_per_file: int = 1_000_000
    #: Exports a portal may start in any rolling 24 hours (HubSpot: 30).
    exports_per_day: int = 30
    #: CTA clicks carry HubSpot's click-tracking parameters (utm_*, _hsenc, _hsmi) around the link's own.
    click_tracking_parameters: bool = True
    #: Publishing skips contacts HubSpot never mails: not marketing contacts, double opt-in pending,
    #: hard-bounced, quarantined (the unsubscribed are always skipped).
    skip_unmailable: bool = True
    #: A click on an email's unsubscribe link unsubscribes the contact from all email.
    unsubscribe_links: bool = True
    #: Opens and clicks of a send are spread over this many seconds after it.
    response_window_seconds: float = 600.0
    #: Every HubSpot answer is held this long before it is sent (a real portal answers in ~100-300 ms).
    response_latency_seconds: float = 0.0
    seed_contacts: int = 0
    seed: int = 0
    #: Append every HubSpot request and response to this JSONL file (contract tests read it).
    record_path: str | None = None
    #: Append one short line per HubSpot request (time, endpoint, status, User-Agent): who called what, when.
    call_log_path: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {self.tier!r}")
        if not self.tokens:
            raise ValueError("at least one token is needed")
        if self.response_latency_seconds < 0:
            raise ValueError(f"the response latency cannot be negative, not {self.response_latency_seconds}")

    @property
    def limits(self) -> RateLimit:
        if self.rate_limit is not None:
            return self.rate_limit
        per_interval, daily = TIER_LIMITS[self.tier]
        return RateLimit(per_interval, 10_000, daily)

    def scopes_for(self, grant: TokenGrant) -> frozenset[str]:
        """The scopes a token really has: Enterprise-only scopes vanish on lower tiers."""
        if self.tier == "enterprise":
            return grant.scopes
        return grant.scopes - ENTERPRISE_ONLY_SCOPES

    def replace(self, **changes: object) -> SandboxConfig:
        return dataclasses.replace(self, **changes)
