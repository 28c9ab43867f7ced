"""List filters (CRM Lists v3): validate and normalise a ``filterBranch``, and compile it to SQL.

HubSpot enforces one structure (HUBSPOT_API.md §3.2): a root ``OR`` branch without filters whose children
are ``AND`` branches holding the filters. A record is a member when it passes every filter of at least one
``AND`` branch. :func:`normalise` rejects anything else with HubSpot's 400 and fills the defaults HubSpot
echoes back (``filterBranchOperator``, ``includeObjectsWithNoValueSet: false``, ...). :func:`compile_branch`
turns the normalised branch into one SQL condition over ``contacts c``, so a DYNAMIC list is evaluated by a
single ``INSERT ... SELECT`` however many contacts the portal holds.

``includeObjectsWithNoValueSet``: with ``true`` a record with no value passes the filter; with ``false``
it fails, for negative operators too (``IS_NOT_EQUAL_TO``, ``IS_NONE_OF``, ...). ``ALL_PROPERTY`` tests
the value's presence itself, so the flag does not change it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors, properties
from .properties import BOOL, DATETIME, ENUMERATION, NUMBER, STRING, Property

DAY_MS = 86_400_000

#: Property types each supported ``operationType`` applies to (None: every type).
OPERATION_TYPES: dict[str, frozenset[str] | None] = {
    "ALL_PROPERTY": None,
    "BOOL": frozenset({BOOL}),
    "NUMBER": frozenset({NUMBER}),
    "NUMBER_RANGED": frozenset({NUMBER}),
    "STRING": frozenset({STRING}),
    "MULTISTRING": frozenset({STRING}),
    "ENUMERATION": frozenset({ENUMERATION}),
    "DATETIME": frozenset({DATETIME}),
    "RANGED_DATE": frozenset({DATETIME}),
    "ROLLING_DATE_RANGE": frozenset({DATETIME}),
    "TIME_POINT": frozenset({DATETIME}),
    "TIME_RANGED": frozenset({DATETIME}),
}

OPERATORS: dict[str, tuple[str, ...]] = {
    "ALL_PROPERTY": ("IS_KNOWN", "IS_UNKNOWN"),
    "BOOL": ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO"),
    "NUMBER": (
        "IS_EQUAL_TO",
        "IS_NOT_EQUAL_TO",
        "IS_GREATER_THAN",
        "IS_GREATER_THAN_OR_EQUAL_TO",
        "IS_LESS_THAN",
        "IS_LESS_THAN_OR_EQUAL_TO",
    ),
    "NUMBER_RANGED": ("IS_BETWEEN", "IS_NOT_BETWEEN"),
    "STRING": ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO", "CONTAINS", "DOES_NOT_CONTAIN", "STARTS_WITH", "ENDS_WITH"),
    "MULTISTRING": ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO", "CONTAINS", "DOES_NOT_CONTAIN", "STARTS_WITH", "ENDS_WITH"),
    "ENUMERATION": ("IS_ANY_OF", "IS_NONE_OF", "IS_EXACTLY", "IS_NOT_EXACTLY", "CONTAINS_ALL", "DOES_NOT_CONTAIN_ALL"),
    "DATETIME": ("IS_EQUAL_TO", "IS_BEFORE_DATE", "IS_AFTER_DATE"),
    "RANGED_DATE": ("IS_BETWEEN", "IS_NOT_BETWEEN"),
    "ROLLING_DATE_RANGE": (
        "IS_MORE_THAN_X_DAYS_AGO",
        "IS_LESS_THAN_X_DAYS_AGO",
        "IS_MORE_THAN_X_DAYS_FROM_NOW",
        "IS_LESS_THAN_X_DAYS_FROM_NOW",
    ),
    "TIME_POINT": ("IS_BEFORE", "IS_AFTER"),
    "TIME_RANGED": ("IS_BETWEEN", "IS_NOT_BETWEEN"),
}

#: Operators that pass when the value does NOT match (a missing value still fails them by default).
NEGATIVE = frozenset(
    {"IS_NOT_EQUAL_TO", "DOES_NOT_CONTAIN", "IS_NONE_OF", "IS_NOT_EXACTLY", "DOES_NOT_CONTAIN_ALL", "IS_NOT_BETWEEN"}
)

#: Operation types whose result depends on the clock, so a DYNAMIC list using them must re-evaluate with time.
CLOCK_DEPENDENT = frozenset({"ROLLING_DATE_RANGE", "TIME_POINT", "TIME_RANGED"})

_OFFSET_UNITS = ("years", "quarters", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds")
_DATE_FIELDS = ("year", "month", "day", "hour", "minute", "second", "millisecond")


def _bad(message: str) -> errors.HubSpotError:
    return errors.validation_error(message, field="filterBranch")


# -- normalisation ----------------------------------------------------------------------------------


@dataclass
class Normalised:
    """A validated filter branch as HubSpot echoes it, and what evaluating it depends on."""

    branch: dict[str, Any]
    list_ids: set[int] = field(default_factory=set)
    clock_dependent: bool = False


def normalise(branch: Any, default_zone: str = "US/Eastern") -> Normalised:
    """Validate HubSpot's enforced structure and fill defaults; 400 VALIDATION_ERROR on anything else."""
    result = Normalised({})
    if not isinstance(branch, dict):
        raise _bad("filterBranch must be a JSON object.")
    root = _branch_head(branch, "OR", "the root filter branch")
    if branch.get("filters"):
        raise _bad("The root OR filter branch must not hold filters; put them in child AND filter branches.")
    children = branch.get("filterBranches")
    if not isinstance(children, list) or not children:
        raise _bad("The root OR filter branch needs at least one child AND filter branch in filterBranches.")
    root["filters"] = []
    root["filterBranches"] = [_and_branch(child, i, result, default_zone) for i, child in enumerate(children)]
    result.branch = root
    return result


