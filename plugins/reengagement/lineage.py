"""OpenLineage: the HubSpot objects and the files each of the campaign's tasks read and wrote.

Airflow's OpenLineage provider calls an operator's ``get_openlineage_facets_on_complete(task_instance)`` once
the task succeeded; the operators delegate to the functions here. Datasets are named by ids and URIs only,
never by anything about a contact:

- HubSpot objects are in the namespace ``hubspot://<portal id>``, named ``lists/<listId>``,
  ``emails/<emailId>`` and ``subscriptions/<subscription type id>``. The portal id is the ``portal_id`` of the
  result of the operator's ``portal_from`` task (the campaign's preflight). Without it the HubSpot objects are
  left out: a lineage method never calls HubSpot.
- Files are named as OpenLineage's dataset naming spec says (:func:`file_dataset`).

What a task did is read from its own result (its XCom), as the task returned it. The OpenLineage packages are
an optional extra (``openlineage``): they are imported only when a lineage method runs, and without them every
method returns ``None``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .operators.base import HubSpotOperator, as_outputs

if TYPE_CHECKING:
    from typing import TypeAlias

    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import JobFacet, RunFacet

    from .operators.emails import CreatePermissionEmailOperator, EmailMetricsOperator, SendEmailOperator
    from .operators.focus import FocusNonOpenersOperator
    from .operators.lists import BuildConfirmedListOperator, EnsureListOperator, ExportListOperator
    from .operators.reporting import CampaignReportOperator
    from .operators.subscriptions import OptOutOperator

    #: What a lineage method returns: datasets, and no run or job facets of its own.
    Lineage: TypeAlias = OperatorLineage[Dataset, RunFacet | JobFacet]

log = logging.getLogger(__name__)

HUBSPOT_SCHEME = "hubspot"
#: Object stores whose datasets are named ``<scheme>://<bucket>`` + the object's key (no leading slash).
BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs"}
#: Azure's stores: ``<scheme>://<container>@<account>.dfs.core.windows.net`` + the path in the container.
AZURE_SCHEMES = frozenset({"abfs", "abfss", "az", "adl", "wasb", "wasbs"})
LOCAL_SCHEMES = frozenset({"", "file", "local"})
#: The segment arguments that name a list the new list is defined by.
SEGMENT_LIST_ARGS = ("list_id", "recipients_list_id", "confirmed_list_id", "focus_list_id")


def hubspot_namespace(portal_id: str | int) -> str:
    return f"{HUBSPOT_SCHEME}://{portal_id}"


def list_dataset(list_id: Any) -> str | None:
    return f"lists/{list_id}" if _given(list_id) else None


def email_dataset(email_id: Any) -> str | None:
    return f"emails/{email_id}" if _given(email_id) else None


def subscription_dataset(subscription_id: Any) -> str | None:
    return f"subscriptions/{subscription_id}" if _given(subscription_id) else None


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and str(value).strip() not in ("", "None")


def file_dataset(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a file, as OpenLineage's naming spec says.

    - a local path or ``file://`` URI: ``file`` and the absolute path (``file://<host>`` for a remote host);
    - S3 and GCS: ``s3://<bucket>`` or ``gs://<bucket>`` and the object key;
    - Azure (``abfs[s]``, ``wasb[s]``, ...): ``<scheme>://<container>@<account host>`` and the path;
    - any other file system (HDFS, fsspec's ``memory``): ``<scheme>://<authority>`` and the path.

    The user part of a URI (Airflow's connection id, or credentials) is never part of a name, except in
    Azure's ``container@account`` authority.
    """
    parts = urlsplit(str(uri))
    scheme = parts.scheme.lower()
    host = parts.netloc.rpartition("@")[2]
    if scheme in LOCAL_SCHEMES:
        return ("file" if host in ("", "localhost") else f"file://{host}"), os.path.abspath(parts.path or "/")
    if scheme in BUCKET_SCHEMES:
        return f"{BUCKET_SCHEMES[scheme]}://{host}", parts.path.lstrip("/")
    if scheme in AZURE_SCHEMES and parts.netloc.lower().endswith(".windows.net"):
        return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")
    return f"{scheme}://{host}", parts.path or "/"


def portal_of(operator: HubSpotOperator, task_instance: Any) -> str | None:
    """The portal id in the result of the operator's ``portal_from`` task, or ``None`` (HubSpot is not asked)."""
    if not operator.portal_from or operator.portal_from == operator.task_id:
        return None
    found = task_instance.xcom_pull(task_ids=operator.portal_from)
    if isinstance(found, dict) and _given(found.get("portal_id")):
        return str(found["portal_id"])
    return None


def result_of(operator: Any, task_instance: Any, task_id: str | None = None) -> dict[str, Any]:
    """The result (XCom) of ``task_id`` (default: the operator's own task), ``{}`` when there is none."""
    found = task_instance.xcom_pull(task_ids=task_id or operator.task_id)
    return found if isinstance(found, dict) else {}


