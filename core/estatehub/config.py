"""The estate configuration: one YAML file per estate, every value traceable to its line.

Loading happens in three steps:

1. :func:`load_yaml` reads the file with a PyYAML loader that stamps every mapping, list
   and string with the file and line it was written on, resolves ``!secret`` (from
   ``secrets.yaml`` beside the file) and ``!include`` (relative to the including file), and
   rejects duplicate keys. Everything it finds wrong is collected, not just the first thing.
2. :func:`validate` runs a voluptuous schema over part of that data and turns every
   voluptuous error into a :class:`ConfigIssue` with file, line and a readable path:
   ``estate.yaml, line 14: modules → parking → tariff → free_minutes: expected int, got 'abc'``.
3. :func:`load_estate_config` validates the core sections, the registry (with
   cross-reference checks) and every module's section against the schema its plugin
   supplies, and returns an :class:`EstateConfig` — or raises one :class:`ConfigError`
   listing every issue in the file.

Values loaded through ``!secret`` never appear in an issue, an error or a ``repr``.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import voluptuous as vol
import yaml

from estatehub import config_validation as cv
from estatehub.exceptions import EstatehubError, PluginError

__all__ = [
    "ApiSettings",
    "ApiToken",
    "ConfigError",
    "ConfigIssue",
    "EstateConfig",
    "MqttSettings",
    "PluginSettings",
    "load_estate_config",
    "load_yaml",
    "position",
    "validate",
]

ROLES = ("admin", "operator", "guard", "viewer")
"""The API roles a token can carry."""

CORE_SECTIONS = ("estate", "store", "api", "mqtt", "plugins", "capture", "registry", "modules")
"""Top-level sections the core owns; plugins may register others."""

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_STORE_FILE = "estatehub.db"
DEFAULT_CAPTURE_FILE = "capture.jsonl"
MEMORY_STORE = ":memory:"
SECRETS_FILE = "secrets.yaml"

# --------------------------------------------------------------------------- issues


def _render_path(path: tuple[str | int, ...]) -> str:
    """``("registry", "buildings", 0, "id")`` → ``registry → buildings[0] → id``."""
    parts: list[str] = []
    for element in path:
        if isinstance(element, int) and not isinstance(element, bool):
            if parts:
                parts[-1] += f"[{element}]"
            else:
                parts.append(f"[{element}]")
        else:
            parts.append(str(element))
    return " → ".join(parts)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong with a config file, with where it was written.

    :param file: the file as the user knows it: the config file's base name, or an
        included file's path relative to the config file's directory. Empty when the
        data carried no position.
    :param line: 1-based line of the offending value (or of the key or parent mapping when
        a key is missing or not allowed); ``None`` when no line applies.
    :param path: keys and list indexes from the top of the file to the offending value.
    :param message: what is wrong, in words a property manager can act on.
    """

    file: str
    line: int | None
    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}, line {self.line}" if where else f"line {self.line}"
        rendered_path = _render_path(self.path)
        parts = [part for part in (where, rendered_path) if part]
        return ": ".join([*parts, self.message])


def _issue_order(issue: ConfigIssue) -> tuple[str, int, str, str]:
    return (issue.file, issue.line or 0, _render_path(issue.path), issue.message)


def _sorted_unique(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(set(issues), key=_issue_order)


class ConfigError(EstatehubError):
    """A config file could not be used; :attr:`issues` lists everything wrong with it.

    ``str(error)`` is one issue per line, sorted by file and line.
    """

    issues: tuple[ConfigIssue, ...]

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.issues,))


# --------------------------------------------------------------------------- positions

_POSITION = "__estatehub_pos__"


class YamlDict(dict):  # type: ignore[type-arg]
    """A mapping loaded from YAML; knows where it and each of its keys were written."""

    __slots__ = ("__estatehub_pos__", "_key_lines")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__estatehub_pos__: tuple[str, int] | None = None
        self._key_lines: dict[Any, int] = {}


class YamlList(list):  # type: ignore[type-arg]
    """A list loaded from YAML; knows where it and each of its items were written."""

    __slots__ = ("__estatehub_pos__", "_item_lines")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.__estatehub_pos__: tuple[str, int] | None = None
        self._item_lines: list[int] = []


class YamlStr(str):
    """A string loaded from YAML; knows where it was written."""

    __slots__ = ("__estatehub_pos__",)


class YamlSecret(YamlStr):
    """A string loaded through ``!secret``: its repr shows the secret's name, never the value.

    Its position is where ``!secret`` was written in the config, not in ``secrets.yaml``.
    """

    __slots__ = ("__estatehub_secret__",)
    __estatehub_secret__: str

    def __repr__(self) -> str:
        return f"<secret {self.__estatehub_secret__}>"


def _stamp(node: Any, file: str, line: int) -> Any:
    setattr(node, _POSITION, (file, line))
    return node


def _empty_mapping_at(where: tuple[str, int] | None) -> YamlDict:
    """An empty mapping standing in for a section written without a body (``parking:``)."""
    mapping = YamlDict()
    mapping.__estatehub_pos__ = where
    return mapping