def _branch_head(branch: dict[str, Any], expected: str, what: str) -> dict[str, Any]:
    kind = branch.get("filterBranchType")
    if kind != expected:
        raise _bad(
            f"{what} must have filterBranchType {expected!r}, got {kind!r}. HubSpot requires a root OR "
            "branch whose children are AND branches holding the filters."
        )
    operator = branch.get("filterBranchOperator", expected)
    if operator != expected:
        raise _bad(f"{what}: filterBranchOperator must be {expected!r} for a {expected} branch, got {operator!r}.")
    head = {k: v for k, v in branch.items() if k not in ("filters", "filterBranches")}
    head["filterBranchOperator"] = expected
    return head


def _and_branch(branch: Any, index: int, result: Normalised, zone: str) -> dict[str, Any]:
    what = f"filterBranches[{index}]"
    if not isinstance(branch, dict):
        raise _bad(f"{what} must be a JSON object.")
    out = _branch_head(branch, "AND", what)
    nested = branch.get("filterBranches") or []
    if not isinstance(nested, list):
        raise _bad(f"{what}.filterBranches must be a list.")
    if nested:
        kinds = sorted({str(b.get("filterBranchType")) if isinstance(b, dict) else "?" for b in nested})
        raise _bad(
            f"{what}: nested filter branches ({', '.join(kinds)}) are not supported by the sandbox; "
            "an AND branch may only hold filters here."
        )
    filters = branch.get("filters")
    if not isinstance(filters, list) or not filters:
        raise _bad(f"{what}: an AND filter branch needs at least one filter.")
    out["filters"] = [_filter(f, f"{what}.filters[{i}]", result, zone) for i, f in enumerate(filters)]
    out["filterBranches"] = []
    return out


def _filter(item: Any, what: str, result: Normalised, zone: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad(f"{what} must be a JSON object.")
    kind = item.get("filterType")
    if kind == "PROPERTY":
        return _property_filter(item, what, result, zone)
    if kind == "IN_LIST":
        return _in_list_filter(item, what, result)
    if kind == "CONSTANT":
        if not isinstance(item.get("shouldAccept"), bool):
            raise _bad(f"{what}: a CONSTANT filter needs a boolean shouldAccept.")
        return dict(item)
    if not isinstance(kind, str):
        raise _bad(f"{what}: filterType is required.")
    raise _bad(f"{what}: filterType {kind!r} is not supported by the sandbox (supported: PROPERTY, IN_LIST, CONSTANT).")


def _in_list_filter(item: dict[str, Any], what: str, result: Normalised) -> dict[str, Any]:
    operator = item.get("operator")
    if operator not in ("IN_LIST", "NOT_IN_LIST"):
        raise _bad(f"{what}: an IN_LIST filter's operator must be IN_LIST or NOT_IN_LIST, got {operator!r}.")
    raw = item.get("listId")
    try:
        list_id = int(str(raw))
    except ValueError as err:
        raise _bad(f"{what}: listId {raw!r} is not a list id.") from err
    metadata = item.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(metadata.get(k), str) for k in ("id", "inListType"))
    ):
        raise _bad(f"{what}: metadata needs string fields id and inListType.")
    result.list_ids.add(list_id)
    return {**item, "listId": str(list_id)}


