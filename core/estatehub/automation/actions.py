"""Actions: the steps of an automation's script, and the sequence that runs them.

Each step records itself in the run's trace (path, start, finish, result or error). A step
that raises is contained: its error goes into the trace and the run ends with
``script_execution: error`` — unless the step says ``continue_on_error: true``, in which
case the run goes on. Nothing a step does can raise out of the engine.

Waiting (``delay``, ``wait_for_trigger``) happens on the hub clock only, so a replay on the
virtual clock runs the same steps at the same virtual times. A ``repeat`` yields to the
loop after every iteration, so a loop without any wait in it cannot starve the hub.

``notify`` is an estatehub extension: ``notify: {target, message, title, data}`` calls the
``notify.send`` service when one is registered, and otherwise fires a ``notify.requested``
event with the same fields plus ``automation_id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from .conditions import Condition, ConditionHost, build_condition
from .errors import AutomationConfigError, TemplateError
from .schema import SERVICE_NAME, action_kind, parse_duration
from .templates import TemplateEngine
from .triggers import Trigger, TriggerHost, build_trigger

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..clock import Clock
    from ..services import ServiceRegistry
    from .trace import RunTrace

_LOGGER = logging.getLogger(__name__)

NOTIFY_SERVICE = ("notify", "send")
NOTIFY_REQUESTED = "notify.requested"


# --------------------------------------------------------------------------- run control


class ScriptStop(Exception):
    """A ``stop`` action ended the run."""

    def __init__(self, reason: str, error: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.result: Any = {"stop": reason, "error": error}


class ScriptAbort(Exception):
    """A condition inside the actions was false: the rest of the run is skipped."""

    def __init__(self, reason: str, result: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


class WaitTimedOut(Exception):
    """``wait_for_trigger`` timed out and ``continue_on_timeout`` is false."""

    def __init__(self, result: Any) -> None:
        super().__init__("wait_for_trigger timed out")
        self.result = result


class StepFailed(Exception):
    """A step raised; :attr:`message` names the step and the error, for the trace."""

    def __init__(self, path: str, kind: str, error: str) -> None:
        super().__init__(f"{path} ({kind}) failed: {error}")
        self.path = path
        self.kind = kind
        self.error = error


def describe_error(err: BaseException) -> str:
    """``ServiceNotFound: no service notify.send`` — the error as the trace shows it."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# --------------------------------------------------------------------------- context


@dataclass(slots=True)
class ScriptHost:
    """What steps need from the hub, shared by every run of every automation."""

    bus: EventBus
    services: ServiceRegistry
    clock: Clock
    templates: TemplateEngine
    triggers: TriggerHost
    conditions: ConditionHost


@dataclass(slots=True)
class RunContext:
    """One run: the automation it belongs to, its variables and its trace.

    ``parked`` is the future the run waits on while only the clock or a trigger can move
    it on, so the engine can tell "waiting for time to pass" from "still has work to do".
    """

    host: ScriptHost
    automation_id: str
    trace: RunTrace
    variables: dict[str, Any]
    iteration: list[int] = field(default_factory=list)
    parked: asyncio.Future[Any] | None = None

    @property
    def actor(self) -> str:
        """Who the hub's audit log names for what this run does."""
        return f"automation:{self.automation_id}"

    def render(self, value: Any) -> Any:
        """``value`` with its templates rendered against this run's variables."""
        return self.host.templates.render(value, self.variables)

    def render_text(self, value: Any) -> str:
        """``value`` rendered as text."""
        return self.host.templates.render_text(value, self.variables)

    async def wait(self, future: asyncio.Future[Any]) -> Any:
        """Await a future that a clock timer or a trigger resolves."""
        self.parked = future
        try:
            return await future
        finally:
            self.parked = None

    async def sleep(self, seconds: float) -> None:
        """Sleep on the hub clock (cancellable: the timer goes with the run)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.host.clock.call_later(seconds, wake)
        try:
            await self.wait(future)
        finally:
            timer.cancel()


def _check_all(
    conditions: list[Condition], context: RunContext, path: str
) -> tuple[bool, list[dict[str, Any]]]:
    """Check conditions in order, stopping at the first false one; with trace entries."""
    entries: list[dict[str, Any]] = []
    for number, condition in enumerate(conditions):
        outcome = condition.check(context.variables)
        entries.extend(outcome.flatten(f"{path}/{number}"))
        if not outcome.result:
            return False, entries
    return True, entries


def _as_seconds(value: Any, what: str) -> float:
    """A rendered duration (``00:05:00``, ``30s``, 90 …) in seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return parse_duration(value).total_seconds()
    except vol.Invalid as err:
        raise TemplateError(str(value), f"{what}: {err.msg}") from None