def position(node: Any, key: str | int | None = None) -> tuple[str, int] | None:
    """Where something in loaded config data was written, as ``(file, 1-based line)``.

    ``position(node)`` is where a mapping, list or string value itself was written.
    ``position(mapping, key)`` is where that key was written; ``position(items, index)`` is
    where that list item was written — use these for numbers, booleans and empty values,
    which carry no position of their own. Returns ``None`` when nothing is known (data not
    loaded by :func:`load_yaml`, or validated copies).
    """
    if key is None:
        return getattr(node, _POSITION, None)
    own = getattr(node, _POSITION, None)
    if own is None:
        return None
    if isinstance(node, YamlDict):
        try:
            line = node._key_lines.get(key)
        except TypeError:  # an unhashable key cannot be in the mapping
            return None
        return (own[0], line) if line is not None else None
    if (
        isinstance(node, YamlList)
        and isinstance(key, int)
        and not isinstance(key, bool)
        and 0 <= key < len(node._item_lines)
    ):
        return (own[0], node._item_lines[key])
    return None


# --------------------------------------------------------------------------- loading

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# YAML 1.1 (PyYAML's default) reads `7:30` as the number 450 and `0101` as the octal 65.
# In an estate config those are times and flat numbers, so this loader keeps them text.
_INT_PATTERN = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o[0-7_]+
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?0
    |[-+]?[1-9][0-9_]*)$""",
    re.X,
)
_FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)

_ParserBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class _LoadContext:
    """State shared by the loaders of one config file and everything it includes."""

    main_dir: Path
    issues: list[ConfigIssue] = field(default_factory=list)
    secret_files: dict[Path, YamlDict | None] = field(default_factory=dict)

    def report(self, file: str, line: int | None, message: str) -> None:
        self.issues.append(ConfigIssue(file, line, (), message))

    def display_name(self, path: Path) -> str:
        """A file's name relative to the config file's directory, with ``/`` separators."""
        try:
            return Path(os.path.relpath(os.path.abspath(path), self.main_dir)).as_posix()
        except ValueError:  # another drive on Windows
            return str(path)

    def load_file(
        self,
        path: Path,
        display: str,
        stack: tuple[tuple[Path, str], ...],
        site: tuple[str, int] | None,
        *,
        secrets_file: bool = False,
    ) -> Any:
        """Load one file; problems become issues and the result is ``None``.

        :param site: where the file was asked for (an ``!include`` or ``!secret``), or
            ``None`` for the config file itself.
        """
        try:
            raw = path.read_bytes()
        except OSError as error:
            reason = _os_reason(error)
            if site is None:
                self.report(display, None, f"cannot read the config file {path}: {reason}")
            else:
                self.report(site[0], site[1], f"cannot read {display}: {reason}")
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            self.report(
                display,
                line,
                f"the file is not UTF-8 text (byte 0x{raw[error.start]:02x} cannot be read);"
                " if it was saved as GBK, save it again as UTF-8",
            )
            return None
        loader = _EstateLoader(
            text,
            file_path=path,
            display=display,
            context=self,
            stack=stack,
            secrets_file=secrets_file,
        )
        try:
            return loader.get_single_data()
        except yaml.MarkedYAMLError as error:
            self.issues.append(_syntax_issue(error, text, display))
            return None
        finally:
            loader.dispose()

    def lookup_secret(self, name: str, requested_in: Path, site: tuple[str, int]) -> Any:
        """Find secret ``name`` in secrets.yaml beside the requesting file, then beside the
        config file; report a missing file or key at ``site``."""
        directories = [requested_in.parent.absolute()]
        if self.main_dir not in directories:
            directories.append(self.main_dir)
        searched: list[str] = []
        for directory in directories:
            secrets = self._secrets_in(directory / SECRETS_FILE, site)
            if secrets is None:
                continue
            searched.append(self.display_name(directory / SECRETS_FILE))
            if name in secrets:
                return self._secret_value(name, secrets, site)
        if searched:
            self.report(*site, f"secret '{name}' not found in {' or '.join(searched)}")
        else:
            beside = self.display_name(requested_in)
            self.report(
                *site, f"secret '{name}' not found: there is no {SECRETS_FILE} beside {beside}"
            )
        return None

    def _secrets_in(self, secrets_path: Path, site: tuple[str, int]) -> YamlDict | None:
        key = secrets_path.absolute()
        if key not in self.secret_files:
            loaded: YamlDict | None = None
            if secrets_path.is_file():
                display = self.display_name(secrets_path)
                stack = ((secrets_path.resolve(), display),)
                data = self.load_file(secrets_path, display, stack, site, secrets_file=True)
                if isinstance(data, YamlDict):
                    loaded = data
                elif data is None:
                    loaded = YamlDict()  # empty or broken file: its problems are reported
                else:
                    line = (position(data) or (display, 1))[1]
                    self.report(display, line, "secrets.yaml must map secret names to values")
                    loaded = YamlDict()
            self.secret_files[key] = loaded
        return self.secret_files[key]

    def _secret_value(self, name: str, secrets: YamlDict, site: tuple[str, int]) -> Any:
        value = secrets[name]
        where = position(secrets, name) or site
        if isinstance(value, bool) or not isinstance(value, str | int):
            kind = "empty" if value is None else "not text"
            self.report(*where, f"secret '{name}' is {kind}; write its value in quotes")
            return None
        secret = YamlSecret(str(value))
        secret.__estatehub_secret__ = name
        return _stamp(secret, *site)


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or type(error).__name__


def _syntax_issue(error: yaml.MarkedYAMLError, text: str, display: str) -> ConfigIssue:
    """Turn a PyYAML error into an issue with the parser's own problem statement."""
    if (
        not isinstance(error, yaml.constructor.ConstructorError)
        and _ParserBase is not yaml.SafeLoader
    ):
        # The C parser is fast but terse ("found character that cannot start any token");
        # errors are rare, so re-parse with the pure-Python parser for its clearer words.
        try:
            yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as clearer:
            error = clearer
    mark = error.problem_mark or error.context_mark
    # "found '<stream end>'" is marked just past the final newline; name the last line.
    last_line = max(1, len(text.splitlines()))
    line = min(mark.line + 1, last_line) if mark is not None else None
    problem = error.problem or error.context or "unreadable YAML"
    message = (
        problem
        if isinstance(error, yaml.constructor.ConstructorError)
        else f"invalid YAML: {problem}"
    )
    if error.context and error.problem:
        context_line = last_line
        if error.context_mark is not None:
            context_line = min(error.context_mark.line + 1, last_line)
        if context_line != line:
            message += f" ({error.context} on line {context_line})"
        else:
            message += f" ({error.context})"
    return ConfigIssue(display, line, (), message)


