"""Templates in automations: Jinja2 in an immutable sandbox, Home Assistant's helpers.

A template sees the hub's states (``states('sensor.x')``, ``states.sensor.x.state``,
``state_attr``, ``is_state``, ``is_state_attr``), the time on the hub clock (``now()``,
``utcnow()``), a few conversions (``as_timestamp``, ``as_datetime``, ``timedelta``) and the
run's variables (``trigger``, ``this``, ``wait``, ``repeat`` and the automation's own).

Nothing else: the environment has no loader, so ``{% include %}``, ``{% import %}`` and
``{% extends %}`` cannot reach a file; the sandbox refuses ``_private`` attributes (the usual
way out to ``os`` or ``open``) and any call that mutates a list or dict it did not create;
and ``*`` and ``**`` refuse results big enough to exhaust the hub's memory or time.

A rendered template becomes a native value the way Home Assistant does it: ``"42"`` is the
number 42, ``"[1, 2]"`` a list, ``"True"`` the boolean; ``"007"`` and ``"on"`` stay text.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate

    from ..clock import Clock
    from ..states import State, StateMachine

_TEMPLATE_MARKS = ("{{", "{%", "{#")
# A number without a leading zero ("007" is a flat number or a code, not 7).
_NUMERIC = re.compile(r"^[+-]?(?!0\d)\d*(?:\.\d*)?(?:[eE][+-]?\d+)?$")
_LONGEST_LITERAL = 10_000
_LONGEST_SEQUENCE = 100_000
_LARGEST_EXPONENT = 1_000


def is_template(value: Any) -> bool:
    """True if ``value`` is a string with Jinja markup in it."""
    return isinstance(value, str) and any(mark in value for mark in _TEMPLATE_MARKS)


class _EstateSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` guarded against memory and time bombs."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _LARGEST_EXPONENT:
                raise jinja2.sandbox.SecurityError(
                    f"exponent {right} is larger than {_LARGEST_EXPONENT}"
                )
            return operator.pow(left, right)
        for sequence, times in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(times, int)
                and len(sequence) * times > _LONGEST_SEQUENCE
            ):
                raise jinja2.sandbox.SecurityError(
                    f"a result of {len(sequence) * times} items is longer than {_LONGEST_SEQUENCE}"
                )
        return operator.mul(left, right)


def _new_environment() -> _EstateSandbox:
    # No loader: include/import/extends have nothing to read from. No autoescape: the
    # output is data and messages, not HTML.
    return _EstateSandbox(loader=None, autoescape=False, keep_trailing_newline=False)


_SYNTAX_ENVIRONMENT = _new_environment()


def check_syntax(source: str) -> None:
    """Raise :class:`TemplateError` if ``source`` is not a valid template."""
    try:
        _SYNTAX_ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as err:
        where = f" (template line {err.lineno})" if source.count("\n") else ""
        raise TemplateError(source, f"{err.message}{where}") from None


def parse_result(text: str) -> Any:
    """A rendered template as a native value: numbers, booleans, None, lists, dicts."""
    stripped = text.strip()
    if not stripped or len(stripped) > _LONGEST_LITERAL:
        return text
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, str | complex | bytes):
        return text
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and (
        not _NUMERIC.match(stripped) or (isinstance(value, float) and not math.isfinite(value))
    ):
        return text
    return value


def result_as_boolean(value: Any) -> bool:
    """Home Assistant's truth of a template result: ``true``/``yes``/``on``/``1``, or non-zero."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower().strip()
        if lowered in ("true", "yes", "on", "enable", "1"):
            return True
        try:
            return float(lowered) != 0.0
        except ValueError:
            return False
    if isinstance(value, int | float):
        return value != 0
    return False


class _DomainStates:
    """``states.sensor``: the states of one domain, by object id, and iterable."""

    def __init__(self, machine: StateMachine, domain: str) -> None:
        self._machine = machine
        self._domain = domain

    def __getattr__(self, object_id: str) -> State | None:
        if object_id.startswith("_"):
            raise AttributeError(object_id)
        return self._machine.get(f"{self._domain}.{object_id}")

    def __iter__(self) -> Iterator[State]:
        return iter(self._machine.all(self._domain))

    def __len__(self) -> int:
        return len(self._machine.all(self._domain))


