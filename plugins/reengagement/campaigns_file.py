"""Many campaigns from one file: ``campaigns.yaml`` declares them, one DAG each (``hubspot_reengagement__<id>``).

A file rather than Python so that adding a brand (business unit) or a subscription type is an edit a marketer
can review. A mistake in one campaign must not stop the others: the campaign is left out, and the file's import
error says which line, campaign and field, e.g. ``campaigns.yaml line 12, campaign "emea", field "schedule": ...``.

The file is read and checked against ``schemas/campaigns.schema.json`` once per parse, with a validator compiled
once per process, so a parse costs the DAGs it builds and little else. Nothing here calls the network.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml  # type: ignore[import-untyped]  # PyYAML, an Airflow dependency, ships no annotations
from airflow.sdk import DAG, CronTriggerTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid
from jsonschema import Draft202012Validator, ValidationError

from .campaign import PARAMS_SCHEMA
from .campaign_dag import FROM_CONFIG, build_campaign_dag

#: Every campaign's DAG id is this and the campaign's id.
DAG_ID_PREFIX = "hubspot_reengagement__"
#: The file's name when ``[hubspot_reengagement] campaigns_file`` is not set: next to the dags file.
DEFAULT_FILE_NAME = "campaigns.yaml"
#: The id of the stand-in that carries the file's problems to Airflow (never bagged, never run); never a
#: campaign's, whose DAG ids are ``hubspot_reengagement__<slug>``.
INVALID_DAG_ID = "hubspot_reengagement.invalid_campaigns"
SCHEMA = "campaigns.schema.json"
#: Schedules Airflow takes that are not cron expressions.
NOT_CRON = ("@once", "@continuous")

#: Where a value sits in the file: ``("campaigns", 2, "params", "rounds")``.
JsonPath = tuple[str | int, ...]
_T = TypeVar("_T")


class CampaignsFileError(ValueError):
    """The campaigns file (or some of its campaigns) cannot be used; the message names every line at fault."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one campaign, where it is in the file."""

    file: str
    line: int
    campaign: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f'{self.file} line {self.line}, campaign "{self.campaign}"'
        if self.field:
            where += f', field "{self.field}"'
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Campaign:
    """A campaign as declared: what :func:`build_campaign_dag` needs, and the file's lines to blame."""

    id: str
    subscription_type: str
    connection_id: str = "hubspot_default"
    business_unit: int = 0
    schedule: str | None = FROM_CONFIG
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The line of the campaign, and of each of its fields and params (``"params.rounds"``).
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.id

    def line_of(self, name: str | None = None) -> int:
        """The line of a field or param (``"params.rounds"``), else of the nearest enclosing one."""
        while name:
            if name in self.lines:
                return self.lines[name]
            name = name.rpartition(".")[0]
        return self.lines.get("", 0)


@dataclass
class CampaignsFile:
    """What a campaigns file declares: the campaigns fit to build, and the problems of the others."""

    path: Path
    campaigns: list[Campaign] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, line: int, campaign: str, field_name: str | None, message: str) -> None:
        self.problems.append(Problem(self.path.name, line, campaign, field_name, message))

    def report(self) -> str:
        """One message for all problems: Airflow keeps one import error per file."""
        head = f"Campaigns left out of {self.path} (the others in it load):"
        return "\n".join([head, *(str(p) for p in sorted(self.problems, key=lambda p: p.line))])


class InvalidCampaigns(DAG):
    """Carries a campaigns file's problems to Airflow as the dags file's import error.

    Airflow validates each DAG a file defines before it keeps it, records what a validation raises as the file's
    import error, and still keeps the file's other DAGs: so the valid campaigns run while the error is shown.
    """

    report: str = ""

    def validate(self) -> None:
        raise CampaignsFileError(self.report)


def configured_campaigns_file(dags_folder: Path) -> Path:
    """``[hubspot_reengagement] campaigns_file``; empty: ``campaigns.yaml`` in ``dags_folder``, which also
    anchors a relative path. Read when the dags file is parsed; a setting, not a call."""
    from airflow.sdk.configuration import conf

    value = str(conf.get("hubspot_reengagement", "campaigns_file", fallback="") or "").strip()
    path = Path(value).expanduser() if value else Path(DEFAULT_FILE_NAME)
    return path if path.is_absolute() else dags_folder / path


