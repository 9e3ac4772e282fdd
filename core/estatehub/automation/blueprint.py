"""Blueprints in Home Assistant's format: a shared automation recipe with named inputs.

A blueprint file is an automation whose holes are marked ``!input name``, plus a
``blueprint:`` block that declares each input (``name``, ``description``, ``default``,
``selector``), optionally grouped into sections as Home Assistant 2024.6+ allows::

    blueprint:
      name: Smoke alarm releases the doors
      domain: automation
      input:
        smoke_sensor:
          name: Smoke detector
          selector: {entity: {domain: binary_sensor}}
    triggers:
      - trigger: state
        entity_id: !input smoke_sensor
        to: "on"
    actions: …

An estate uses one from its ``automations:`` list::

    - id: b3_smoke
      use_blueprint:
        path: home/smoke_alarm_release_doors.yaml
        input: {smoke_sensor: binary_sensor.b3_1202_smoke}

The path is looked up in the ``blueprints/`` folder beside the estate config, then in the
blueprints shipped with estatehub. :func:`expand_use_blueprint` turns such an entry into
a plain automation, which the automation schema then validates like any other.

The file is read with the core's positional loader (:mod:`estatehub.config`) extended by
``!input``, so every error names the file and line: an ``!input`` nobody declared, a
selector that is not one of :data:`SELECTOR_TYPES` (or is badly configured), a default that
its selector refuses, an input left out at the ``use_blueprint`` site. Substitution
(:func:`instantiate`) is a pure function; the values it puts in keep their own positions, so
a bad value given in the estate file is reported at its line there.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import voluptuous as vol
import yaml

from .. import config_validation as cv
from ..config import (
    ConfigError,
    ConfigIssue,
    YamlDict,
    YamlList,
    _EstateLoader,
    _LoadContext,
    _nesting_issue,
    _read_config_bytes,
    _syntax_issue,
    _Unreadable,
    position,
    validate,
)

__all__ = [
    "BLUEPRINT_FOLDER",
    "EXTENSIONS",
    "SELECTOR_TYPES",
    "SHIPPED_BLUEPRINTS",
    "Blueprint",
    "BlueprintError",
    "BlueprintInput",
    "InputRef",
    "expand_automations",
    "expand_use_blueprint",
    "instantiate",
    "load_blueprint",
    "validate_file",
]

BLUEPRINT_FOLDER = "blueprints"
"""The folder beside an estate config where its own blueprints live."""

SHIPPED_BLUEPRINTS = Path(__file__).resolve().parents[3] / BLUEPRINT_FOLDER
"""The blueprints shipped in the estatehub repository (``blueprints/<subsystem>/``)."""

EXTENSIONS = ("incident trigger", "notify action")
"""estatehub's additions to Home Assistant's automation format that a blueprint may use."""

# --------------------------------------------------------------------------- errors


class BlueprintError(ConfigError):
    """A blueprint (or a ``use_blueprint:`` entry) that cannot be used.

    :attr:`issues` are :class:`~estatehub.config.ConfigIssue` with the file and line of each
    problem; ``str(error)`` is one issue per line.
    """


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class InputRef:
    """An ``!input name`` written in a blueprint, and where."""

    name: str
    file: str
    line: int


class _BlueprintLoader(_EstateLoader):
    """The core's positional loader, plus ``!input``."""

    yaml_constructors: ClassVar[dict[Any, Any]] = dict(_EstateLoader.yaml_constructors)

    def construct_input(self, node: yaml.Node) -> Any:
        name = self._tag_argument(node, "!input", "the name of an input, e.g. !input smoke_sensor")
        return InputRef(name or "", self._display, self._line(node))

    def construct_unknown_tag(self, node: yaml.Node) -> Any:
        self._report(
            node,
            f"unknown tag '{node.tag}'; a blueprint understands !input (and !include, !secret)",
        )
        return None


_BlueprintLoader.add_constructor("!input", _BlueprintLoader.construct_input)
_BlueprintLoader.add_constructor(None, _BlueprintLoader.construct_unknown_tag)


