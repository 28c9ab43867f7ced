"""A ``campaigns.yaml`` for a deployment under test: one campaign per business unit, its audience narrowed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

#: campaign id -> (business unit, subscription type, the lifecycle stages the campaign leaves out)
Campaigns = Mapping[str, tuple[int, str, Sequence[str]]]


def write_campaigns_file(home: Path, campaigns: Campaigns) -> dict[str, str]:
    """Write ``home/campaigns.yaml`` (triggered only: no schedule) and return the setting that points at it."""
    lines = ["campaigns:"]
    for campaign, (unit, subscription_type, left_out) in campaigns.items():
        lines += [
            f"  - id: {campaign}",
            f"    business_unit: {unit}",
            f"    subscription_type: {subscription_type}",
            "    schedule: null",
            "    params:",
            f"      exclude_lifecycle_stages: [{', '.join(left_out)}]",
        ]
    path = home / "campaigns.yaml"
    path.write_text("\n".join(lines) + "\n")
    return {"AIRFLOW__HUBSPOT_REENGAGEMENT__CAMPAIGNS_FILE": str(path)}