def _property_filter(item: dict[str, Any], what: str, result: Normalised, zone: str) -> dict[str, Any]:
    name = item.get("property")
    if not isinstance(name, str) or not name:
        raise _bad(f"{what}: a PROPERTY filter needs a property name.")
    prop = properties.resolve(name)
    if prop is None:
        raise _bad(f"{what}: the contact property {name!r} does not exist.")
    operation = item.get("operation")
    if not isinstance(operation, dict):
        raise _bad(f"{what}: a PROPERTY filter needs an operation object.")
    op_type = operation.get("operationType")
    if op_type not in OPERATION_TYPES:
        raise _bad(
            f"{what}: operationType {op_type!r} is not supported by the sandbox (supported: "
            f"{', '.join(OPERATION_TYPES)})."
        )
    allowed = OPERATION_TYPES[op_type]
    if allowed is not None and prop.type not in allowed:
        raise _bad(f"{what}: operationType {op_type} cannot be used with property {name!r} of type {prop.type}.")
    operator = operation.get("operator")
    if operator not in OPERATORS[op_type]:
        raise _bad(
            f"{what}: operator {operator!r} is not valid for operationType {op_type} (valid: "
            f"{', '.join(OPERATORS[op_type])})."
        )
    include = operation.get("includeObjectsWithNoValueSet", False)
    if not isinstance(include, bool):
        raise _bad(f"{what}: includeObjectsWithNoValueSet must be a boolean.")
    out = {**operation, "includeObjectsWithNoValueSet": include}
    _CHECKS[op_type](out, f"{what}.operation", prop, zone)
    result.clock_dependent = result.clock_dependent or op_type in CLOCK_DEPENDENT
    return {**item, "operation": out}


# -- per-operation checks (they also fill defaults into ``op``) --------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_nothing(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    return None


