"""The campaign's files as Airflow Assets, so a downstream DAG (a warehouse load) can be scheduled on them.

Three kinds, one asset each per campaign DAG:

- ``unconfirmed_export``: the CSV of list 2, written by ``export_unconfirmed`` before any change;
- ``opt_out_results``: the result file of each opt-out try (``opt_out_unconfirmed``);
- ``audit_ledger``: the campaign's append-only audit ledger (``opt_out_unconfirmed`` adds a part per try).

An asset is fixed when the DAG is parsed, while the files' places depend on the run (its campaign id and
``export_base``), so the asset is named by the DAG and the kind, and each asset event carries the run's
facts in its extra: the campaign id, the run id and the URI of what was written (ids, counts and URIs only,
never a contact). A consumer reads the files from those URIs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The URI scheme of the campaign's assets (they name a campaign's output, not one file).
SCHEME = "hubspot-reengagement"
GROUP = "hubspot-reengagement"
UNCONFIRMED_EXPORT = "unconfirmed_export"
OPT_OUT_RESULTS = "opt_out_results"
AUDIT_LEDGER = "audit_ledger"
KINDS = (UNCONFIRMED_EXPORT, OPT_OUT_RESULTS, AUDIT_LEDGER)


def campaign_asset(dag_id: str, kind: str) -> Asset:
    """The asset of one kind of file of the campaign DAG ``dag_id``, as producer and consumers both spell it."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of campaign asset {kind!r}; known: {', '.join(KINDS)}")
    return Asset(
        name=f"{dag_id}.{kind}",
        uri=f"{SCHEME}://{dag_id}/{kind}",
        group=GROUP,
        extra={"dag_id": dag_id, "kind": kind},
    )


def campaign_assets(dag_id: str) -> dict[str, Asset]:
    """Every asset of the campaign DAG ``dag_id``, by kind."""
    return {kind: campaign_asset(dag_id, kind) for kind in KINDS}


def kind_of(outlet: object) -> str | None:
    """The kind of a campaign asset, ``None`` for any other outlet."""
    if isinstance(outlet, Asset) and outlet.uri.startswith(f"{SCHEME}://"):
        kind = outlet.extra.get("kind")
        return kind if kind in KINDS else None
    return None


def describe_events(context: Context, outlets: Iterable[object], facts: Mapping[str, Mapping[str, Any]]) -> None:
    """Put each kind's facts in the extra of the asset event the task emits for its outlet of that kind.

    Airflow emits an event for every outlet when the task succeeds; this only fills in what the event says.
    Outlets of kinds without facts, and outlets that are not campaign assets, are left as they are.
    """
    events = context.get("outlet_events")
    if events is None:  # executed outside a task run (a test calling execute()): no events to describe
        return
    for outlet in outlets:
        kind = kind_of(outlet)
        if kind is not None and kind in facts:
            events[outlet].extra = dict(facts[kind])  # type: ignore[index]
