"""Conditions: checks that say yes or no, and why.

Every check returns a :class:`ConditionResult` whose ``reason`` is written for the person
reading the trace: ``binary_sensor.b3_smoke is 'off', wanted 'on'``, ``10:15:00 is not
between 22:00:00 and 06:00:00``, ``template rendered 'False'``. A condition that cannot be
evaluated (an entity with no state, a template that fails) is false, with that as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import TYPE_CHECKING, Any

from .errors import TemplateError
from .schema import WEEKDAYS
from .templates import result_as_boolean
from .triggers import NumericCheck

if TYPE_CHECKING:
    from ..clock import Clock
    from ..states import StateMachine
    from .templates import TemplateEngine


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """The outcome of one condition, with the outcomes of the conditions inside it.

    :param children: ``(path suffix, result)`` for each nested condition checked, e.g.
        ``("conditions/1", …)`` inside an ``and``.
    """

    kind: str
    result: bool
    reason: str
    alias: str | None = None
    children: tuple[tuple[str, ConditionResult], ...] = ()

    def flatten(self, path: str) -> list[dict[str, Any]]:
        """Trace entries for this condition at ``path`` and every nested one, in order."""
        entries = [
            {
                "path": path,
                "condition": self.kind,
                "alias": self.alias,
                "result": self.result,
                "reason": self.reason,
            }
        ]
        for suffix, child in self.children:
            entries.extend(child.flatten(f"{path}/{suffix}"))
        return entries


@dataclass(frozen=True, slots=True)
class ConditionHost:
    """What conditions need from the hub."""

    states: StateMachine
    clock: Clock
    templates: TemplateEngine


class Condition:
    """One configured condition; :meth:`check` evaluates it against a run's variables."""

    kind = ""

    def __init__(self, config: Mapping[str, Any], host: ConditionHost) -> None:
        self.config = config
        self.alias: str | None = config.get("alias")
        self.enabled: bool = config.get("enabled", True)
        self.host = host

    def check(self, variables: Mapping[str, Any]) -> ConditionResult:
        """Evaluate; a disabled condition passes."""
        if not self.enabled:
            return self._result(True, "disabled, so it passes")
        return self._check(variables)

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        raise NotImplementedError

    def _result(
        self,
        result: bool,
        reason: str,
        children: tuple[tuple[str, ConditionResult], ...] = (),
    ) -> ConditionResult:
        return ConditionResult(self.kind, result, reason, self.alias, children)


def _quoted(values: list[str]) -> str:
    return " or ".join(repr(v) for v in values)


class StateCondition(Condition):
    """``condition: state``: entities are in one of ``state`` (``for`` at least so long)."""

    kind = "state"

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        config = self.config
        wanted: list[str] = config["state"]
        attribute: str | None = config.get("attribute")
        hold = config.get("for")
        now = self.host.clock.timestamp()
        reasons: list[str] = []
        outcomes: list[bool] = []
        for entity_id in config["entity_id"]:
            state = self.host.states.get(entity_id)
            if state is None:
                outcomes.append(False)
                reasons.append(f"{entity_id} has no state")
                continue
            value: str | None
            if attribute is None:
                value, what, since = state.state, entity_id, state.last_changed
            else:
                raw = state.attributes.get(attribute)
                value = None if raw is None else str(raw)
                what, since = f"{entity_id} → {attribute}", state.last_updated
            if value not in wanted:
                outcomes.append(False)
                reasons.append(f"{what} is {value!r}, wanted {_quoted(wanted)}")
                continue
            if hold is not None and now - since < hold.total_seconds():
                outcomes.append(False)
                reasons.append(
                    f"{what} has been {value!r} for {now - since:g}s, wanted at least "
                    f"{hold.total_seconds():g}s"
                )
                continue
            outcomes.append(True)
            reasons.append(f"{what} is {value!r}")
        result = any(outcomes) if config.get("match") == "any" else all(outcomes)
        return self._result(result, "; ".join(reasons))


class NumericStateCondition(Condition):
    """``condition: numeric_state``: every entity's value is above/below the limits."""

    kind = "numeric_state"

    def __init__(self, config: Mapping[str, Any], host: ConditionHost) -> None:
        super().__init__(config, host)
        self._check_value = NumericCheck(config, host.states, host.templates)

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        reasons: list[str] = []
        result = True
        for entity_id in self.config["entity_id"]:
            matched, why = self._check_value.matches(self.host.states.get(entity_id))
            result = result and matched
            reasons.append(f"{entity_id} {why}")
        return self._result(result, "; ".join(reasons))


