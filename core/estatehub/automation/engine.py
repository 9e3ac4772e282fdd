"""The automation engine: automations from the estate config, run on the hub.

    engine = AutomationEngine(hub, automations)   # the validated `automations:` list
    await engine.start()      # triggers attached, timers armed
    ...
    engine.traces("smoke_releases_doors")   # the last runs, step by step
    await engine.stop()       # triggers detached, running runs cancelled

When a trigger fires, the automation's ``variables`` are rendered and its conditions
checked at once, inside the bus dispatch (cheap and in order); only then does the
automation's ``mode`` decide whether a run starts (as an asyncio task), waits in the
queue, replaces the running one, or is dropped. Each of these outcomes is a trace.

Modes, as in Home Assistant: ``single`` (default; a trigger while running is logged at the
``max_exceeded`` level and dropped), ``restart`` (the running run is cancelled),
``queued`` (runs one after another, at most ``max`` running or waiting), ``parallel``
(at most ``max`` at once). ``max`` defaults to 10.

The engine registers ``automation.trigger`` (``id``, optional ``variables``,
``skip_condition`` default true), ``automation.turn_on`` and ``automation.turn_off``
(``id``) on the hub's service registry while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from ..config import validate
from ..services import ServiceCall
from .actions import (
    RunContext,
    ScriptAbort,
    ScriptHost,
    ScriptStop,
    Sequence,
    StepFailed,
    WaitTimedOut,
    describe_error,
)
from .conditions import ConditionHost, build_condition
from .errors import AutomationConfigError, AutomationError, TemplateError, UnknownAutomation
from .schema import AUTOMATIONS_SCHEMA
from .templates import TemplateEngine
from .trace import RunTrace
from .triggers import Trigger, TriggerHost, TriggerIndex, build_trigger

if TYPE_CHECKING:
    from ..hub import Hub

_LOGGER = logging.getLogger(__name__)

_LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "notset": logging.NOTSET,
}
_RUN_VARIABLES_HIDDEN = ("trigger", "this")
SERVICE_DOMAIN = "automation"


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters since the engine was built.

    :param evaluations: offers of a bus event to a trigger (the index's work).
    :param triggered: triggers that fired.
    :param runs_started: runs that began their actions.
    :param runs_dropped: triggers refused by the mode (``failed_single``/``failed_max_runs``).
    :param runs_failed: runs that ended with an error.
    :param condition_failures: triggers whose conditions were false.
    :param listened_event_types: event types the index has a bus listener for.
    :param watched_entities: entities some state or numeric_state trigger watches.
    """

    automations: int
    evaluations: int
    triggered: int
    runs_started: int
    runs_dropped: int
    runs_failed: int
    condition_failures: int
    listened_event_types: tuple[str, ...]
    watched_entities: int


@dataclass(frozen=True, slots=True)
class AutomationInfo:
    """One automation as the API lists it."""

    id: str
    alias: str | None
    description: str | None
    mode: str
    max: int
    enabled: bool
    running: int
    queued: int
    last_triggered: str | None
    triggers: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "alias": self.alias,
            "description": self.description,
            "mode": self.mode,
            "max": self.max,
            "enabled": self.enabled,
            "running": self.running,
            "queued": self.queued,
            "last_triggered": self.last_triggered,
            "triggers": list(self.triggers),
        }


@dataclass(slots=True)
class _Counters:
    triggered: int = 0
    runs_started: int = 0
    runs_dropped: int = 0
    runs_failed: int = 0
    condition_failures: int = 0


@dataclass(slots=True)
class _Run:
    context: RunContext
    task: asyncio.Task[None] | None = None
    cancel_reason: str = ""

    @property
    def idle(self) -> bool:
        """Waiting for the clock or a trigger, with nothing to do until then."""
        future = self.context.parked
        return future is not None and not future.done()


