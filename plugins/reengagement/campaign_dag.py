"""
### HubSpot permission pass (re-engagement)

Every quarter, asks the contacts who have not engaged with marketing email for a year whether they
still want it, and opts out those who do not confirm — HubSpot's documented procedure, unattended:

1. **Review settings** (`preflight`): subscription type, consent on forms, tier and scopes, confirm URL, API budget.
2. **Unengaged list** (`build_unengaged_list`): no marketing-email open or click for `inactivity_weeks`, or never.
3. **Permission-pass email** (`round_k.create_email`, `round_k.send_email`): a tracked CTA to a thank-you page,
   sent to the round's recipients under the same subscription type.
4. **Post-send metrics** (`round_k.review_metrics`), after the response window (`round_k.wait_for_responses`).
5. **List 1 / list 2** (`round_k.build_confirmed_list`, `round_k.build_unconfirmed_list`): who clicked the CTA,
   and who was sent it and did not.
6. **Opt out list 2** after the wait (`export_unconfirmed`, `check_guards`, optional `approve_opt_out`,
   `opt_out_unconfirmed`): exported as CSV first, the audit record, then opted out.
7. **Repeat** (`another_round_k`): up to three rounds, each to those still unconfirmed.

`campaign_report` writes the funnel as CSV and HTML next to the exports. Trigger a run with the form to
change any parameter; `dry_run` sends the emails but opts nobody out. Every task can be cleared and rerun:
HubSpot objects are found by their names, the email is never sent twice, and the opt-out is idempotent.
"""

# This module is the campaign DAG of the hubspot-reengagement provider. A deployment loads it from a one-line
# file in its dags/ folder (Airflow binds the DAG to that file):
#
#     from reengagement.campaign_dag import hubspot_reengagement
#
# or builds its own with build_campaign_dag(dag_id=..., hubspot_conn_id=..., schedule=..., params={...}).

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, BaseOperator, Param, TaskGroup, chain
from airflow.sdk.exceptions import ParamValidationError

from .assets import AUDIT_LEDGER, OPT_OUT_RESULTS, UNCONFIRMED_EXPORT, campaign_assets
from .campaign import MAX_ROUNDS, PARAMS_SCHEMA
from .hook import HubSpotHook
from .macros import MACROS, outputs, ref
from .notify import CampaignNotifier
from .operators.emails import CreatePermissionEmailOperator, EmailMetricsOperator, SendEmailOperator
from .operators.flow import (
    AnotherRoundOperator,
    CheckGuardsOperator,
    FailIfAnyFailedOperator,
    HasUnengagedOperator,
    NeedsApprovalOperator,
)
from .operators.focus import FocusNonOpenersOperator
from .operators.lists import BuildConfirmedListOperator, EnsureListOperator, ExportListOperator
from .operators.reporting import CampaignReportOperator
from .operators.settings import PreflightOperator
from .operators.signals import SignalEffectsOperator
from .operators.subscriptions import OptOutOperator
from .sensors import SendWindowSensor