def _load_yaml(path: Path, display: str) -> Any:
    """Read one blueprint file; every problem found becomes an issue of one BlueprintError."""
    context = _LoadContext(main_dir=path.parent.absolute())
    try:
        text = _read_config_bytes(path).decode("utf-8-sig")
    except _Unreadable as unreadable:
        raise BlueprintError(
            [ConfigIssue(display, None, (), f"cannot read the blueprint: {unreadable}")]
        ) from None
    except UnicodeDecodeError:
        raise BlueprintError(
            [ConfigIssue(display, None, (), "the blueprint is not UTF-8 text")]
        ) from None
    loader = _BlueprintLoader(text, file_path=path, display=display, context=context, stack=())
    data: Any = None
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        context.issues.append(_syntax_issue(error, text, display))
    except RecursionError:
        context.report(display, None, "nested too deeply for the YAML parser's stack")
    finally:
        loader.dispose()
    too_deep = _nesting_issue(data) if not context.issues else None
    if too_deep is not None:
        context.issues.append(too_deep)
    if context.issues:
        raise BlueprintError(context.issues)
    return data


# --------------------------------------------------------------------------- selectors


def _hint(name: Any, known: Any) -> str:
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise vol.Invalid(f"expected true or false, got {cv.describe_value(value)}")


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise vol.Invalid(f"expected a number, got {cv.describe_value(value)}")


