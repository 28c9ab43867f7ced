"""Seeded portals: contacts drawn from named behaviour profiles, so every outcome is known in advance.

Each profile says how a contact looks before the campaign (engaged or not, unsubscribed, new, ...)
and how it answers each permission-pass email it receives. :func:`expected_outcome` turns that
into the ground truth the end-to-end tests compare HubSpot's final state with.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .business_units import marketing_subscription_id, units_of
from .properties import CONFIRMATION_PENDING

if TYPE_CHECKING:
    from .portal import Portal

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

#: The subscription type a permission pass is sent under by default.
MARKETING_SUBSCRIPTION_ID = 33583163


@dataclass(frozen=True)
class Profile:
    """How a seeded contact looks before the campaign and how it answers each email it receives."""

    name: str
    description: str
    weight: float
    #: Expected in the step-2 list (no open/click for 52 weeks, old enough, mailable).
    unengaged: bool
    #: On receiving their n-th email: "open", "confirm" (click the CTA), "unsubscribe_link",
    #: "bot_click" (a filtered click on the CTA), "bounce" or "ignore".
    answers: tuple[str, ...] = ("ignore",)

    def answer(self, nth_email: int) -> str:
        index = min(nth_email, len(self.answers)) - 1
        return self.answers[index]

    def confirms_by(self, rounds: int) -> bool:
        return "confirm" in self.answers[:rounds]


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("engaged", "opened a marketing email in the last months", 0.37, False, ("open",)),
        Profile("confirm_r1", "unengaged; clicks the CTA of the 1st email", 0.10, True, ("confirm",)),
        Profile(
            "confirm_r2", "unengaged; opens the 1st email, clicks the CTA of the 2nd", 0.05, True, ("open", "confirm")
        ),
        Profile("confirm_r3", "unengaged; clicks the CTA of the 3rd email", 0.04, True, ("ignore", "open", "confirm")),
        Profile("never_confirm", "unengaged; sometimes opens, never clicks", 0.18, True, ("open", "ignore", "open")),
        Profile("unsubscribe_click", "unengaged; clicks only the unsubscribe link", 0.02, True, ("unsubscribe_link",)),
        Profile("bot_click", "unengaged; only a security scanner clicks (bot-filtered)", 0.02, True, ("bot_click",)),
        Profile("bounce", "unengaged; the address bounces", 0.02, True, ("bounce",)),
        Profile("already_unsubscribed", "unsubscribed from all email before the campaign", 0.04, False),
        Profile("subscription_optout", "opted out of the marketing subscription type only", 0.02, False),
        Profile("recently_created", "created weeks ago, never opened: too new to judge", 0.04, False),
        Profile("no_email", "a contact without an email address", 0.02, False),
        # Dormant-looking contacts HubSpot never sends marketing email to (see SEND_BLOCKERS).
        Profile("non_marketing", "dormant, but not a marketing contact", 0.02, False),
        Profile("doi_pending", "dormant, double opt-in still pending", 0.02, False),
        Profile("hard_bounced", "dormant, the address hard-bounced before the campaign", 0.01, False),
        Profile("quarantined", "dormant, the address is quarantined", 0.01, False),
        # Mailable, but confirmed through double opt-in: the permission pass does not ask them again.
        Profile("doi_confirmed", "dormant, confirmed through double opt-in", 0.02, False),
    )
}

#: Profiles HubSpot skips at send time, whatever lists they are in.
SEND_BLOCKERS = ("non_marketing", "doi_pending", "hard_bounced", "quarantined")
#: Profiles that unsubscribe themselves through the email's unsubscribe link.
SELF_UNSUBSCRIBERS = ("unsubscribe_click",)

FIRST_NAMES = ("Ada", "Bo", "Cy", "Di", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo", "Ned")
LAST_NAMES = ("Smith", "Jones", "Khan", "Lee", "Garcia", "Novak", "Okafor", "Rossi", "Tanaka", "Weber")
STAGES = ("subscriber", "lead", "marketingqualifiedlead", "customer")

SUBSCRIPTION_TYPES = (
    (MARKETING_SUBSCRIPTION_ID, "Marketing Information", "Marketing offers and updates.", "Marketing", 1, 1),
    (33583164, "Product Updates", "News about the product.", "Marketing", 1, 0),
    (33583165, "Customer Service Communication", "Feedback and support.", "Customer Service", 1, 0),
    (33583166, "Legacy Newsletter", "The old monthly newsletter.", "Marketing", 0, 0),
)


#: Seeded signal roles (``contacts.signal_role``), each given to about :data:`ROLE_SHARE` of the unengaged.
#: ``few_deliveries``: 1..9 marketing emails delivered; ``recent_visit`` / ``recent_form``: a website session /
#: form submission 1..20 weeks before now. Unengaged contacts without the role: 10..80 deliveries, and no
#: session / submission, or one more than 60 weeks before now.
SIGNAL_ROLES = ("few_deliveries", "recent_visit", "recent_form")
ROLE_SHARE = 0.08
#: From this many unengaged contacts on, every role occurs at least once.
EVERY_ROLE_FROM = 40

#: The seeded marketing email the "received it and did not open it" signal is tried with, and a draft.
FOCUS_EMAIL_NAME = "Spring newsletter 2026"
DRAFT_EMAIL_NAME = "Autumn newsletter draft"
FOCUS_PUBLISHED_WEEKS = 30
#: How long after its send the focus email's recipients opened it (SENT within the first 1 %).
FOCUS_WINDOW_MS = 3 * DAY_MS
#: Share of the sendable contacts the focus email went to.
FOCUS_SHARE = 0.6
#: The focus email is where the ``hard_bounced`` profile's addresses bounced (a BOUNCE is a hard bounce, after
#: which HubSpot never mails the address again): those among its recipients bounce, about 2-3 % of them at the
#: default weights. No other recipient bounces, so every other profile stays as mailable as it was.
FOCUS_BOUNCERS = ("hard_bounced",)
#: Share of the unengaged recipients whose copy was "opened" by a machine (bot / Mail Privacy Protection).
MACHINE_OPEN_SHARE = 0.15


@dataclass(frozen=True)
class _Signals:
    """What the second random stream seeds for one contact (the profiles' own draws are left alone)."""

    role: str | None
    delivered_before: int
    last_visit: int | None
    last_form: int | None
    #: The focus email: None (not a recipient), "DELIVERED" or "BOUNCE".
    focus: str | None = None
    #: Its open: None, "open" (a real one) or "machine" (filtered).
    focus_open: str | None = None


def _draw_roles(rng: random.Random, drawn: list[str]) -> list[str | None]:
    """A role for about ROLE_SHARE each of the unengaged contacts; every role once from EVERY_ROLE_FROM on."""
    roles: list[str | None] = []
    for name in drawn:
        role = None
        if PROFILES[name].unengaged:
            index = int(rng.random() / ROLE_SHARE)
            role = SIGNAL_ROLES[index] if index < len(SIGNAL_ROLES) else None
        roles.append(role)
    unengaged = [i for i, name in enumerate(drawn) if PROFILES[name].unengaged]
    if len(unengaged) >= EVERY_ROLE_FROM:
        for role in SIGNAL_ROLES:
            if role not in roles:
                roles[rng.choice([i for i in unengaged if roles[i] is None])] = role
    return roles


#: Profiles the focus email was not sent to: no address, not mailable, unsubscribed, or not a contact yet (the
#: ``hard_bounced`` were still mailable then: their address bounced on this email).
_NOT_FOCUS_RECIPIENTS = frozenset(
    {*SEND_BLOCKERS, "no_email", "already_unsubscribed", "subscription_optout", "recently_created"}
    - set(FOCUS_BOUNCERS)
)


def _between(rng: random.Random, low: int, high: int) -> int:
    """A whole number in ``low..high`` (one draw; cheaper than ``randint`` over millions of contacts)."""
    return low + int(rng.random() * (high - low + 1))


def _draw_signals(rng: random.Random, name: str, role: str | None, created: int, now_ms: int) -> _Signals:
    profile = PROFILES[name]

    def recent() -> int:
        return now_ms - _between(rng, 1 * WEEK_MS, 20 * WEEK_MS)

    def stale() -> int | None:
        latest = now_ms - 61 * WEEK_MS
        if rng.random() < 0.5 or latest <= created:
            return None
        return _between(rng, created, latest)

    def any_time(share: float) -> int | None:
        return max(created, now_ms - _between(rng, 1, 300) * DAY_MS) if rng.random() < share else stale()

    if profile.unengaged:
        delivered = _between(rng, 1, 9) if role == "few_deliveries" else _between(rng, 10, 80)
        last_visit = recent() if role == "recent_visit" else stale()
        last_form = recent() if role == "recent_form" else stale()
    else:
        delivered = _between(rng, 5, 80)
        last_visit, last_form = any_time(0.5), any_time(0.2)
    focus = focus_open = None
    if name not in _NOT_FOCUS_RECIPIENTS and rng.random() < FOCUS_SHARE:
        bounced = name in FOCUS_BOUNCERS
        focus = "BOUNCE" if bounced else "DELIVERED"
        if not bounced and name == "engaged":
            focus_open = "open"
        elif not bounced and profile.unengaged and rng.random() < MACHINE_OPEN_SHARE:
            focus_open = "machine"
    return _Signals(role, delivered, last_visit, last_form, focus, focus_open)


def _contact_row(rng: random.Random, contact_id: int, profile: Profile, now_ms: int) -> tuple[Any, ...]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = None if profile.name == "no_email" else f"{first}.{last}.{contact_id}@example.com".lower()
    created = now_ms - rng.randint(60, 1500) * WEEK_MS // 10 - 60 * WEEK_MS
    last_open = last_click = None
    if profile.name == "engaged":
        last_open = now_ms - rng.randint(1, 300) * DAY_MS
        if rng.random() < 0.3:
            last_click = last_open + rng.randint(1, 600) * 1000
    elif profile.name == "recently_created":
        created = now_ms - rng.randint(1, 20) * WEEK_MS
    elif rng.random() < 0.5:
        # Dormant: opened once, more than a year (and a margin) before now.
        last_open = created + rng.randint(1, 4) * WEEK_MS
        last_open = min(last_open, now_ms - 60 * WEEK_MS)
    optout = 1 if profile.name == "already_unsubscribed" else 0
    stage = rng.choice(STAGES)
    return (
        contact_id,
        email,
        first,
        last,
        stage,
        created,
        created,
        last_open,
        last_click,
        optout,
        profile.name,
        *_sendability(profile.name, contact_id),
    )


def _sendability(profile: str, contact_id: int) -> tuple[Any, ...]:
    """(bounced, marketable, confirmation, hard_bounce_reason, quarantined, quarantined_reason) of a profile."""
    if profile == "non_marketing":
        return (0, 0, None, None, 0, None)
    if profile == "doi_pending":
        return (0, 1, CONFIRMATION_PENDING[contact_id % 2], None, 0, None)
    if profile == "doi_confirmed":
        return (0, 1, ("Confirmed", "User clicked confirmation")[contact_id % 2], None, 0, None)
    if profile == "hard_bounced":
        # Bounced on a send before the sandbox's history: hs_email_bounce stays 0 unless that send was the
        # seeded focus email (see _FocusEmail), whose BOUNCE events count in hs_email_bounce.
        return (0, 1, None, ("UNKNOWN_USER", "MAILBOX_FULL")[contact_id % 2], 0, None)
    if profile == "quarantined":
        return (0, 1, None, None, 1, "UNDELIVERABLE_ADDRESS")
    return (0, 1, None, None, 0, None)


def _draw_profiles(rng: random.Random, n: int, weights: Mapping[str, float]) -> list[str]:
    """Every profile at least once (when n allows), the rest drawn by weight."""
    names = [name for name, w in weights.items() if w > 0]
    head = names[:n]
    tail = rng.choices(names, weights=[weights[name] for name in names], k=max(0, n - len(head)))
    drawn = head + tail
    rng.shuffle(drawn)
    return drawn


def seed_portal(
    portal: Portal,
    *,
    contacts: int,
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
    reset: bool = True,
    business_units: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Fill the portal with ``contacts`` profiled contacts, subscription types and forms; with any contacts, also
    their signal roles and values and the focus email's history (see :class:`_FocusEmail`). The profiles'
    draws come from ``random.Random(seed)`` alone, so adding signals never changes who is in which profile.

    ``business_units`` (id -> name, ids above 0) adds business units, each with its own copy of the default
    unit's subscription types (:func:`~.business_units.marketing_subscription_id`). A profile's opt-outs hold
    in every unit, so each unit's ground truth is the same set of contacts (:func:`expected_outcome`)."""
    started = time.perf_counter()
    weights = dict(weights) if weights else {name: p.weight for name, p in PROFILES.items()}
    unknown = sorted(set(weights) - set(PROFILES))
    if unknown:
        raise ValueError(f"unknown profiles {unknown}; known: {sorted(PROFILES)}")
    if reset:
        portal.reset()
    rng = random.Random(seed)
    # A second stream for what came later (signals, the focus email), so the profiles' draws never change.
    signal_rng = random.Random(seed + 1)
    now_ms = portal.now_ms()
    db = portal.db
    emails: dict[str, Any] = {}
    units = dict(business_units or {})
    with db.tx():
        _seed_settings(portal, now_ms)
        _seed_units(portal, units, now_ms)
        first_id = int(db.scalar("SELECT COALESCE(MAX(id), 100) FROM contacts")) + 1
        drawn = _draw_profiles(rng, contacts, weights)
        roles = _draw_roles(signal_rng, drawn)
        focus = _FocusEmail.create(portal, now_ms, seed) if contacts else None
        batch: list[tuple[Any, ...]] = []
        sub_optouts: list[tuple[Any, ...]] = []
        unit_optouts: list[tuple[Any, ...]] = []
        for offset, name in enumerate(drawn):
            row = _contact_row(rng, first_id + offset, PROFILES[name], now_ms)
            signals = _draw_signals(signal_rng, name, roles[offset], row[5], now_ms)
            if focus is not None and signals.focus:
                row = focus.file(row, signals)
            # A bounced focus send is subtracted through ``bounced``, so it counts among the earlier sends too.
            delivered_before = signals.delivered_before + (signals.focus == "BOUNCE")
            batch.append((*row, delivered_before, signals.last_visit, signals.last_form, signals.role))
            if name == "subscription_optout":
                sub_optouts.extend(
                    (
                        row[0],
                        marketing_subscription_id(MARKETING_SUBSCRIPTION_ID, unit),
                        "UNSUBSCRIBED",
                        "LEGITIMATE_INTEREST_OTHER",
                        "Unsubscribed by the contact",
                        "SUBSCRIPTION_STATUS",
                        row[5],
                    )
                    for unit in (0, *units)
                )
            if name == "already_unsubscribed":
                unit_optouts.extend((row[0], unit, row[5]) for unit in units)
            if len(batch) >= 50_000:
                _insert_contacts(portal, batch)
                batch.clear()
                if focus is not None:
                    focus.flush()
        _insert_contacts(portal, batch)
        if focus is not None:
            focus.flush()
            emails = focus.describe()
            db.set_meta("seeded_emails", emails)
        db.conn.executemany(
            "INSERT INTO subscription_status (contact_id, subscription_id, status, legal_basis, "
            "legal_basis_explanation, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            sub_optouts,
        )
        db.conn.executemany(
            "INSERT INTO unit_optouts (contact_id, business_unit_id, updated_at) VALUES (?, ?, ?)", unit_optouts
        )
        db.set_meta("seed", {"contacts": contacts, "seed": seed, "weights": weights})
    portal.touch()
    counts = Counter(drawn)
    return {
        "contacts": contacts,
        "seed": seed,
        "profiles": dict(sorted(counts.items())),
        "signalRoles": dict(sorted(Counter(role for role in roles if role).items())),
        **({"businessUnits": {str(unit): name for unit, name in units.items()}} if units else {}),
        **emails,
        "seconds": round(time.perf_counter() - started, 3),
    }


def seeded_emails(portal: Portal) -> dict[str, Any]:
    """``{"focus_email": {"id", "name"}, "draft_email": {...}}`` of the last seed, or ``{}`` when none was made."""
    return dict(portal.db.get_meta("seeded_emails", {}))


class _FocusEmail:
    """The seeded "Spring newsletter 2026" (published :data:`FOCUS_PUBLISHED_WEEKS` before now, to about
    :data:`FOCUS_SHARE` of the sendable contacts) and the never-sent draft beside it.

    Its events are in the past and already applied (``applied = 1``): they are history, not a send in flight.
    Its sends are seeded history, not the sandbox's own (``contacts.sends`` counts those, and numbers a
    contact's rounds): a delivery is counted in ``delivered_before``; a bounce in ``bounced`` (hs_email_bounce)
    and, since ``bounced`` is subtracted, in ``delivered_before`` too, so ``hs_email_delivered`` counts
    deliveries only. The contact's hard bounce reason is already seeded.
    """

    def __init__(self, portal: Portal, row: Any, draft: Any, published: int, seed: int) -> None:
        from .sending import timeline

        self.portal = portal
        self.seed = seed
        self.timeline = timeline
        self.row = row
        self.draft = draft
        self.published = published
        self.events: list[tuple[Any, ...]] = []
        self.sends: list[tuple[int, int, int]] = []

    @classmethod
    def create(cls, portal: Portal, now_ms: int, seed: int) -> _FocusEmail:
        """Both emails; the published one's send parameters are stored as a send's are, so each event's
        ``sentBy`` names its SENT event (times from :func:`sending.timeline`)."""
        from .routes.emails import seed_email

        published = now_ms - FOCUS_PUBLISHED_WEEKS * WEEK_MS
        body = {
            "subject": "Spring news from Example Co",
            "from": {"fromName": "Example Co", "replyTo": "news@example.com"},
            "subscriptionDetails": {"subscriptionId": str(MARKETING_SUBSCRIPTION_ID)},
            "content": {"widgets": {"body": {"body": {"html": "<p>Our spring news.</p>"}}}},
        }
        row = seed_email(portal, FOCUS_EMAIL_NAME, body, created=published - WEEK_MS, published=published)
        draft_body = {**body, "subject": "Autumn news from Example Co"}
        draft = seed_email(portal, DRAFT_EMAIL_NAME, draft_body, created=now_ms - 2 * WEEK_MS)
        portal.db.set_meta(f"send:{row['id']}", {"start": published, "window": FOCUS_WINDOW_MS, "seed": seed})
        return cls(portal, row, draft, published, seed)

    def file(self, row: tuple[Any, ...], signals: _Signals) -> tuple[Any, ...]:
        """Record the focus email's events for this contact row; returns the row as the email leaves it."""
        contact_id, address = row[0], row[1]
        sent, delivered, opened, _ = self.timeline(
            self.seed, int(self.row["id"]), contact_id, self.published, FOCUS_WINDOW_MS
        )
        self.sends.append((int(self.row["id"]), contact_id, 0))
        self._event(contact_id, address, "SENT", sent)
        self._event(contact_id, address, str(signals.focus), delivered)
        if signals.focus == "BOUNCE":
            # bounced and hard_bounce_reason (positions: see _contact_row and _sendability).
            return (*row[:11], row[11] + 1, *row[12:14], row[14] or "UNKNOWN_USER", *row[15:])
        if signals.focus_open:
            self._event(contact_id, address, "OPEN", opened, filtered=signals.focus_open == "machine")
            last_open = row[7]
            if signals.focus_open == "open" and (last_open is None or last_open < opened):
                row = (*row[:7], opened, *row[8:])
        return row

    def _event(self, contact_id: int, address: str, kind: str, at: int, *, filtered: bool = False) -> None:
        self.events.append(
            (int(self.row["campaign_id"]), int(self.row["id"]), contact_id, address, kind, at, int(filtered))
        )

    def flush(self) -> None:
        """Write the events and sends filed so far (after their contacts)."""
        self.events.sort(key=lambda event: event[5])
        self.portal.db.conn.executemany(
            "INSERT INTO events (campaign_id, email_id, contact_id, recipient, type, created, url, filtered, applied) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 1)",
            self.events,
        )
        self.portal.db.conn.executemany("INSERT INTO sends (email_id, contact_id, round) VALUES (?, ?, ?)", self.sends)
        self.events.clear()
        self.sends.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "focus_email": {"id": str(self.row["id"]), "name": self.row["name"]},
            "draft_email": {"id": str(self.draft["id"]), "name": self.draft["name"]},
        }


def _insert_contacts(portal: Portal, rows: list[tuple[Any, ...]]) -> None:
    portal.db.conn.executemany(
        "INSERT INTO contacts (id, email, firstname, lastname, lifecyclestage, createdate, lastmodifieddate, "
        "last_open, last_click, optout, profile, bounced, marketable, confirmation, hard_bounce_reason, quarantined, "
        "quarantined_reason, delivered_before, last_visit, last_form, signal_role) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _seed_settings(portal: Portal, now_ms: int) -> None:
    db = portal.db
    created = now_ms - 200 * WEEK_MS
    for sub_id, name, description, purpose, active, default in SUBSCRIPTION_TYPES:
        db.execute(
            "INSERT OR IGNORE INTO subscription_types (id, name, description, purpose, communication_method, "
            "is_active, is_default, is_internal, created_at, updated_at) VALUES (?, ?, ?, ?, 'Email', ?, ?, 0, ?, ?)",
            (sub_id, name, description, purpose, active, default, created, created),
        )
    for form_id, form in _forms().items():
        db.execute(
            "INSERT OR IGNORE INTO forms (id, created_at, data) VALUES (?, ?, ?)",
            (form_id, created, json.dumps(form)),
        )


def _seed_units(portal: Portal, units: Mapping[int, str], now_ms: int) -> None:
    """The business units, each with its own copy of the default unit's subscription types, named after it."""
    created = now_ms - 200 * WEEK_MS
    for unit, unit_name in units.items():
        portal.db.execute("INSERT OR REPLACE INTO business_units (id, name) VALUES (?, ?)", (unit, unit_name))
        for sub_id, name, description, purpose, active, default in SUBSCRIPTION_TYPES:
            portal.db.execute(
                "INSERT OR IGNORE INTO subscription_types (id, name, description, purpose, communication_method, "
                "is_active, is_default, is_internal, created_at, updated_at, business_unit_id) "
                "VALUES (?, ?, ?, ?, 'Email', ?, ?, 0, ?, ?, ?)",
                (
                    marketing_subscription_id(sub_id, unit),
                    f"{unit_name} {name}",
                    description,
                    purpose,
                    active,
                    default,
                    created,
                    created,
                    unit,
                ),
            )


def _forms() -> dict[str, dict[str, Any]]:
    """One form per consent variant HubSpot has; two of them do not cover marketing email."""
    privacy = "We take your privacy seriously. See our privacy policy."
    checkbox = {
        "subscriptionTypeId": MARKETING_SUBSCRIPTION_ID,
        "label": "I agree to receive marketing email.",
        "required": False,
    }
    product_only = {"subscriptionTypeId": 33583164, "label": "Send me product updates.", "required": False}
    return {
        "6b0e8f44-0000-4000-8000-000000000001": {
            "name": "Newsletter sign-up (explicit consent)",
            "legalConsentOptions": {
                "type": "explicit_consent_to_process",
                "communicationConsentText": "We would like to send you marketing email.",
                "communicationsCheckboxes": [checkbox],
                "consentToProcessCheckboxLabel": "I agree to allow Example Co to store my data.",
                "consentToProcessText": "To provide the content requested, we need to store your data.",
                "consentToProcessFooterText": "You can unsubscribe at any time.",
                "privacyText": privacy,
            },
        },
        "6b0e8f44-0000-4000-8000-000000000002": {
            "name": "Demo request (legitimate interest)",
            "legalConsentOptions": {
                "type": "legitimate_interest",
                "lawfulBasis": "lead",
                "subscriptionTypeIds": [MARKETING_SUBSCRIPTION_ID],
                "privacyText": privacy,
            },
        },
        "6b0e8f44-0000-4000-8000-000000000003": {
            "name": "Product beta (implicit consent, product updates only)",
            "legalConsentOptions": {
                "type": "implicit_consent_to_process",
                "communicationConsentText": "We would like to send you product updates.",
                "communicationsCheckboxes": [product_only],
                "consentToProcessText": "By submitting you allow us to store your data.",
                "privacyText": privacy,
            },
        },
        "6b0e8f44-0000-4000-8000-000000000004": {
            "name": "Contact us (no consent text)",
            "legalConsentOptions": {"type": "none"},
        },
    }


@dataclass(frozen=True)
class _Narrowing:
    """The signals of :func:`expected_outcome`, each off by default."""

    min_emails_delivered: int = 0
    #: Epoch ms from which a session or form submission is recent; None when recent activity is not spared.
    recent_since: int | None = None
    excluded_stages: frozenset[str] = frozenset()
    #: The contacts the focus email was delivered to and who did not open it; None when there is no focus email.
    focus: frozenset[int] | None = None

    @classmethod
    def of(
        cls,
        portal: Portal,
        focus_email_id: int | None,
        min_emails_delivered: int,
        spare_recent_activity: bool,
        exclude_lifecycle_stages: Collection[str],
        inactivity_weeks: int,
    ) -> _Narrowing:
        """The signals as :func:`expected_outcome` takes them; ValueError for a value no campaign could ask."""
        if min_emails_delivered < 0:
            raise ValueError(f"min_emails_delivered must be at least 0, got {min_emails_delivered}")
        if inactivity_weeks < 1:
            raise ValueError(f"inactivity_weeks must be at least 1, got {inactivity_weeks}")
        return cls(
            min_emails_delivered=min_emails_delivered,
            recent_since=portal.now_ms() - inactivity_weeks * WEEK_MS if spare_recent_activity else None,
            excluded_stages=frozenset(exclude_lifecycle_stages),
            focus=None if focus_email_id is None else _focus_unopened(portal, focus_email_id),
        )

    def removed(
        self, contact_id: int, delivered: int, last_visit: int | None, last_form: int | None, stage: str | None
    ) -> dict[str, bool]:
        """Which signals leave this contact out (each on its own)."""
        since = self.recent_since
        return {
            "min_emails_delivered": delivered < self.min_emails_delivered,
            "spare_recent_activity": since is not None
            and any(at is not None and at >= since for at in (last_visit, last_form)),
            "exclude_lifecycle_stages": stage is not None and stage in self.excluded_stages,
            "focus_email": self.focus is not None and contact_id not in self.focus,
        }


def _focus_unopened(portal: Portal, email_id: int) -> frozenset[int]:
    """Contacts with a DELIVERED event of the email and no OPEN of it that is not filtered (a machine's)."""
    if portal.db.one("SELECT 1 FROM emails WHERE id = ?", (email_id,)) is None:
        raise ValueError(f"focus_email_id {email_id} names no email")
    rows = portal.db.all(
        "SELECT contact_id FROM events WHERE email_id = ? AND type = 'DELIVERED' EXCEPT "
        "SELECT contact_id FROM events WHERE email_id = ? AND type = 'OPEN' AND filtered = 0",
        (email_id, email_id),
    )
    return frozenset(r[0] for r in rows)


#: The signals :func:`expected_outcome` can narrow the cohort by (keys of its ``removed_by``).
SIGNALS = ("min_emails_delivered", "spare_recent_activity", "exclude_lifecycle_stages", "focus_email")


def expected_outcome(
    portal: Portal,
    rounds: int,
    *,
    focus_email_id: int | None = None,
    min_emails_delivered: int = 0,
    spare_recent_activity: bool = False,
    exclude_lifecycle_stages: Collection[str] = (),
    inactivity_weeks: int = 52,
    business_unit: int = 0,
) -> dict[str, Any]:
    """The ground truth of a campaign of ``rounds`` emails run on this seeded portal, in ``business_unit``.

    ``opt_out`` holds only the contacts the campaign itself must opt out: it never holds a contact HubSpot
    skips at send (``not_sendable``), one confirmed through double opt-in (``double_opt_in_confirmed``), or
    one who unsubscribed through the email's own link (``unsubscribed_themselves``).

    The cohort (``unengaged``) is the contacts of unengaged profiles, narrowed by the signals asked for:
    ``min_emails_delivered`` (``hs_email_delivered`` as seeded, i.e. ``delivered_before``, at least that),
    ``spare_recent_activity`` (no session and no form submission within ``inactivity_weeks`` of now),
    ``exclude_lifecycle_stages`` (a stage among them leaves; no stage stays) and ``focus_email_id`` (a DELIVERED
    event of that email and no unfiltered OPEN of it). Contacts a signal removes are ``never_mailed``.
    ``removed_by`` says how many of the unengaged profiles' contacts each signal alone removes (0 when off).
    Everything is read from stored values and events, never through the list-filter engine.

    Seeded profiles hold in every business unit (see :func:`seed_portal`), so each of the portal's units has the
    same outcome, about its own statuses; a unit the portal does not have is a ValueError.
    """
    if business_unit not in units_of(portal):
        raise ValueError(f"business_unit {business_unit} is not one of this portal's business units")
    narrow = _Narrowing.of(
        portal, focus_email_id, min_emails_delivered, spare_recent_activity, exclude_lifecycle_stages, inactivity_weeks
    )
    rows = portal.db.all(
        "SELECT id, profile, delivered_before, last_visit, last_form, lifecyclestage FROM contacts "
        "WHERE profile IS NOT NULL ORDER BY id"
    )
    outcome: dict[str, Any] = {
        "unengaged": [],
        "confirmed": [],
        "opt_out": [],
        "never_mailed": [],
        "unsubscribed_themselves": [],
        "not_sendable": [],
        "double_opt_in_confirmed": [],
    }
    removed_by = dict.fromkeys(SIGNALS, 0)
    for contact_id, name, delivered, last_visit, last_form, stage in rows:
        profile = PROFILES.get(name)
        if profile is None:
            continue
        if name in SEND_BLOCKERS:
            outcome["not_sendable"].append(contact_id)
        elif name == "doi_confirmed":
            outcome["double_opt_in_confirmed"].append(contact_id)
        if not profile.unengaged:
            outcome["never_mailed"].append(contact_id)
            continue
        removed = narrow.removed(contact_id, delivered, last_visit, last_form, stage)
        for signal, hit in removed.items():
            removed_by[signal] += int(hit)
        if any(removed.values()):
            outcome["never_mailed"].append(contact_id)
            continue
        outcome["unengaged"].append(contact_id)
        if name in SELF_UNSUBSCRIBERS:
            key = "unsubscribed_themselves"
        else:
            key = "confirmed" if profile.confirms_by(rounds) else "opt_out"
        outcome[key].append(contact_id)
    outcome["removed_by"] = removed_by
    return outcome