def build_campaign_dags(path: Path) -> dict[str, DAG]:
    """A DAG per valid campaign in the file at ``path``, by DAG id; nothing when there is no such file.

    Problems do not raise here: they go to an :class:`InvalidCampaigns` stand-in among the DAGs, which makes
    them the dags file's import error while the other campaigns load.
    """
    if not path.is_file():
        return {}
    try:
        declared = load_campaigns(path)
    except CampaignsFileError as error:
        return {INVALID_DAG_ID: _invalid(str(error))}
    dags: dict[str, DAG] = {}
    with _collector_paused():
        for campaign in declared.campaigns:
            dag = _build(campaign, declared)
            if dag is not None:
                dags[dag.dag_id] = dag
    if declared.problems:
        dags[INVALID_DAG_ID] = _invalid(declared.report())
    return dags


def load_campaigns(path: Path) -> CampaignsFile:
    """The campaigns the file declares, checked: schema, duplicate ids, param names, schedules.

    :raises CampaignsFileError: when the file as a whole is unusable (not YAML, not a ``campaigns`` list).
    """
    declared = CampaignsFile(path)
    data, lines, repeated = _read(path)
    schema_errors: dict[int, list[ValidationError]] = {}
    for error in _validator().iter_errors(data):
        where = tuple(error.absolute_path)
        if len(where) < 2:
            line = lines.get(where, 1)
            raise CampaignsFileError(f"{path.name} line {line}: {_explain(error)}")
        schema_errors.setdefault(int(where[1]), []).append(error)
    for where, key_lines in repeated.items():
        if len(where) < 2:
            raise CampaignsFileError(f"{path.name} line {key_lines[-1]}: {where[0]!r} is given more than once")
    lines_of, repeated_of = _by_campaign(lines), _by_campaign(repeated)
    first_line_of: dict[str, int] = {}
    for index, item in enumerate(data["campaigns"]):
        label = item["id"] if isinstance(item, dict) and isinstance(item.get("id"), str) else f"#{index + 1}"
        problems_before = len(declared.problems)
        for error in schema_errors.get(index, []):
            _schema_problem(declared, error, label, lines)
        for name, key_lines in repeated_of.get(index, {}).items():
            listed = " and ".join(str(n) for n in key_lines)
            declared.problem(key_lines[-1], label, name, f"given more than once (lines {listed})")
        if len(declared.problems) > problems_before:
            continue
        campaign = _campaign(item, lines_of.get(index, {}))
        if _checked(campaign, declared, first_line_of):
            declared.campaigns.append(campaign)
    declared.problems.sort(key=lambda problem: problem.line)
    return declared


# -- reading ---------------------------------------------------------------------------------------------------


def _read(path: Path) -> tuple[Any, dict[JsonPath, int], dict[JsonPath, list[int]]]:
    """The file's data, the line of every value, and the mapping keys given more than once (with their lines)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        raise CampaignsFileError(f"{path.name} line {line}: not valid YAML: {problem}") from error
    finally:
        loader.dispose()
    lines: dict[JsonPath, int] = {}
    repeated: dict[JsonPath, list[int]] = {}
    if node is not None:
        _walk(node, (), lines, repeated)
    return data, lines, repeated


def _walk(node: yaml.Node, at: JsonPath, lines: dict[JsonPath, int], repeated: dict[JsonPath, list[int]]) -> None:
    """Record the line of each value under ``node``: of its key, for a value in a mapping."""
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_at = (*at, str(key_node.value))
            line = key_node.start_mark.line + 1
            if key_at in lines:
                repeated.setdefault(key_at, [lines[key_at]]).append(line)
            lines[key_at] = line
            _walk(value_node, key_at, lines, repeated)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*at, index), lines, repeated)


def _by_campaign(found: Mapping[JsonPath, _T]) -> dict[int, dict[str, _T]]:
    """What was found under each campaign, by its index and dotted field name (``""``: the campaign itself)."""
    grouped: dict[int, dict[str, _T]] = {}
    for path, value in found.items():
        if len(path) >= 2 and path[0] == "campaigns" and isinstance(path[1], int):
            grouped.setdefault(path[1], {})[".".join(str(part) for part in path[2:])] = value
    return grouped


@functools.cache
def _validator() -> Draft202012Validator:
    """Compiled once per process: a dags file is parsed again and again."""
    text = resources.files(__package__).joinpath("schemas", SCHEMA).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# -- checking --------------------------------------------------------------------------------------------------


def _explain(error: ValidationError) -> str:
    """The schema's words for what is wrong, when it has them."""
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and description:
        return f"{error.instance!r} is not {description}"
    if error.validator == "type" and len(error.absolute_path) < 2:
        return "the file must be a mapping with a list of campaigns under 'campaigns:'"
    if error.validator == "type" and len(error.absolute_path) == 2:
        return f"{error.instance!r} is not a campaign: a mapping of id, subscription_type and the other fields"
    return str(error.message)