class _EstateLoader(_ParserBase):  # type: ignore[misc,valid-type]
    """A safe PyYAML loader that stamps positions and understands !secret and !include."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, resolvers in _ParserBase.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]
    }

    def __init__(
        self,
        text: str,
        *,
        file_path: Path,
        display: str,
        context: _LoadContext,
        stack: tuple[tuple[Path, str], ...],
        secrets_file: bool,
    ) -> None:
        super().__init__(text)
        self._file_path = file_path
        self._display = display
        self._context = context
        self._stack = stack or ((file_path.resolve(), display),)
        self._secrets_file = secrets_file
        # node id -> (node, number of pairs merged in front by `<<`); see flatten_mapping
        self._merged: dict[int, tuple[yaml.MappingNode, int]] = {}

    def _line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def _report(self, node: yaml.Node, message: str) -> None:
        self._context.report(self._display, self._line(node), message)

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Resolve ``<<`` merges once per node, remembering how many pairs came from them.

        Keys merged in may be overridden by keys written in the mapping itself; only keys
        written twice in the mapping itself are duplicates.
        """
        if id(node) in self._merged:
            return
        written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        super().flatten_mapping(node)
        self._merged[id(node)] = (node, len(node.value) - written)

    def construct_estate_mapping(self, node: yaml.MappingNode) -> Iterator[YamlDict]:
        mapping = _stamp(YamlDict(), self._display, self._line(node))
        yield mapping
        self.flatten_mapping(node)
        merged_count = self._merged[id(node)][1]
        written_on: dict[Any, int] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            line = self._line(key_node)
            try:
                hash(key)
            except TypeError:
                self._report(key_node, "a key must be a single value, not a mapping or a list")
                continue
            if index >= merged_count:
                if key in written_on:
                    self._report(
                        key_node,
                        f"duplicate key {cv.describe_value(key)}: "
                        f"already written on line {written_on[key]}",
                    )
                    continue
                written_on[key] = line
            mapping[key] = self.construct_object(value_node, deep=False)
            mapping._key_lines[key] = line

    def construct_estate_sequence(self, node: yaml.SequenceNode) -> Iterator[YamlList]:
        items = _stamp(YamlList(), self._display, self._line(node))
        yield items
        for item_node in node.value:
            items.append(self.construct_object(item_node, deep=False))
            items._item_lines.append(self._line(item_node))

    def construct_estate_str(self, node: yaml.ScalarNode) -> YamlStr:
        return _stamp(YamlStr(self.construct_scalar(node)), self._display, self._line(node))

    def _tag_argument(self, node: yaml.Node, tag: str, example: str) -> str | None:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            self._report(node, f"{tag} needs {example}")
            return None
        return value.strip()

    def construct_secret(self, node: yaml.Node) -> Any:
        name = self._tag_argument(
            node, "!secret", "the name of a secret, e.g. !secret mqtt_password"
        )
        if name is None:
            return None
        if self._secrets_file:
            self._report(node, "secrets.yaml cannot use !secret itself")
            return None
        return self._context.lookup_secret(name, self._file_path, (self._display, self._line(node)))

    def construct_include(self, node: yaml.Node) -> Any:
        name = self._tag_argument(node, "!include", "a file name, e.g. !include registry.yaml")
        if name is None:
            return None
        target = self._file_path.parent / name
        resolved = target.resolve()
        display = self._context.display_name(target)
        chain = [shown for _, shown in self._stack]
        if resolved in (included for included, _ in self._stack):
            self._report(node, f"include cycle: {' → '.join([*chain, display])}")
            return None
        return self._context.load_file(
            target, display, (*self._stack, (resolved, display)), (self._display, self._line(node))
        )

    def construct_unknown_tag(self, node: yaml.Node) -> None:
        self._report(node, f"unknown tag '{node.tag}'; estatehub understands !secret and !include")
        return None


_EstateLoader.add_implicit_resolver(_INT_TAG, _INT_PATTERN, list("-+0123456789"))
_EstateLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_PATTERN, list("-+0123456789."))
_EstateLoader.add_constructor("tag:yaml.org,2002:map", _EstateLoader.construct_estate_mapping)
_EstateLoader.add_constructor("tag:yaml.org,2002:seq", _EstateLoader.construct_estate_sequence)
_EstateLoader.add_constructor("tag:yaml.org,2002:str", _EstateLoader.construct_estate_str)
_EstateLoader.add_constructor("!secret", _EstateLoader.construct_secret)
_EstateLoader.add_constructor("!include", _EstateLoader.construct_include)
_EstateLoader.add_constructor(None, _EstateLoader.construct_unknown_tag)


