"""Traces: what one run of an automation did, step by step, as JSON-friendly data.

A trace records the trigger (which one fired, and its data), every condition checked with
its result and, when it failed, why; then every action with when it started and finished,
its result or its error. Paths name each step the way Home Assistant's traces do:
``trigger/0``, ``condition/1``, ``action/2/choose/0/sequence/1``.

``script_execution`` says how the run ended:

==================  ======================================================================
``running``         still going
``queued``          ``mode: queued``: waiting for the runs before it
``finished``        every action ran (or a ``stop`` without ``error`` ended it)
``failed_conditions`` a condition was false; nothing ran
``failed_single``   ``mode: single`` and a run was already going; nothing ran
``failed_max_runs`` ``queued``/``parallel`` and ``max`` runs were already going or waiting
``cancelled``       ``mode: restart`` started another run, or the engine stopped
``aborted``         ``stop`` with ``error: true``, or a condition action was false
``timeout``         ``wait_for_trigger`` timed out with ``continue_on_timeout: false``
``error``           an action failed (its step has the error)
==================  ======================================================================
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..states import State

if TYPE_CHECKING:
    from ..clock import Clock
    from .conditions import ConditionResult

# A loop that runs for days must not grow its trace without bound.
MAX_STEPS_PER_TRACE = 500


def to_json(value: Any) -> Any:
    """``value`` with everything JSON cannot hold turned into something it can.

    States become their dicts, times ISO strings, durations seconds, enums their values,
    sets sorted lists; anything else unknown becomes its ``str``.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, State):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_json(item) for item in value), key=str)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class RunTrace:
    """The trace of one run; filled in while the run goes, read with :meth:`as_dict`."""

    def __init__(
        self,
        automation_id: str,
        run_id: str,
        clock: Clock,
        trigger: Mapping[str, Any],
        *,
        max_steps: int = MAX_STEPS_PER_TRACE,
    ) -> None:
        self.automation_id = automation_id
        self.run_id = run_id
        self._clock = clock
        self._max_steps = max_steps
        self.started_at = clock.timestamp()
        self.finished_at: float | None = None
        self.trigger = to_json(trigger)
        self.conditions: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self.steps_left_out = 0
        self.variables: dict[str, Any] = {}
        self.script_execution = "running"
        self.error: str | None = None
        self.stop_reason: str | None = None

    def _now(self) -> str:
        return self._clock.to_local(self._clock.timestamp()).isoformat()

    @property
    def finished(self) -> bool:
        """True once the run ended, however it ended."""
        return self.finished_at is not None

    def record_condition(self, path: str, outcome: ConditionResult) -> None:
        """Record a checked condition (and its nested ones) in the conditions section."""
        self.conditions.extend(outcome.flatten(path))

    def start_step(self, path: str, kind: str, alias: str | None, **extra: Any) -> dict[str, Any]:
        """Record that an action starts; returns its entry, to finish with :meth:`finish_step`."""
        entry: dict[str, Any] = {
            "path": path,
            "action": kind,
            "alias": alias,
            "started_at": self._now(),
            "finished_at": None,
            "result": None,
            "error": None,
            **{key: to_json(value) for key, value in extra.items()},
        }
        if len(self.steps) < self._max_steps:
            self.steps.append(entry)
        else:
            self.steps_left_out += 1
        return entry

    def finish_step(
        self, entry: dict[str, Any], result: Any = None, error: str | None = None
    ) -> None:
        """Record how an action ended."""
        entry["finished_at"] = self._now()
        entry["result"] = to_json(result)
        entry["error"] = error

    def finish(
        self, execution: str, *, error: str | None = None, stop_reason: str | None = None
    ) -> None:
        """Close the trace with how the run ended (see the module docstring)."""
        if self.finished_at is not None:
            return
        self.finished_at = self._clock.timestamp()
        self.script_execution = execution
        self.error = error
        self.stop_reason = stop_reason

    def as_dict(self) -> dict[str, Any]:
        """The trace as JSON-friendly data (what the API and the CLI show)."""
        return {
            "automation_id": self.automation_id,
            "run_id": self.run_id,
            "state": "stopped" if self.finished_at is not None else "running",
            "script_execution": self.script_execution,
            "started_at": self._clock.to_local(self.started_at).isoformat(),
            "finished_at": self._clock.to_local(self.finished_at).isoformat()
            if self.finished_at is not None
            else None,
            "trigger": self.trigger,
            "conditions": [dict(entry) for entry in self.conditions],
            "steps": [dict(entry) for entry in self.steps],
            "steps_left_out": self.steps_left_out,
            "variables": to_json(self.variables),
            "error": self.error,
            "stop_reason": self.stop_reason,
        }


def _clock_part(moment: str | None) -> str:
    """``2026-03-02T08:00:05+08:00`` → ``08:00:05`` (traces are local time)."""
    if not moment:
        return "…"
    return moment.split("T", 1)[-1][:8]


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_trace(trace: Mapping[str, Any]) -> str:
    """A trace (as :meth:`RunTrace.as_dict` gives it) as lines a person reads, e.g. for
    ``estatehub automations trace ID``::

        run 1 of smoke_releases_doors: finished, 08:00:05 → 08:00:35
          trigger  state of binary_sensor.b3_smoke (id smoke)
          condition/0  state: passed: input_boolean.fire_drill is 'off'
          action/0  call_service "Release the doors" 08:00:05 → 08:00:05: ok {"service": …}
    """
    trigger = trace.get("trigger") or {}
    header = (
        f"run {trace['run_id']} of {trace['automation_id']}: {trace['script_execution']}, "
        f"{_clock_part(trace['started_at'])} → {_clock_part(trace.get('finished_at'))}"
    )
    lines = [header]
    why = trace.get("stop_reason")
    if why and trace.get("error") != why:
        lines.append(f"  stopped  {why}")
    if trace.get("error"):
        lines.append(f"  error    {trace['error']}")
    lines.append(f"  trigger  {trigger.get('description')} (id {trigger.get('id')})")
    for entry in trace.get("conditions", ()):
        verdict = "passed" if entry["result"] else "FAILED"
        alias = f' "{entry["alias"]}"' if entry.get("alias") else ""
        lines.append(
            f"  {entry['path']}  {entry['condition']}{alias}: {verdict}: {entry['reason']}"
        )
    for step in trace.get("steps", ()):
        alias = f' "{step["alias"]}"' if step.get("alias") else ""
        when = f"{_clock_part(step['started_at'])} → {_clock_part(step.get('finished_at'))}"
        if step.get("error"):
            outcome = f"ERROR {step['error']}"
        elif step.get("finished_at") is None:
            outcome = "running"
        else:
            outcome = f"ok {_short(step.get('result'))}"
        iteration = f" [iteration {step['iteration']}]" if "iteration" in step else ""
        lines.append(f"  {step['path']}  {step['action']}{alias}{iteration} {when}: {outcome}")
    if trace.get("steps_left_out"):
        lines.append(f"  … {trace['steps_left_out']} more steps not kept")
    return "\n".join(lines)