def _schema_problem(declared: CampaignsFile, error: ValidationError, label: str, lines: dict[JsonPath, int]) -> None:
    """One schema error as a problem naming its campaign, field and line."""
    at = tuple(error.absolute_path)
    name = ".".join(str(part) for part in at[2:]) or None
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        required = error.validator_value if isinstance(error.validator_value, list) else []
        for missing in (p for p in required if p not in instance and repr(p) in error.message):
            about = schema.get("properties", {}).get(missing, {}).get("description", "")
            declared.problem(lines.get(at, 0), label, missing, f"is required ({about})" if about else "is required")
        return
    if error.validator == "additionalProperties":
        known = ", ".join(schema.get("properties", {}))
        for extra in sorted(set(instance) - set(schema.get("properties", {}))):
            declared.problem(lines.get((*at, extra), 0), label, extra, f"unknown field; known: {known}")
        return
    declared.problem(lines.get(at, 0), label, name, _explain(error))


def _campaign(item: Mapping[str, Any], lines: Mapping[str, int]) -> Campaign:
    schedule = item.get("schedule", FROM_CONFIG)
    if isinstance(schedule, str) and schedule.strip().lower() == "none":
        schedule = None
    return Campaign(
        id=item["id"],
        subscription_type=str(item["subscription_type"]),  # an id may be written as a number
        connection_id=item.get("connection_id", "hubspot_default"),
        business_unit=item.get("business_unit", 0),
        schedule=schedule,
        params=dict(item.get("params") or {}),
        lines=lines,
    )


def _checked(campaign: Campaign, declared: CampaignsFile, first_line_of: dict[str, int]) -> bool:
    """What the schema cannot say: unique ids, known params, a cron Airflow accepts. False: left out."""
    problems_before = len(declared.problems)

    def problem(name: str | None, message: str) -> None:
        declared.problem(campaign.line_of(name), campaign.id, name, message)

    if campaign.id in first_line_of:
        problem("id", f"the id is already used by the campaign on line {first_line_of[campaign.id]}")
    else:
        first_line_of[campaign.id] = campaign.line_of()
    for name in sorted(set(campaign.params) - set(PARAMS_SCHEMA)):
        problem(f"params.{name}", f"unknown param; known: {', '.join(PARAMS_SCHEMA)}")
    if "subscription_type" in campaign.params:
        problem("params.subscription_type", "set it as the campaign's subscription_type, not as a param")
    if isinstance(campaign.schedule, str) and campaign.schedule not in (FROM_CONFIG, *NOT_CRON):
        try:
            CronTriggerTimetable(campaign.schedule, timezone="UTC").validate()
        except (AirflowTimetableInvalid, ValueError) as error:
            problem("schedule", f"{campaign.schedule!r} is not a cron expression or preset Airflow accepts: {error}")
    return len(declared.problems) == problems_before


# -- building --------------------------------------------------------------------------------------------------


def _build(campaign: Campaign, declared: CampaignsFile) -> DAG | None:
    """The campaign's DAG, or None with the refusal of :func:`build_campaign_dag` as a problem at its line."""
    try:
        return build_campaign_dag(
            campaign.dag_id,
            hubspot_conn_id=campaign.connection_id,
            business_unit_id=campaign.business_unit,
            schedule=campaign.schedule,
            params={**campaign.params, "subscription_type": campaign.subscription_type},
        )
    except ValueError as error:
        message = str(error).removeprefix(f"{campaign.dag_id}: ")
        fields = {"subscription_type": "subscription_type", **{name: f"params.{name}" for name in campaign.params}}
        name = next((f for param, f in fields.items() if f"param {param!r}" in message), "params")
        declared.problem(campaign.line_of(name), campaign.id, name, message)
        return None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector, paused while the DAGs are built (and restored as it was).

    Its runs re-scan the objects built so far, and a campaign's DAG is many thousands: in a process that parses
    again and again (a DagBag in tests, ``airflow dags list``), ten campaigns cost about 1.3-1.5 x ten times
    one with it running, and ten times one paused. What the build leaves to collect waits for its next run.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _invalid(report: str) -> InvalidCampaigns:
    dag = InvalidCampaigns(dag_id=INVALID_DAG_ID, schedule=None, description="The campaigns file's problems.")
    dag.report = report
    return dag