def load_yaml(path: Path) -> Any:
    """Load a YAML config file whose mappings, lists and strings carry their positions.

    ``!secret name`` reads ``secrets.yaml`` beside the file (then beside the config file);
    ``!include other.yaml`` loads a file relative to the including file. Times such as
    ``7:30`` and numbers with a leading zero such as ``0101`` stay text.

    :raises ConfigError: listing every syntax error, duplicate key, missing secret, missing
        or cyclic include, unknown tag and unreadable file found.
    """
    path = Path(path)
    context = _LoadContext(main_dir=path.parent.absolute())
    data = context.load_file(path, path.name, (), None)
    if context.issues:
        raise ConfigError(_sorted_unique(context.issues))
    return data


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True, slots=True)
class _Location:
    """Where a voluptuous error path lands in loaded data."""

    where: tuple[str, int] | None
    path: tuple[str | int, ...]
    found: bool
    value: Any


def _plain_key(key: Any) -> str | int:
    if isinstance(key, vol.Marker):
        key = key.schema
    if isinstance(key, int) and not isinstance(key, bool):
        return int(key)
    return str(key)


def _locate(data: Any, error_path: Iterable[Any]) -> _Location:
    """Follow ``error_path`` through ``data`` as far as it goes, tracking the last position.

    A scalar is placed at its own line; a mapping or list at the key that introduced it
    (unless it came from another file through !include). A missing key lands on its parent.
    """
    where = position(data)
    node = data
    found = True
    keys: list[str | int] = []
    for element in error_path:
        key = element.schema if isinstance(element, vol.Marker) else element
        keys.append(_plain_key(key))
        if not found:
            continue
        in_mapping = isinstance(node, dict) and _is_hashable(key) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if not (in_mapping or in_list):
            if key == 0 and not isinstance(node, list) and not isinstance(key, bool):
                # cv.ensure_list wrapped a single value written without a list: the error
                # is about that value itself.
                continue
            found = False
            continue
        child = node[key]
        introduced_at = position(node, key)
        own = position(child)
        if own is not None and (
            not isinstance(child, dict | list)
            or introduced_at is None
            or own[0] != introduced_at[0]
        ):
            where = own
        elif introduced_at is not None:
            where = introduced_at
        node = child
    return _Location(where, tuple(keys), found, node if found else None)


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_TYPE_WORDS = {"bool": "true or false", "boolean": "true or false", "dict": "a mapping"}


def _readable_message(error: vol.Invalid, location: _Location) -> str:
    """Rewrite voluptuous's terse messages where that is cheap; add the offending value."""
    message = str(error.error_message)
    got = f", got {cv.describe_value(location.value)}" if location.found else ""
    if message == "expected a dictionary":
        return f"expected a mapping{got}"
    if message == "expected a list":
        return f"expected a list{got}"
    type_match = re.fullmatch(r"expected (\w+)", message)
    if type_match:
        return f"expected {_TYPE_WORDS.get(type_match[1], type_match[1])}{got}"
    choices = re.fullmatch(r"value must be one of (\[.*\])", message, re.S)
    if choices:
        try:
            options = ast.literal_eval(choices[1])
        except (ValueError, SyntaxError):
            return message
        return f"not a valid value, expected one of: {', '.join(str(o) for o in options)}"
    if message == "not a valid value" or re.fullmatch(
        r"value must be (at most|at least|higher than|lower than) .*", message
    ):
        return message + got
    length = re.fullmatch(r"length of value must be (at most|at least) (\d+)", message)
    if length and location.found:
        unit = "characters" if isinstance(location.value, str) else "items"
        return f"must have {length[1]} {length[2]} {unit}"
    return message


def _flatten_errors(error: vol.Invalid) -> Iterator[vol.Invalid]:
    if isinstance(error, vol.MultipleInvalid):
        for inner in error.errors:
            yield from _flatten_errors(inner)
    else:
        yield error


def _secret_values_in(data: Any) -> dict[str, str]:
    """Every ``!secret`` value in ``data`` → its secret's name."""
    found: dict[str, str] = {}
    seen: set[int] = set()
    pending = [data]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, YamlSecret) and str(node):
            found[str(node)] = node.__estatehub_secret__
        elif isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)
    return found


def _without_secrets(issues: Iterable[ConfigIssue], data: Any) -> list[ConfigIssue]:
    """Replace any secret value that slipped into a message (say, from a plugin's
    validator echoing its input) by the secret's name."""
    issues = list(issues)
    secrets = _secret_values_in(data) if issues else {}
    if not secrets:
        return issues
    cleaned = []
    for issue in issues:
        message = issue.message
        for value in sorted(secrets, key=len, reverse=True):
            message = message.replace(value, f"<secret {secrets[value]}>")
        cleaned.append(ConfigIssue(issue.file, issue.line, issue.path, message))
    return cleaned


def _issue_at(data: Any, path: tuple[Any, ...], message: str) -> ConfigIssue:
    """An issue about the value at ``path`` inside ``data`` (usually the whole file)."""
    location = _locate(data, path)
    file, line = location.where if location.where is not None else ("", None)
    return ConfigIssue(file, line, location.path, message)