class _States:
    """``states('sensor.x')`` → the state text (``unknown`` if none); ``states.sensor.x``."""

    def __init__(self, machine: StateMachine) -> None:
        self._machine = machine

    def __call__(self, entity_id: str) -> str:
        state = self._machine.get(str(entity_id))
        return state.state if state is not None else "unknown"

    def __getattr__(self, domain: str) -> _DomainStates:
        if domain.startswith("_"):
            raise AttributeError(domain)
        return _DomainStates(self._machine, domain)

    def __iter__(self) -> Iterator[State]:
        return iter(self._machine.all())


class Template:
    """A compiled template; :meth:`render` gives a native value, :meth:`render_text` text."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str, compiled: JinjaTemplate) -> None:
        self.source = source
        self._compiled = compiled

    def render_text(self, variables: Mapping[str, Any]) -> str:
        """Render to text; any failure is a :class:`TemplateError` quoting the template."""
        try:
            return self._compiled.render(variables)
        except jinja2.sandbox.SecurityError as err:
            raise TemplateError(self.source, f"not allowed in a template: {err}") from None
        except jinja2.TemplateError as err:
            raise TemplateError(self.source, err.message or type(err).__name__) from None
        except TypeError as err:
            if "no loader" in str(err):  # include/import/extends, with nothing to load from
                raise TemplateError(
                    self.source,
                    "not allowed in a template: include, import and extends (templates "
                    "cannot read files)",
                ) from None
            raise TemplateError(self.source, f"TypeError: {err}") from None
        except Exception as err:  # a helper or a filter raising: the template's fault
            raise TemplateError(self.source, f"{type(err).__name__}: {err}") from None

    def render(self, variables: Mapping[str, Any]) -> Any:
        """Render and convert the text to a native value (see :func:`parse_result`)."""
        return parse_result(self.render_text(variables))

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


class TemplateEngine:
    """Compiles templates once and renders them against the hub's states and clock."""

    def __init__(self, states: StateMachine, clock: Clock) -> None:
        self._states = states
        self._clock = clock
        self._environment = _new_environment()
        self._environment.globals.update(self._helpers())
        self._environment.filters.update(
            {"as_timestamp": _as_timestamp, "as_datetime": self._as_datetime}
        )
        self._cache: dict[str, Template] = {}

    def _helpers(self) -> dict[str, Callable[..., Any]]:
        states = self._states

        def state_attr(entity_id: str, name: str) -> Any:
            state = states.get(str(entity_id))
            return state.attributes.get(name) if state is not None else None

        def is_state(entity_id: str, value: Any) -> bool:
            state = states.get(str(entity_id))
            if state is None:
                return False
            wanted = value if isinstance(value, list | tuple) else [value]
            return state.state in [str(v) for v in wanted]

        def is_state_attr(entity_id: str, name: str, value: Any) -> bool:
            state = states.get(str(entity_id))
            return (
                state is not None and name in state.attributes and state.attributes[name] == value
            )

        return {
            "states": _States(states),
            "state_attr": state_attr,
            "is_state": is_state,
            "is_state_attr": is_state_attr,
            "now": self._clock.now,
            "utcnow": lambda: datetime.fromtimestamp(self._clock.timestamp(), UTC),
            "as_timestamp": _as_timestamp,
            "as_datetime": self._as_datetime,
            "timedelta": timedelta,
        }

    def _as_datetime(self, value: Any) -> datetime | None:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return self._clock.to_local(float(value))
        else:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self._clock.tz)

    def names(self) -> list[str]:
        """Every name a template can use besides its variables (globals), sorted."""
        return sorted(self._environment.globals)

    def compile(self, source: str) -> Template:
        """The compiled template for ``source`` (cached); raises :class:`TemplateError`."""
        template = self._cache.get(source)
        if template is None:
            try:
                compiled = self._environment.from_string(source)
            except jinja2.TemplateSyntaxError as err:
                raise TemplateError(source, err.message or "syntax error") from None
            template = self._cache[source] = Template(source, compiled)
        return template

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """``value`` with every template in it rendered, recursing into dicts and lists."""
        if isinstance(value, str):
            return self.compile(value).render(variables) if is_template(value) else value
        if isinstance(value, Mapping):
            return {key: self.render(item, variables) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(item, variables) for item in value]
        return value

    def render_text(self, value: Any, variables: Mapping[str, Any]) -> str:
        """``value`` rendered as text (a message, a title)."""
        if is_template(value):
            return self.compile(value).render_text(variables)
        return "" if value is None else str(value)


def _as_timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None
