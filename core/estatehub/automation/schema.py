"""The ``automations:`` config section, in Home Assistant's shape.

Both spellings HA users know are accepted: the 2024.10+ plural keys (``triggers``,
``conditions``, ``actions``, ``trigger: state`` inside a trigger, ``action: light.turn_on``
for a service call) and the older singular ones (``trigger``, ``condition``, ``action``,
``platform: state``, ``service:``). Validation returns one normalised spelling, which
validates again to itself, so the engine can check what it is given.

Every error carries the path of the key it is about (``[2, "triggers", 0, "entity_id"]``),
so the core's ``config.validate`` turns it into ``estate.yaml, line 31: automations[2] →
triggers[0] → entity_id: …``. Templates are syntax-checked here, at load time.

Our extensions to Home Assistant's format: the ``incident`` trigger and the ``notify:``
action (see the engine's module docstring).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import voluptuous as vol

from .. import config_validation as cv
from ..config import ConfigIssue, position
from .errors import TemplateError
from .templates import check_syntax, is_template

__all__ = [
    "ACTION_KINDS",
    "AUTOMATIONS_SCHEMA",
    "AUTOMATION_SCHEMA",
    "CONDITION_KINDS",
    "INCIDENT_EVENTS",
    "MODES",
    "SERVICE_NAME",
    "TRIGGER_KINDS",
    "action_kind",
    "estate_issues",
    "parse_duration",
    "validate_automation",
    "validate_automations",
]

MODES = ("single", "restart", "queued", "parallel")
INCIDENT_EVENTS = ("raised", "escalated", "acknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical", "safety")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_EXCEEDED = (
    "silent",
    "critical",
    "fatal",
    "error",
    "warning",
    "warn",
    "info",
    "debug",
    "notset",
)
DEFAULT_MAX_RUNS = 10
DEFAULT_STORED_TRACES = 5

SERVICE_NAME = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")
"""A service name as actions write it: ``domain.service``."""
_AUTOMATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")

# --------------------------------------------------------------------------- building blocks


def _hint(name: Any, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise vol.Invalid(f"expected text, got {cv.describe_value(value)}")
    text = str(value)
    if not text.strip():
        raise vol.Invalid("cannot be empty")
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise vol.Invalid(f"expected true or false, got {cv.describe_value(value)}")


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise vol.Invalid(f"expected a number, got {cv.describe_value(value)}")


def _number_or_entity(value: Any) -> float | str:
    """A threshold: a number, or the entity id of a sensor whose state is the number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return cv.entity_id(value)
        except vol.Invalid:
            pass
    raise vol.Invalid(
        f"expected a number or the entity id of a numeric sensor, got {cv.describe_value(value)}"
    )


def _entity_ids(value: Any) -> list[str]:
    """One entity id, a list of them, or a comma-separated string of them."""
    if isinstance(value, str) and "," in value:
        value = [part.strip() for part in value.split(",")]
    items = cv.ensure_list(value)
    if not items:
        raise vol.Invalid("name at least one entity id")
    return [str(item) for item in cv.list_of(cv.entity_id)(items)]


def _state_value(value: Any) -> str:
    if isinstance(value, bool):
        raise vol.Invalid(
            "YAML reads on/off/yes/no/true/false without quotes as true or false; "
            "write the state in quotes, e.g. 'on'"
        )
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return str(value)
    raise vol.Invalid(f"expected a state such as 'on', got {cv.describe_value(value)}")


def _state_values(value: Any) -> list[str]:
    return [_state_value(item) for item in cv.ensure_list(value)] if value is not None else []


def _state_values_or_any(value: Any) -> list[str] | None:
    """``to: ~`` (written but empty) means any state, as long as the state changes."""
    return None if value is None else _state_values(value)


_DURATION_HHMM = re.compile(r"(?P<h>\d+):(?P<m>[0-5]\d)")
_DURATION_FIELDS = ("days", "hours", "minutes", "seconds", "milliseconds")