#: The DAG id of the campaign a deployment gets from the one-line file.
DEFAULT_DAG_ID = "hubspot_reengagement"
#: HubSpot's procedure runs once a quarter; ``[hubspot_reengagement] schedule`` changes it for a deployment.
DEFAULT_SCHEDULE = "@quarterly"
#: ``build_campaign_dag``'s default: the deployment's ``[hubspot_reengagement] schedule``.
FROM_CONFIG = "from config"
#: The JSON Schema dialect of the form's params: the one :func:`reengagement.campaign._schema_problems` checks
#: with. Named, because Airflow validates every param against its dialect's meta-schema each time a task starts
#: or is serialized, and 2020-12's (the default) costs three times draft-07's.
PARAM_DIALECT = "http://json-schema.org/draft-07/schema#"
CAMPAIGN = "{{ campaign_of(ti) }}"
SUBSCRIPTION = "{{ ti.xcom_pull(task_ids='preflight')['subscription_id'] }}"
#: The types preflight read for the properties the unengaged list filters on (a JSON object).
PROPERTY_TYPES = "{{ ti.xcom_pull(task_ids='preflight')['property_types'] | tojson }}"
EXPORT_BASE = "{{ params.export_base or '' }}"
#: Joins after the rounds read every round's result; rounds that were not needed are skipped, not failed.
AFTER_SKIPPED_ROUNDS = "none_failed_min_one_success"
#: Tasks that do not call HubSpot stay out of the hubspot_api pool.
NO_POOL = "default_pool"
#: What the person who approves the opt-out reads (rendered when the approval task runs).
APPROVAL_BODY = (
    f"At most {ref('check_guards', 'would_change')} of the {ref('check_guards', 'to_opt_out')} contacts in list 2 "
    f"would be opted out now; {ref('check_guards', 'already_opted_out')} already were, by an earlier try of this "
    f"run (the audit ledger). {ref('check_guards', 'sent')} contacts were sent the email. Those who confirm before "
    "the opt-out, or whom HubSpot never sent it, are spared then.\n\n"
    "List 2: {{ served_url_of(ti, result_of(ti, 'export_unconfirmed', 'export_uri')) }}\n"
    "Scope: {{ params.opt_out_scope }}; legal basis: {{ params.legal_basis }} (kept in the audit ledger "
    "always; HubSpot records it only for scope subscription_type); dry run: {{ params.dry_run }}."
)
STEP = {
    1: "Step 1 of HubSpot's permission pass: *review settings* — subscription types, consent text on forms, "
    "resubscription emails, token scopes.",
    2: "Step 2: *build an active list of contacts who have not engaged* — no marketing-email open for 52 weeks "
    "(or never).",
    3: "Step 3: *create the permission-pass email* (tracked CTA to a thank-you page, never a preferences page) "
    "and *send it* to that list under the same subscription type.",
    4: "Step 4: *read the post-send metrics*.",
    5: "Step 5: *list 1 = contacts who clicked the CTA; list 2 = contacts who were sent it and are not in list 1*.",
    6: "Step 6: *after one week, opt out list 2* (HubSpot's way: export list 2 as CSV, re-import it as an opt-out "
    "list; here the export is the audit record and the opt-out goes through the Communication Preferences API).",
    7: "Step 7: *optionally repeat*: a 2nd and 3rd email to those still unconfirmed before the opt-out.",
}


def run_form(defaults: Mapping[str, Any]) -> dict[str, Param]:
    """The trigger form: every campaign param with its schema, ``defaults`` replacing the built-in defaults."""
    form = {}
    for name, schema in PARAMS_SCHEMA.items():
        spec = dict(schema)
        default = spec.pop("default")
        spec.setdefault("$schema", PARAM_DIALECT)
        form[name] = Param(defaults.get(name, default), **spec)
    return form


def configured_schedule() -> str | None:
    """The deployment's ``[hubspot_reengagement] schedule`` (``AIRFLOW__HUBSPOT_REENGAGEMENT__SCHEDULE``).

    ``none`` (or empty) means triggered runs only: a local stack that runs the campaigns it is asked to, while
    the scheduler still starts the DAGs scheduled on the campaign's assets. Read when the file is parsed; a
    setting, not a call.
    """
    from airflow.sdk.configuration import conf

    value = str(conf.get("hubspot_reengagement", "schedule", fallback=DEFAULT_SCHEDULE)).strip()
    return None if value.lower() in ("", "none") else value


