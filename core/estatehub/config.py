"""The estate configuration: one YAML file per estate, every value traceable to its line.

Loading happens in three steps:

1. :func:`load_yaml` reads the file with a PyYAML loader that stamps every mapping, list
   and string with the file and line it was written on, resolves ``!secret`` (from
   ``secrets.yaml`` beside the file) and ``!include`` (relative to the including file), and
   rejects duplicate keys. Everything it finds wrong is collected, not just the first thing.
   Only regular files of at most 1 MiB are read, nothing may nest more than 100 levels deep
   (counting included files) and ``secrets.yaml`` is read as plain text, exactly as written.
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
import dataclasses
import datetime as dt
import difflib
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import voluptuous as vol
import yaml

from estatehub import config_validation as cv
from estatehub.escalation import ESCALATION_SCHEMA, EscalationConfig, escalation_config
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

CORE_SECTIONS = (
    "estate",
    "store",
    "api",
    "mqtt",
    "plugins",
    "capture",
    "registry",
    "modules",
    "automations",
    "escalation",
)
"""Top-level sections the core owns; plugins may register others."""

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_STORE_FILE = "estatehub.db"
DEFAULT_CAPTURE_FILE = "capture.jsonl"
MEMORY_STORE = ":memory:"
SECRETS_FILE = "secrets.yaml"

MAX_NESTING = 100
"""Deepest nesting of mappings and lists a config may have, included files counted in.
Real configs stay under 10; the limit keeps parsing and validation far from Python's
recursion limit."""
MAX_INCLUDE_DEPTH = 20
"""Longest chain of files each including the next."""
MAX_FILE_BYTES = 1024 * 1024
"""Largest config, included or secrets file read (1 MiB)."""

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

    __slots__ = ("__estatehub_pos__", "_key_lines", "_value_tags")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__estatehub_pos__: tuple[str, int] | None = None
        self._key_lines: dict[Any, int] = {}
        self._value_tags: dict[Any, str] = {}  # key -> "!include" / "!secret" of its value


class YamlList(list):  # type: ignore[type-arg]
    """A list loaded from YAML; knows where it and each of its items were written."""

    __slots__ = ("__estatehub_pos__", "_item_lines", "_item_tags")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.__estatehub_pos__: tuple[str, int] | None = None
        self._item_lines: list[int] = []
        self._item_tags: dict[int, str] = {}  # index -> "!include" / "!secret"


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


def _short_text(text: str) -> str:
    """``text`` cut short as :func:`~estatehub.config_validation.describe_value` does, unquoted."""
    return cv.describe_value(text)[1:-1] if text else text


def _tag_of(node: Any, key: Any) -> str | None:
    """The ``!include`` or ``!secret`` tag the value at ``node[key]`` was written with."""
    if isinstance(node, YamlDict):
        return node._value_tags.get(key)
    if isinstance(node, YamlList) and isinstance(key, int):
        return node._item_tags.get(key)
    return None


class _Unresolved:
    """Stands in for a value that could not be loaded (a failed ``!include`` or
    ``!secret``, an unknown tag, an unreadable number or date), so the issue about it can
    be given the path it sits at once the whole file is loaded. The data holding one is
    never returned: :func:`load_yaml` raises."""

    __slots__ = ()


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


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_FILE_TAGS = ("!include", "!secret")
_TOO_DEEP = f"nested too deeply (more than {MAX_NESTING} levels)"
_SCALAR_KINDS = {
    "tag:yaml.org,2002:null": "an empty value",
    "tag:yaml.org,2002:bool": "true or false",
    _INT_TAG: "a whole number",
    _FLOAT_TAG: "a number",
    _TIMESTAMP_TAG: "a date or time",
    "tag:yaml.org,2002:binary": "base64 data",
}


class _Unreadable(Exception):
    """A file estatehub will not read; the message says why."""


def _read_config_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`.

    Opened without blocking and checked before reading, so ``!include /dev/zero`` or a
    named pipe cannot hang the loader and a huge file cannot exhaust memory.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise _Unreadable(_os_reason(error)) from None
    except ValueError:  # a NUL byte in the name
        raise _Unreadable("the file name contains a NUL character") from None
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise _Unreadable("it is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise _Unreadable(
                "it is not a regular file (a device, pipe or socket); "
                "only regular files of at most 1 MiB are read"
            )
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise _Unreadable(_os_reason(error)) from None
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable("it is larger than 1 MiB; only files of at most 1 MiB are read")
    return data


def _too_deep_line(text: str) -> int | None:
    """The line where nesting first goes past :data:`MAX_NESTING`, or None.

    Only called when composing failed: the pure-Python parser yields events without
    recursing, so it can walk any depth (libyaml stops at 1000 levels, and composing
    recurses once per level).
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    return int(mark.line) + 1 if mark is not None else 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError:
        return None  # a syntax error comes first; it is reported as such
    return None