def operator_lineage(
    portal_id: str | None,
    *,
    inputs: Iterable[str | None] = (),
    outputs: Iterable[str | None] = (),
    input_files: Iterable[Any] = (),
    output_files: Iterable[Any] = (),
) -> Lineage | None:
    """The ``OperatorLineage`` of HubSpot objects (dataset names, see :func:`list_dataset` and co.) and files
    (URIs), in the order given, each once; ``None`` when the OpenLineage packages are not installed.

    HubSpot objects are left out when ``portal_id`` is ``None``: their namespace is unknown.
    """
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
    except ImportError:
        log.debug("OpenLineage is not installed; no lineage to report.")
        return None

    def datasets(names: Iterable[str | None], files: Iterable[Any]) -> list[Dataset]:
        found: dict[tuple[str, str], None] = {}
        if portal_id is not None:
            found.update(dict.fromkeys((hubspot_namespace(portal_id), name) for name in names if name))
        found.update(dict.fromkeys(file_dataset(str(uri)) for uri in files if _given(uri)))
        return [Dataset(namespace=namespace, name=name) for namespace, name in found]

    return OperatorLineage(inputs=datasets(inputs, input_files), outputs=datasets(outputs, output_files))


def _emails_of(outputs: Any) -> list[str | None]:
    """The ``email_id`` of each email task's output (``send_email``'s), skipped rounds left out."""
    return [email_dataset(e.get("email_id")) for e in as_outputs(outputs) if isinstance(e, dict)]


# -- the operators ----------------------------------------------------------------------------------------


def ensure_list(operator: EnsureListOperator, task_instance: Any) -> Lineage | None:
    """Output: the list made or adopted; inputs: the lists its segment is defined by."""
    args = operator.segment_args if isinstance(operator.segment_args, dict) else {}
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[list_dataset(args.get(name)) for name in SEGMENT_LIST_ARGS],
        outputs=[list_dataset(result_of(operator, task_instance).get("list_id"))],
    )


def build_confirmed_list(operator: BuildConfirmedListOperator, task_instance: Any) -> Lineage | None:
    """Inputs: the emails whose clicks were read; output: list 1."""
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=_emails_of(operator.emails),
        outputs=[list_dataset(result_of(operator, task_instance).get("list_id"))],
    )


def focus_non_openers(operator: FocusNonOpenersOperator, task_instance: Any) -> Lineage | None:
    """Input: the focus email whose events were read; output: the focus list (none without a focus email)."""
    focus = result_of(operator, task_instance, operator.focus_from)
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[email_dataset(focus.get("focus_email_id"))],
        outputs=[list_dataset(result_of(operator, task_instance).get("list_id"))],
    )


def create_email(operator: CreatePermissionEmailOperator, task_instance: Any) -> Lineage | None:
    """Output: the email made or adopted; input: the template email it was cloned from, if any."""
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[email_dataset(operator.template_email_id)],
        outputs=[email_dataset(result_of(operator, task_instance).get("email_id"))],
    )


def send_email(operator: SendEmailOperator, task_instance: Any) -> Lineage | None:
    """Input: the email sent."""
    return operator_lineage(
        portal_of(operator, task_instance), inputs=[email_dataset(result_of(operator, task_instance).get("email_id"))]
    )


def email_metrics(operator: EmailMetricsOperator, task_instance: Any) -> Lineage | None:
    """Input: the email whose statistics were read."""
    return operator_lineage(
        portal_of(operator, task_instance), inputs=[email_dataset(result_of(operator, task_instance).get("email_id"))]
    )


def export_list(operator: ExportListOperator, task_instance: Any) -> Lineage | None:
    """Input: the exported list; output: the CSV it was written to."""
    result = result_of(operator, task_instance)
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[list_dataset(operator.source_list_id)] if result else [],
        output_files=[result.get("export_uri")],
    )


def opt_out(operator: OptOutOperator, task_instance: Any) -> Lineage | None:
    """Inputs: the export file, list 1 and the emails whose events were read; outputs: this try's result file,
    its part of the audit ledger and, when the try changed a subscription type, that type."""
    result = result_of(operator, task_instance)
    if not result:
        return operator_lineage(None)
    changed = not result.get("dry_run") and operator.scope == "subscription_type"
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[list_dataset(operator.confirmed_list_id), *_emails_of(operator.emails)],
        input_files=[operator.export_uri],
        outputs=[subscription_dataset(operator.subscription_id) if changed else None],
        output_files=[result.get("result_uri"), result.get("ledger_uri")],
    )


def campaign_report(operator: CampaignReportOperator, task_instance: Any) -> Lineage | None:
    """Inputs: the rounds' recipients lists and emails; outputs: ``report.csv`` and ``report.html``."""
    result = result_of(operator, task_instance)
    if not result:
        return operator_lineage(None)
    recipients = [list_dataset(r.get("list_id")) for r in as_outputs(operator.recipients) if isinstance(r, dict)]
    return operator_lineage(
        portal_of(operator, task_instance),
        inputs=[*recipients, *_emails_of(operator.emails)],
        output_files=[result.get("csv_uri"), result.get("report_uri")],
    )