def _text(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return str(value)
    raise vol.Invalid(f"expected text, got {cv.describe_value(value)}")


def _texts(value: Any) -> list[str]:
    return [_text(item) for item in cv.ensure_list(value)]


def _select_option(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and "value" in value and "label" in value:
        return value
    raise vol.Invalid(
        f"an option is text, or a mapping with 'value' and 'label'; got {cv.describe_value(value)}"
    )


def _options(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise vol.Invalid("a select selector needs a non-empty list of options")
    return [_select_option(item) for item in value]


_FILTER = vol.Any(dict, [dict])
_MULTIPLE = {vol.Optional("multiple"): _bool}

SELECTOR_FIELDS: Mapping[str, Mapping[Any, Any]] = MappingProxyType(
    {
        "entity": {
            **_MULTIPLE,
            vol.Optional("domain"): _texts,
            vol.Optional("device_class"): _texts,
            vol.Optional("integration"): _text,
            vol.Optional("include_entities"): _texts,
            vol.Optional("exclude_entities"): _texts,
            vol.Optional("filter"): _FILTER,
            vol.Optional("reorder"): _bool,
        },
        "text": {
            **_MULTIPLE,
            vol.Optional("multiline"): _bool,
            vol.Optional("type"): _text,
            vol.Optional("prefix"): _text,
            vol.Optional("suffix"): _text,
            vol.Optional("autocomplete"): _text,
        },
        "number": {
            vol.Optional("min"): _number,
            vol.Optional("max"): _number,
            vol.Optional("step"): vol.Any("any", _number),
            vol.Optional("unit_of_measurement"): _text,
            vol.Optional("mode"): vol.In(("box", "slider")),
            vol.Optional("translation_key"): _text,
        },
        "boolean": {},
        "select": {
            **_MULTIPLE,
            vol.Required("options"): _options,
            vol.Optional("custom_value"): _bool,
            vol.Optional("mode"): vol.In(("list", "dropdown")),
            vol.Optional("translation_key"): _text,
            vol.Optional("sort"): _bool,
        },
        "duration": {
            vol.Optional("enable_day"): _bool,
            vol.Optional("enable_millisecond"): _bool,
            vol.Optional("allow_negative"): _bool,
        },
        "time": {},
        "device": {
            **_MULTIPLE,
            vol.Optional("integration"): _text,
            vol.Optional("manufacturer"): _text,
            vol.Optional("model"): _text,
            vol.Optional("entity"): _FILTER,
            vol.Optional("filter"): _FILTER,
        },
        "area": {
            **_MULTIPLE,
            vol.Optional("entity"): _FILTER,
            vol.Optional("device"): _FILTER,
        },
        "object": {},
        "template": {},
        "action": {},
        "trigger": {},
        "condition": {},
    }
)
"""Each supported selector type and the options it takes (Home Assistant's names)."""

SELECTOR_TYPES = tuple(SELECTOR_FIELDS)
"""The selector types estatehub understands, all of them Home Assistant's own."""


def _check_selector(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise vol.Invalid(
            "a selector is a mapping with exactly one selector type, such as "
            f"'entity: {{domain: binary_sensor}}'; known types: {', '.join(SELECTOR_TYPES)}"
        )
    ((kind, options),) = value.items()
    if kind not in SELECTOR_FIELDS:
        raise vol.Invalid(
            f"unknown selector type {cv.describe_value(kind)}{_hint(kind, SELECTOR_TYPES)}; "
            f"known: {', '.join(SELECTOR_TYPES)}",
            path=[kind],
        )
    fields = SELECTOR_FIELDS[kind]
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise vol.Invalid(
            f"the options of a {kind} selector are a mapping, got {cv.describe_value(options)}",
            path=[kind],
        )
    names = [str(key.schema) for key in fields]
    for key in options:
        if key not in names:
            raise vol.Invalid(
                f"unknown option '{key}' for a {kind} selector{_hint(key, names)}"
                + (f"; it takes: {', '.join(sorted(names))}" if names else "; it takes none"),
                path=[kind, key],
            )
    try:
        checked = vol.Schema(dict(fields))(dict(options))
    except vol.Invalid as err:
        err.prepend([kind])
        raise
    if kind == "number":
        low, high = checked.get("min"), checked.get("max")
        if checked.get("mode", "slider") == "slider" and (low is None or high is None):
            raise vol.Invalid(
                "a number selector needs min and max (or 'mode: box' for an open range)",
                path=[kind],
            )
        if low is not None and high is not None and low >= high:
            raise vol.Invalid(f"min ({low:g}) must be lower than max ({high:g})", path=[kind])
    return {str(kind): checked}


def _selector_refuses(selector: Mapping[str, Any] | None, value: Any) -> str | None:
    """Why an input value does not fit its selector, or None if it fits (or is a template)."""
    if not selector or isinstance(value, InputRef):
        return None
    ((kind, options),) = selector.items()
    values = value if isinstance(value, list) and options.get("multiple") else [value]
    for item in values:
        if isinstance(item, str) and "{{" in item:
            continue  # rendered when the automation runs
        if kind == "boolean" and not isinstance(item, bool):
            return f"expected true or false, got {cv.describe_value(item)}"
        if kind == "number":
            if isinstance(item, bool) or not isinstance(item, int | float):
                return f"expected a number, got {cv.describe_value(item)}"
            low, high = options.get("min"), options.get("max")
            if (low is not None and item < low) or (high is not None and item > high):
                return f"{item:g} is outside {low:g}–{high:g}"
        if kind == "select" and not options.get("custom_value"):
            allowed = [o["value"] if isinstance(o, dict) else o for o in options["options"]]
            if item not in allowed:
                shown = ", ".join(str(o) for o in allowed)
                return f"{cv.describe_value(item)} is not one of: {shown}{_hint(item, allowed)}"
        if kind == "entity":
            try:
                cv.entity_id(item)
            except vol.Invalid as err:
                return str(err.msg)
    return None


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class BlueprintInput:
    """One declared input of a blueprint.

    :param selector: ``{type: options}``, or None when the input declares no selector.
    :param section: the input section it was declared in (HA 2024.6+), or None.
    :param line: where the input is declared in the blueprint file.
    """

    key: str
    name: str | None
    description: str | None
    selector: Mapping[str, Any] | None
    has_default: bool
    default: Any
    section: str | None
    line: int | None

    @property
    def required(self) -> bool:
        """True when a ``use_blueprint`` entry must give a value."""
        return not self.has_default


@dataclass(frozen=True, slots=True)
class Blueprint:
    """A loaded, checked blueprint.

    :param display: the file as errors name it.
    :param body: the automation with :class:`InputRef` where ``!input`` was written (with
        the positions of the blueprint file; treat it as read-only).
    :param extensions: which of :data:`EXTENSIONS` the body uses (not Home Assistant's).
    """

    path: Path
    display: str
    name: str
    description: str | None
    domain: str
    source_url: str | None
    author: str | None
    min_version: str | None
    inputs: Mapping[str, BlueprintInput]
    body: Mapping[str, Any]
    extensions: tuple[str, ...]


def _input_declaration(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid(
            "an input is a mapping of name, description, default and selector; got "
            f"{cv.describe_value(value)}"
        )
    known = ("name", "description", "default", "selector")
    for key in value:
        if key not in known:
            raise vol.Invalid(
                f"unknown option '{key}' for an input{_hint(key, known)}; "
                f"it takes: {', '.join(known)}",
                path=[key],
            )
    for key in ("name", "description"):
        if key in value and value[key] is not None:
            try:
                _text(value[key])
            except vol.Invalid as err:
                err.prepend([key])
                raise
    if "selector" in value:
        try:
            _check_selector(value["selector"])
        except vol.Invalid as err:
            err.prepend(["selector"])
            raise
        if "default" in value:
            why = _selector_refuses(_check_selector(value["selector"]), value["default"])
            if why:
                raise vol.Invalid(f"the default does not fit the selector: {why}", path=["default"])
    return value


def _is_section(value: Any) -> bool:
    return isinstance(value, dict) and "input" in value


def _input_block(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected a mapping of inputs, got {cv.describe_value(value)}")
    errors: list[vol.Invalid] = []
    seen: dict[str, str] = {}
    for key, item in value.items():
        try:
            if _is_section(item):
                known = ("name", "description", "icon", "collapsed", "input")
                for option in item:
                    if option not in known:
                        raise vol.Invalid(
                            f"unknown option '{option}' for an input section"
                            f"{_hint(option, known)}; it takes: {', '.join(known)}",
                            path=[option],
                        )
                members = item["input"] or {}
                if not isinstance(members, dict):
                    raise vol.Invalid("a section's input is a mapping of inputs", path=["input"])
                for member, declaration in members.items():
                    try:
                        _input_declaration(declaration)
                    except vol.Invalid as err:
                        err.prepend(["input", member])
                        raise
                    if str(member) in seen:
                        raise vol.Invalid(
                            f"input '{member}' is declared twice", path=["input", member]
                        )
                    seen[str(member)] = str(key)
            else:
                _input_declaration(item)
                if str(key) in seen:
                    raise vol.Invalid(f"input '{key}' is declared twice")
                seen[str(key)] = str(key)
        except vol.Invalid as err:
            err.prepend([key])
            errors.append(err)
    if errors:
        raise vol.MultipleInvalid(errors)
    return value


def _domain(value: Any) -> str:
    if value == "automation":
        return "automation"
    raise vol.Invalid(
        f"estatehub runs automation blueprints only: write 'domain: automation', "
        f"got {cv.describe_value(value)}"
    )


def _metadata_schema(value: Any) -> Any:
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected a mapping, got {cv.describe_value(value)}")
    known = ("name", "description", "domain", "source_url", "author", "homeassistant", "input")
    for key in value:
        if key not in known:
            raise vol.Invalid(
                f"unknown option '{key}' in blueprint{_hint(key, known)}; "
                f"it takes: {', '.join(known)}",
                path=[key],
            )
    return vol.Schema(
        {
            vol.Required("name"): _text,
            vol.Optional("description"): vol.Any(None, _text),
            vol.Required("domain"): _domain,
            vol.Optional("source_url"): _text,
            vol.Optional("author"): _text,
            vol.Optional("homeassistant"): vol.Any(None, {vol.Optional("min_version"): _text}),
            vol.Optional("input"): _input_block,
        }
    )(value)


def _walk(node: Any) -> Iterator[Any]:
    """Every value inside ``node`` (iterative: blueprints nest at most MAX_NESTING deep)."""
    pending = [node]
    while pending:
        item = pending.pop()
        yield item
        if isinstance(item, dict):
            pending.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            pending.extend(reversed(item))


def _extensions_in(body: Any) -> tuple[str, ...]:
    found: set[str] = set()
    for item in _walk(body):
        if isinstance(item, dict):
            kind = item.get("trigger", item.get("platform"))
            if kind == "incident":
                found.add("incident trigger")
            if isinstance(item.get("notify"), dict):
                found.add("notify action")
    return tuple(name for name in EXTENSIONS if name in found)


def _declared_inputs(block: Mapping[str, Any]) -> dict[str, BlueprintInput]:
    declared: dict[str, BlueprintInput] = {}

    def add(key: Any, item: Any, section: str | None, parent: Any) -> None:
        item = item or {}
        where = position(parent, key)
        selector = _check_selector(item["selector"]) if "selector" in item else None
        declared[str(key)] = BlueprintInput(
            key=str(key),
            name=str(item["name"]) if item.get("name") is not None else None,
            description=str(item["description"]) if item.get("description") else None,
            selector=MappingProxyType(selector) if selector is not None else None,
            has_default="default" in item,
            default=item.get("default"),
            section=section,
            line=where[1] if where else None,
        )

    for key, item in block.items():
        if _is_section(item):
            members = item["input"] or {}
            for member, declaration in members.items():
                add(member, declaration, str(key), members)
        else:
            add(key, item, None, block)
    return declared


def _parse(data: Any, path: Path, display: str) -> Blueprint:
    if not isinstance(data, dict) or "blueprint" not in data:
        where = position(data) or (display, 1)
        raise BlueprintError(
            [
                ConfigIssue(
                    where[0],
                    where[1],
                    (),
                    "a blueprint file starts with 'blueprint:' (name, domain: automation, "
                    "input) followed by the automation",
                )
            ]
        )
    metadata, issues = validate(data["blueprint"], _metadata_schema, ("blueprint",))
    if issues:
        raise BlueprintError(issues)
    inputs = _declared_inputs(metadata.get("input") or {})
    # The automation part, keeping the positions of the file's top-level mapping.
    body = _rebuild(data, {})
    del body["blueprint"]
    undeclared = [
        ref
        for ref in _walk(body)
        if isinstance(ref, InputRef) and ref.name and ref.name not in inputs
    ]
    if undeclared:
        known = ", ".join(sorted(inputs)) or "none are declared"
        raise BlueprintError(
            ConfigIssue(
                ref.file,
                ref.line,
                (),
                f"!input {ref.name} is not declared under blueprint → input"
                f"{_hint(ref.name, inputs)}; declared: {known}",
            )
            for ref in undeclared
        )
    return Blueprint(
        path=path,
        display=display,
        name=str(metadata["name"]),
        description=str(metadata["description"]) if metadata.get("description") else None,
        domain=str(metadata["domain"]),
        source_url=str(metadata["source_url"]) if "source_url" in metadata else None,
        author=str(metadata["author"]) if "author" in metadata else None,
        min_version=str((metadata.get("homeassistant") or {}).get("min_version") or "") or None,
        inputs=MappingProxyType(inputs),
        body=body,
        extensions=_extensions_in(body),
    )


def load_blueprint(path: Path | str, *, display: str | None = None) -> Blueprint:
    """Load and check a blueprint file.

    :param display: how errors name the file (default: ``path`` as given).
    :raises BlueprintError: listing YAML problems, a bad ``blueprint:`` block (unknown
        selector, badly configured selector, default its selector refuses, ``domain`` other
        than ``automation``) and every undeclared ``!input``, each with file and line.
    """
    path = Path(path)
    shown = display if display is not None else str(path)
    return _parse(_load_yaml(path, shown), path, shown)


# --------------------------------------------------------------------------- substitution


def _rebuild(node: Any, inputs: Mapping[str, Any]) -> Any:
    """A copy of ``node`` with the InputRefs named in ``inputs`` replaced; containers keep
    their positions."""
    if isinstance(node, InputRef):
        return _rebuild(inputs[node.name], {}) if node.name in inputs else node
    if isinstance(node, dict):
        mapping = YamlDict()
        for key, value in node.items():
            mapping[key] = _rebuild(value, inputs)
        if isinstance(node, YamlDict):
            mapping.__estatehub_pos__ = node.__estatehub_pos__
            mapping._key_lines = dict(node._key_lines)
        return mapping
    if isinstance(node, list):
        items = YamlList(_rebuild(item, inputs) for item in node)
        if isinstance(node, YamlList):
            items.__estatehub_pos__ = node.__estatehub_pos__
            items._item_lines = list(node._item_lines)
        return items
    return node


def instantiate(
    blueprint: Blueprint,
    inputs: Mapping[str, Any],
    *,
    site: tuple[str, int | None] | None = None,
    path: tuple[str | int, ...] = ("use_blueprint", "input"),
) -> dict[str, Any]:
    """The automation config a blueprint makes with these inputs (defaults fill the rest).

    Pure: neither the blueprint nor the inputs change. The result is not yet validated as
    an automation; run :data:`~estatehub.automation.AUTOMATION_SCHEMA` (or the whole
    ``automations:`` schema) over it, whose errors keep the blueprint's file and line, or the
    estate file's for a value given there.

    :param site: where the inputs were written (the ``use_blueprint:`` line), for errors.
    :raises BlueprintError: naming each missing required input, unknown input and value its
        selector refuses.
    """
    file, line = site if site is not None else (blueprint.display, None)
    issues: list[ConfigIssue] = []
    values: dict[str, Any] = {}
    for key, declared in blueprint.inputs.items():
        if key in inputs:
            values[key] = inputs[key]
        elif declared.has_default:
            values[key] = declared.default
        else:
            label = f" ({declared.name})" if declared.name else ""
            issues.append(
                ConfigIssue(
                    file,
                    line,
                    path,
                    f"missing input '{key}'{label} for blueprint '{blueprint.name}' "
                    f"({blueprint.display}, line {declared.line})",
                )
            )
    for key, value in inputs.items():
        if key not in blueprint.inputs:
            where = position(inputs, key) or (file, line)
            issues.append(
                ConfigIssue(
                    where[0],
                    where[1],
                    (*path, str(key)),
                    f"blueprint '{blueprint.name}' has no input '{key}'"
                    f"{_hint(key, blueprint.inputs)}; its inputs: "
                    f"{', '.join(blueprint.inputs) or 'none'}",
                )
            )
            continue
        why = _selector_refuses(blueprint.inputs[key].selector, value)
        if why:
            where = position(value) or position(inputs, key) or (file, line)
            issues.append(ConfigIssue(where[0], where[1], (*path, str(key)), why))
    if issues:
        raise BlueprintError(issues)
    automation: dict[str, Any] = _rebuild(blueprint.body, values)
    return automation


# --------------------------------------------------------------------------- use_blueprint


def _issue_at(
    where: tuple[str, int | None], path: tuple[str | int, ...], message: str
) -> ConfigIssue:
    return ConfigIssue(where[0], where[1], path, message)


def _blueprint_path(written: Any, base_dir: Path, site: tuple[str, int | None]) -> tuple[Path, str]:
    if not isinstance(written, str) or not written.strip():
        raise BlueprintError(
            [
                _issue_at(
                    site,
                    ("use_blueprint", "path"),
                    "use_blueprint needs 'path:', e.g. parking/visitor_car_arrives.yaml",
                )
            ]
        )
    relative = Path(written.strip())
    if relative.is_absolute() or ".." in relative.parts:
        raise BlueprintError(
            [
                _issue_at(
                    site,
                    ("use_blueprint", "path"),
                    f"a blueprint path is relative to {BLUEPRINT_FOLDER}/ and stays inside it, "
                    f"got {cv.describe_value(written)}",
                )
            ]
        )
    local = base_dir / BLUEPRINT_FOLDER / relative
    if local.is_file():
        return local, (Path(BLUEPRINT_FOLDER) / relative).as_posix()
    shipped = SHIPPED_BLUEPRINTS / relative
    if shipped.is_file():
        return shipped, str(shipped)
    raise BlueprintError(
        [
            _issue_at(
                site,
                ("use_blueprint", "path"),
                f"no blueprint {relative.as_posix()}: looked in {local.parent} and "
                f"{shipped.parent}",
            )
        ]
    )


def expand_use_blueprint(entry: Mapping[str, Any], base_dir: Path | str) -> dict[str, Any]:
    """Turn one ``automations:`` entry with ``use_blueprint:`` into the automation it means.

    Keys written beside ``use_blueprint`` (``id``, ``alias``, ``description`` …) win over the
    blueprint's, as in Home Assistant. An entry without ``use_blueprint`` is returned as is.

    :param base_dir: the estate config's folder; its ``blueprints/`` is searched first, then
        :data:`SHIPPED_BLUEPRINTS`.
    :raises BlueprintError: for a missing or broken blueprint, or inputs that do not fit,
        with the estate file's line of the ``use_blueprint:`` entry (or the blueprint's).
    """
    if "use_blueprint" not in entry:
        return dict(entry)
    use = entry["use_blueprint"]
    site = position(entry, "use_blueprint") or position(entry) or ("", None)
    if not isinstance(use, dict):
        raise BlueprintError(
            [
                _issue_at(
                    site,
                    ("use_blueprint",),
                    f"use_blueprint is a mapping of path and input, got {cv.describe_value(use)}",
                )
            ]
        )
    for key in use:
        if key not in ("path", "input"):
            where = position(use, key) or site
            raise BlueprintError(
                [
                    _issue_at(
                        where,
                        ("use_blueprint", str(key)),
                        f"unknown option '{key}' for use_blueprint{_hint(key, ('path', 'input'))}"
                        "; it takes: path, input",
                    )
                ]
            )
    file_path, display = _blueprint_path(use.get("path"), Path(base_dir), site)
    blueprint = load_blueprint(file_path, display=display)
    given = use.get("input") or {}
    if not isinstance(given, dict):
        where = position(use, "input") or site
        raise BlueprintError(
            [
                _issue_at(
                    where,
                    ("use_blueprint", "input"),
                    f"input is a mapping of input names to values, got {cv.describe_value(given)}",
                )
            ]
        )
    automation = instantiate(blueprint, given, site=site)
    # The automation is placed where the entry is, in the estate file: a mapping's key lines
    # belong to one file, so the blueprint's top-level keys give theirs up (their values keep
    # their own positions) and the keys written beside use_blueprint keep the estate's.
    placed = YamlDict(automation)
    if isinstance(entry, YamlDict):
        placed.__estatehub_pos__ = entry.__estatehub_pos__
    for key, value in entry.items():
        if key != "use_blueprint":
            placed[key] = value
            line = position(entry, key)
            if line is not None:
                placed._key_lines[key] = line[1]
    return placed


def expand_automations(section: Any, base_dir: Path | str) -> tuple[Any, list[ConfigIssue]]:
    """The ``automations:`` section with every ``use_blueprint`` entry expanded.

    For the config loader: run this before the automations schema. Returns the section
    (a list keeping each entry's line, for duplicate-id messages) and the issues found;
    an entry that could not be expanded is left as written (the schema then reports
    nothing more about it than its issues here say).
    """
    if not isinstance(section, list):
        return section, []
    issues: list[ConfigIssue] = []
    expanded = YamlList()
    for index, entry in enumerate(section):
        if isinstance(entry, dict) and "use_blueprint" in entry:
            try:
                entry = expand_use_blueprint(entry, base_dir)
            except BlueprintError as error:
                for issue in error.issues:
                    prefix: tuple[str | int, ...] = ()
                    if issue.path[:1] == ("use_blueprint",) or not issue.path:
                        prefix = ("automations", index)
                    issues.append(
                        ConfigIssue(issue.file, issue.line, (*prefix, *issue.path), issue.message)
                    )
                entry = {}
        expanded.append(entry)
    if isinstance(section, YamlList):
        expanded.__estatehub_pos__ = section.__estatehub_pos__
        expanded._item_lines = list(section._item_lines)
    return expanded, issues


# --------------------------------------------------------------------------- checking


def validate_file(
    path: Path | str,
    inputs: Mapping[str, Any] | None = None,
    *,
    display: str | None = None,
) -> Blueprint:
    """Check a blueprint file as ``estatehub blueprint validate FILE`` does.

    Loads it (see :func:`load_blueprint`); then, when ``inputs`` are given or every input
    has a default, instantiates it and validates the result with the automation schema,
    so errors in triggers, conditions and actions are found too (with the blueprint's
    file and line).

    :raises BlueprintError: listing everything wrong.
    """
    # Imported here: schema imports the config module, which must not import this one back.
    from .schema import AUTOMATION_SCHEMA

    blueprint = load_blueprint(path, display=display)
    if inputs is None and any(item.required for item in blueprint.inputs.values()):
        return blueprint
    automation = instantiate(blueprint, inputs or {})
    _, issues = validate(automation, AUTOMATION_SCHEMA)
    if issues:
        raise BlueprintError(issues)
    return blueprint