@dataclass(slots=True)
class _LoadContext:
    """State shared by the loaders of one config file and everything it includes."""

    main_dir: Path
    issues: list[ConfigIssue] = field(default_factory=list)
    secret_files: dict[Path, YamlDict | None] = field(default_factory=dict)
    # index in `issues` -> the loaded object the issue is about. Constructors do not know
    # where in the file they are; the path is looked up once everything is loaded.
    holders: dict[int, Any] = field(default_factory=dict)

    def report(self, file: str, line: int | None, message: str, holder: Any = None) -> None:
        if holder is not None:
            self.holders[len(self.issues)] = holder
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
            raw = _read_config_bytes(path)
        except _Unreadable as unreadable:
            if site is None:
                self.report(display, None, f"cannot read the config file {path}: {unreadable}")
            else:
                self.report(site[0], site[1], f"cannot read {display}: {unreadable}")
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
        loader_class = _SecretsLoader if secrets_file else _EstateLoader
        loader = loader_class(
            text,
            file_path=path,
            display=display,
            context=self,
            stack=stack,
        )
        try:
            return loader.get_single_data()
        except (yaml.MarkedYAMLError, RecursionError) as error:
            # libyaml refuses more than 1000 levels; deep block nesting exhausts the stack.
            deep_line = _too_deep_line(text)
            if deep_line is not None:
                self.report(display, deep_line, _TOO_DEEP)
            elif isinstance(error, yaml.MarkedYAMLError):
                self.issues.append(_syntax_issue(error, text, display))
            else:
                self.report(display, None, "nested too deeply for the YAML parser's stack")
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
        shown = cv.describe_value(name)
        if searched:
            self.report(*site, f"secret {shown} not found in {' or '.join(searched)}")
        else:
            beside = self.display_name(requested_in)
            self.report(
                *site, f"secret {shown} not found: there is no {SECRETS_FILE} beside {beside}"
            )
        return None

    def _secrets_in(self, secrets_path: Path, site: tuple[str, int]) -> YamlDict | None:
        key = secrets_path.absolute()
        if key not in self.secret_files:
            loaded: YamlDict | None = None
            # exists(), not is_file(): a directory or device named secrets.yaml is reported
            if secrets_path.exists():
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
        shown = cv.describe_value(name)
        if isinstance(value, dict | list):
            kind = "a mapping" if isinstance(value, dict) else "a list"
            self.report(*where, f"secret {shown} must be a single value, not {kind}")
            return None
        if not isinstance(value, str):  # only an explicit tag (`!!int 5`) gets here
            self.report(*where, f"secret {shown} is not text; write its value without a tag")
            return None
        if not value:
            self.report(*where, f"secret {shown} is empty; write its value after the colon")
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


_TAB_PROBLEM = "found character '\\t' that cannot start any token"


def _syntax_issue(error: yaml.MarkedYAMLError, text: str, display: str) -> ConfigIssue:
    """Turn a PyYAML error into an issue with the parser's own problem statement."""
    if (
        not isinstance(error, yaml.constructor.ConstructorError)
        and _ParserBase is not yaml.SafeLoader
    ):
        # The C parser is fast but terse ("found character that cannot start any token");
        # errors are rare, so re-read with the pure-Python parser for its clearer words.
        # Parsing yields events without recursing; only composer errors (an undefined
        # alias) need composing, and the nesting is known to be within MAX_NESTING then.
        try:
            if isinstance(error, yaml.composer.ComposerError):
                yaml.compose(text, Loader=yaml.SafeLoader)
            else:
                for _ in yaml.parse(text, Loader=yaml.SafeLoader):
                    pass
        except yaml.MarkedYAMLError as clearer:
            error = clearer
    mark = error.problem_mark or error.context_mark
    # "found '<stream end>'" is marked just past the final newline; name the last line.
    last_line = max(1, len(text.splitlines()))
    line = min(mark.line + 1, last_line) if mark is not None else None
    problem = error.problem or error.context or "unreadable YAML"
    if problem == _TAB_PROBLEM:
        return ConfigIssue(
            display, line, (), "invalid YAML: tabs are not allowed for indentation; use spaces"
        )
    message = (
        problem
        if isinstance(error, yaml.constructor.ConstructorError)
        else f"invalid YAML: {problem}"
    )
    if error.context and error.problem:
        context_line = None
        if error.context_mark is not None:
            context_line = min(error.context_mark.line + 1, last_line)
        if context_line is not None and context_line != line:
            message += f" ({error.context} on line {context_line})"
        else:
            message += f" ({error.context})"
    return ConfigIssue(display, line, (), message)