def _check_bool(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    if not isinstance(op.get("value"), bool):
        raise _bad(f"{what}: a BOOL operation needs a boolean value.")


def _check_number(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    if not _is_number(op.get("value")):
        raise _bad(f"{what}: a NUMBER operation needs a numeric value.")


def _check_bounds(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    lower, upper = op.get("lowerBound"), op.get("upperBound")
    if not (_is_int(lower) and _is_int(upper)):
        raise _bad(f"{what}: {op['operationType']} needs integer lowerBound and upperBound.")
    if lower > upper:
        raise _bad(f"{what}: lowerBound must not be greater than upperBound.")
    if op["operationType"] == "RANGED_DATE":
        op.setdefault("requiresTimeZoneConversion", False)


def _check_string(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    if not isinstance(op.get("value"), str):
        raise _bad(f"{what}: a STRING operation needs a string value.")


def _check_values(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    values = op.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _bad(f"{what}: {op['operationType']} needs a non-empty list of string values.")
    if op["operationType"] == "ENUMERATION" and prop.options:
        options = {o.lower() for o in prop.options}  # option values may be mixed case ("Confirmation Pending")
        unknown = [v for v in values if v.lower() not in options]
        if unknown:
            raise _bad(
                f"{what}: {unknown} are not options of property {prop.name!r} (options: {', '.join(prop.options)})."
            )


def _check_datetime(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    if not _is_int(op.get("timestamp")):
        raise _bad(f"{what}: a DATETIME operation needs an integer timestamp (ms since the epoch).")
    op.setdefault("requiresTimeZoneConversion", False)


def _check_rolling(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    days = op.get("numberOfDays")
    if not _is_int(days) or days < 0:
        raise _bad(f"{what}: ROLLING_DATE_RANGE needs a non-negative integer numberOfDays.")
    op.setdefault("requiresTimeZoneConversion", False)


def _check_time_point(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    op.setdefault("type", "TIME_POINT")
    if op["type"] != "TIME_POINT":
        raise _bad(f"{what}: a TIME_POINT operation must have type 'TIME_POINT'.")
    _check_parser(op, what)
    op["timePoint"] = _time_point(op.get("timePoint"), f"{what}.timePoint", zone)


def _check_time_ranged(op: dict[str, Any], what: str, prop: Property, zone: str) -> None:
    op.setdefault("type", "TIME_RANGED")
    if op["type"] != "TIME_RANGED":
        raise _bad(f"{what}: a TIME_RANGED operation must have type 'TIME_RANGED'.")
    _check_parser(op, what)
    for key in ("lowerBoundTimePoint", "upperBoundTimePoint"):
        op[key] = _time_point(op.get(key), f"{what}.{key}", zone)


def _check_parser(op: dict[str, Any], what: str) -> None:
    parser = op.get("propertyParser", "VALUE")
    if parser != "VALUE":
        raise _bad(f"{what}: propertyParser {parser!r} is not supported by the sandbox (only VALUE).")


def _time_point(point: Any, what: str, zone: str) -> dict[str, Any]:
    if not isinstance(point, dict):
        raise _bad(f"{what} must be a JSON object.")
    out = dict(point)
    out.setdefault("zoneId", zone)
    try:
        zoneinfo.ZoneInfo(str(out["zoneId"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise _bad(f"{what}: unknown zoneId {out['zoneId']!r}.") from err
    kind = out.get("timeType")
    if kind == "DATE":
        missing = [k for k in ("year", "month", "day") if not _is_int(out.get(k))]
        wrong = [k for k in _DATE_FIELDS if k in out and not _is_int(out[k])]
        if missing or wrong:
            raise _bad(f"{what}: a DATE time point needs integer {', '.join(missing + wrong)}.")
        _date_point_ms(out, what)
        return out
    if kind == "INDEXED":
        reference = out.get("indexReference")
        if not isinstance(reference, dict) or reference.get("referenceType") not in ("NOW", "TODAY"):
            got = reference.get("referenceType") if isinstance(reference, dict) else reference
            raise _bad(f"{what}: indexReference.referenceType {got!r} is not supported by the sandbox (NOW or TODAY).")
        offset = out.get("offset", {})
        if not isinstance(offset, dict) or any(k not in _OFFSET_UNITS or not _is_int(v) for k, v in offset.items()):
            raise _bad(f"{what}: offset may only hold integer {', '.join(_OFFSET_UNITS)}.")
        return out
    raise _bad(f"{what}: timeType {kind!r} is not supported by the sandbox (DATE or INDEXED).")


# -- time arithmetic ----------------------------------------------------------------------------------


def _date_point_ms(point: dict[str, Any], what: str = "timePoint") -> int:
    try:
        stamp = dt.datetime(
            point["year"],
            point["month"],
            point["day"],
            point.get("hour", 0),
            point.get("minute", 0),
            point.get("second", 0),
            point.get("millisecond", 0) * 1000,
            tzinfo=zoneinfo.ZoneInfo(point["zoneId"]),
        )
    except (ValueError, OverflowError) as err:
        raise _bad(f"{what}: not a valid date: {err}.") from err
    return int(stamp.timestamp() * 1000)


def _add_months(stamp: dt.datetime, months: int) -> dt.datetime:
    index = stamp.month - 1 + months
    year, month = stamp.year + index // 12, index % 12 + 1
    day = min(stamp.day, calendar.monthrange(year, month)[1])
    return stamp.replace(year=year, month=month, day=day)


def _indexed_ms(point: dict[str, Any], now_ms: int) -> int:
    zone = zoneinfo.ZoneInfo(point["zoneId"])
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=zone)
    reference = point["indexReference"]
    if reference["referenceType"] == "TODAY":
        stamp = stamp.replace(
            hour=reference.get("hour", 0),
            minute=reference.get("minute", 0),
            second=reference.get("second", 0),
            microsecond=reference.get("millisecond", 0) * 1000,
        )
    offset = point.get("offset", {})
    stamp = _add_months(stamp, 12 * offset.get("years", 0) + 3 * offset.get("quarters", 0) + offset.get("months", 0))
    # Calendar days: add on the wall clock, then resolve the zone again (keeps midnight across DST changes).
    wall = stamp.replace(tzinfo=None) + dt.timedelta(days=7 * offset.get("weeks", 0) + offset.get("days", 0))
    stamp = wall.replace(tzinfo=zone)
    exact = dt.timedelta(
        hours=offset.get("hours", 0),
        minutes=offset.get("minutes", 0),
        seconds=offset.get("seconds", 0),
        milliseconds=offset.get("milliseconds", 0),
    )
    return int(stamp.timestamp() * 1000) + int(exact.total_seconds() * 1000)


def time_point_ms(point: dict[str, Any], now_ms: int) -> int:
    """The instant a normalised time point stands for, relative to the portal's clock."""
    if point["timeType"] == "DATE":
        return _date_point_ms(point)
    return _indexed_ms(point, now_ms)


# -- compilation --------------------------------------------------------------------------------------


@dataclass
class Compiled:
    """A SQL condition over ``contacts c`` and its parameters."""

    sql: str
    params: list[Any]


def compile_branch(branch: dict[str, Any], now_ms: int) -> Compiled:
    """One SQL condition for a normalised branch: OR over the AND branches of their filters."""
    params: list[Any] = []
    ors = []
    for child in branch["filterBranches"]:
        ands = [_compile_filter(f, now_ms, params) for f in child["filters"]]
        ors.append("(" + " AND ".join(ands) + ")")
    return Compiled("(" + " OR ".join(ors) + ")", params)


def _compile_filter(item: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    if item["filterType"] == "CONSTANT":
        return "1" if item["shouldAccept"] else "0"
    if item["filterType"] == "IN_LIST":
        params.append(int(item["listId"]))
        negate = "NOT " if item["operator"] == "NOT_IN_LIST" else ""
        return f"c.id {negate}IN (SELECT record_id FROM memberships WHERE list_id = ?)"  # noqa: S608
    prop = properties.resolve(item["property"])
    assert prop is not None  # normalise() checked it
    op = item["operation"]
    known = (
        f"({prop.sql} IS NOT NULL AND {prop.sql} <> '')"
        if prop.type in (STRING, ENUMERATION)
        else f"({prop.sql} IS NOT NULL)"
    )
    if op["operationType"] == "ALL_PROPERTY":
        return known if op["operator"] == "IS_KNOWN" else f"(NOT {known})"
    condition = _COMPILERS[op["operationType"]](prop.sql, op, now_ms, params)
    if op["includeObjectsWithNoValueSet"]:
        return f"(NOT {known} OR ({condition}))"
    return f"({known} AND ({condition}))"


Compiler = Callable[[str, dict[str, Any], int, list[Any]], str]

_COMPARE = {
    "IS_EQUAL_TO": "=",
    "IS_NOT_EQUAL_TO": "<>",
    "IS_GREATER_THAN": ">",
    "IS_GREATER_THAN_OR_EQUAL_TO": ">=",
    "IS_LESS_THAN": "<",
    "IS_LESS_THAN_OR_EQUAL_TO": "<=",
}


def _compile_bool(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    params.append(1 if op["value"] else 0)
    return f"({x} <> 0) = (? <> 0)" if op["operator"] == "IS_EQUAL_TO" else f"({x} <> 0) <> (? <> 0)"


def _compile_number(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    params.append(op["value"])
    return f"{x} {_COMPARE[op['operator']]} ?"


def _compile_between(x: str, lower: int, upper: int, operator: str, params: list[Any]) -> str:
    params.extend([lower, upper])
    return f"{x} BETWEEN ? AND ?" if operator == "IS_BETWEEN" else f"{x} NOT BETWEEN ? AND ?"


def _compile_ranged(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    return _compile_between(x, op["lowerBound"], op["upperBound"], op["operator"], params)


def _like(value: str, operator: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if operator in ("CONTAINS", "DOES_NOT_CONTAIN"):
        return f"%{escaped}%"
    if operator == "STARTS_WITH":
        return f"{escaped}%"
    if operator == "ENDS_WITH":
        return f"%{escaped}"
    return escaped


def _string_match(x: str, values: list[str], operator: str, params: list[Any]) -> str:
    """Case-insensitive, as HubSpot's string filters are; negative operators pass when no value matches."""
    params.extend(_like(v, operator) for v in values)
    any_match = " OR ".join(f"{x} LIKE ? ESCAPE '\\'" for _ in values)
    return f"NOT ({any_match})" if operator in NEGATIVE else f"({any_match})"


def _compile_string(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    return _string_match(x, [op["value"]], op["operator"], params)


def _compile_multistring(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    return _string_match(x, op["values"], op["operator"], params)


def _compile_enumeration(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    """Single-select enumerations: a record's value set is ``{value}``."""
    values = sorted({v.lower() for v in op["values"]})
    operator = op["operator"]
    if operator in ("IS_ANY_OF", "IS_NONE_OF"):
        params.extend(values)
        test = f"lower({x}) IN ({', '.join('?' for _ in values)})"
    elif len(values) == 1:  # IS_EXACTLY / CONTAINS_ALL of one value: the value set equals it
        params.append(values[0])
        test = f"lower({x}) = ?"
    else:  # a single value can never be exactly, or contain all of, several values
        test = "0"
    return f"NOT ({test})" if operator in NEGATIVE else test


def _compile_datetime(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    operator, stamp = op["operator"], op["timestamp"]
    if operator == "IS_EQUAL_TO":  # the same UTC day
        start = stamp - stamp % DAY_MS
        return _compile_between(x, start, start + DAY_MS - 1, "IS_BETWEEN", params)
    params.append(stamp)
    return f"{x} < ?" if operator == "IS_BEFORE_DATE" else f"{x} > ?"


def _compile_rolling(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    span = op["numberOfDays"] * DAY_MS
    operator = op["operator"]
    if operator == "IS_MORE_THAN_X_DAYS_AGO":
        params.append(now_ms - span)
        return f"{x} < ?"
    if operator == "IS_MORE_THAN_X_DAYS_FROM_NOW":
        params.append(now_ms + span)
        return f"{x} > ?"
    if operator == "IS_LESS_THAN_X_DAYS_AGO":
        return _compile_between(x, now_ms - span, now_ms, "IS_BETWEEN", params)
    return _compile_between(x, now_ms, now_ms + span, "IS_BETWEEN", params)


def _compile_time_point(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    params.append(time_point_ms(op["timePoint"], now_ms))
    inclusive = op.get("endpointBehavior") == "INCLUSIVE"
    if op["operator"] == "IS_BEFORE":
        return f"{x} <= ?" if inclusive else f"{x} < ?"
    return f"{x} >= ?" if inclusive else f"{x} > ?"


def _compile_time_ranged(x: str, op: dict[str, Any], now_ms: int, params: list[Any]) -> str:
    lower = time_point_ms(op["lowerBoundTimePoint"], now_ms)
    upper = time_point_ms(op["upperBoundTimePoint"], now_ms)
    return _compile_between(x, lower, upper, op["operator"], params)


_CHECKS: dict[str, Callable[[dict[str, Any], str, Property, str], None]] = {
    "ALL_PROPERTY": _check_nothing,
    "BOOL": _check_bool,
    "NUMBER": _check_number,
    "NUMBER_RANGED": _check_bounds,
    "STRING": _check_string,
    "MULTISTRING": _check_values,
    "ENUMERATION": _check_values,
    "DATETIME": _check_datetime,
    "RANGED_DATE": _check_bounds,
    "ROLLING_DATE_RANGE": _check_rolling,
    "TIME_POINT": _check_time_point,
    "TIME_RANGED": _check_time_ranged,
}

_COMPILERS: dict[str, Compiler] = {
    "BOOL": _compile_bool,
    "NUMBER": _compile_number,
    "NUMBER_RANGED": _compile_ranged,
    "STRING": _compile_string,
    "MULTISTRING": _compile_multistring,
    "ENUMERATION": _compile_enumeration,
    "DATETIME": _compile_datetime,
    "RANGED_DATE": _compile_ranged,
    "ROLLING_DATE_RANGE": _compile_rolling,
    "TIME_POINT": _compile_time_point,
    "TIME_RANGED": _compile_time_ranged,
}
