"""Step 1: review the portal's settings before anything is created or sent."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import segments
from ..api_versions import DEFAULT_API_VERSION, LEGACY, LEGACY_ONLY
from ..campaign import CampaignParams, confirm_url_problems, default_campaign, estimated_calls, human_duration
from ..errors import (
    HubSpotAuthError,
    HubSpotError,
    HubSpotForbiddenError,
    HubSpotNotFound,
    HubSpotPermanentError,
    HubSpotScopeError,
    HubSpotValidationError,
)
from ..storage import run_folder
from .base import HubSpotOperator
from .emails import campaign_ids_of, is_sent

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..hook import HubSpotHook


@dataclass(frozen=True)
class CapabilityProbe:
    """A call whose answer tells whether the portal and token may do something, without doing it.

    ``allowed`` are the HTTP statuses that mean "yes" (200 stands for any success); a scope or
    permission refusal means "no"; any other answer proves nothing either way.
    """

    key: str
    what: str
    method: str
    path: str
    body: Any = None
    allowed: frozenset[int] = frozenset({200})


#: Preflight's probes: each stops at HubSpot's scope and tier checks and changes nothing.
CAPABILITY_PROBES = (
    CapabilityProbe(
        "publish_email",
        "publish marketing email (Marketing Hub Enterprise, scope marketing-email)",
        "POST",
        "/marketing/v3/emails/0/publish",
        allowed=frozenset({404}),
    ),  # email 0 does not exist
    CapabilityProbe(
        "batch_write_statuses",
        "batch-write subscription statuses (Marketing Hub Enterprise, scope "
        "communication_preferences.statuses.batch.write)",
        "POST",
        "/communication-preferences/v4/statuses/batch/write",
        {"inputs": []},
    ),
)


@dataclass(frozen=True)
class ProbeResult:
    """``verdict`` is ``allowed``, ``refused`` or ``inconclusive``; ``detail`` says what HubSpot answered."""

    probe: CapabilityProbe
    verdict: str
    detail: str = ""


def run_probe(hook: HubSpotHook, probe: CapabilityProbe) -> ProbeResult:
    """Ask HubSpot once; an answer the probe does not know how to read is inconclusive, never an error."""
    try:
        hook.probe(probe.method, probe.path, json_body=probe.body)
    except (HubSpotScopeError, HubSpotForbiddenError, HubSpotAuthError) as err:
        return ProbeResult(probe, "refused", str(err))
    except HubSpotError as err:
        if err.status in probe.allowed:
            return ProbeResult(probe, "allowed")
        return ProbeResult(probe, "inconclusive", f"HubSpot answered {err.status or 'nothing'}: {err}")
    except ValueError as err:  # a success whose body is not JSON
        return ProbeResult(probe, "inconclusive", f"HubSpot's answer could not be read: {err}")
    if 200 in probe.allowed:
        return ProbeResult(probe, "allowed")
    return ProbeResult(probe, "inconclusive", "HubSpot accepted a call this probe expected it to refuse")


def subscription_definitions(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The subscription types of a definitions answer, in the shape the version answers.

    The v3 path answers ``subscriptionDefinitions``; its date-based equivalent answers ``results`` (the v4
    shape), with the same fields per type.
    """
    if "subscriptionDefinitions" in answer:
        return list(answer["subscriptionDefinitions"] or [])
    return list(answer.get("results") or [])


class PreflightFailed(HubSpotPermanentError):
    """One or more settings make the campaign unsafe or impossible; the message lists them all.

    Permanent: retrying will not change the portal's settings, so Airflow fails the task at once.
    """