def _scalar_problem(node: yaml.ScalarNode, error: Exception) -> str:
    if node.tag == _INT_TAG and isinstance(error, ValueError) and "digits" in str(error):
        digits = sum(character.isdigit() for character in node.value)
        return f"a number of {digits} digits is too long to read"
    kind = _SCALAR_KINDS.get(node.tag, node.tag)
    reason = str(error).split("\n", 1)[0]
    return (
        f"{cv.describe_value(str(node.value))} cannot be read as {kind} ({reason}); "
        "put it in quotes if it is meant as text"
    )


class _EstateLoader(_ParserBase):  # type: ignore[misc,valid-type]
    """A safe PyYAML loader that stamps positions and understands !secret and !include."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, resolvers in _ParserBase.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]
    }
    _secrets_file: ClassVar[bool] = False

    def __init__(
        self,
        text: str,
        *,
        file_path: Path,
        display: str,
        context: _LoadContext,
        stack: tuple[tuple[Path, str], ...],
    ) -> None:
        super().__init__(text)
        self._file_path = file_path
        self._display = display
        self._context = context
        self._stack = stack or ((file_path.resolve(), display),)
        # node id -> (node, number of pairs merged in front by `<<`); see flatten_mapping
        self._merged: dict[int, tuple[yaml.MappingNode, int]] = {}

    def _line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def _report(self, node: yaml.Node, message: str, holder: Any = None) -> None:
        self._context.report(self._display, self._line(node), message, holder)

    def _placeholder_if_failed(self, node: yaml.Node, resolve: Callable[[], Any]) -> Any:
        """Run ``resolve``; if it reported a problem at ``node``, return a placeholder that
        the issue is attached to (so it gets a path), else what ``resolve`` returned."""
        issues = self._context.issues
        before = len(issues)
        value = resolve()
        site = (self._display, self._line(node))
        failed = [
            at for at in range(before, len(issues)) if (issues[at].file, issues[at].line) == site
        ]
        if not failed:
            return value
        placeholder = _Unresolved()
        for at in failed:
            self._context.holders.setdefault(at, placeholder)
        return placeholder

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
            if key is None:
                self._report(key_node, "a key must be text, got null", mapping)
                continue
            try:
                hash(key)
            except TypeError:
                self._report(
                    key_node, "a key must be a single value, not a mapping or a list", mapping
                )
                continue
            if index >= merged_count:
                if key in written_on:
                    self._report(
                        key_node,
                        f"duplicate key {cv.describe_value(key)}: "
                        f"already written on line {written_on[key]}",
                        mapping,
                    )
                    continue
                written_on[key] = line
            mapping[key] = self.construct_object(value_node, deep=False)
            mapping._key_lines[key] = line
            if value_node.tag in _FILE_TAGS:
                mapping._value_tags[key] = value_node.tag

    def construct_estate_sequence(self, node: yaml.SequenceNode) -> Iterator[YamlList]:
        items = _stamp(YamlList(), self._display, self._line(node))
        yield items
        for index, item_node in enumerate(node.value):
            items.append(self.construct_object(item_node, deep=False))
            items._item_lines.append(self._line(item_node))
            if item_node.tag in _FILE_TAGS:
                items._item_tags[index] = item_node.tag

    def construct_estate_str(self, node: yaml.ScalarNode) -> YamlStr:
        return _stamp(YamlStr(self.construct_scalar(node)), self._display, self._line(node))

    def construct_checked_scalar(self, node: yaml.ScalarNode) -> Any:
        """PyYAML's own scalar constructors, with their crashes (``2026-13-45``, ``!!int x``,
        a number of 5000 digits) turned into issues."""
        construct = yaml.SafeLoader.yaml_constructors[node.tag]
        try:
            return construct(self, node)
        except (ValueError, TypeError, OverflowError) as error:
            placeholder = _Unresolved()
            self._report(node, _scalar_problem(node, error), placeholder)
            return placeholder

    def _tag_argument(self, node: yaml.Node, tag: str, example: str) -> str | None:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            self._report(node, f"{tag} needs {example}")
            return None
        return value.strip()

    def construct_secret(self, node: yaml.Node) -> Any:
        return self._placeholder_if_failed(node, lambda: self._secret(node))

    def _secret(self, node: yaml.Node) -> Any:
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
        return self._placeholder_if_failed(node, lambda: self._include(node))

    def _include(self, node: yaml.Node) -> Any:
        name = self._tag_argument(node, "!include", "a file name, e.g. !include registry.yaml")
        if name is None:
            return None
        target = self._file_path.parent / name
        try:
            resolved = target.resolve()
        except (OSError, RuntimeError, ValueError) as error:  # a symlink loop, a NUL byte
            self._report(node, f"cannot read {cv.describe_value(name)}: {error}")
            return None
        display = self._context.display_name(target)
        chain = [shown for _, shown in self._stack]
        if resolved in (included for included, _ in self._stack):
            self._report(node, f"include cycle: {' → '.join([*chain, display])}")
            return None
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self._report(
                node,
                f"!include nested too deeply (more than {MAX_INCLUDE_DEPTH} files, "
                "each including the next)",
            )
            return None
        return self._context.load_file(
            target, display, (*self._stack, (resolved, display)), (self._display, self._line(node))
        )

    def construct_unknown_tag(self, node: yaml.Node) -> Any:
        placeholder = _Unresolved()
        self._report(
            node,
            f"unknown tag '{_short_text(str(node.tag))}'; "
            "estatehub understands !secret and !include",
            placeholder,
        )
        return placeholder


class _SecretsLoader(_EstateLoader):
    """Reads secrets.yaml: every plain scalar is text exactly as written.

    A token ``0x0123456789abcdef`` or a card number ``1234_5678_9012_3456`` must not be
    turned into a number and back (PyYAML's BaseLoader reads scalars the same way).
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}
    _secrets_file: ClassVar[bool] = True