def validate(
    data: Any, schema: vol.Schema | Callable[[Any], Any], path: tuple[str | int, ...] = ()
) -> tuple[Any, list[ConfigIssue]]:
    """Run ``schema`` over ``data`` and report every error with its file and line.

    Never raises for invalid input: returns ``(validated, [])`` or ``(None, issues)``,
    issues sorted by file and line. Positions come from ``data`` (as returned by
    :func:`load_yaml`); ``path`` is where ``data`` sits in the file, for the messages.
    A schema that crashes (a bug in a plugin) is reported as an issue too, so one broken
    plugin cannot hide the rest of the file's problems.
    """
    return _validate_within(data, schema, data, (), path)


def _validate_within(
    value: Any,
    schema: vol.Schema | Callable[[Any], Any],
    root: Any,
    value_path: tuple[Any, ...],
    shown_prefix: tuple[str | int, ...],
) -> tuple[Any, list[ConfigIssue]]:
    """Validate ``value``, found at ``value_path`` inside ``root``; positions are looked up
    from ``root`` so a section's own key line is known, and ``shown_prefix`` goes in front
    of the path in messages."""
    try:
        return schema(value), []
    except vol.Invalid as invalid:
        errors = list(_flatten_errors(invalid))
    except Exception as crash:  # a plugin's schema must not take the loader down
        location = _locate(root, value_path)
        file, line = location.where if location.where is not None else ("", None)
        issue = ConfigIssue(
            file,
            line,
            (*shown_prefix, *location.path),
            f"the schema for this section crashed ({type(crash).__name__}: {crash}); "
            "this is a bug in the plugin that validates it, not in your file",
        )
        return None, _without_secrets([issue], root)
    issues = []
    for error in errors:
        location = _locate(root, (*value_path, *error.path))
        file, line = location.where if location.where is not None else ("", None)
        message = _readable_message(error, location)
        issues.append(ConfigIssue(file, line, (*shown_prefix, *location.path), message))
    return None, _sorted_unique(_without_secrets(issues, root))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token for the REST/WebSocket API; its repr never shows the token."""

    name: str
    token: str = field(repr=False)
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the API listens and who may use it."""

    host: str = "127.0.0.1"
    port: int = 8740
    tokens: tuple[ApiToken, ...] = ()
    advertise: bool = True
    advertise_interfaces: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """An external MQTT broker; reconnect delays are seconds, capped and jittered by the
    transport. The password never appears in the repr."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    keepalive: int = 60
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    tls: bool = False


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """Which installed plugins load: ``allow`` (None = all installed) minus ``block``."""

    allow: frozenset[str] | None = None
    block: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EstateConfig:
    """One estate's validated configuration.

    :param path: the config file, absolute.
    :param store_path: the SQLite file, absolute (relative paths are taken from the config
        file's directory), or ``Path(":memory:")``.
    :param capture_path: where to record transport traffic, or ``None`` when not capturing.
    :param registry: the validated ``registry:`` section; every flat also carries its
        ``full_id`` (``b3-1-1202``).
    :param modules: enabled module → its config after the module's schema ran.
    :param sections: other top-level sections registered by plugins, validated.
    :param raw: the loaded YAML with positions, for positional errors found later
        (see :func:`position`).
    """

    path: Path
    name: str
    timezone: ZoneInfo
    latitude: float | None
    longitude: float | None
    store_path: Path
    api: ApiSettings
    mqtt: MqttSettings | None
    plugins: PluginSettings
    capture_path: Path | None
    registry: Mapping[str, Any]
    modules: Mapping[str, Mapping[str, Any]]
    sections: Mapping[str, Any]
    raw: Any = field(repr=False, compare=False)


# --------------------------------------------------------------------------- core schema


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid(f"expected text, got {cv.describe_value(value)}")
    if not value.strip():
        raise vol.Invalid("cannot be empty")
    return value


def _id_text(value: Any) -> str:
    """An id as text; ``1202`` written without quotes is the id ``"1202"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise vol.Invalid(f"expected an id (text or a whole number), got {cv.describe_value(value)}")


_ID = vol.All(_id_text, cv.slug)


def _coordinate(limit: int, what: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and -limit <= value <= limit
        ):
            return float(value)
        raise vol.Invalid(
            f"expected a {what} between -{limit} and {limit}, got {cv.describe_value(value)}"
        )

    return check


def _positive_number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise vol.Invalid(f"expected a number above 0, got {cv.describe_value(value)}")


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


def _coordinates_together(estate: dict[str, Any]) -> dict[str, Any]:
    if ("latitude" in estate) != ("longitude" in estate):
        raise vol.Invalid("give both latitude and longitude, or neither")
    return estate


_ESTATE_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("name"): _text,
            vol.Optional("timezone", default=DEFAULT_TIMEZONE): cv.timezone,
            vol.Optional("latitude"): _coordinate(90, "latitude"),
            vol.Optional("longitude"): _coordinate(180, "longitude"),
        },
        _coordinates_together,
    )
)

_STORE_SCHEMA = vol.Schema({vol.Optional("path", default=DEFAULT_STORE_FILE): _text})

_TOKEN_MIN_CHARS = 16


