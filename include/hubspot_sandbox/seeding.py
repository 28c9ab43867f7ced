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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        # Bounced on a send before the sandbox's history starts, so hs_email_bounce stays 0.
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
) -> dict[str, Any]:
    """Fill the portal with ``contacts`` profiled contacts, subscription types and forms."""
    started = time.perf_counter()
    weights = dict(weights) if weights else {name: p.weight for name, p in PROFILES.items()}
    unknown = sorted(set(weights) - set(PROFILES))
    if unknown:
        raise ValueError(f"unknown profiles {unknown}; known: {sorted(PROFILES)}")
    if reset:
        portal.reset()
    rng = random.Random(seed)
    now_ms = portal.now_ms()
    db = portal.db
    with db.tx():
        _seed_settings(portal, now_ms)
        first_id = int(db.scalar("SELECT COALESCE(MAX(id), 100) FROM contacts")) + 1
        drawn = _draw_profiles(rng, contacts, weights)
        batch: list[tuple[Any, ...]] = []
        sub_optouts: list[tuple[Any, ...]] = []
        for offset, name in enumerate(drawn):
            row = _contact_row(rng, first_id + offset, PROFILES[name], now_ms)
            batch.append(row)
            if name == "subscription_optout":
                sub_optouts.append(
                    (
                        row[0],
                        MARKETING_SUBSCRIPTION_ID,
                        "UNSUBSCRIBED",
                        "LEGITIMATE_INTEREST_OTHER",
                        "Unsubscribed by the contact",
                        "SUBSCRIPTION_STATUS",
                        row[5],
                    )
                )
            if len(batch) >= 50_000:
                _insert_contacts(portal, batch)
                batch.clear()
        _insert_contacts(portal, batch)
        db.conn.executemany(
            "INSERT INTO subscription_status (contact_id, subscription_id, status, legal_basis, "
            "legal_basis_explanation, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            sub_optouts,
        )
        db.set_meta("seed", {"contacts": contacts, "seed": seed, "weights": weights})
    portal.touch()
    counts = Counter(drawn)
    return {
        "contacts": contacts,
        "seed": seed,
        "profiles": dict(sorted(counts.items())),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _insert_contacts(portal: Portal, rows: list[tuple[Any, ...]]) -> None:
    portal.db.conn.executemany(
        "INSERT INTO contacts (id, email, firstname, lastname, lifecyclestage, createdate, lastmodifieddate, "
        "last_open, last_click, optout, profile, bounced, marketable, confirmation, hard_bounce_reason, quarantined, "
        "quarantined_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def expected_outcome(portal: Portal, rounds: int) -> dict[str, list[int]]:
    """The ground truth of a campaign of ``rounds`` emails run on this seeded portal.

    ``opt_out`` holds only the contacts the campaign itself must opt out: it never holds a contact HubSpot
    skips at send (``not_sendable``), one confirmed through double opt-in (``double_opt_in_confirmed``), or
    one who unsubscribed through the email's own link (``unsubscribed_themselves``).
    """
    rows = portal.db.all("SELECT id, profile FROM contacts WHERE profile IS NOT NULL ORDER BY id")
    outcome: dict[str, list[int]] = {
        "unengaged": [],
        "confirmed": [],
        "opt_out": [],
        "never_mailed": [],
        "unsubscribed_themselves": [],
        "not_sendable": [],
        "double_opt_in_confirmed": [],
    }
    for contact_id, name in rows:
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
        outcome["unengaged"].append(contact_id)
        if name in SELF_UNSUBSCRIBERS:
            key = "unsubscribed_themselves"
        else:
            key = "confirmed" if profile.confirms_by(rounds) else "opt_out"
        outcome[key].append(contact_id)
    return outcome