_EstateLoader.add_implicit_resolver(_INT_TAG, _INT_PATTERN, list("-+0123456789"))
_EstateLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_PATTERN, list("-+0123456789."))
_EstateLoader.add_constructor("tag:yaml.org,2002:map", _EstateLoader.construct_estate_mapping)
_EstateLoader.add_constructor("tag:yaml.org,2002:seq", _EstateLoader.construct_estate_sequence)
_EstateLoader.add_constructor("tag:yaml.org,2002:str", _EstateLoader.construct_estate_str)
for _scalar_tag in _SCALAR_KINDS:
    _EstateLoader.add_constructor(_scalar_tag, _EstateLoader.construct_checked_scalar)
_EstateLoader.add_constructor("!secret", _EstateLoader.construct_secret)
_EstateLoader.add_constructor("!include", _EstateLoader.construct_include)
_EstateLoader.add_constructor(None, _EstateLoader.construct_unknown_tag)


def _containers_of(node: Any) -> Iterator[tuple[Any, Any]]:
    """(key or index, child) for every mapping or list directly inside ``node``."""
    if isinstance(node, dict):
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        if isinstance(child, dict | list):
            yield key, child


def _where_nested(parent: Any, key: Any, child: Any) -> tuple[str, int] | None:
    """Where a nested mapping or list starts: its own position, else its key's."""
    return position(child) or position(parent, key)


def _nesting_issue(data: Any) -> ConfigIssue | None:
    """An issue if ``data`` nests deeper than :data:`MAX_NESTING` (included files and
    aliases counted in) or contains itself through an alias; else None.

    Iterative, and each shared mapping or list (a YAML alias) is measured once, so neither
    deep data nor an alias bomb can make this slow or exhaust the stack.
    """
    if not isinstance(data, dict | list):
        return None
    heights: dict[int, int] = {}  # id -> levels of nesting from this container down
    on_path: set[int] = {id(data)}
    stack: list[tuple[Any, Iterator[tuple[Any, Any]], Any]] = [(data, _containers_of(data), None)]
    while stack:
        node, children, _ = stack[-1]
        for key, child in children:
            if id(child) in on_path:
                where = _alias_site(node, key)
                file, line = where if where is not None else ("", None)
                return ConfigIssue(
                    file,
                    line,
                    _path_along(stack, key),
                    "this alias refers to a mapping or list it is inside, "
                    "so it would nest without end",
                )
            known_height = heights.get(id(child))
            if known_height is None:
                if len(stack) >= MAX_NESTING:
                    return _issue_where(_where_nested(node, key, child), _TOO_DEEP)
                on_path.add(id(child))
                stack.append((child, _containers_of(child), key))
                break
            if len(stack) + known_height > MAX_NESTING:
                # Reached again through an alias, and too deep from here: name the alias.
                return _issue_where(_alias_site(node, key), _TOO_DEEP)
        else:
            stack.pop()
            on_path.discard(id(node))
            heights[id(node)] = 1 + max(
                (heights[id(child)] for _, child in _containers_of(node)), default=0
            )
    return None