def _token_text(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid(f"expected text, got {cv.describe_value(value)}")
    if len(value) < _TOKEN_MIN_CHARS:
        raise vol.Invalid(f"a token must be at least {_TOKEN_MIN_CHARS} characters long")
    return value


def _at_least_one_role(roles: list[str]) -> frozenset[str]:
    if not roles:
        raise vol.Invalid(f"a token needs at least one role: {', '.join(sorted(ROLES))}")
    return frozenset(roles)


_TOKEN_SCHEMA = vol.Schema(
    {
        vol.Required("name"): _text,
        vol.Required("token"): _token_text,
        vol.Required("roles"): vol.All(
            cv.ensure_list, cv.list_of(vol.In(ROLES)), _at_least_one_role
        ),
    }
)

_API_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="127.0.0.1"): _text,
        vol.Optional("port", default=8740): cv.port,
        vol.Optional("tokens", default=list): vol.All(cv.ensure_list, cv.list_of(_TOKEN_SCHEMA)),
        vol.Optional("advertise", default=True): bool,
        vol.Optional("advertise_interfaces"): vol.All(cv.ensure_list, [_text], vol.Length(min=1)),
    }
)


def _reconnect_order(reconnect: dict[str, Any]) -> dict[str, Any]:
    if reconnect["min"].total_seconds() <= 0:
        raise vol.Invalid("reconnect min must be longer than 0s, or the hub hammers the broker")
    if reconnect["min"] > reconnect["max"]:
        raise vol.Invalid("reconnect min must not be longer than max")
    return reconnect


def _password_needs_username(mqtt: dict[str, Any]) -> dict[str, Any]:
    if "password" in mqtt and "username" not in mqtt:
        raise vol.Invalid("a password needs a username (MQTT sends a password only with one)")
    return mqtt


_MQTT_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("host"): _text,
            vol.Optional("port", default=1883): cv.port,
            vol.Optional("username"): _text,
            vol.Optional("password"): _text,
            vol.Optional("client_id"): _text,
            vol.Optional("keepalive", default=60): cv.positive_int,
            vol.Optional("reconnect", default=dict): vol.All(
                _none_as_empty,
                {
                    vol.Optional("min", default="1s"): cv.duration,
                    vol.Optional("max", default="60s"): cv.duration,
                },
                _reconnect_order,
            ),
            vol.Optional("tls", default=False): bool,
        },
        _password_needs_username,
    )
)


def _allow_list_given(value: Any) -> Any:
    if value is None:
        raise vol.Invalid(
            "list the plugins to allow, or leave 'allow' out to allow every installed plugin"
        )
    return value


def _allow_and_block_apart(plugins: dict[str, Any]) -> dict[str, Any]:
    both = sorted(set(plugins.get("allow") or ()) & set(plugins["block"]))
    if both:
        raise vol.Invalid(f"plugins both allowed and blocked: {', '.join(both)}")
    return plugins


_PLUGIN_NAMES = vol.All(cv.ensure_list, cv.list_of(_text))

_PLUGINS_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Optional("allow"): vol.All(_allow_list_given, _PLUGIN_NAMES),
            vol.Optional("block", default=list): _PLUGIN_NAMES,
        },
        _allow_and_block_apart,
    )
)

_CAPTURE_SCHEMA = vol.Schema({vol.Optional("path", default=DEFAULT_CAPTURE_FILE): _text})

_FLAT_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("area_m2"): _positive_number,
        vol.Optional("household"): _ID,
    }
)
_UNIT_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("name"): _text,
        vol.Optional("flats", default=list): vol.All(cv.ensure_list, cv.list_of(_FLAT_SCHEMA)),
    }
)
_BUILDING_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("name"): _text,
        vol.Optional("units", default=list): vol.All(cv.ensure_list, cv.list_of(_UNIT_SCHEMA)),
    }
)
_HOUSEHOLD_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("name"): _text,
        vol.Optional("members"): cv.positive_int,
        vol.Optional("phone"): vol.All(_id_text, _text),
    }
)
_DEVICE_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _ID,
        vol.Optional("name"): _text,
        vol.Optional("flat"): _text,
        vol.Required("kind"): _text,
    }
)
_REGISTRY_SCHEMA = vol.Schema(
    {
        vol.Optional(section, default=list): vol.All(cv.ensure_list, cv.list_of(schema))
        for section, schema in (
            ("buildings", _BUILDING_SCHEMA),
            ("households", _HOUSEHOLD_SCHEMA),
            ("devices", _DEVICE_SCHEMA),
        )
    }
)


# --------------------------------------------------------------------------- cross-checks


def _first_seen_text(first: tuple[str, int] | None, here: tuple[str, int] | None) -> str:
    if first is None:
        return "already used above"
    if here is not None and here[0] == first[0]:
        return f"already used on line {first[1]}"
    return f"already used in {first[0]}, line {first[1]}"


class _UniqueIds:
    """Reports the second and later use of an id, naming where it was first used."""

    def __init__(self, what: str, data: Any, issues: list[ConfigIssue], scope: str = "") -> None:
        self._what = what
        self._scope = scope
        self._data = data
        self._issues = issues
        self.first_seen: dict[str, tuple[str, int] | None] = {}

    def add(self, value: str, path: tuple[str | int, ...]) -> None:
        here = _locate(self._data, path).where
        if value in self.first_seen:
            detail = _first_seen_text(self.first_seen[value], here)
            self._issues.append(
                _issue_at(
                    self._data, path, f"duplicate {self._what} '{value}'{self._scope}: {detail}"
                )
            )
        else:
            self.first_seen[value] = here