# --------------------------------------------------------------------------- steps


class Step:
    """One action."""

    kind = ""

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        self.config = config
        self.alias: str | None = config.get("alias")
        self.enabled: bool = config.get("enabled", True)
        self.continue_on_error: bool = config.get("continue_on_error", False)

    async def run(self, context: RunContext, path: str) -> Any:
        """Do the step; returns what the trace shows as its result."""
        raise NotImplementedError


class Sequence:
    """Steps run one after the other, each recorded in the trace."""

    def __init__(self, configs: list[Mapping[str, Any]], host: ScriptHost) -> None:
        self.steps = [build_step(config, host) for config in configs]

    async def run(self, context: RunContext, prefix: str) -> None:
        """Run every step; paths are ``{prefix}/0``, ``{prefix}/1`` …"""
        trace = context.trace
        for number, step in enumerate(self.steps):
            path = f"{prefix}/{number}"
            extra = {"iteration": context.iteration[-1]} if context.iteration else {}
            entry = trace.start_step(path, step.kind, step.alias, **extra)
            if not step.enabled:
                trace.finish_step(entry, {"enabled": False})
                continue
            try:
                result = await step.run(context, path)
            except (ScriptStop, ScriptAbort, WaitTimedOut) as stop:
                trace.finish_step(entry, stop.result)
                raise
            except asyncio.CancelledError:
                trace.finish_step(entry, error="cancelled")
                raise
            except StepFailed as failed:
                trace.finish_step(entry, error=f"{failed.path} failed")
                if not step.continue_on_error:
                    raise
            except Exception as err:
                message = describe_error(err)
                trace.finish_step(entry, error=message)
                if not step.continue_on_error:
                    raise StepFailed(path, step.kind, message) from err
                _LOGGER.warning(
                    "automation %s: %s (%s) failed, continuing: %s",
                    context.automation_id,
                    path,
                    step.kind,
                    message,
                )
            else:
                trace.finish_step(entry, result)


class CallServiceStep(Step):
    """``action: domain.service`` (or the older ``service:``) with ``data`` and ``target``."""

    kind = "call_service"

    async def run(self, context: RunContext, path: str) -> Any:
        name = context.render_text(self.config["action"]).strip()
        if not SERVICE_NAME.fullmatch(name):
            raise TemplateError(self.config["action"], f"rendered {name!r}, not domain.service")
        domain, service = name.split(".", 1)
        data = dict(context.render(self.config.get("data", {})))
        for key, values in context.render(self.config.get("target", {})).items():
            data[key] = values
        response = await context.host.services.call(domain, service, data, user=context.actor)
        variable = self.config.get("response_variable")
        if variable:
            context.variables[variable] = response
        return {"service": name, "data": data, "response": response}


class DelayStep(Step):
    """``delay``: wait on the hub clock."""

    kind = "delay"

    async def run(self, context: RunContext, path: str) -> Any:
        seconds = _as_seconds(context.render(self.config["delay"]), "delay")
        await context.sleep(seconds)
        return {"delay": seconds, "done": True}


class WaitForTriggerStep(Step):
    """``wait_for_trigger``: wait until one of the triggers fires, or ``timeout`` passes.

    Sets the variable ``wait``: ``{"trigger": <the trigger variable, or None on timeout>,
    "remaining": <seconds of the timeout left, or None without one>}``.
    """

    kind = "wait_for_trigger"

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(config, host)
        self._triggers: list[Trigger] = [
            build_trigger(trigger, number, host.triggers)
            for number, trigger in enumerate(config["wait_for_trigger"])
        ]

    async def run(self, context: RunContext, path: str) -> Any:
        clock = context.host.clock
        timeout = self.config.get("timeout")
        seconds = _as_seconds(context.render(timeout), "timeout") if timeout is not None else None
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()

        def fired(variables: dict[str, Any]) -> None:
            if not future.done():
                future.set_result(variables)

        def timed_out() -> None:
            if not future.done():
                future.set_result(None)

        started = clock.timestamp()
        detachers = [trigger.attach(fired) for trigger in self._triggers if trigger.enabled]
        timer = clock.call_later(seconds, timed_out) if seconds is not None else None
        try:
            trigger_variables = await context.wait(future)
        finally:
            for detach in detachers:
                detach()
            if timer is not None:
                timer.cancel()
        remaining = (
            max(0.0, seconds - (clock.timestamp() - started)) if seconds is not None else None
        )
        wait = {"trigger": trigger_variables, "remaining": remaining}
        context.variables["wait"] = wait
        result = {"wait": wait, "timed_out": trigger_variables is None}
        if trigger_variables is None and not self.config.get("continue_on_timeout", True):
            raise WaitTimedOut(result)
        return result