def _alias_site(parent: Any, key: Any) -> tuple[str, int] | None:
    """Where an alias inside ``parent`` was written, as near as is known.

    An alias is composed into its anchor's node, so a list item that is an alias carries
    the anchor's line; the list's own line is closer. Mapping keys keep their own line.
    """
    if isinstance(parent, dict):
        return position(parent, key)
    return position(parent)


def _path_along(stack: list[tuple[Any, Any, Any]], last: Any) -> tuple[str | int, ...]:
    steps = [(parent, key) for (parent, _, _), (_, _, key) in itertools.pairwise(stack)]
    steps.append((stack[-1][0], last))
    return tuple(_path_key(key) if isinstance(parent, dict) else key for parent, key in steps)


def _issue_where(where: tuple[str, int] | None, message: str) -> ConfigIssue:
    file, line = where if where is not None else ("", None)
    return ConfigIssue(file, line, (), message)


def _paths_to(data: Any, wanted: set[int]) -> dict[int, tuple[str | int, ...]]:
    """The shortest path from ``data`` to each object whose id is in ``wanted``."""
    found: dict[int, tuple[str | int, ...]] = {}
    seen: set[int] = set()
    queue: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    for node, path in queue:  # the list grows while it is walked: breadth first
        if id(node) in wanted and id(node) not in found:
            found[id(node)] = path
            if len(found) == len(wanted):
                break
        if not isinstance(node, dict | list) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            queue.extend((child, (*path, _path_key(key))) for key, child in node.items())
        else:
            queue.extend((child, (*path, index)) for index, child in enumerate(node))
    return found


def _path_key(key: Any) -> str:
    """A mapping key as a path element: always text, so ``123:`` renders ``→ 123``."""
    return str(key)