def _duration(value: Any) -> dt.timedelta:
    """A duration: ``30s``, ``5m``, ``90``, ``00:05:00``, ``00:05`` (HH:MM) or a mapping."""
    if isinstance(value, dict):
        unknown = [key for key in value if key not in _DURATION_FIELDS]
        if unknown:
            raise vol.Invalid(
                f"unknown duration field '{unknown[0]}'{_hint(unknown[0], _DURATION_FIELDS)}; "
                f"use {', '.join(_DURATION_FIELDS)}"
            )
        parts = {key: _number(amount) for key, amount in value.items()}
        return dt.timedelta(**parts)
    if isinstance(value, str):
        match = _DURATION_HHMM.fullmatch(value.strip())
        if match:
            return dt.timedelta(hours=int(match["h"]), minutes=int(match["m"]))
    return cv.duration(value)


parse_duration = _duration
"""Parse a duration as automations write it (also ``HH:MM`` and a mapping of units)."""


def _signed_duration(value: Any) -> dt.timedelta:
    """A duration that may be negative (``-00:45:00``, ``-45m``, ``-2700``)."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.timedelta(seconds=value)
    if isinstance(value, str) and value.strip().startswith("-"):
        return -_duration(value.strip()[1:])
    if isinstance(value, str) and value.strip().startswith("+"):
        return _duration(value.strip()[1:])
    return _duration(value)


def _template(value: Any) -> str:
    """A Jinja template, syntax-checked now."""
    if not isinstance(value, str):
        raise vol.Invalid(
            "expected a template such as \"{{ states('sensor.x') | float > 30 }}\", "
            f"got {cv.describe_value(value)}"
        )
    try:
        check_syntax(value)
    except TemplateError as err:
        raise vol.Invalid(f"invalid template: {err.reason}") from None
    return value


def _template_or(validator: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A value that may also be written as a template (rendered when the action runs)."""

    def validate(value: Any) -> Any:
        if is_template(value):
            return _template(value)
        return validator(value)

    return validate


def _templates_within(value: Any) -> Any:
    """Data that may hold templates anywhere (service data, event data): check each one."""
    if isinstance(value, str):
        return _template(value) if is_template(value) else value
    if isinstance(value, dict):
        errors: list[vol.Invalid] = []
        checked: dict[Any, Any] = {}
        for key, item in value.items():
            try:
                checked[key] = _templates_within(item)
            except vol.Invalid as err:
                err.prepend([key])
                errors.append(err)
        if errors:
            raise vol.MultipleInvalid(errors)
        return checked
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for index, item in enumerate(value):
            try:
                items.append(_templates_within(item))
            except vol.Invalid as err:
                err.prepend([index])
                raise
        return items
    return value


def _data_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected a mapping, got {cv.describe_value(value)}")
    checked: dict[str, Any] = _templates_within(value)
    return checked