def _suggestion(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_registry(raw: Any, registry: dict[str, Any]) -> list[ConfigIssue]:
    """Duplicate ids, and flats/devices pointing at things the registry does not have."""
    issues: list[ConfigIssue] = []
    buildings = _UniqueIds("building id", raw, issues)
    flats = _UniqueIds("flat", raw, issues)
    households = _UniqueIds("household id", raw, issues)
    devices = _UniqueIds("device id", raw, issues)
    for h_index, household in enumerate(registry["households"]):
        households.add(household["id"], ("registry", "households", h_index, "id"))
    flat_households: list[tuple[str, tuple[str | int, ...]]] = []
    for b_index, building in enumerate(registry["buildings"]):
        b_path: tuple[str | int, ...] = ("registry", "buildings", b_index)
        buildings.add(building["id"], (*b_path, "id"))
        units = _UniqueIds("unit id", raw, issues, f" in building '{building['id']}'")
        for u_index, unit in enumerate(building["units"]):
            u_path = (*b_path, "units", u_index)
            units.add(unit["id"], (*u_path, "id"))
            for f_index, flat in enumerate(unit["flats"]):
                f_path = (*u_path, "flats", f_index)
                flat["full_id"] = f"{building['id']}-{unit['id']}-{flat['id']}"
                flats.add(flat["full_id"], (*f_path, "id"))
                if "household" in flat:
                    flat_households.append((flat["household"], (*f_path, "household")))
    for household_id, path in flat_households:
        if household_id not in households.first_seen:
            hint = _suggestion(household_id, households.first_seen)
            issues.append(
                _issue_at(
                    raw, path, f"household '{household_id}' is not in registry → households{hint}"
                )
            )
    for d_index, device in enumerate(registry["devices"]):
        d_path: tuple[str | int, ...] = ("registry", "devices", d_index)
        devices.add(device["id"], (*d_path, "id"))
        flat_id = device.get("flat")
        if flat_id is not None and flat_id not in flats.first_seen:
            hint = _suggestion(flat_id, flats.first_seen)
            issues.append(
                _issue_at(raw, (*d_path, "flat"), f"flat '{flat_id}' is not in the registry{hint}")
            )
    return issues


def _check_tokens(raw: Any, api: dict[str, Any]) -> list[ConfigIssue]:
    """Token names must be unique (they appear in the audit log); so must token values."""
    issues: list[ConfigIssue] = []
    names = _UniqueIds("token name", raw, issues)
    holders: dict[str, str] = {}
    for index, token in enumerate(api["tokens"]):
        path: tuple[str | int, ...] = ("api", "tokens", index)
        names.add(token["name"], (*path, "name"))
        holder = holders.setdefault(str(token["token"]), token["name"])
        if holder != token["name"]:
            issues.append(
                _issue_at(
                    raw,
                    (*path, "token"),
                    f"this token is the same as the token of '{holder}'; give each its own",
                )
            )
    return issues


# --------------------------------------------------------------------------- the estate


def _absolute(config_dir: Path, written: str) -> Path:
    if written == MEMORY_STORE:
        return Path(MEMORY_STORE)
    return (config_dir / Path(written).expanduser()).resolve()


def load_estate_config(
    path: Path,
    module_schemas: Mapping[str, vol.Schema],
    section_schemas: Mapping[str, vol.Schema] = MappingProxyType({}),
    always_on: Iterable[str] = (),
) -> EstateConfig:
    """Load and validate one estate's config file.

    :param module_schemas: module name → schema of its ``modules:`` entry, supplied by the
        installed plugins. A module written without a body (``parking:``) is enabled with
        its defaults, i.e. its schema runs on ``{}``.
    :param section_schemas: extra top-level sections registered by plugins.
    :param always_on: modules enabled even when not listed (their schema runs on ``{}``).
    :raises ConfigError: listing every issue in the file and its includes: YAML problems,
        core sections, the registry's cross-references, and every module's schema.
    :raises PluginError: when a plugin registers a section the core owns.
    """
    clashing = sorted(set(section_schemas) & set(CORE_SECTIONS))
    if clashing:
        raise PluginError(f"plugins may not register core config sections: {', '.join(clashing)}")
    config_path = Path(path)
    raw = load_yaml(config_path)
    main_file = config_path.name
    if raw is None:
        raw = _empty_mapping_at((main_file, 1))
    if not isinstance(raw, dict):
        where = position(raw) or (main_file, 1)
        raise ConfigError(
            [
                ConfigIssue(
                    *where,
                    (),
                    "an estate config is a mapping of sections (estate:, registry:, modules: …), "
                    f"got {cv.describe_value(raw)}",
                )
            ]
        )
    issues: list[ConfigIssue] = []
    known_sections = set(CORE_SECTIONS) | set(section_schemas)
    for name in raw:
        if name not in known_sections:
            hint = _suggestion(str(name), known_sections)
            issues.append(
                _issue_at(
                    raw,
                    (name,),
                    f"unknown section '{name}'{hint}; "
                    f"known sections: {', '.join(sorted(known_sections))}",
                )
            )

    def section(name: str, schema: vol.Schema, absent: Any) -> Any:
        if name not in raw:
            if absent is _REQUIRED:
                issues.append(_issue_at(raw, (name,), "required section not provided"))
                return None
            return absent
        value = {} if raw[name] is None else raw[name]
        validated, found = _validate_within(value, schema, raw, (name,), ())
        issues.extend(found)
        return validated

    estate = section("estate", _ESTATE_SCHEMA, _REQUIRED)
    store = section("store", _STORE_SCHEMA, {"path": DEFAULT_STORE_FILE})
    api = section("api", _API_SCHEMA, {"host": "127.0.0.1", "port": 8740, "tokens": []})
    mqtt = section("mqtt", _MQTT_SCHEMA, None)
    plugins = section("plugins", _PLUGINS_SCHEMA, {"block": []})
    capture = section("capture", _CAPTURE_SCHEMA, None)
    registry = section(
        "registry", _REGISTRY_SCHEMA, {"buildings": [], "households": [], "devices": []}
    )
    if registry is not None:
        issues.extend(_check_registry(raw, registry))
    if api is not None and "api" in raw:
        issues.extend(_check_tokens(raw, api))
    modules = _validate_modules(raw, module_schemas, tuple(always_on), issues)
    sections: dict[str, Any] = {}
    for name, schema in section_schemas.items():
        if name in raw:
            validated, found = _validate_within(raw[name], schema, raw, (name,), ())
            issues.extend(found)
            sections[name] = validated
    if issues:
        raise ConfigError(_sorted_unique(_without_secrets(issues, raw)))
    config_dir = config_path.parent.absolute()
    return EstateConfig(
        path=config_path.resolve(),
        name=str(estate["name"]),
        timezone=estate["timezone"],
        latitude=estate.get("latitude"),
        longitude=estate.get("longitude"),
        store_path=_absolute(config_dir, store["path"]),
        api=ApiSettings(
            host=str(api["host"]),
            port=api["port"],
            tokens=tuple(
                ApiToken(name=str(t["name"]), token=str(t["token"]), roles=frozenset(t["roles"]))
                for t in api["tokens"]
            ),
            advertise=api.get("advertise", True),
            advertise_interfaces=tuple(map(str, api["advertise_interfaces"]))
            if "advertise_interfaces" in api
            else None,
        ),
        mqtt=_mqtt_settings(mqtt),
        plugins=PluginSettings(
            allow=frozenset(map(str, plugins["allow"])) if "allow" in plugins else None,
            block=frozenset(map(str, plugins["block"])),
        ),
        capture_path=_absolute(config_dir, capture["path"]) if capture is not None else None,
        registry=MappingProxyType(registry),
        modules=MappingProxyType(modules),
        sections=MappingProxyType(sections),
        raw=raw,
    )


_REQUIRED = object()


def _mqtt_settings(mqtt: dict[str, Any] | None) -> MqttSettings | None:
    if mqtt is None:
        return None

    def optional_text(key: str) -> str | None:
        return str(mqtt[key]) if key in mqtt else None

    return MqttSettings(
        host=str(mqtt["host"]),
        port=mqtt["port"],
        username=optional_text("username"),
        password=optional_text("password"),
        client_id=optional_text("client_id"),
        keepalive=mqtt["keepalive"],
        reconnect_min=mqtt["reconnect"]["min"].total_seconds(),
        reconnect_max=mqtt["reconnect"]["max"].total_seconds(),
        tls=mqtt["tls"],
    )


def _validate_modules(
    raw: dict[str, Any],
    module_schemas: Mapping[str, vol.Schema],
    always_on: tuple[str, ...],
    issues: list[ConfigIssue],
) -> dict[str, Mapping[str, Any]]:
    """Run each listed module's schema, then the always-on modules' schemas on ``{}``."""
    listed = raw.get("modules")
    if listed is None:
        listed = {}
    if not isinstance(listed, dict):
        issues.append(
            _issue_at(
                raw,
                ("modules",),
                "expected a mapping of module names to their settings, "
                f"got {cv.describe_value(listed)}",
            )
        )
        listed = {}
    known = set(module_schemas) | set(always_on)
    modules: dict[str, Mapping[str, Any]] = {}
    for name, body in listed.items():
        if name not in known:
            hint = _suggestion(str(name), known)
            installed = (
                f"known modules: {', '.join(sorted(known))}"
                if known
                else "no modules are installed"
            )
            issues.append(
                _issue_at(raw, ("modules", name), f"unknown module '{name}'{hint}; {installed}")
            )
            continue
        # `parking:` with no body means "enabled with its defaults".
        modules[str(name)] = _module_config(
            str(name), {} if body is None else body, raw, issues, module_schemas
        )
    for name in always_on:
        if name not in modules and name not in listed:
            modules[name] = _module_config(name, {}, raw, issues, module_schemas)
    return modules


def _module_config(
    name: str,
    body: Any,
    raw: dict[str, Any],
    issues: list[ConfigIssue],
    module_schemas: Mapping[str, vol.Schema],
) -> Mapping[str, Any]:
    schema = module_schemas.get(name)
    if schema is None:
        # An always-on module without a schema has nothing to configure.
        if body:
            issues.append(_issue_at(raw, ("modules", name), f"module '{name}' takes no settings"))
        return MappingProxyType({})
    validated, found = _validate_within(body, schema, raw, ("modules", name), ())
    issues.extend(found)
    return validated if validated is not None else MappingProxyType({})