class Automation:
    """One automation: its triggers, conditions, actions, mode, runs and traces."""

    def __init__(self, engine: AutomationEngine, config: Mapping[str, Any]) -> None:
        self._engine = engine
        self.config = config
        self.id: str = config["id"]
        self.alias: str | None = config.get("alias")
        self.description: str | None = config.get("description")
        self.mode: str = config["mode"]
        self.max_runs: int = config["max"]
        self._exceeded_level = config["max_exceeded"]
        self.enabled: bool = config["initial_state"]
        self.triggers: list[Trigger] = []
        for number, trigger_config in enumerate(config["triggers"]):
            try:
                self.triggers.append(build_trigger(trigger_config, number, engine.trigger_host))
            except AutomationError as err:
                raise AutomationConfigError(
                    f"automation {self.id}: triggers[{number}]: {err}"
                ) from None
        host = engine.script_host
        try:
            self.conditions = [build_condition(c, host.conditions) for c in config["conditions"]]
            self.script = Sequence(config["actions"], host)
        except AutomationError as err:
            raise AutomationConfigError(f"automation {self.id}: {err}") from None
        self._variables: Mapping[str, Any] = config["variables"]
        self.traces: deque[RunTrace] = deque(maxlen=config["trace"]["stored_traces"])
        self.runs: list[_Run] = []
        self.queue: deque[_Run] = deque()
        self.last_triggered: float | None = None
        self._detachers: list[Any] = []
        self._run_numbers = 0

    # -- triggers ----------------------------------------------------------------------

    def attach(self) -> None:
        """Start every enabled trigger."""
        if self._detachers:
            return
        for trigger in self.triggers:
            if trigger.enabled:
                self._detachers.append(trigger.attach(partial(self._triggered, trigger)))

    def detach(self) -> None:
        """Stop every trigger (runs already going are left alone)."""
        for detach in self._detachers:
            detach()
        self._detachers.clear()

    def _triggered(self, trigger: Trigger, trigger_variables: dict[str, Any]) -> None:
        self._engine.counters.triggered += 1
        self.start_run(trigger_variables, trigger.config.get("variables"))

    # -- runs --------------------------------------------------------------------------

    def start_run(
        self,
        trigger_variables: dict[str, Any],
        trigger_scoped: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        *,
        skip_condition: bool = False,
    ) -> RunTrace:
        """Trace a trigger, check the conditions, and start, queue or drop a run per mode."""
        clock = self._engine.hub.clock
        self._run_numbers += 1
        trace = RunTrace(self.id, str(self._run_numbers), clock, trigger_variables)
        self.traces.append(trace)
        self.last_triggered = clock.timestamp()
        try:
            self._begin(trace, trigger_variables, trigger_scoped, extra, skip_condition)
        except Exception as err:  # a bug here must not leave the trigger's caller broken
            self._engine.counters.runs_failed += 1
            trace.finish("error", error=describe_error(err))
            _LOGGER.exception("automation %s: could not start a run", self.id)
        return trace

    def _begin(
        self,
        trace: RunTrace,
        trigger_variables: dict[str, Any],
        trigger_scoped: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
        skip_condition: bool,
    ) -> None:
        engine = self._engine
        given = dict(extra or {})
        variables: dict[str, Any] = {
            "this": {"id": self.id, "alias": self.alias},
            "trigger": trigger_variables,
            **given,
        }
        try:
            for scope in (self._variables, trigger_scoped or {}):
                for name, value in scope.items():
                    if name not in given:  # variables passed by hand win
                        variables[name] = engine.templates.render(value, variables)
        except TemplateError as err:
            trace.finish("error", error=f"variables: {err}")
            engine.counters.runs_failed += 1
            _LOGGER.error("automation %s: variables failed: %s", self.id, err)
            return
        trace.variables = _shown_variables(variables)
        if not skip_condition:
            for number, condition in enumerate(self.conditions):
                outcome = condition.check(variables)
                trace.record_condition(f"condition/{number}", outcome)
                if not outcome.result:
                    engine.counters.condition_failures += 1
                    trace.finish(
                        "failed_conditions", stop_reason=f"condition/{number}: {outcome.reason}"
                    )
                    return
        run = _Run(RunContext(engine.script_host, self.id, trace, variables))
        active = [r for r in self.runs if not r.cancel_reason]
        if active:
            if self.mode == "single":
                self._refuse(trace, "failed_single", "already running")
                return
            if self.mode == "restart":
                for old in active:
                    old.cancel_reason = f"restarted by run {trace.run_id}"
                    if old.task is not None:
                        old.task.cancel()
            elif self.mode == "queued":
                if len(active) + len(self.queue) >= self.max_runs:
                    self._refuse(
                        trace, "failed_max_runs", f"{self.max_runs} runs already running or queued"
                    )
                    return
                trace.script_execution = "queued"
                self.queue.append(run)
                return
            elif len(active) >= self.max_runs:
                self._refuse(trace, "failed_max_runs", f"{self.max_runs} runs already running")
                return
        self._launch(run)

    def _refuse(self, trace: RunTrace, execution: str, why: str) -> None:
        self._engine.counters.runs_dropped += 1
        trace.finish(execution, stop_reason=why)
        if self._exceeded_level != "silent":
            _LOGGER.log(
                _LOG_LEVELS[self._exceeded_level],
                "automation %s (%s): %s (mode: %s); trigger dropped",
                self.id,
                self.alias or "no alias",
                why,
                self.mode,
            )

    def _launch(self, run: _Run) -> None:
        self._engine.counters.runs_started += 1
        run.context.trace.script_execution = "running"
        self.runs.append(run)
        run.task = asyncio.get_running_loop().create_task(
            self._execute(run), name=f"automation {self.id} run {run.context.trace.run_id}"
        )

    async def _execute(self, run: _Run) -> None:
        context = run.context
        trace = context.trace
        try:
            await self.script.run(context, "action")
        except ScriptStop as stop:
            if stop.error:
                trace.finish("aborted", error=stop.reason, stop_reason=stop.reason)
            else:
                trace.finish("finished", stop_reason=stop.reason)
        except ScriptAbort as abort:
            trace.finish("aborted", stop_reason=abort.reason)
        except WaitTimedOut:
            trace.finish("timeout", stop_reason="wait_for_trigger timed out")
        except StepFailed as failed:
            self._engine.counters.runs_failed += 1
            trace.finish("error", error=str(failed))
            _LOGGER.error("automation %s (%s): %s", self.id, self.alias or "no alias", failed)
        except asyncio.CancelledError:
            trace.finish("cancelled", stop_reason=run.cancel_reason or "cancelled")
        except Exception as err:  # a bug in the engine itself: still contained
            self._engine.counters.runs_failed += 1
            trace.finish("error", error=describe_error(err))
            _LOGGER.exception("automation %s: run failed", self.id)
        else:
            trace.finish("finished")
        finally:
            trace.variables = _shown_variables(context.variables)
            self.runs.remove(run)
            if self.queue and self._engine.running:
                self._launch(self.queue.popleft())

    def cancel_all(self, reason: str) -> list[asyncio.Task[None]]:
        """Cancel running runs and drop queued ones; returns the tasks to await."""
        while self.queue:
            self.queue.popleft().context.trace.finish("cancelled", stop_reason=reason)
        tasks = []
        for run in self.runs:
            run.cancel_reason = run.cancel_reason or reason
            if run.task is not None:
                run.task.cancel()
                tasks.append(run.task)
        return tasks

    def info(self) -> AutomationInfo:
        """A summary for listings."""
        clock = self._engine.hub.clock
        return AutomationInfo(
            id=self.id,
            alias=self.alias,
            description=self.description,
            mode=self.mode,
            max=self.max_runs,
            enabled=self.enabled,
            running=len(self.runs),
            queued=len(self.queue),
            last_triggered=clock.to_local(self.last_triggered).isoformat()
            if self.last_triggered is not None
            else None,
            triggers=tuple(t.kind for t in self.triggers),
        )