def build_campaign_dag(
    dag_id: str = DEFAULT_DAG_ID,
    *,
    hubspot_conn_id: str = HubSpotHook.default_conn_name,
    business_unit_id: int = 0,
    schedule: str | None = FROM_CONFIG,
    params: Mapping[str, Any] | None = None,
    tags: list[str] | None = None,
) -> DAG:
    """The campaign as a DAG: the seven steps, up to three rounds, the opt-out and the report.

    :param dag_id: the DAG's id; also the first half of the default campaign id (``<dag_id> <quarter>``).
    :param hubspot_conn_id: the Airflow connection of the HubSpot portal every HubSpot task calls.
    :param business_unit_id: the portal's business unit (brand) the campaign runs in; every call that takes a
        ``businessUnitId`` names it (0, the default unit, on portals without the Business Units add-on).
    :param schedule: when runs start; by default the deployment's ``[hubspot_reengagement] schedule``, which is
        ``@quarterly`` (HubSpot's procedure) unless set (:func:`configured_schedule`).
    :param params: defaults for the run form, by param name (``rounds``, ``wait``, ...); a trigger can still
        change them. An unknown name or an invalid value is an error naming it, so a typo does not silently
        keep the built-in default.
    """
    defaults = dict(params or {})
    unknown = sorted(set(defaults) - set(PARAMS_SCHEMA))
    if unknown:
        raise ValueError(f"{dag_id}: unknown param(s) {', '.join(unknown)}; known: {', '.join(PARAMS_SCHEMA)}")
    form = run_form(defaults)
    if schedule == FROM_CONFIG:
        schedule = configured_schedule()
    assets = campaign_assets(dag_id)
    for name in defaults:
        try:
            form[name].resolve()
        except ParamValidationError as error:
            reason = str(error).splitlines()[0]
            raise ValueError(f"{dag_id}: the default of param {name!r} is invalid: {reason}") from error
    with DAG(
        dag_id=dag_id,
        description="HubSpot permission pass: re-engage or opt out contacts who stopped opening marketing email",
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=tags if tags is not None else ["hubspot", "marketing", "permission-pass"],
        params=form,
        user_defined_macros=MACROS,
        # The first retry waits [core] default_task_retry_delay (Airflow's default: 300 s), then doubles.
        default_args={
            "pool": "hubspot_api",
            "hubspot_conn_id": hubspot_conn_id,
            "business_unit_id": business_unit_id,
            "retries": 3,
            "retry_exponential_backoff": True,
            "max_retry_delay": dt.timedelta(minutes=15),
            # HubSpot tasks take the portal for their UI links from preflight's result instead of a call each.
            "portal_from": "preflight",
            # A step that fails for good (after its retries) tells the run's notify_emails and the Variable's.
            "on_failure_callback": [CampaignNotifier("failure")],
        },
    ) as dag:
        # Groups draw the seven steps; their tasks keep their plain ids (prefix_group_id=False).
        cohort_tip = "Steps 1-2: review settings, find the unengaged"
        with TaskGroup("select_cohort", prefix_group_id=False, tooltip=cohort_tip):
            preflight = PreflightOperator(
                task_id="preflight",
                doc_md=STEP[1],
                subscription_type="{{ params.subscription_type }}",
                confirm_url="{{ params.confirm_url }}",
                template_email_id="{{ params.template_email_id or '' }}",
                rounds="{{ params.rounds }}",
                export_base=EXPORT_BASE,
            )
            focus = FocusNonOpenersOperator(
                task_id="build_focus_list",
                doc_md=STEP[2] + " HubSpot's second way, with `focus_email`: only those who received that email and "
                "did not open it. Without it, this task does nothing.",
                list_name="{{ name_of(ti, 'focus') }}",
                focus_from="preflight",
            )
            cohort_args = {
                "subscription_id": SUBSCRIPTION,
                "inactivity_weeks": "{{ params.inactivity_weeks }}",
                "property_types": PROPERTY_TYPES,
                "min_emails_delivered": "{{ params.min_emails_delivered }}",
                "spare_recent_activity": "{{ params.spare_recent_activity }}",
                "exclude_lifecycle_stages": "{{ params.exclude_lifecycle_stages | tojson }}",
                "focus_list_id": ref(focus.task_id, "list_id"),
            }
            unengaged = EnsureListOperator(
                task_id="build_unengaged_list",
                doc_md=STEP[2] + " With the optional engagement signals and the focus email's non-openers.",
                list_name="{{ name_of(ti, 'unengaged') }}",
                processing_type="DYNAMIC",
                segment="unengaged",
                segment_args=cohort_args,
            )
            has_unengaged = HasUnengagedOperator(
                task_id="has_unengaged",
                doc_md=STEP[2] + " An empty list ends the campaign here.",
                unengaged=unengaged.output,
                first_round="round_1.build_recipients_list",
                when_empty="campaign_report",
                pool=NO_POOL,
            )
            signal_effects = SignalEffectsOperator(
                task_id="count_signal_effects",
                doc_md=STEP[2] + " How many contacts each optional signal leaves out, before anything is sent.",
                list_name="{{ name_of(ti, 'unengaged') }}",
                segment_args=cohort_args,
                cohort=unengaged.output,
            )
            chain(preflight, focus, unengaged, signal_effects, has_unengaged)

        audience: BaseOperator = unengaged
        previous_branch: BaseOperator = has_unengaged
        rounds: list[dict[str, BaseOperator]] = []
        ends: list[BaseOperator | TaskGroup] = []
        for k in range(1, MAX_ROUNDS + 1):
            with TaskGroup(f"round_{k}", tooltip=f"Permission-pass email #{k}") as group:
                recipients = EnsureListOperator(
                    task_id="build_recipients_list",
                    doc_md=STEP[3 if k == 1 else 7] + " Who this round mails, frozen.",
                    list_name=f"{{{{ name_of(ti, 'recipients', {k}) }}}}",
                    processing_type="SNAPSHOT",
                    segment="snapshot_of",
                    segment_args={"list_id": ref(audience.task_id, "list_id")},
                )
                email = CreatePermissionEmailOperator(
                    task_id="create_email",
                    doc_md=STEP[3],
                    email_name=f"{{{{ name_of(ti, 'email', {k}) }}}}",
                    subject="{{ params.subject }}",
                    from_name="{{ params.from_name }}",
                    reply_to="{{ params.reply_to }}",
                    confirm_url=f"{{{{ cta_of(ti, params.confirm_url, {k}) }}}}",
                    recipients_list_id=ref(recipients.task_id, "list_id"),
                    subscription_id=SUBSCRIPTION,
                    template_email_id="{{ params.template_email_id or '' }}",
                )
                send = SendEmailOperator(
                    task_id="send_email",
                    doc_md=STEP[3] + " Never twice.",
                    email_id=ref(email.task_id, "email_id"),
                    cta_url=ref(email.task_id, "cta_url"),
                    retries=0,
                )
                wait = SendWindowSensor(
                    task_id="wait_for_responses",
                    doc_md=STEP[6] + " Measured from this send.",
                    sent_at=ref(send.task_id, "sent_at"),
                    delta="{{ params.wait }}",
                    poke_interval=30,
                )
                metrics = EmailMetricsOperator(
                    task_id="review_metrics", doc_md=STEP[4], email_id=ref(email.task_id, "email_id")
                )
                confirmed = BuildConfirmedListOperator(
                    task_id="build_confirmed_list",
                    doc_md=STEP[5] + " List 1.",
                    list_name="{{ name_of(ti, 'confirmed') }}",
                    emails=[r["send"].output for r in rounds] + [send.output],
                    campaign=CAMPAIGN,
                    export_base=EXPORT_BASE,
                )
                unconfirmed = EnsureListOperator(
                    task_id="build_unconfirmed_list",
                    doc_md=STEP[5] + " List 2.",
                    list_name=f"{{{{ name_of(ti, 'unconfirmed', {k}) }}}}",
                    processing_type="DYNAMIC",
                    segment="unconfirmed",
                    segment_args={
                        "recipients_list_id": ref(recipients.task_id, "list_id"),
                        "confirmed_list_id": ref(confirmed.task_id, "list_id"),
                    },
                )
                chain(recipients, email, send, wait, metrics, confirmed, unconfirmed)
            previous_branch >> group
            rounds.append(
                {
                    "recipients": recipients,
                    "email": email,
                    "send": send,
                    "metrics": metrics,
                    "confirmed": confirmed,
                    "unconfirmed": unconfirmed,
                }
            )
            if k < MAX_ROUNDS:
                branch = AnotherRoundOperator(
                    task_id=f"another_round_{k}",
                    doc_md=STEP[7],
                    round_no=k,
                    rounds="{{ params.rounds }}",
                    unconfirmed=unconfirmed.output,
                    next_round=f"round_{k + 1}.build_recipients_list",
                    opt_out_path="refresh_confirmed_list",
                    pool=NO_POOL,
                )
                group >> branch
                audience, previous_branch = unconfirmed, branch
                ends.append(branch)
            else:
                ends.append(group)

        # Inputs from every round are pulled as one JSON list: rounds that were skipped are None, and quiet.
        every_round = {
            name: outputs(*(f"round_{k}.{name}" for k in range(1, MAX_ROUNDS + 1)))
            for name in ("send_email", "review_metrics", "build_unconfirmed_list")
        }
        with TaskGroup("opt_out", prefix_group_id=False, tooltip="Step 6: after the wait, opt out list 2"):
            refresh = BuildConfirmedListOperator(
                task_id="refresh_confirmed_list",
                doc_md=STEP[6] + " First, list 1 takes in late clicks, and every clicker is checked to be in it.",
                list_name="{{ name_of(ti, 'confirmed') }}",
                emails=every_round["send_email"],
                campaign=CAMPAIGN,
                export_base=EXPORT_BASE,
                verify_members=True,
                trigger_rule=AFTER_SKIPPED_ROUNDS,
            )
            export = ExportListOperator(
                task_id="export_unconfirmed",
                doc_md=STEP[6] + " The CSV is the audit record, written before any change.",
                list_id=every_round["build_unconfirmed_list"],
                campaign=CAMPAIGN,
                export_base=EXPORT_BASE,
                trigger_rule=AFTER_SKIPPED_ROUNDS,
                outlets=[assets[UNCONFIRMED_EXPORT]],
            )
            guards = CheckGuardsOperator(
                task_id="check_guards",
                doc_md=STEP[6] + " Stops if tracking looks broken or too many would go.",
                metrics=every_round["review_metrics"],
                confirmed=refresh.output,
                export=export.output,
                max_fraction="{{ params.max_opt_out_fraction }}",
                pool=NO_POOL,
                trigger_rule=AFTER_SKIPPED_ROUNDS,
            )
            needs_approval = NeedsApprovalOperator(
                task_id="needs_approval",
                doc_md="Sends the opt-out through a person when `require_approval` is set.",
                require_approval="{{ params.require_approval }}",
                approval_task="approve_opt_out",
                opt_out_task="opt_out_unconfirmed",
                pool=NO_POOL,
            )
            approve = ApprovalOperator(
                task_id="approve_opt_out",
                doc_md=STEP[6] + " A person approves the irreversible step.",
                subject=f"Opt out {ref('check_guards', 'would_change')} contacts? ({CAMPAIGN})",
                body=APPROVAL_BODY,
                notifiers=[CampaignNotifier("approval")],
                pool=NO_POOL,
            )
            opt_out = OptOutOperator(
                task_id="opt_out_unconfirmed",
                doc_md=STEP[6] + " The one step that cannot be undone.",
                export_uri=ref(export.task_id, "export_uri"),
                scope="{{ params.opt_out_scope }}",
                subscription_id=SUBSCRIPTION,
                emails=every_round["send_email"],
                confirmed_list_id=ref(refresh.task_id, "list_id"),
                legal_basis="{{ params.legal_basis }}",
                legal_basis_explanation="{{ params.legal_basis_explanation }} (campaign {{ campaign_of(ti) }})",
                simulate="{{ params.dry_run }}",
                campaign=CAMPAIGN,
                trigger_rule=AFTER_SKIPPED_ROUNDS,
                outlets=[assets[OPT_OUT_RESULTS], assets[AUDIT_LEDGER]],
            )
            chain(refresh, export, guards, needs_approval, [approve, opt_out])
            approve >> opt_out
        ends >> refresh
        report = CampaignReportOperator(
            task_id="campaign_report",
            doc_md="The funnel of every round, read from HubSpot and the audit ledger, as CSV "
            "and HTML next to the exports.",
            campaign="{{ campaign_or_param(ti, params) }}",
            unengaged=unengaged.output,
            opt_out=opt_out.output,
            recipients=outputs(*(f"round_{k}.build_recipients_list" for k in range(1, MAX_ROUNDS + 1))),
            emails=every_round["send_email"],
            metrics=every_round["review_metrics"],
            retries=1,
            approval_task_id=approve.task_id,
            opt_out_task_id=opt_out.task_id,
            export_base=EXPORT_BASE,
            trigger_rule="all_done",
            # The run's last word: its one-line summary, unless a step failed (which has told already).
            on_success_callback=[CampaignNotifier("success")],
        )
        opt_out >> report
        has_unengaged >> report
        # The report always runs; this makes the run itself fail when any step did. A failed step leaves the
        # opt-out upstream_failed (every path leads to it), so the opt-out and the report are all it must watch.
        [opt_out, report] >> FailIfAnyFailedOperator(
            task_id="fail_if_any_step_failed",
            pool=NO_POOL,
            retries=0,
            doc_md="Fails the run when any step failed (the report runs anyway).",
            on_failure_callback=[],  # the failed step has told already
        )
    return dag


def __getattr__(name: str) -> DAG:
    """``from reengagement.campaign_dag import hubspot_reengagement`` builds the default campaign on demand, so a
    module that imports only :func:`build_campaign_dag` (several campaigns in one file) builds nothing extra."""
    if name == DEFAULT_DAG_ID:
        return build_campaign_dag()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