class ChooseStep(Step):
    """``choose``: run the first option whose conditions all pass, else ``default``."""

    kind = "choose"

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(config, host)
        self._options = [
            (
                [build_condition(c, host.conditions) for c in option["conditions"]],
                Sequence(option["sequence"], host),
            )
            for option in config["choose"]
        ]
        default = config.get("default")
        self._default = Sequence(default, host) if default else None

    async def run(self, context: RunContext, path: str) -> Any:
        checked: list[dict[str, Any]] = []
        for number, (conditions, sequence) in enumerate(self._options):
            passed, entries = _check_all(conditions, context, f"{path}/choose/{number}/conditions")
            checked.extend(entries)
            if passed:
                await sequence.run(context, f"{path}/choose/{number}/sequence")
                return {"choice": number, "conditions": checked}
        if self._default is not None:
            await self._default.run(context, f"{path}/default")
            return {"choice": "default", "conditions": checked}
        return {"choice": None, "conditions": checked}


class IfStep(Step):
    """``if`` / ``then`` / ``else``."""

    kind = "if"

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(config, host)
        self._conditions = [build_condition(c, host.conditions) for c in config["if"]]
        self._then = Sequence(config["then"], host)
        otherwise = config.get("else")
        self._else = Sequence(otherwise, host) if otherwise else None

    async def run(self, context: RunContext, path: str) -> Any:
        passed, entries = _check_all(self._conditions, context, f"{path}/if")
        if passed:
            await self._then.run(context, f"{path}/then")
        elif self._else is not None:
            await self._else.run(context, f"{path}/else")
        return {"if": passed, "conditions": entries}


class RepeatStep(Step):
    """``repeat``: ``count`` times, ``while`` or ``until`` conditions hold, or ``for_each``.

    The variable ``repeat`` holds ``index`` (from 1), ``first``, ``last`` (known for
    count and for_each) and, for for_each, ``item``.
    """

    kind = "repeat"

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(config, host)
        body = config["repeat"]
        self._body = body
        self._sequence = Sequence(body["sequence"], host)
        self._while = [build_condition(c, host.conditions) for c in body.get("while", ())]
        self._until = [build_condition(c, host.conditions) for c in body.get("until", ())]

    def _items(self, context: RunContext) -> list[Any] | None:
        body = self._body
        if "count" in body:
            count = context.render(body["count"])
            try:
                number = int(count)
            except (TypeError, ValueError):
                raise TemplateError(
                    str(body["count"]), f"count rendered {count!r}, not a number"
                ) from None
            return list(range(1, number + 1))
        if "for_each" in body:
            items = context.render(body["for_each"])
            if not isinstance(items, list):
                raise TemplateError(
                    str(body["for_each"]), f"for_each rendered {items!r}, not a list"
                )
            return items
        return None

    async def run(self, context: RunContext, path: str) -> Any:
        items = self._items(context)
        outer = context.variables.get("repeat")
        done = 0
        stopped = "done"
        try:
            while items is None or done < len(items):
                index = done + 1
                repeat: dict[str, Any] = {
                    "index": index,
                    "first": index == 1,
                    "last": items is not None and index == len(items),
                }
                if items is not None and "for_each" in self._body:
                    repeat["item"] = items[done]
                context.variables["repeat"] = repeat
                if self._while:
                    passed, entries = _check_all(self._while, context, f"{path}/repeat/while")
                    if not passed:
                        stopped = f"while: {entries[-1]['reason']}"
                        break
                context.iteration.append(index)
                try:
                    await self._sequence.run(context, f"{path}/repeat/sequence")
                finally:
                    context.iteration.pop()
                done = index
                if self._until:
                    passed, entries = _check_all(self._until, context, f"{path}/repeat/until")
                    if passed:
                        stopped = f"until: {entries[-1]['reason']}"
                        break
                # Let the rest of the hub run between iterations, even without a wait.
                await asyncio.sleep(0)
        finally:
            if outer is None:
                context.variables.pop("repeat", None)
            else:
                context.variables["repeat"] = outer
        return {"iterations": done, "stopped": stopped}