class PreflightOperator(HubSpotOperator):
    """Check everything step 1 asks for, and fail once with the full list of problems.

    - the campaign's business unit is one of the portal's, and the subscription type exists in that unit
      and is active (given by id or name);
    - forms whose consent options are missing or do not cover that subscription type (warnings:
      contacts they collect may never have agreed to this type);
    - the portal can publish marketing email and batch-write subscription statuses (Marketing Hub
      Enterprise and the matching scopes); a probe whose answer proves neither is a warning, not a failure;
    - the template email, if given, exists;
    - the confirmation URL is https and not a subscription-preferences or unsubscribe page;
    - the contact properties the unengaged list filters on exist, with types a filter can be built for;
    - the day's remaining API budget covers the campaign's estimated calls.

    It logs the HubSpot API version the connection speaks and, for each endpoint still on a legacy path
    (:data:`~reengagement.api_versions.LEGACY_ONLY`), the date HubSpot stops supporting it.

    Returns ``subscription_id``, ``portal_id``, ``ui_domain`` (for the other tasks' links), the counts the
    later tasks need and ``property_types`` (property name -> HubSpot type) for the unengaged list's filters,
    and ``inconclusive_probes`` (the keys of the capability probes that proved nothing).

    :param subscription_type: id or name of the subscription type (templated).
    :param confirm_url: the thank-you page of the CTA (templated).
    :param template_email_id: optional email to clone (templated).
    :param rounds: how many emails the campaign may send (for the budget estimate).
    :param export_base: where the campaign's files go (templated); the run's folder is made here and
        returned as ``folder``, so the files can be found (and served) from the run alone.
    """

    template_fields: Sequence[str] = ("subscription_type", "confirm_url", "template_email_id", "rounds", "export_base")
    ui_color = "#eeeeee"

    def __init__(
        self,
        *,
        subscription_type: str,
        confirm_url: str,
        template_email_id: str | None = None,
        rounds: int | str = 1,
        export_base: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.export_base = export_base
        self.subscription_type = subscription_type
        self.confirm_url = confirm_url
        self.template_email_id = template_email_id
        self.rounds = rounds

    def execute(self, context: Context) -> dict[str, Any]:
        campaign = self._params(context)  # bad params fail here, before any call to HubSpot
        self._log_api_version()
        problems: list[str] = list(confirm_url_problems(str(self.confirm_url)))
        subscription = self._subscription(problems)
        warnings = list(self._consent_warnings(subscription)) if subscription else []
        signals = segments.Signals.of(
            campaign.min_emails_delivered, campaign.spare_recent_activity, campaign.exclude_lifecycle_stages
        )
        property_types = self._property_types(subscription, signals, problems) if subscription else {}
        problems += self._stage_problems(signals, property_types)
        focus = self._focus(campaign.focus_email, problems)
        inconclusive = self._capabilities(problems)
        if self.template_email_id:
            problems += self._template()
        contacts, budget = self._budget(problems)
        for warning in warnings:
            self.log.warning("Consent: %s", warning)
        for result in inconclusive:
            self.log.warning(
                "Inconclusive: could not tell whether the portal and token can %s (%s). The step that "
                "needs it fails with HubSpot's own message if they cannot.",
                result.probe.what,
                result.detail,
            )
        if problems:
            raise PreflightFailed("The campaign cannot start:\n- " + "\n- ".join(problems))
        assert subscription is not None  # _subscription() reports a problem when it finds none
        portal = self.hook.portal
        folder = run_folder(self.export_base or None, campaign.campaign, str(context["run_id"]))
        self.log.info(
            "Preflight passed: subscription type %r (%s), business unit %s, portal %s, %d contacts, budget %s "
            "calls left.",
            subscription["name"],
            subscription["id"],
            self.business_unit_id,
            portal["portalId"],
            contacts,
            budget,
        )
        return {
            "campaign": campaign.campaign,
            "subscription_id": str(subscription["id"]),
            "portal_id": str(portal["portalId"]),
            "ui_domain": portal["uiDomain"],
            "contacts": contacts,
            "consent_warnings": len(warnings),
            "property_types": property_types,
            "inconclusive_probes": [result.probe.key for result in inconclusive],
            "folder": str(folder),
            **focus,
        }

    def _params(self, context: Context) -> CampaignParams:
        """The run's params, validated; the campaign id defaults to the DAG id and the run's quarter."""
        dag_run = context.get("dag_run")
        when = (
            getattr(dag_run, "run_after", None)
            or getattr(dag_run, "logical_date", None)
            or dt.datetime.now(dt.timezone.utc)
        )
        dag_id = self.dag_id if self.has_dag() else "hubspot_reengagement"  # type: ignore[no-untyped-call]
        campaign = CampaignParams.from_params(
            dict(context.get("params") or {}), default_campaign=default_campaign(dag_id, when)
        )
        self.log.info(
            "Campaign %r: %d round(s), wait %s, opt-out scope %s%s.",
            campaign.campaign,
            campaign.rounds,
            human_duration(campaign.wait),
            campaign.opt_out_scope,
            " (dry run)" if campaign.dry_run else "",
        )
        return campaign

    def _log_api_version(self) -> None:
        """Which HubSpot API version the run speaks, and which calls stay on legacy paths until when.

        A connection naming an unknown version fails here, before any call, and is not retried.
        """
        try:
            version = self.hook.api_version
        except ValueError as err:
            raise PreflightFailed(f"The campaign cannot start:\n- {err}") from err
        if version == LEGACY:
            self.log.warning(
                "HubSpot API version: legacy (v1-v4 paths, which HubSpot is retiring). Set the "
                "connection's extra api_version to %r to use the date-based paths.",
                DEFAULT_API_VERSION,
            )
        else:
            self.log.info("HubSpot API version: %s (date-based paths).", version)
        for endpoint in LEGACY_ONLY:
            self.log.info(
                "Legacy endpoint still used: %s for %s; HubSpot stops supporting it from %s (%s).",
                endpoint.path,
                endpoint.purpose,
                endpoint.unsupported_from,
                endpoint.why,
            )

    def _subscription(self, problems: list[str]) -> dict[str, Any] | None:
        """The subscription type, looked up among the types of the campaign's business unit only."""
        unit = self.business_unit_id
        try:
            answer = self.hook.subscription_definitions()
        except HubSpotValidationError as err:
            problems.append(
                f"Business unit {unit} is not one of this portal's business units (HubSpot answered: {err}). "
                "Give the business unit id of a brand the portal has (0 is the default unit)."
            )
            return None
        # Only the unit's own types: an answer that lists other units' too must not satisfy the check.
        definitions = [d for d in subscription_definitions(answer) if int(d.get("businessUnitId") or 0) == unit]
        wanted = str(self.subscription_type).strip()
        found = [d for d in definitions if str(d["id"]) == wanted or d["name"].strip().lower() == wanted.lower()]
        if not found:
            names = ", ".join(f"{d['name']!r} ({d['id']})" for d in definitions) or "none"
            where = f"the portal's business unit {unit}" if unit else "the portal"
            problems.append(f"Subscription type {wanted!r} does not exist in {where}; it has {names}.")
            return None
        if not found[0].get("isActive"):
            problems.append(f"Subscription type {found[0]['name']!r} ({found[0]['id']}) is not active.")
        return found[0]

    def _stage_problems(self, signals: segments.Signals, types: dict[str, str]) -> list[str]:
        """Lifecycle stages to leave out must be values the portal has (HubSpot refuses a list naming others)."""
        if not signals.exclude_lifecycle_stages or types.get(segments.STAGE) != segments.ENUMERATION:
            return []
        known = self.hook.property_options(segments.STAGE)
        unknown = [stage for stage in signals.exclude_lifecycle_stages if stage not in known]
        if not unknown:
            return []
        return [
            f"exclude_lifecycle_stages: {', '.join(map(repr, unknown))} "
            f"{'is not a lifecycle stage' if len(unknown) == 1 else 'are not lifecycle stages'} of this portal; "
            f"its internal values are {', '.join(known)}."
        ]

    def _focus(self, wanted: str | None, problems: list[str]) -> dict[str, Any]:
        """The focus email (by id, else by exact name), if it was sent: its id, campaign ids and recipients."""
        if not wanted:
            return {}
        email = None
        if wanted.isdigit():
            with contextlib.suppress(HubSpotNotFound):
                email = self.hook.get_email(wanted)
        email = email or self.hook.find_email_by_name(wanted)
        if email is None:
            problems.append(f"Focus email {wanted!r} does not exist: give a marketing email's id or its exact name.")
            return {}
        email_id, ids = str(email["id"]), campaign_ids_of(email)
        if not is_sent(email) or not ids:
            problems.append(
                f"Focus email {wanted!r} (id {email_id}) was never sent, so nobody received it: the focused "
                "cohort would be empty. Give a sent email, or leave focus_email empty."
            )
            return {}
        counters = self.hook.email_counters(email_id)
        received = int(counters.get("delivered") or 0)
        self.log.info(
            "Focus email %r (id %s, email campaign ids %s): %d contacts received it; the cohort keeps those of "
            "them who did not open it.",
            email.get("name"),
            email_id,
            ", ".join(ids),
            received,
        )
        return {"focus_email_id": email_id, "focus_campaign_ids": ids, "focus_received": received}

    def _property_types(
        self, subscription: dict[str, Any], signals: segments.Signals, problems: list[str]
    ) -> dict[str, str]:
        """The types of the contact properties the unengaged list filters on, read once for the whole run.

        Each filter is built to fit its property's type (HubSpot refuses one that does not fit); a
        missing property or an unusable type is a problem here, not a failed list later.
        """
        types = self.hook.property_types(segments.property_names(subscription["id"], signals))
        problems += segments.type_problems(subscription["id"], types, signals)
        self.log.info("Contact property types: %s", ", ".join(f"{n}={t}" for n, t in types.items()))
        return {name: kind for name, kind in types.items() if kind is not None}

    def _consent_warnings(self, subscription: dict[str, Any]) -> Iterator[str]:
        sub_id = str(subscription["id"])
        for form in self.hook.iter_forms():
            options = form.get("legalConsentOptions") or {"type": "none"}
            kind = options.get("type")
            if kind == "none":
                yield f"form {form.get('name')!r} collects contacts without any consent text"
                continue
            covered = {str(i) for i in options.get("subscriptionTypeIds") or []}
            covered |= {str(c.get("subscriptionTypeId")) for c in options.get("communicationsCheckboxes") or []}
            if sub_id not in covered:
                yield (f"form {form.get('name')!r} ({kind}) does not cover subscription type {subscription['name']!r}")

    def _capabilities(self, problems: list[str]) -> list[ProbeResult]:
        """Can this portal and token publish email and batch-write statuses? Probed without changing anything.

        A refusal is a problem; an answer a probe cannot read (a 400 or a 5xx where it expected a 404, say)
        proves nothing, so it is returned as inconclusive and preflight goes on.
        """
        results = [run_probe(self.hook, probe) for probe in CAPABILITY_PROBES]
        problems += [
            f"The portal or token cannot {r.probe.what}: {r.detail}" for r in results if r.verdict == "refused"
        ]
        return [r for r in results if r.verdict == "inconclusive"]

    def _template(self) -> list[str]:
        try:
            self.hook.get_email(str(self.template_email_id))
        except HubSpotNotFound:
            return [f"Template email {self.template_email_id} does not exist."]
        return []

    def _budget(self, problems: list[str]) -> tuple[int, int]:
        contacts = self.hook.count_contacts()
        usage = self.hook.daily_api_usage()
        if not usage:
            return contacts, -1
        left = int(usage[0]["usageLimit"]) - int(usage[0]["currentUsage"])
        needed = estimated_calls(contacts, int(self.rounds))
        if left < needed:
            problems.append(
                f"Only {left} API calls are left today, and the campaign may need up to {needed} "
                f"({contacts} contacts, {self.rounds} round(s)). Run it after the daily reset."
            )
        return contacts, left
