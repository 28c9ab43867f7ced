"""The campaign's decisions: is anyone unengaged, another round or the opt-out, the guards, approval."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator, BaseOperator, ObjectStoragePath, TriggerRule
from airflow.sdk.exceptions import DownstreamTasksSkipped

from .. import audit, report
from ..campaign import GuardFigures, another_round, guard_problems
from ..errors import HubSpotPermanentError
from .base import as_outputs

if TYPE_CHECKING:
    from airflow.sdk import Context


class GuardTripped(HubSpotPermanentError):
    """A safety rule says the opt-out must not happen; nobody has been opted out."""


class _BranchSkippingWholePaths(BaseBranchOperator):
    """A branch that skips the whole path it did not take at once, not one task level per scheduler loop.

    Airflow skips only the tasks right after a branch; the rest of an unused round learns it is skipped
    one level per scheduling pass. Every task further down that needs all its upstream tasks to succeed
    (``all_success``) would end up skipped anyway, so it is skipped together with the first one: the grid
    shows the unused rounds as skipped as soon as the decision is made, and the opt-out path starts sooner.
    """

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except DownstreamTasksSkipped as skipped:
            raise DownstreamTasksSkipped(tasks=self._whole_paths(skipped.tasks)) from None

    def _whole_paths(self, tasks: Any) -> list[Any]:
        first = [t if isinstance(t, tuple) else (t, -1) for t in (tasks if isinstance(tasks, list) else [tasks])]
        seen = {task_id for task_id, _ in first}
        to_skip, todo = list(first), [task_id for task_id, _ in first]
        while todo:
            for downstream in self.dag.get_task(todo.pop()).downstream_list:
                if downstream.task_id not in seen and downstream.trigger_rule == TriggerRule.ALL_SUCCESS:
                    seen.add(downstream.task_id)
                    to_skip.append((downstream.task_id, -1))
                    todo.append(downstream.task_id)
        return to_skip


class HasUnengagedOperator(_BranchSkippingWholePaths):
    """After step 2: an empty unengaged list ends the campaign cleanly, with nothing sent.

    :param unengaged: the output of ``build_unengaged_list`` (templated).
    :param first_round: task id of the first round's first task.
    :param when_empty: task id to go to when nobody is unengaged (the report).
    """

    template_fields: Sequence[str] = ("unengaged",)

    def __init__(self, *, unengaged: Any, first_round: str, when_empty: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unengaged, self.first_round, self.when_empty = unengaged, first_round, when_empty

    def choose_branch(self, context: Context) -> str:
        size = int(self.unengaged["size"])
        if size:
            self.log.info("%d unengaged contacts: starting round 1.", size)
            return self.first_round
        self.log.info("Nobody is unengaged: the campaign ends here, nothing is sent.")
        return self.when_empty


class AnotherRoundOperator(_BranchSkippingWholePaths):
    """Step 7: another email to the still-unconfirmed, or on to the opt-out.

    :param round_no: the round that just finished.
    :param rounds: how many rounds the run asked for (templated).
    :param unconfirmed: the output of this round's ``build_unconfirmed_list`` (templated).
    """

    template_fields: Sequence[str] = ("rounds", "unconfirmed")

    def __init__(
        self, *, round_no: int, rounds: Any, unconfirmed: Any, next_round: str, opt_out_path: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.round_no, self.rounds, self.unconfirmed = round_no, rounds, unconfirmed
        self.next_round, self.opt_out_path = next_round, opt_out_path

    def choose_branch(self, context: Context) -> str:
        left = int(self.unconfirmed["size"])
        if another_round(self.round_no, int(self.rounds), left):
            self.log.info("Round %d left %d unconfirmed; sending round %d.", self.round_no, left, self.round_no + 1)
            return self.next_round
        self.log.info(
            "Round %d left %d unconfirmed; no further round (rounds=%s): on to the opt-out.",
            self.round_no,
            left,
            self.rounds,
        )
        return self.opt_out_path


class CheckGuardsOperator(BaseOperator):
    """The last look before the irreversible step; fails with the numbers if anything looks wrong.

    :param metrics: outputs of every round's ``review_metrics`` (skipped rounds are ``None``).
    :param confirmed: output of ``refresh_confirmed_list``.
    :param export: output of ``export_unconfirmed``.
    :param max_fraction: the run's ``max_opt_out_fraction``.
    """

    template_fields: Sequence[str] = ("metrics", "confirmed", "export", "max_fraction")
    ui_color = "#ffab91"

    def __init__(self, *, metrics: Any, confirmed: Any, export: Any, max_fraction: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics, self.confirmed, self.export, self.max_fraction = metrics, confirmed, export, max_fraction

    def execute(self, context: Context) -> dict[str, Any]:
        if not isinstance(self.export, dict) or not isinstance(self.confirmed, dict):
            raise GuardTripped(
                "Nobody was opted out: the export or the last read of list 1 left no result "
                f"(export={self.export!r}, confirmed={self.confirmed!r})."
            )
        rounds = [m for m in as_outputs(self.metrics) if m]
        figures = GuardFigures(
            sent=int(rounds[0]["sent"]) if rounds else 0,
            delivered=sum(int(m["delivered"]) for m in rounds),
            click_stat=sum(int(m["click"]) for m in rounds),
            cta_clickers=int(self.confirmed["confirmed"]),
            to_opt_out=int(self.export["rows"]),
            max_fraction=float(self.max_fraction),
        )
        problems = guard_problems(figures)
        if problems:
            raise GuardTripped(
                f"Nobody was opted out from {self.export.get('export_uri', 'the export')}, because:\n- "
                + "\n- ".join(problems)
            )
        already = already_opted_out(ObjectStoragePath(str(self.export["export_uri"])), str(context["run_id"]))
        self.log.info(
            "Guards passed: %s. %d of the %d contacts in list 2 were already opted out by an earlier try "
            "of this run (the audit ledger).",
            figures,
            already,
            figures.to_opt_out,
        )
        return {
            "sent": figures.sent,
            "to_opt_out": figures.to_opt_out,
            "cta_clickers": figures.cta_clickers,
            "already_opted_out": already,
            "would_change": figures.to_opt_out - already,
        }


def already_opted_out(export: ObjectStoragePath, run_id: str) -> int:
    """How many rows of the export an earlier try of this run already opted out, by the audit ledger."""
    done = audit.opted_out_ids(audit.read_ledger(audit.ledger_folder(export.parent), run_id))
    if not done:
        return 0
    found = 0
    with export.open("r") as handle:
        for chunk in report.read_opt_out_file(handle, run_id):
            found += int(chunk["contact_id"].isin(done).sum())
    return found


class FailIfAnyFailedOperator(BaseOperator):
    """Make the run fail when any task failed, although the report (``all_done``) still succeeds.

    Airflow derives a run's state from its last tasks; the report runs whatever happened, so without
    this a campaign whose opt-out failed would show as a success. Runs only when an upstream task
    failed (trigger rule ``one_failed``) and is skipped otherwise.
    """

    ui_color = "#ef9a9a"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)

    def execute(self, context: Context) -> None:
        raise HubSpotPermanentError("A task of this campaign failed; see the failed task's log and the report.")


class NeedsApprovalOperator(BaseBranchOperator):
    """Send the opt-out through a person's approval when the run asks for it."""

    template_fields: Sequence[str] = ("require_approval",)

    def __init__(self, *, require_approval: Any, approval_task: str, opt_out_task: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.require_approval, self.approval_task, self.opt_out_task = require_approval, approval_task, opt_out_task

    def choose_branch(self, context: Context) -> Iterable[str]:
        needed = self.require_approval is True or str(self.require_approval).lower() == "true"
        return [self.approval_task] if needed else [self.opt_out_task]