class EventStep(Step):
    """``event``: fire an event on the bus with ``event_data``."""

    kind = "event"

    async def run(self, context: RunContext, path: str) -> Any:
        data = dict(context.render(self.config.get("event_data", {})))
        # The type is the user's (rendered now), so it is not one of the hub's documented
        # event types: it names itself from the config, not from a constant.
        event = context.host.bus.fire(self._event_type(context), data)
        return {"event_type": event.type, "event_data": data}

    def _event_type(self, context: RunContext) -> str:
        return context.render_text(self.config["event"]).strip()


class NotifyStep(Step):
    """``notify`` (estatehub extension): ``notify.send`` if registered, else an event."""

    kind = "notify"

    async def run(self, context: RunContext, path: str) -> Any:
        body = self.config["notify"]
        targets = context.render(body.get("target", []))
        payload: dict[str, Any] = {
            "target": [str(t) for t in (targets if isinstance(targets, list) else [targets])],
            "message": context.render_text(body["message"]),
        }
        if "title" in body:
            payload["title"] = context.render_text(body["title"])
        if "data" in body:
            payload["data"] = dict(context.render(body["data"]))
        services = context.host.services
        if services.has(*NOTIFY_SERVICE):
            response = await services.call(*NOTIFY_SERVICE, payload, user=context.actor)
            return {"via": "notify.send", **payload, "response": response}
        context.host.bus.fire(NOTIFY_REQUESTED, {**payload, "automation_id": context.automation_id})
        return {"via": NOTIFY_REQUESTED, **payload}


class StopStep(Step):
    """``stop``: end the run here, with a reason (and ``error: true`` to mark it failed)."""

    kind = "stop"

    async def run(self, context: RunContext, path: str) -> Any:
        raise ScriptStop(context.render_text(self.config["stop"]), self.config.get("error", False))


class VariablesStep(Step):
    """``variables``: set run variables; later ones may use earlier ones."""

    kind = "variables"

    async def run(self, context: RunContext, path: str) -> Any:
        assigned: dict[str, Any] = {}
        for name, value in self.config["variables"].items():
            assigned[name] = context.variables[name] = context.render(value)
        return {"variables": assigned}


class ConditionStep(Step):
    """A condition among the actions: when false, the rest of the run is skipped."""

    kind = "condition"

    def __init__(self, config: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(config, host)
        self._condition = build_condition(config, host.conditions)

    async def run(self, context: RunContext, path: str) -> Any:
        outcome = self._condition.check(context.variables)
        result = {"result": outcome.result, "conditions": outcome.flatten(path)}
        if not outcome.result:
            raise ScriptAbort(outcome.reason, result)
        return result


_STEP_CLASSES: dict[str, type[Step]] = {
    "call_service": CallServiceStep,
    "delay": DelayStep,
    "wait_for_trigger": WaitForTriggerStep,
    "choose": ChooseStep,
    "if": IfStep,
    "repeat": RepeatStep,
    "event": EventStep,
    "notify": NotifyStep,
    "stop": StopStep,
    "variables": VariablesStep,
    "condition": ConditionStep,
}


def build_step(config: Mapping[str, Any], host: ScriptHost) -> Step:
    """The step for one validated action config."""
    kind = action_kind(config)
    if kind is None:  # the schema never lets one through
        raise AutomationConfigError(f"not an action: {dict(config)!r}")
    return _STEP_CLASSES[kind](config, host)


__all__ = [
    "NOTIFY_REQUESTED",
    "NOTIFY_SERVICE",
    "RunContext",
    "ScriptAbort",
    "ScriptHost",
    "ScriptStop",
    "Sequence",
    "StepFailed",
    "WaitTimedOut",
    "describe_error",
]
