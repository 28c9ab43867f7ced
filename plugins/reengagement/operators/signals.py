"""Step 2, made visible: how many contacts each engagement signal leaves out, before anything is sent."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import segments
from .base import HubSpotOperator
from .lists import ensure_list, wait_processed

if TYPE_CHECKING:
    from airflow.sdk import Context

BEFORE_SIGNALS = "before signals"


class SignalEffectsOperator(HubSpotOperator):
    """Count the cohort before the optional signals and under each one alone, so a marketer sees what the
    definition of "unengaged" does before a single email goes out.

    HubSpot counts: one DYNAMIC list of the unengaged before any signal, and one per signal that is on
    (the same filters plus that signal's), each found or created by name (a rerun adopts them). A signal
    removes the difference between the first and its own. With no signal and no focus email on, nothing
    is called. The lists stay in HubSpot, named after the campaign, for anyone who wants to look.

    :param list_name: the campaign's unengaged list name; the counting lists append to it (templated).
    :param segment_args: the unengaged list's segment arguments, signals included (templated).
    :param cohort: the unengaged list task's result (``size``), for the total (templated).
    """

    template_fields: Sequence[str] = ("list_name", "segment_args", "cohort")
    ui_color = "#fff3e0"

    def __init__(self, *, list_name: str, segment_args: dict[str, Any], cohort: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_name = list_name
        self.segment_args = segment_args
        self.cohort = cohort

    def execute(self, context: Context) -> dict[str, Any]:
        args = dict(self.segment_args)
        base_args = {name: args.pop(name) for name in ("subscription_id", "inactivity_weeks", "property_types")}
        days = int(base_args["inactivity_weeks"]) * segments.DAYS_PER_WEEK
        effects = segments.Signals.of(**args).filters(days)
        cohort = self._cohort_size()
        if not effects:
            self.log.info("No engagement signal and no focus email: the cohort is the %s unengaged contacts.", cohort)
            return {"cohort": cohort, "removed_by": {}}
        base = segments.unengaged(**base_args)
        before = self._size(BEFORE_SIGNALS, base)
        removed: dict[str, int] = {}
        for name, filters in effects.items():
            definition = copy.deepcopy(base)
            definition["filterBranches"][0]["filters"].extend(filters)
            removed[name] = before - self._size(f"with {name} only", definition)
        self.log.info(
            "Cohort: %d unengaged before the signals; %s; %s with all of them.",
            before,
            "; ".join(f"{name} removes {count}" for name, count in removed.items()),
            cohort,
        )
        return {"before_signals": before, "removed_by": removed, "cohort": cohort}

    def _size(self, suffix: str, definition: dict[str, Any]) -> int:
        found = ensure_list(self.hook, f"{self.list_name} {suffix}", "DYNAMIC", definition, log=self.log)
        if found.get("processingStatus") == "PROCESSING":
            return wait_processed(self.hook, str(found["listId"]))
        return int(found.get("size") or 0)

    def _cohort_size(self) -> int | None:
        found = self.cohort
        return int(found["size"]) if isinstance(found, dict) and found.get("size") is not None else None