def _variables(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid(
            f"expected a mapping of variable names to values, got {cv.describe_value(value)}"
        )
    for key in value:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise vol.Invalid(
                f"a variable name is letters, digits and '_', not starting with a digit, "
                f"got {cv.describe_value(key)}",
                path=[key],
            )
    return _data_mapping(value)


def _one_of(choices: Iterable[str], what: str) -> Callable[[Any], str]:
    options = tuple(choices)

    def validate(value: Any) -> str:
        if isinstance(value, str) and value in options:
            return str(value)
        raise vol.Invalid(
            f"{what} must be one of: {', '.join(options)}; got {cv.describe_value(value)}"
            f"{_hint(value, options)}"
        )

    return validate


def _list_of_one_of(choices: Iterable[str], what: str) -> Callable[[Any], list[str]]:
    single = _one_of(choices, what)

    def validate(value: Any) -> list[str]:
        items = cv.ensure_list(value)
        if not items:
            raise vol.Invalid(f"name at least one {what}")
        return list(cv.list_of(single)(items))

    return validate


def _texts(value: Any) -> list[str]:
    items = cv.ensure_list(value)
    if not items:
        raise vol.Invalid("name at least one")
    return [str(item) for item in cv.list_of(_text)(items)]


def _key_name(key: Any) -> str:
    return str(key.schema if isinstance(key, vol.Marker) else key)


def _mapping(
    what: str, fields: Mapping[Any, Any], *checks: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[Any], dict[str, Any]]:
    """Validate a mapping of options: unknown keys named with a suggestion, then ``checks``."""
    names = {_key_name(key) for key in fields}
    schema = vol.Schema(dict(fields))

    def validate(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise vol.Invalid(
                f"expected a mapping of {what} options, got {cv.describe_value(value)}"
            )
        errors: list[vol.Invalid] = []
        known: dict[Any, Any] = {}
        for key, item in value.items():
            if key in names:
                known[key] = item
            else:
                errors.append(
                    vol.Invalid(
                        f"unknown option '{key}' for {what}{_hint(key, names)}; "
                        f"it takes: {', '.join(sorted(names))}",
                        path=[key],
                    )
                )
        result: dict[str, Any] = {}
        try:
            result = schema(known)
        except vol.MultipleInvalid as invalid:
            for error in invalid.errors:
                if error.error_message == "required key not provided" and error.path:
                    error = vol.Invalid(
                        f"'{_key_name(error.path[-1])}' is required for {what}", path=error.path
                    )
                errors.append(error)
        if errors:
            raise vol.MultipleInvalid(errors)
        for check in checks:
            result = check(result)
        return result

    return validate


def _exclusive(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in keys if key in value]
        if len(given) > 1:
            raise vol.Invalid(
                f"use only one of {' and '.join(repr(k) for k in keys)}", path=[given[-1]]
            )
        return value

    return check


def _at_least_one(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        if not any(key in value for key in keys):
            raise vol.Invalid(f"give at least one of {', '.join(keys)}")
        return value

    return check


def _thresholds_in_order(value: dict[str, Any]) -> dict[str, Any]:
    above, below = value.get("above"), value.get("below")
    if isinstance(above, float) and isinstance(below, float) and above >= below:
        raise vol.Invalid(
            f"above ({above:g}) must be lower than below ({below:g}), or nothing can match",
            path=["below"],
        )
    return value


# --------------------------------------------------------------------------- triggers

_TRIGGER_COMMON = {
    vol.Optional("id"): _text,
    vol.Optional("alias"): _text,
    vol.Optional("enabled", default=True): _boolean,
    vol.Optional("variables"): _variables,
}


def _time_pattern_field(highest: int) -> Callable[[Any], int | str]:
    def validate(value: Any) -> int | str:
        if isinstance(value, bool):
            raise vol.Invalid(f"expected a number, '*' or '/n', got {cv.describe_value(value)}")
        if isinstance(value, str):
            text = value.strip()
            if text == "*":
                return "*"
            if text.startswith("/") and text[1:].isdigit() and 1 <= int(text[1:]) <= highest:
                return f"/{int(text[1:])}"
            if text.isdigit():
                value = int(text)
        if isinstance(value, int) and 0 <= value <= highest:
            return value
        raise vol.Invalid(
            f"expected a number 0–{highest}, '*' (every) or '/n' (every n-th, 1–{highest}), "
            f"got {cv.describe_value(value)}"
        )

    return validate


_TRIGGER_SCHEMAS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "event": _mapping(
        "an event trigger",
        {
            **_TRIGGER_COMMON,
            vol.Required("event_type"): _texts,
            vol.Optional("event_data"): _data_mapping,
        },
    ),
    "state": _mapping(
        "a state trigger",
        {
            **_TRIGGER_COMMON,
            vol.Required("entity_id"): _entity_ids,
            vol.Optional("from"): _state_values_or_any,
            vol.Optional("to"): _state_values_or_any,
            vol.Optional("not_from"): _state_values,
            vol.Optional("not_to"): _state_values,
            vol.Optional("attribute"): _text,
            vol.Optional("for"): _duration,
        },
        _exclusive("from", "not_from"),
        _exclusive("to", "not_to"),
    ),
    "numeric_state": _mapping(
        "a numeric_state trigger",
        {
            **_TRIGGER_COMMON,
            vol.Required("entity_id"): _entity_ids,
            vol.Optional("above"): _number_or_entity,
            vol.Optional("below"): _number_or_entity,
            vol.Optional("attribute"): _text,
            vol.Optional("value_template"): _template,
            vol.Optional("for"): _duration,
        },
        _at_least_one("above", "below"),
        _thresholds_in_order,
    ),
    "time": _mapping(
        "a time trigger",
        {
            **_TRIGGER_COMMON,
            vol.Required("at"): vol.All(
                cv.ensure_list, vol.Length(min=1), cv.list_of(cv.time_of_day)
            ),
        },
    ),
    "time_pattern": _mapping(
        "a time_pattern trigger",
        {
            **_TRIGGER_COMMON,
            vol.Optional("hours"): _time_pattern_field(23),
            vol.Optional("minutes"): _time_pattern_field(59),
            vol.Optional("seconds"): _time_pattern_field(59),
        },
        _at_least_one("hours", "minutes", "seconds"),
    ),
    "sun": _mapping(
        "a sun trigger",
        {
            **_TRIGGER_COMMON,
            vol.Required("event"): _one_of(("sunrise", "sunset"), "the sun event"),
            vol.Optional("offset", default=dt.timedelta(0)): _signed_duration,
        },
    ),
    "incident": _mapping(
        "an incident trigger",
        {
            **_TRIGGER_COMMON,
            vol.Optional("event", default=["raised"]): _list_of_one_of(
                INCIDENT_EVENTS, "incident event"
            ),
            vol.Optional("kind"): _texts,
            vol.Optional("severity"): _list_of_one_of(SEVERITIES, "severity"),
            vol.Optional("location"): _texts,
        },
    ),
}
TRIGGER_KINDS = tuple(_TRIGGER_SCHEMAS)


def _trigger(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise vol.Invalid(
            f"expected a trigger (a mapping such as 'trigger: state'), got {cv.describe_value(value)}"
        )
    if "trigger" in value and "platform" in value:
        raise vol.Invalid(
            "name the trigger kind once: 'trigger:' (or the older 'platform:'), not both",
            path=["platform"],
        )
    key = "trigger" if "trigger" in value else "platform" if "platform" in value else None
    if key is None:
        raise vol.Invalid(
            f"a trigger needs 'trigger:' naming its kind, one of: {', '.join(TRIGGER_KINDS)}"
        )
    kind = value[key]
    schema = _TRIGGER_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise vol.Invalid(
            f"unknown trigger kind {cv.describe_value(kind)}{_hint(kind, TRIGGER_KINDS)}; "
            f"known: {', '.join(TRIGGER_KINDS)}",
            path=[key],
        )
    body = schema({k: v for k, v in value.items() if k != key})
    return {"trigger": str(kind), **body}


_triggers = vol.All(cv.ensure_list, cv.list_of(_trigger))


# --------------------------------------------------------------------------- conditions

_CONDITION_COMMON = {
    vol.Optional("alias"): _text,
    vol.Optional("enabled", default=True): _boolean,
}


def _conditions_list(value: Any) -> list[dict[str, Any]]:
    validated: list[dict[str, Any]] = cv.list_of(_condition)(cv.ensure_list(value))
    return validated


def _condition_schemas() -> dict[str, Callable[[Any], dict[str, Any]]]:
    group: dict[Any, Any] = {**_CONDITION_COMMON, vol.Required("conditions"): _conditions_list}
    return {
        "state": _mapping(
            "a state condition",
            {
                **_CONDITION_COMMON,
                vol.Required("entity_id"): _entity_ids,
                vol.Required("state"): vol.All(_state_values, vol.Length(min=1)),
                vol.Optional("attribute"): _text,
                vol.Optional("for"): _duration,
                vol.Optional("match", default="all"): _one_of(("all", "any"), "match"),
            },
        ),
        "numeric_state": _mapping(
            "a numeric_state condition",
            {
                **_CONDITION_COMMON,
                vol.Required("entity_id"): _entity_ids,
                vol.Optional("above"): _number_or_entity,
                vol.Optional("below"): _number_or_entity,
                vol.Optional("attribute"): _text,
                vol.Optional("value_template"): _template,
            },
            _at_least_one("above", "below"),
            _thresholds_in_order,
        ),
        "time": _mapping(
            "a time condition",
            {
                **_CONDITION_COMMON,
                vol.Optional("after"): cv.time_of_day,
                vol.Optional("before"): cv.time_of_day,
                vol.Optional("weekday"): _list_of_one_of(WEEKDAYS, "weekday"),
            },
            _at_least_one("after", "before", "weekday"),
        ),
        "template": _mapping(
            "a template condition",
            {**_CONDITION_COMMON, vol.Required("value_template"): _template},
        ),
        "trigger": _mapping(
            "a trigger condition", {**_CONDITION_COMMON, vol.Required("id"): _texts}
        ),
        "and": _mapping("an and condition", group),
        "or": _mapping("an or condition", group),
        "not": _mapping("a not condition", group),
    }


_CONDITION_SCHEMAS = _condition_schemas()
CONDITION_KINDS = tuple(_CONDITION_SCHEMAS)
_SHORTHAND_GROUPS = ("and", "or", "not")


def _condition(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        if not is_template(value):
            raise vol.Invalid(
                "a condition written as text must be a template, such as "
                "\"{{ is_state('binary_sensor.door', 'on') }}\"; got "
                f"{cv.describe_value(value)}"
            )
        return {"condition": "template", "value_template": _template(value), "enabled": True}
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected a condition (a mapping), got {cv.describe_value(value)}")
    if "condition" not in value:
        shorthand = [key for key in _SHORTHAND_GROUPS if key in value]
        if len(shorthand) == 1 and len(value) == 1:
            group = shorthand[0]
            try:
                members = _conditions_list(value[group])
            except vol.Invalid as err:
                err.prepend([group])
                raise
            return {"condition": group, "conditions": members, "enabled": True}
        raise vol.Invalid(
            f"a condition needs 'condition:' naming its kind, one of: {', '.join(CONDITION_KINDS)}"
        )
    kind = value["condition"]
    schema = _CONDITION_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise vol.Invalid(
            f"unknown condition kind {cv.describe_value(kind)}{_hint(kind, CONDITION_KINDS)}; "
            f"known: {', '.join(CONDITION_KINDS)}",
            path=["condition"],
        )
    body = schema({k: v for k, v in value.items() if k != "condition"})
    return {"condition": str(kind), **body}


# --------------------------------------------------------------------------- actions

_ACTION_COMMON = {
    vol.Optional("alias"): _text,
    vol.Optional("enabled", default=True): _boolean,
    vol.Optional("continue_on_error", default=False): _boolean,
}


def _service_name(value: Any) -> str:
    if is_template(value):
        return _template(value)
    if isinstance(value, str) and SERVICE_NAME.fullmatch(value):
        return str(value)
    raise vol.Invalid(
        "expected a service such as 'notify.send' (domain.service in lower-case letters, "
        f"digits and '_'), got {cv.describe_value(value)}"
    )


def _target(value: Any) -> dict[str, list[Any]]:
    fields = ("entity_id", "device_id", "area_id")
    if not isinstance(value, dict):
        raise vol.Invalid(
            f"expected a mapping of entity_id, device_id, area_id; got {cv.describe_value(value)}"
        )
    target: dict[str, list[Any]] = {}
    for key, item in value.items():
        if key not in fields:
            raise vol.Invalid(
                f"unknown target '{key}'{_hint(key, fields)}; use {', '.join(fields)}", path=[key]
            )
        target[str(key)] = [_templates_within(entry) for entry in cv.ensure_list(item)]
    return target


def _merge_service_data(value: dict[str, Any]) -> dict[str, Any]:
    # `service:` and `data_template:` are the older spellings of `action:` and `data:`.
    if "service" in value:
        value["action"] = value.pop("service")
    old_data = value.pop("data_template", None)
    if old_data:
        value["data"] = {**old_data, **value.get("data", {})}
    return value


def _repeat_body(value: Any) -> dict[str, Any]:
    validated = _mapping(
        "a repeat",
        {
            vol.Optional("count"): _template_or(cv.positive_int),
            vol.Optional("while"): _conditions_list,
            vol.Optional("until"): _conditions_list,
            vol.Optional("for_each"): _template_or(vol.All(cv.ensure_list, _templates_within)),
            vol.Required("sequence"): lambda v: _sequence(v),
        },
    )(value)
    loops = [key for key in ("count", "while", "until", "for_each") if key in validated]
    if len(loops) != 1:
        raise vol.Invalid(
            "a repeat needs exactly one of count, while, until, for_each"
            + (f" (got {', '.join(loops)})" if loops else "")
        )
    return validated


def _choose_option(value: Any) -> dict[str, Any]:
    option = _mapping(
        "a choose option",
        {
            vol.Optional("alias"): _text,
            vol.Optional("conditions"): _conditions_list,
            vol.Optional("condition"): _conditions_list,
            vol.Required("sequence"): lambda v: _sequence(v),
        },
        _exclusive("conditions", "condition"),
    )(value)
    if "condition" in option:
        option["conditions"] = option.pop("condition")
    option.setdefault("conditions", [])
    return option


def _notify_body(value: Any) -> dict[str, Any]:
    return _mapping(
        "a notify action",
        {
            vol.Optional("target"): vol.All(cv.ensure_list, cv.list_of(_templates_within)),
            vol.Required("message"): _templates_within,
            vol.Optional("title"): _templates_within,
            vol.Optional("data"): _data_mapping,
        },
    )(value)


def _action_schemas() -> dict[str, Callable[[Any], dict[str, Any]]]:
    sequence = lambda v: _sequence(v)  # noqa: E731 - late-bound: actions nest
    return {
        "call_service": _mapping(
            "a service call",
            {
                **_ACTION_COMMON,
                vol.Optional("action"): _service_name,
                vol.Optional("service"): _service_name,
                vol.Optional("data"): _data_mapping,
                vol.Optional("data_template"): _data_mapping,
                vol.Optional("target"): _target,
                vol.Optional("response_variable"): _text,
            },
            _exclusive("action", "service"),
            _merge_service_data,
        ),
        "delay": _mapping(
            "a delay", {**_ACTION_COMMON, vol.Required("delay"): _template_or(_duration)}
        ),
        "wait_for_trigger": _mapping(
            "a wait_for_trigger",
            {
                **_ACTION_COMMON,
                vol.Required("wait_for_trigger"): vol.All(_triggers, vol.Length(min=1)),
                vol.Optional("timeout"): _template_or(_duration),
                vol.Optional("continue_on_timeout", default=True): _boolean,
            },
        ),
        "choose": _mapping(
            "a choose",
            {
                **_ACTION_COMMON,
                vol.Required("choose"): vol.All(
                    cv.ensure_list, vol.Length(min=1), cv.list_of(_choose_option)
                ),
                vol.Optional("default"): sequence,
            },
        ),
        "if": _mapping(
            "an if",
            {
                **_ACTION_COMMON,
                vol.Required("if"): _conditions_list,
                vol.Required("then"): sequence,
                vol.Optional("else"): sequence,
            },
        ),
        "repeat": _mapping("a repeat", {**_ACTION_COMMON, vol.Required("repeat"): _repeat_body}),
        "event": _mapping(
            "an event action",
            {
                **_ACTION_COMMON,
                vol.Required("event"): _template_or(_text),
                vol.Optional("event_data"): _data_mapping,
                vol.Optional("event_data_template"): _data_mapping,
            },
            _merge_event_data,
        ),
        "notify": _mapping(
            "a notify action", {**_ACTION_COMMON, vol.Required("notify"): _notify_body}
        ),
        "stop": _mapping(
            "a stop",
            {
                **_ACTION_COMMON,
                vol.Required("stop"): _templates_within,
                vol.Optional("error", default=False): _boolean,
            },
        ),
        "variables": _mapping(
            "a variables action", {**_ACTION_COMMON, vol.Required("variables"): _variables}
        ),
    }


def _merge_event_data(value: dict[str, Any]) -> dict[str, Any]:
    old_data = value.pop("event_data_template", None)
    if old_data:
        value["event_data"] = {**old_data, **value.get("event_data", {})}
    return value


_ACTION_SCHEMAS = _action_schemas()
# The key that tells which kind an action is, in the order Home Assistant looks for them.
_ACTION_KEYS = (
    ("action", "call_service"),
    ("service", "call_service"),
    ("delay", "delay"),
    ("wait_for_trigger", "wait_for_trigger"),
    ("choose", "choose"),
    ("if", "if"),
    ("repeat", "repeat"),
    ("event", "event"),
    ("notify", "notify"),
    ("stop", "stop"),
    ("variables", "variables"),
    ("condition", "condition"),
)
ACTION_KINDS = (*_ACTION_SCHEMAS, "condition")


def action_kind(action: Mapping[str, Any]) -> str | None:
    """Which kind of action a mapping is (``call_service``, ``delay`` …), or None."""
    for key, kind in _ACTION_KEYS:
        if key in action:
            return kind
    return None


def _action(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected an action (a mapping), got {cv.describe_value(value)}")
    kind = action_kind(value)
    if kind is None:
        raise vol.Invalid(
            "an action needs one of: action (a service call such as 'action: notify.send'), "
            "delay, wait_for_trigger, choose, if, repeat, event, notify, stop, variables, "
            "condition"
        )
    if kind == "condition":
        extra = {key: value[key] for key in ("continue_on_error",) if key in value}
        body = {k: v for k, v in value.items() if k not in extra}
        condition = _condition(body)
        condition["continue_on_error"] = _boolean(extra.get("continue_on_error", False))
        return condition
    return _ACTION_SCHEMAS[kind](value)


def _sequence(value: Any) -> list[dict[str, Any]]:
    validated: list[dict[str, Any]] = cv.list_of(_action)(cv.ensure_list(value))
    return validated


# --------------------------------------------------------------------------- automations


def _automation_id(value: Any) -> str:
    text = _text(value)
    if not _AUTOMATION_ID.fullmatch(text):
        raise vol.Invalid(
            "an automation id is letters, digits, '_', '-' and '.' (it appears in API paths), "
            f"got {cv.describe_value(value)}"
        )
    return text


_PAIRS = (("triggers", "trigger"), ("conditions", "condition"), ("actions", "action"))

_AUTOMATION_FIELDS = _mapping(
    "an automation",
    {
        vol.Optional("id"): _automation_id,
        vol.Optional("alias"): _text,
        vol.Optional("description"): vol.Any(None, _text),
        vol.Optional("mode", default="single"): _one_of(MODES, "mode"),
        vol.Optional("max", default=DEFAULT_MAX_RUNS): cv.positive_int,
        vol.Optional("max_exceeded", default="warning"): _one_of(MAX_EXCEEDED, "max_exceeded"),
        vol.Optional("initial_state", default=True): _boolean,
        vol.Optional("trace", default=dict): vol.All(
            lambda v: {} if v is None else v,
            _mapping(
                "trace",
                {vol.Optional("stored_traces", default=DEFAULT_STORED_TRACES): cv.positive_int},
            ),
        ),
        vol.Optional("variables"): _variables,
        vol.Optional("triggers"): _triggers,
        vol.Optional("trigger"): _triggers,
        vol.Optional("conditions"): _conditions_list,
        vol.Optional("condition"): _conditions_list,
        vol.Optional("actions"): _sequence,
        vol.Optional("action"): _sequence,
    },
)


def validate_automation(value: Any) -> dict[str, Any]:
    """Validate one automation; returns it with the plural keys and defaults filled in.

    ``id`` stays out when not written; :func:`validate_automations` gives it one.
    """
    if isinstance(value, dict) and "use_blueprint" in value:
        raise vol.Invalid(
            "use_blueprint needs the blueprint loader, which expands it before automations "
            "are validated",
            path=["use_blueprint"],
        )
    if isinstance(value, dict):
        for plural, singular in _PAIRS:
            if plural in value and singular in value:
                raise vol.Invalid(
                    f"write either '{plural}' or the older '{singular}', not both",
                    path=[singular],
                )
    automation = _AUTOMATION_FIELDS(value)
    for plural, singular in _PAIRS:
        if singular in automation:
            automation[plural] = automation.pop(singular)
    if not automation.get("triggers"):
        raise vol.Invalid("an automation needs 'triggers' (or the older 'trigger'): what starts it")
    if "actions" not in automation:
        raise vol.Invalid("an automation needs 'actions' (or the older 'action'): what it does")
    automation.setdefault("conditions", [])
    automation.setdefault("variables", {})
    automation.setdefault("description", None)
    return automation


def _default_id(automation: Mapping[str, Any], number: int) -> str:
    slug = _SLUG_CHARS.sub("_", str(automation.get("alias", "")).lower()).strip("_")
    return slug or f"automation_{number}"


def validate_automations(value: Any) -> list[dict[str, Any]]:
    """Validate the ``automations:`` list; every automation gets an id, and ids are unique.

    An automation written without ``id`` is named from its alias (``Lights at sunset`` →
    ``lights_at_sunset``), or ``automation_N`` by its place in the list.
    """
    items = cv.ensure_list(value)
    automations = cv.list_of(validate_automation)(items)
    first_use: dict[str, int] = {}
    errors: list[vol.Invalid] = []
    for index, automation in enumerate(automations):
        written = "id" in automation
        if not written:
            automation["id"] = _default_id(automation, index + 1)
        automation["id"] = str(automation["id"])
        earlier = first_use.setdefault(automation["id"], index)
        if earlier != index:
            where = (
                position(items[earlier], "id")
                if "id" in items[earlier]
                else position(items[earlier])
            )
            seen = f"line {where[1]}" if where else f"automation {earlier + 1} in the list"
            errors.append(
                vol.Invalid(
                    f"duplicate automation id '{automation['id']}': already used on {seen}"
                    + ("" if written else "; give this automation an id of its own"),
                    path=[index, "id"] if written else [index],
                )
            )
    if errors:
        raise vol.MultipleInvalid(errors)
    return automations


AUTOMATIONS_SCHEMA = vol.Schema(validate_automations)
"""The ``automations:`` section: a list of automations (see :func:`validate_automations`)."""

AUTOMATION_SCHEMA = vol.Schema(validate_automation)
"""One automation (for blueprints, which build one at a time)."""


def estate_issues(
    raw: Any,
    automations: list[Mapping[str, Any]],
    *,
    latitude: float | None,
    longitude: float | None,
    section: str = "automations",
) -> list[ConfigIssue]:
    """What only the whole estate config reveals, with file and line: a ``sun`` trigger in
    an estate without coordinates.

    :param raw: the ``automations:`` section as loaded (with positions), e.g.
        ``config.raw["automations"]``.
    :param automations: the same section validated by :data:`AUTOMATIONS_SCHEMA`.
    """
    if latitude is not None and longitude is not None:
        return []
    issues: list[ConfigIssue] = []
    items = cv.ensure_list(raw)
    for index, automation in enumerate(automations):
        written = items[index] if index < len(items) else None
        key = "trigger" if isinstance(written, dict) and "trigger" in written else "triggers"
        written_triggers = cv.ensure_list(written.get(key)) if isinstance(written, dict) else []
        for number, trigger in enumerate(automation["triggers"]):
            if trigger["trigger"] != "sun":
                continue
            node = written_triggers[number] if number < len(written_triggers) else written
            file, line = position(node) or ("", None)
            issues.append(
                ConfigIssue(
                    file,
                    line,
                    (section, index, key, number),
                    "a sun trigger needs the estate's coordinates: set estate → latitude and "
                    "longitude",
                )
            )
    return issues