def _shown_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in variables.items() if k not in _RUN_VARIABLES_HIDDEN}


class AutomationEngine:
    """Runs the estate's automations on one hub.

    :param configs: the ``automations:`` list, validated by :data:`AUTOMATIONS_SCHEMA` or
        not (it is validated again here; the schema's output validates to itself).
    :raises AutomationConfigError: when the list is invalid, or an automation needs what
        the estate lacks (a ``sun`` trigger without the estate's coordinates).
    """

    def __init__(self, hub: Hub, configs: Iterable[Mapping[str, Any]]) -> None:
        self.hub = hub
        items = list(configs)
        validated, issues = validate(items, AUTOMATIONS_SCHEMA, ("automations",))
        if issues:
            raise AutomationConfigError("\n".join(str(issue) for issue in issues))
        self.templates = TemplateEngine(hub.states, hub.clock)
        self.index = TriggerIndex(hub.bus)
        self.trigger_host = TriggerHost(
            self.index,
            hub.states,
            hub.clock,
            self.templates,
            hub.config.latitude,
            hub.config.longitude,
        )
        self.script_host = ScriptHost(
            hub.bus,
            hub.services,
            hub.clock,
            self.templates,
            self.trigger_host,
            ConditionHost(hub.states, hub.clock, self.templates),
        )
        self.counters = _Counters()
        self.running = False
        self._automations: dict[str, Automation] = {}
        for config in validated:
            self._automations[config["id"]] = Automation(self, config)
        self._services: list[Any] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Attach the enabled automations' triggers and register the automation services."""
        if self.running:
            return
        self.running = True
        for automation in self._automations.values():
            if automation.enabled:
                automation.attach()
        self._register_services()
        _LOGGER.info(
            "automations started: %d (%d enabled)",
            len(self._automations),
            sum(a.enabled for a in self._automations.values()),
        )

    async def stop(self) -> None:
        """Detach every trigger, cancel running and queued runs, and wait for them."""
        if not self.running:
            return
        self.running = False
        for remove in self._services:
            remove()
        self._services.clear()
        tasks: list[asyncio.Task[None]] = []
        for automation in self._automations.values():
            automation.detach()
            tasks.extend(automation.cancel_all("the engine stopped"))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.index.close()

    async def settle(self, rounds: int = 200) -> None:
        """Let runs go until each has finished or waits on the clock or a trigger.

        For tests and replay, where time stands still: after it, every run that could
        move without time passing has moved.
        """
        for _ in range(rounds):
            await asyncio.sleep(0)
            if all(run.idle for a in self._automations.values() for run in a.runs):
                return

    # -- queries -----------------------------------------------------------------------

    def _get(self, automation_id: str) -> Automation:
        try:
            return self._automations[automation_id]
        except KeyError:
            raise UnknownAutomation(automation_id, sorted(self._automations)) from None

    def automation_ids(self) -> list[str]:
        """Every automation id, in config order."""
        return list(self._automations)

    def automations(self) -> list[AutomationInfo]:
        """A summary of every automation, in config order."""
        return [automation.info() for automation in self._automations.values()]

    def traces(self, automation_id: str) -> list[dict[str, Any]]:
        """The last runs of an automation (oldest first) as JSON-friendly dicts.

        :raises UnknownAutomation: for an id no automation has.
        """
        return [trace.as_dict() for trace in self._get(automation_id).traces]

    def stats(self) -> EngineStats:
        """The engine's counters."""
        counters = self.counters
        return EngineStats(
            automations=len(self._automations),
            evaluations=self.index.evaluations,
            triggered=counters.triggered,
            runs_started=counters.runs_started,
            runs_dropped=counters.runs_dropped,
            runs_failed=counters.runs_failed,
            condition_failures=counters.condition_failures,
            listened_event_types=tuple(self.index.listened_types()),
            watched_entities=len(self.index.watched_entities()),
        )

    # -- operations --------------------------------------------------------------------

    def trigger(
        self,
        automation_id: str,
        variables: Mapping[str, Any] | None = None,
        *,
        skip_condition: bool = True,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Run an automation now, as ``automation.trigger`` does; returns its trace so far.

        Works for a disabled automation too, as in Home Assistant.
        """
        automation = self._get(automation_id)
        if not self.running:
            raise AutomationError("the automation engine is not running")
        trigger_variables = {
            "platform": None,
            "id": "manual",
            "idx": None,
            "alias": None,
            "description": f"triggered by {by or 'the hub'}",
            "by": by,
        }
        self.counters.triggered += 1
        trace = automation.start_run(
            trigger_variables, extra=variables, skip_condition=skip_condition
        )
        return trace.as_dict()

    def set_enabled(self, automation_id: str, enabled: bool) -> None:
        """Turn an automation's triggers on or off (runs already going are left alone)."""
        automation = self._get(automation_id)
        automation.enabled = enabled
        if enabled and self.running:
            automation.attach()
        elif not enabled:
            automation.detach()

    def _register_services(self) -> None:
        services = self.hub.services
        by_id = vol.Schema({vol.Required("id"): str})

        def trigger(call: ServiceCall) -> dict[str, Any]:
            return self.trigger(
                call.data["id"],
                call.data.get("variables"),
                skip_condition=call.data.get("skip_condition", True),
                by=call.user,
            )

        def turn_on(call: ServiceCall) -> None:
            self.set_enabled(call.data["id"], True)

        def turn_off(call: ServiceCall) -> None:
            self.set_enabled(call.data["id"], False)

        handlers = (
            (
                "trigger",
                trigger,
                vol.Schema(
                    {
                        vol.Required("id"): str,
                        vol.Optional("variables"): dict,
                        vol.Optional("skip_condition", default=True): bool,
                    }
                ),
                "Run an automation now",
            ),
            ("turn_on", turn_on, by_id, "Enable an automation's triggers"),
            ("turn_off", turn_off, by_id, "Disable an automation's triggers"),
        )
        for name, handler, schema, description in handlers:
            if services.has(SERVICE_DOMAIN, name):
                _LOGGER.warning(
                    "service %s.%s is already registered; not replacing it", SERVICE_DOMAIN, name
                )
                continue
            self._services.append(
                services.register(
                    SERVICE_DOMAIN, name, handler, schema=schema, description=description
                )
            )