class TimeCondition(Condition):
    """``condition: time``: the local time is after/before (a window may wrap midnight),
    on one of the ``weekday`` days."""

    kind = "time"

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        now = self.host.clock.now()
        current = now.time().replace(microsecond=0)
        after: time | None = self.config.get("after")
        before: time | None = self.config.get("before")
        weekdays: list[str] | None = self.config.get("weekday")
        today = WEEKDAYS[now.weekday()]
        if weekdays is not None and today not in weekdays:
            return self._result(False, f"today is {today}, wanted {', '.join(weekdays)}")
        shown = current.isoformat()
        if after is not None and before is not None:
            if after <= before:
                inside = after <= current < before
            else:  # 22:00 → 06:00 wraps midnight
                inside = current >= after or current < before
            window = f"between {after.isoformat()} and {before.isoformat()}"
            if not inside:
                return self._result(False, f"{shown} is not {window}")
            return self._result(True, f"{shown} is {window}")
        if after is not None and current < after:
            return self._result(False, f"{shown} is before {after.isoformat()}")
        if before is not None and current >= before:
            return self._result(False, f"{shown} is not before {before.isoformat()}")
        day = f" on {today}" if weekdays is not None else ""
        return self._result(True, f"{shown}{day} is in the window")


class TemplateCondition(Condition):
    """``condition: template``: ``value_template`` renders true."""

    kind = "template"

    def __init__(self, config: Mapping[str, Any], host: ConditionHost) -> None:
        super().__init__(config, host)
        self._template = host.templates.compile(config["value_template"])

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        try:
            rendered = self._template.render(variables)
        except TemplateError as err:
            return self._result(False, f"template failed: {err.reason}")
        return self._result(result_as_boolean(rendered), f"template rendered {rendered!r}")


class TriggerIdCondition(Condition):
    """``condition: trigger``: the run was started by a trigger with one of these ids."""

    kind = "trigger"

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        trigger = variables.get("trigger") or {}
        fired = str(trigger.get("id")) if isinstance(trigger, Mapping) else None
        wanted: list[str] = self.config["id"]
        if fired in wanted:
            return self._result(True, f"trigger {fired!r} fired")
        return self._result(False, f"trigger {fired!r} fired, wanted {_quoted(wanted)}")


class GroupCondition(Condition):
    """``and`` / ``or`` / ``not`` over nested conditions.

    ``and`` stops at the first false one and ``or`` at the first true one, as Home
    Assistant does; ``not`` passes when none of its conditions passes.
    """

    def __init__(self, config: Mapping[str, Any], host: ConditionHost) -> None:
        super().__init__(config, host)
        self.kind = config["condition"]
        self._members = [build_condition(member, host) for member in config["conditions"]]

    def _check(self, variables: Mapping[str, Any]) -> ConditionResult:
        children: list[tuple[str, ConditionResult]] = []
        for number, member in enumerate(self._members):
            outcome = member.check(variables)
            children.append((f"conditions/{number}", outcome))
            if self.kind == "and" and not outcome.result:
                return self._result(
                    False, f"conditions/{number} failed: {outcome.reason}", tuple(children)
                )
            if self.kind in ("or", "not") and outcome.result:
                if self.kind == "or":
                    return self._result(True, f"conditions/{number} passed", tuple(children))
                return self._result(
                    False, f"conditions/{number} passed: {outcome.reason}", tuple(children)
                )
        count = len(self._members)
        if self.kind == "and":
            return self._result(True, f"all {count} conditions passed", tuple(children))
        if self.kind == "or":
            return self._result(False, f"none of {count} conditions passed", tuple(children))
        return self._result(True, f"none of {count} conditions passed", tuple(children))


_CONDITION_CLASSES: dict[str, type[Condition]] = {
    "state": StateCondition,
    "numeric_state": NumericStateCondition,
    "time": TimeCondition,
    "template": TemplateCondition,
    "trigger": TriggerIdCondition,
    "and": GroupCondition,
    "or": GroupCondition,
    "not": GroupCondition,
}


def build_condition(config: Mapping[str, Any], host: ConditionHost) -> Condition:
    """The condition for one validated condition config."""
    return _CONDITION_CLASSES[config["condition"]](config, host)