def load_yaml(path: Path) -> Any:
    """Load a YAML config file whose mappings, lists and strings carry their positions.

    ``!secret name`` reads ``secrets.yaml`` beside the file (then beside the config file);
    ``!include other.yaml`` loads a file relative to the including file. Times such as
    ``7:30`` and numbers with a leading zero such as ``0101`` stay text. Every value in
    ``secrets.yaml`` is text exactly as written there.

    :raises ConfigError: listing every syntax error, duplicate or null key, missing secret,
        missing or cyclic include, unknown tag, unreadable file (not a regular file, or
        larger than 1 MiB) and nesting deeper than :data:`MAX_NESTING` levels found.
    """
    path = Path(path)
    context = _LoadContext(main_dir=path.parent.absolute())
    data = context.load_file(path, path.name, (), None)
    too_deep = _nesting_issue(data)
    if too_deep is not None:
        context.issues.append(too_deep)
    if context.issues:
        issues = context.issues
        if context.holders:
            paths = _paths_to(data, {id(holder) for holder in context.holders.values()})
            issues = [
                dataclasses.replace(issue, path=paths.get(id(context.holders[at]), ()))
                if at in context.holders
                else issue
                for at, issue in enumerate(issues)
            ]
        raise ConfigError(_sorted_unique(issues))
    return data


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True, slots=True)
class _Location:
    """Where a voluptuous error path lands in loaded data.

    :param in_mapping: the last step of the path was a key of a mapping (``key``, written
        at ``key_where``) rather than a list index.
    """

    where: tuple[str, int] | None
    path: tuple[str | int, ...]
    found: bool
    value: Any
    in_mapping: bool = False
    key: Any = None
    key_where: tuple[str, int] | None = None


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
    Mapping keys become text in the path (``residents → 123``); list indexes stay numbers
    (``gates[0]``).
    """
    where = position(data)
    node = data
    found = True
    in_mapping = False
    last_key: Any = None
    key_where: tuple[str, int] | None = None
    keys: list[str | int] = []
    for element in error_path:
        key = element.schema if isinstance(element, vol.Marker) else element
        if not found:
            keys.append(_plain_key(key))
            continue
        in_mapping = isinstance(node, dict) and _is_hashable(key) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if not (in_mapping or in_list):
            if key == 0 and not isinstance(node, list) and not isinstance(key, bool):
                # cv.ensure_list wrapped a single value written without a list: the error
                # is about that value itself.
                keys.append(_plain_key(key))
                continue
            keys.append(_path_key(key) if isinstance(node, dict) else _plain_key(key))
            found = False
            continue
        keys.append(_path_key(key) if in_mapping else _plain_key(key))
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
        last_key, key_where = key, introduced_at
        node = child
    return _Location(
        where,
        tuple(keys),
        found,
        node if found else None,
        in_mapping=found and in_mapping,
        key=last_key,
        key_where=key_where,
    )


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_TYPE_WORDS = {
    "bool": "true or false",
    "boolean": "true or false",
    "dict": "a mapping",
    "str": "text",
}
_LENGTH_UNITS = {str: ("character", "characters"), dict: ("entry", "entries")}
_PYTHON_DATETIME = re.compile(r"datetime\.(datetime|date|time)\(([0-9, ]*)\)")
_REGEX_DEFAULT = "does not match regular expression "
_QUANTIFIER_WORDS = {"+": "one or more", "*": "any number", "": "exactly one", "?": "at most one"}


def _iso_text(match: re.Match[str]) -> str:
    """``datetime.datetime(2026, 3, 2, 8, 0)`` (a validator's repr of a value) → ISO text."""
    kind = {"datetime": dt.datetime, "date": dt.date, "time": dt.time}[match[1]]
    try:
        parts = [int(part) for part in match[2].split(",") if part.strip()]
        return kind(*parts).isoformat()
    except (TypeError, ValueError):
        return match[0]


def _pattern_in_words(pattern: str) -> str:
    """Say what a simple ``vol.Match`` pattern wants: ``^[A-HJ-NP-Z]+$`` → "one or more of
    the characters A–H, J–N, P–Z". Anything more complex is shown as the pattern."""
    shape = re.fullmatch(r"\^?\[([^\]\[\\^]+)\]([+*?]|\{(\d+)(?:,(\d*))?\})?\$?", pattern)
    if shape is None:
        return f"text matching the pattern {pattern}"
    members = re.findall(r".-.|.", shape[1])
    described = ", ".join(
        member.replace("-", "–") if len(member) == 3 else member for member in members
    )
    quantifier = shape[2] or ""
    if quantifier in _QUANTIFIER_WORDS:
        how_many = _QUANTIFIER_WORDS[quantifier]
    elif shape[4] is None:
        how_many = f"exactly {shape[3]}"
    elif shape[4] == "":
        how_many = f"{shape[3]} or more"
    else:
        how_many = f"{shape[3]} to {shape[4]}"
    return f"{how_many} of the characters {described}"


def _length_message(message: str, location: _Location) -> str | None:
    length = re.fullmatch(r"length of value must be (at most|at least) (\d+)", message)
    if not (length and location.found):
        return None
    count = int(length[2])
    singular, plural = next(
        (units for kind, units in _LENGTH_UNITS.items() if isinstance(location.value, kind)),
        ("item", "items"),
    )
    return f"must have {length[1]} {count} {singular if count == 1 else plural}"


def _is_key_error(error: vol.Invalid, location: _Location) -> bool:
    """Is ``error`` about a mapping key written as a number, true/false or a date?

    voluptuous reports a key that fails the schema's key validator at the key's path, with
    no ``error_type`` (errors about the value get "dictionary value"); keys that are text
    are named in the message by their validator already.
    """
    return (
        location.in_mapping
        and not isinstance(location.key, str)
        and error.error_type is None
        and str(error.error_message) != "extra keys not allowed"
    )


def _readable_message(
    error: vol.Invalid, location: _Location, failures: cv.ValidatorFailures | None = None
) -> str:
    """Rewrite voluptuous's terse messages; add the offending value.

    Handles classes of message rather than single validators: type names, choices,
    lengths (with the right unit and plural), patterns without a ``msg=``, Python reprs of
    dates, keys of the wrong type, and a ``vol.Any`` that reports "not a valid value" while
    one of its alternatives (a validator of :mod:`estatehub.config_validation`) said why.
    """
    if _is_key_error(error, location):
        key = cv.describe_value(location.key)
        if str(error.error_message) == "expected str":
            return f"a key must be text, got {key}"
        return f"invalid key {key}: {_readable_message(error, _Location(None, (), False, None))}"
    message = _PYTHON_DATETIME.sub(_iso_text, str(error.error_message))
    got = f", got {cv.describe_value(location.value)}" if location.found else ""
    if message in ("not a valid value", "no valid value found") and location.found:
        explained = failures.message_for(location.value) if failures is not None else None
        if explained is not None:
            return explained
        return f"not a valid value{got}"
    if message == "expected a dictionary":
        return f"expected a mapping{got}"
    if message in ("expected a list", "expected string or buffer"):
        return f"expected {'a list' if 'list' in message else 'text'}{got}"
    if message.startswith(_REGEX_DEFAULT):
        return f"expected {_pattern_in_words(message[len(_REGEX_DEFAULT) :])}{got}"
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
    if re.fullmatch(r"value must be (at most|at least|higher than|lower than) .*", message):
        return message + got
    length = _length_message(message, location)
    return length if length is not None else message


def _flatten_errors(error: vol.Invalid) -> Iterator[vol.Invalid]:
    pending = [error]
    while pending:  # iterative: the nesting of MultipleInvalid follows the data's
        current = pending.pop()
        if isinstance(current, vol.MultipleInvalid):
            pending.extend(reversed(current.errors))
        else:
            yield current


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
    plugin cannot hide the rest of the file's problems. Data nested deeper than
    :data:`MAX_NESTING` levels is refused before the schema sees it.
    """
    too_deep = _nesting_issue(data)
    if too_deep is not None:
        return None, [dataclasses.replace(too_deep, path=path)]
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
        with cv.remember_failures() as failures:
            return schema(value), []
    except vol.Invalid as invalid:
        errors = list(_flatten_errors(invalid))
    except Exception as crash:  # a plugin's schema must not take the loader down
        # RecursionError included: loaded data is at most MAX_NESTING deep, so a schema
        # that recurses without end is the plugin's bug.
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
        if _is_key_error(error, location) and location.key_where is not None:
            file, line = location.key_where
        message = _readable_message(error, location, failures)
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
    :param automations: the ``automations:`` list, validated (see
        :mod:`estatehub.automation`); every automation has an ``id``.
    :param escalation: the ``escalation:`` section: named policies, which incidents get
        them, auto-resolution rules (see :mod:`estatehub.escalation`).
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
    automations: tuple[Mapping[str, Any], ...] = ()
    escalation: EscalationConfig = field(default_factory=EscalationConfig)


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


def _estate_name(value: Any) -> str:
    if isinstance(value, YamlSecret):
        raise vol.Invalid("the estate name is shown everywhere; it cannot be a secret")
    return _text(value)


def _path_text(value: Any) -> str:
    """A file path as text that the operating system can take."""
    path = _text(value)
    if "\0" in path:
        raise vol.Invalid("a file path cannot contain a NUL character (\\0)")
    try:
        Path(path).expanduser()
    except RuntimeError:  # ~someone for a user this computer does not have
        raise vol.Invalid(
            f"cannot find the home folder in {cv.describe_value(value)}; write the full path"
        ) from None
    return path


_ESTATE_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("name"): _estate_name,
            vol.Optional("timezone", default=DEFAULT_TIMEZONE): cv.timezone,
            vol.Optional("latitude"): _coordinate(90, "latitude"),
            vol.Optional("longitude"): _coordinate(180, "longitude"),
        },
        _coordinates_together,
    )
)

_STORE_SCHEMA = vol.Schema({vol.Optional("path", default=DEFAULT_STORE_FILE): _path_text})

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
        vol.Optional("host", default="127.0.0.1"): cv.host,
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
            vol.Required("host"): cv.host,
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
        shown = ", ".join(_short_text(name) for name in both)
        raise vol.Invalid(f"plugins both allowed and blocked: {shown}")
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

_CAPTURE_SCHEMA = vol.Schema({vol.Optional("path", default=DEFAULT_CAPTURE_FILE): _path_text})

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
                    self._data,
                    path,
                    f"duplicate {self._what} {cv.describe_value(value)}{self._scope}: {detail}",
                )
            )
        else:
            self.first_seen[value] = here


def _suggestion(name: str, known: Iterable[str]) -> str:
    if len(name) > 100:  # difflib is quadratic; no typo is that long
        return ""
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
        in_building = f" in building {cv.describe_value(building['id'])}"
        units = _UniqueIds("unit id", raw, issues, in_building)
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
                    raw,
                    path,
                    f"household {cv.describe_value(household_id)} is not in "
                    f"registry → households{hint}",
                )
            )
    for d_index, device in enumerate(registry["devices"]):
        d_path: tuple[str | int, ...] = ("registry", "devices", d_index)
        devices.add(device["id"], (*d_path, "id"))
        flat_id = device.get("flat")
        if flat_id is not None and flat_id not in flats.first_seen:
            hint = _suggestion(flat_id, flats.first_seen)
            issues.append(
                _issue_at(
                    raw,
                    (*d_path, "flat"),
                    f"flat {cv.describe_value(flat_id)} is not in the registry{hint}",
                )
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
                    f"this token is the same as the token of {cv.describe_value(holder)}; "
                    "give each its own",
                )
            )
    return issues


# --------------------------------------------------------------------------- the estate


def _absolute(config_dir: Path, written: str) -> Path:
    if written == MEMORY_STORE:
        return Path(MEMORY_STORE)
    joined = config_dir / Path(written).expanduser()
    try:
        return joined.resolve()
    except (OSError, RuntimeError):  # a symlink loop: leave it for whoever opens the file
        return Path(os.path.abspath(joined))


def _plugins_read_early(raw: YamlDict, main_file: str) -> list[ConfigIssue]:
    """``plugins:`` is read by a quick pass before the full load (its lists decide which
    plugins' schemas exist), and that pass neither follows ``!include`` nor resolves
    ``!secret``: refuse them here rather than silently load a different set of plugins."""
    issues: list[ConfigIssue] = []
    spots: list[tuple[Any, Any, tuple[str | int, ...]]] = [(raw, "plugins", ("plugins",))]
    plugins = raw.get("plugins")
    if isinstance(plugins, dict):
        for name in ("allow", "block"):
            spots.append((plugins, name, ("plugins", name)))
            names = plugins.get(name)
            if isinstance(names, list):
                spots.extend(
                    (names, index, ("plugins", name, index)) for index in range(len(names))
                )
    for node, key, path in spots:
        tag = _tag_of(node, key)
        if tag is not None:
            file, line = position(node, key) or (main_file, None)  # where the tag is written
            issues.append(
                ConfigIssue(
                    file,
                    line,
                    path,
                    f"write the allow/block lists in {main_file} itself (they are read before "
                    f"anything else, so {tag} is not followed here)",
                )
            )
    return issues


def _capture_problem(path: Path) -> str | None:
    """Why ``estatehub run`` could not append to a capture file at ``path``, if it could not.

    The capture writer creates missing folders, so a missing folder is only a problem
    when it cannot be created (a file in the way, or no permission).
    """
    if path.is_dir():
        return f"{path} is a folder; name a file in it, such as {path / DEFAULT_CAPTURE_FILE}"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"cannot write to {path}: permission denied"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot create the folder {path.parent}: {ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        where = "the folder" if ancestor == path.parent else f"the folder {path.parent} in"
        return f"cannot write the capture file: {where} {ancestor} is not writable"
    return None


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
    if isinstance(raw, YamlDict):
        issues.extend(_plugins_read_early(raw, main_file))
    known_sections = set(CORE_SECTIONS) | set(section_schemas)
    for name in raw:
        if name not in known_sections:
            hint = _suggestion(str(name), known_sections)
            issues.append(
                _issue_at(
                    raw,
                    (name,),
                    f"unknown section {cv.describe_value(name)}{hint}; "
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
    # Imported here: the automation package imports this module.
    from .automation.blueprint import expand_automations
    from .automation.schema import AUTOMATIONS_SCHEMA, estate_issues

    # `use_blueprint:` entries become plain automations before the schema runs, so it
    # checks (with file and line) what will run; an entry that cannot be expanded is
    # reported with its own file and line, and the schema waits until it can be.
    blueprint_issues: list[ConfigIssue] = []
    if isinstance(raw.get("automations"), list):
        expanded, blueprint_issues = expand_automations(
            raw["automations"], config_path.parent.absolute()
        )
        issues.extend(blueprint_issues)
        raw["automations"] = expanded
    automations = section("automations", AUTOMATIONS_SCHEMA, []) if not blueprint_issues else None
    if automations and estate is not None:
        issues.extend(
            estate_issues(
                raw["automations"],
                automations,
                latitude=estate.get("latitude"),
                longitude=estate.get("longitude"),
            )
        )
    escalation = section("escalation", ESCALATION_SCHEMA, None)
    sections: dict[str, Any] = {}
    for name, schema in section_schemas.items():
        if name in raw:
            validated, found = _validate_within(raw[name], schema, raw, (name,), ())
            issues.extend(found)
            sections[name] = validated
    config_dir = config_path.parent.absolute()
    capture_path = _absolute(config_dir, capture["path"]) if capture is not None else None
    if capture_path is not None:
        problem = _capture_problem(capture_path)
        if problem is not None:
            issues.append(_issue_at(raw, ("capture", "path"), problem))
    if issues:
        raise ConfigError(_sorted_unique(_without_secrets(issues, raw)))
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
        capture_path=capture_path,
        registry=MappingProxyType(registry),
        modules=MappingProxyType(modules),
        sections=MappingProxyType(sections),
        raw=raw,
        automations=tuple(automations or ()),
        escalation=escalation_config(escalation),
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
                _issue_at(
                    raw,
                    ("modules", name),
                    f"unknown module {cv.describe_value(name)}{hint}; {installed}",
                )
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
