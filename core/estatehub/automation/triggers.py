"""Triggers, and the index that dispatches bus events to them.

The index holds one bus listener per event type that some trigger wants, and a per-entity
table for ``state_changed``: an event of a type no trigger names reaches no automation code
at all, and a state change is offered only to the triggers on that entity. Every offer of
an event to a trigger counts as one *evaluation* (:attr:`TriggerIndex.evaluations`).

Time-based triggers (``time``, ``time_pattern``, ``sun``, and ``for:``) arm timers on the
hub clock, never on the loop, so a replay on the virtual clock gives the same runs.

Each trigger hands the engine its ``trigger`` variable, shaped as Home Assistant's:
``platform``, ``id`` (the ``id:`` written, else the trigger's index), ``idx``, ``alias``,
``description``, plus what the kind adds (``entity_id``, ``from_state``, ``to_state``,
``for`` for state triggers; ``event`` for event triggers; ``now`` for time triggers …).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..states import STATE_CHANGED
from .errors import AutomationConfigError, TemplateError
from .sun import next_sun_event

if TYPE_CHECKING:
    from ..bus import Event, EventBus, Unsubscribe
    from ..clock import Clock, TimerHandle
    from ..states import State, StateMachine
    from .templates import TemplateEngine

_LOGGER = logging.getLogger(__name__)

Fire = Callable[[dict[str, Any]], None]
"""What a trigger calls when it fires, with its ``trigger`` variable."""
Detach = Callable[[], None]
EventHandler = Callable[["Event"], None]


class TriggerIndex:
    """Routes bus events to the triggers that asked for them, and counts the offers."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # Tuples, replaced on change: a trigger may attach or detach others while it runs.
        self._by_type: dict[str, tuple[EventHandler, ...]] = {}
        self._by_entity: dict[str, tuple[EventHandler, ...]] = {}
        self._unlisten: dict[str, Unsubscribe] = {}
        #: Offers of an event to a trigger, since the index was made.
        self.evaluations = 0

    def on_event(self, event_type: str, handler: EventHandler) -> Detach:
        """Offer every ``event_type`` event to ``handler``; returns the undo."""
        self._by_type[event_type] = (*self._by_type.get(event_type, ()), handler)
        self._listen(event_type)
        return lambda: self._remove(self._by_type, event_type, handler, event_type)

    def on_entity(self, entity_id: str, handler: EventHandler) -> Detach:
        """Offer every ``state_changed`` of ``entity_id`` to ``handler``; returns the undo."""
        self._by_entity[entity_id] = (*self._by_entity.get(entity_id, ()), handler)
        self._listen(STATE_CHANGED)
        return lambda: self._remove(self._by_entity, entity_id, handler, STATE_CHANGED)

    def listened_types(self) -> list[str]:
        """The event types the index has a bus listener for, sorted."""
        return sorted(self._unlisten)

    def watched_entities(self) -> list[str]:
        """The entities some trigger watches, sorted."""
        return sorted(self._by_entity)

    def close(self) -> None:
        """Remove every bus listener and forget every handler."""
        for unlisten in self._unlisten.values():
            unlisten()
        self._unlisten.clear()
        self._by_type.clear()
        self._by_entity.clear()

    def _listen(self, event_type: str) -> None:
        if event_type not in self._unlisten:
            dispatch = self._dispatch_state if event_type == STATE_CHANGED else self._dispatch
            self._unlisten[event_type] = self._bus.listen(event_type, dispatch)

    def _remove(
        self,
        table: dict[str, tuple[EventHandler, ...]],
        key: str,
        handler: EventHandler,
        event_type: str,
    ) -> None:
        remaining = tuple(h for h in table.get(key, ()) if h is not handler)
        if remaining:
            table[key] = remaining
        else:
            table.pop(key, None)
        still_wanted = event_type in self._by_type or (
            event_type == STATE_CHANGED and bool(self._by_entity)
        )
        if not still_wanted and event_type in self._unlisten:
            self._unlisten.pop(event_type)()

    def _dispatch(self, event: Event) -> None:
        handlers = self._by_type.get(event.type, ())
        self.evaluations += len(handlers)
        for handler in handlers:
            _offer(handler, event)

    def _dispatch_state(self, event: Event) -> None:
        handlers = self._by_entity.get(event.data.get("entity_id", ""), ())
        every = self._by_type.get(STATE_CHANGED, ())
        self.evaluations += len(handlers) + len(every)
        for handler in handlers:
            _offer(handler, event)
        for handler in every:
            _offer(handler, event)


def _offer(handler: EventHandler, event: Event) -> None:
    # One trigger failing must not keep the event from the others.
    try:
        handler(event)
    except Exception:
        _LOGGER.exception("trigger failed on %s event", event.type)


@dataclass(frozen=True, slots=True)
class TriggerHost:
    """What triggers need from the hub."""

    index: TriggerIndex
    states: StateMachine
    clock: Clock
    templates: TemplateEngine
    latitude: float | None
    longitude: float | None


class Trigger:
    """One configured trigger; :meth:`attach` starts it, the returned callable stops it."""

    kind = ""

    def __init__(self, config: Mapping[str, Any], index: int, host: TriggerHost) -> None:
        self.config = config
        self.idx = str(index)
        self.id = str(config.get("id", index))
        self.alias: str | None = config.get("alias")
        self.enabled: bool = config.get("enabled", True)
        self.host = host

    def attach(self, fire: Fire) -> Detach:
        """Start watching; call ``fire(trigger_variables)`` each time the trigger fires."""
        raise NotImplementedError

    def _variables(self, description: str, **extra: Any) -> dict[str, Any]:
        return {
            "platform": self.kind,
            "id": self.id,
            "idx": self.idx,
            "alias": self.alias,
            "description": description,
            **extra,
        }


def _detach_all(detachers: list[Detach], timers: dict[Any, Any] | None = None) -> Detach:
    def detach() -> None:
        for undo in detachers:
            undo()
        detachers.clear()
        if timers is not None:
            for timer in timers.values():
                (timer[0] if isinstance(timer, tuple) else timer).cancel()
            timers.clear()

    return detach


def _subset(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """Every key of ``expected`` is in ``actual`` with an equal value (nested mappings too)."""
    for key, wanted in expected.items():
        if key not in actual:
            return False
        found = actual[key]
        if isinstance(wanted, Mapping) and isinstance(found, Mapping):
            if not _subset(wanted, found):
                return False
        elif found != wanted:
            return False
    return True


class EventTrigger(Trigger):
    """``trigger: event``: an event of one of ``event_type``, whose data holds ``event_data``."""

    kind = "event"

    def attach(self, fire: Fire) -> Detach:
        wanted: Mapping[str, Any] = self.config.get("event_data") or {}
        to_local = self.host.clock.to_local

        def handle(event: Event) -> None:
            if wanted and not _subset(wanted, event.data):
                return
            fire(
                self._variables(
                    f"event '{event.type}'",
                    event={
                        "event_type": event.type,
                        "data": dict(event.data),
                        "time_fired": to_local(event.at),
                    },
                )
            )

        return _detach_all(
            [self.host.index.on_event(str(t), handle) for t in self.config["event_type"]]
        )


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


class StateTrigger(Trigger):
    """``trigger: state``: an entity's state (or attribute) changes, from/to, held ``for``."""

    kind = "state"

    def attach(self, fire: Fire) -> Detach:
        config = self.config
        attribute: str | None = config.get("attribute")
        hold: timedelta | None = config.get("for")
        # Home Assistant's rule: with no from/to at all, attribute changes count too.
        match_all = not any(key in config for key in ("from", "to", "not_from", "not_to"))
        from_states, to_states = config.get("from"), config.get("to")
        not_from, not_to = set(config.get("not_from", ())), set(config.get("not_to", ()))
        pending: dict[str, tuple[TimerHandle, str | None]] = {}
        clock = self.host.clock

        def value_of(state: State | None) -> str | None:
            if state is None:
                return None
            if attribute is None:
                return state.state
            return _as_text(state.attributes.get(attribute))

        def from_ok(value: str | None) -> bool:
            if from_states is not None and value not in from_states:
                return False
            return value not in not_from

        def to_ok(value: str | None) -> bool:
            if to_states is not None and value not in to_states:
                return False
            return value not in not_to

        def handle(event: Event) -> None:
            entity_id: str = event.data["entity_id"]
            old, new = event.data["old_state"], event.data["new_state"]
            old_value, new_value = value_of(old), value_of(new)
            waiting = pending.get(entity_id)
            if waiting is not None and new_value != waiting[1]:
                waiting[0].cancel()  # it did not hold long enough
                del pending[entity_id]
            if attribute is not None and old_value == new_value:
                return
            if not from_ok(old_value) or not to_ok(new_value):
                return
            if not match_all and old_value == new_value:
                return
            variables = self._variables(
                f"state of {entity_id}",
                entity_id=entity_id,
                from_state=old,
                to_state=new,
                attribute=attribute,
                **{"for": hold},
            )
            if hold is None:
                fire(variables)
                return

            def held() -> None:
                pending.pop(entity_id, None)
                fire(variables)

            pending[entity_id] = (clock.call_later(hold, held), new_value)

        detachers = [self.host.index.on_entity(e, handle) for e in config["entity_id"]]
        return _detach_all(detachers, pending)


class NumericStateTrigger(Trigger):
    """``trigger: numeric_state``: a value crosses into ``above``/``below`` (and holds ``for``).

    It fires when the value enters the range, not while it stays there: a value already in
    range when the engine starts must leave it first.
    """

    kind = "numeric_state"

    def attach(self, fire: Fire) -> Detach:
        config = self.config
        hold: timedelta | None = config.get("for")
        states = self.host.states
        checker = NumericCheck(config, states, self.host.templates)
        armed: set[str] = set()
        pending: dict[str, TimerHandle] = {}
        for entity_id in config["entity_id"]:
            if not checker.matches(states.get(entity_id))[0]:
                armed.add(entity_id)

        def handle(event: Event) -> None:
            entity_id: str = event.data["entity_id"]
            new = event.data["new_state"]
            matched, _value = checker.matches(new)
            if not matched:
                armed.add(entity_id)
                waiting = pending.pop(entity_id, None)
                if waiting is not None:
                    waiting.cancel()
                return
            if entity_id not in armed:
                return  # still in range: it fires on entering, not on staying
            armed.discard(entity_id)
            variables = self._variables(
                f"numeric state of {entity_id}",
                entity_id=entity_id,
                from_state=event.data["old_state"],
                to_state=new,
                above=config.get("above"),
                below=config.get("below"),
                **{"for": hold},
            )
            if hold is None:
                fire(variables)
                return

            def held() -> None:
                pending.pop(entity_id, None)
                fire(variables)

            pending[entity_id] = self.host.clock.call_later(hold, held)

        detachers = [self.host.index.on_entity(e, handle) for e in config["entity_id"]]
        return _detach_all(detachers, pending)


class NumericCheck:
    """The numeric test shared by the numeric_state trigger and condition."""

    def __init__(
        self, config: Mapping[str, Any], states: StateMachine, templates: TemplateEngine
    ) -> None:
        self._above = config.get("above")
        self._below = config.get("below")
        self._attribute: str | None = config.get("attribute")
        source = config.get("value_template")
        self._template = templates.compile(source) if source else None
        self._states = states

    def value(self, state: State | None) -> tuple[float | None, str]:
        """The number to compare, or None with the reason it is not one."""
        if state is None:
            return None, "has no state"
        if self._template is not None:
            try:
                raw: Any = self._template.render({"state": state})
            except TemplateError as err:
                return None, f"value_template failed: {err.reason}"
        elif self._attribute is not None:
            raw = state.attributes.get(self._attribute)
        else:
            raw = state.state
        try:
            return float(raw), ""
        except (TypeError, ValueError):
            return None, f"is {raw!r}, not a number"

    def _limit(self, limit: float | str | None) -> float | None:
        if limit is None or isinstance(limit, float):
            return limit
        state = self._states.get(limit)
        try:
            return float(state.state) if state is not None else None
        except ValueError:
            return None

    def matches(self, state: State | None) -> tuple[bool, str]:
        """Whether ``state`` is in range, with a reason that names the numbers."""
        value, why_not = self.value(state)
        if value is None:
            return False, why_not
        above, below = self._limit(self._above), self._limit(self._below)
        if self._above is not None and above is None:
            return False, f"threshold {self._above} has no numeric state"
        if self._below is not None and below is None:
            return False, f"threshold {self._below} has no numeric state"
        if above is not None and not value > above:
            return False, f"is {value:g}, not above {above:g}"
        if below is not None and not value < below:
            return False, f"is {value:g}, not below {below:g}"
        bounds = [
            f"above {above:g}" if above is not None else "",
            f"below {below:g}" if below is not None else "",
        ]
        return True, f"is {value:g}, {' and '.join(b for b in bounds if b)}"


class TimeTrigger(Trigger):
    """``trigger: time``: every day at each ``at`` (estate local time)."""

    kind = "time"

    def attach(self, fire: Fire) -> Detach:
        clock = self.host.clock
        timers: dict[time, TimerHandle] = {}

        def schedule(at: time, after: datetime) -> None:
            when = datetime.combine(after.date(), at, tzinfo=clock.tz)
            if when <= after:
                when = datetime.combine(after.date() + timedelta(days=1), at, tzinfo=clock.tz)
            timers[at] = clock.call_at(when, lambda: ring(at, when))

        def ring(at: time, when: datetime) -> None:
            # Schedule the next day before firing, from the planned time (not from "now",
            # which a real clock may put a hair early).
            schedule(at, max(when, clock.now()))
            fire(self._variables(f"time {at.isoformat()}", now=clock.now(), at=at.isoformat()))

        for at in self.config["at"]:
            schedule(at, clock.now())
        return _detach_all([], timers)


def _pattern_values(spec: int | str | None, highest: int) -> list[int]:
    if spec is None or spec == "*":
        return list(range(highest + 1))
    if isinstance(spec, str) and spec.startswith("/"):
        step = int(spec[1:])
        return [value for value in range(highest + 1) if value % step == 0]
    return [int(spec)]


class TimePatternTrigger(Trigger):
    """``trigger: time_pattern``: when the local time matches hours/minutes/seconds.

    As in Home Assistant, units smaller than the largest one written default to 0:
    ``hours: /2`` fires at 00:00:00, 02:00:00 …; ``minutes: /5`` at :00:00, :05:00 ….
    """

    kind = "time_pattern"

    def __init__(self, config: Mapping[str, Any], index: int, host: TriggerHost) -> None:
        super().__init__(config, index, host)
        hours, minutes, seconds = config.get("hours"), config.get("minutes"), config.get("seconds")
        if minutes is None and hours is not None:
            minutes = 0
        if seconds is None and minutes is not None:
            seconds = 0
        self._hours = _pattern_values(hours, 23)
        self._minutes = _pattern_values(minutes, 59)
        self._seconds = _pattern_values(seconds, 59)

    def next_after(self, after: datetime) -> datetime:
        """The first matching second strictly after ``after`` (aware, local)."""
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        tz = after.tzinfo
        for day_offset in range(3):
            day = start.date() + timedelta(days=day_offset)
            same_day = day_offset == 0
            for hour in self._hours:
                if same_day and hour < start.hour:
                    continue
                same_hour = same_day and hour == start.hour
                for minute in self._minutes:
                    if same_hour and minute < start.minute:
                        continue
                    same_minute = same_hour and minute == start.minute
                    for second in self._seconds:
                        if same_minute and second < start.second:
                            continue
                        candidate = datetime(
                            day.year, day.month, day.day, hour, minute, second, tzinfo=tz
                        )
                        if candidate > after:
                            return candidate
        raise AssertionError("a time pattern always matches within two days")

    def attach(self, fire: Fire) -> Detach:
        clock = self.host.clock
        timers: dict[str, TimerHandle] = {}

        def schedule(after: datetime) -> None:
            when = self.next_after(after)
            timers["next"] = clock.call_at(when, lambda: ring(when))

        def ring(when: datetime) -> None:
            schedule(max(when, clock.now()))
            fire(self._variables("time pattern", now=clock.now()))

        schedule(clock.now())
        return _detach_all([], timers)


class SunTrigger(Trigger):
    """``trigger: sun``: at sunrise or sunset (with ``offset``) at the estate's coordinates."""

    kind = "sun"

    def __init__(self, config: Mapping[str, Any], index: int, host: TriggerHost) -> None:
        super().__init__(config, index, host)
        if host.latitude is None or host.longitude is None:
            raise AutomationConfigError(
                "a sun trigger needs the estate's coordinates: set estate → latitude and "
                "longitude in the config"
            )
        self._latitude: float = host.latitude
        self._longitude: float = host.longitude

    def next_after(self, after: datetime) -> datetime | None:
        """The next event (offset applied) strictly after ``after``."""
        return next_sun_event(
            self.config["event"], after, self._latitude, self._longitude, self.config["offset"]
        )

    def attach(self, fire: Fire) -> Detach:
        clock = self.host.clock
        timers: dict[str, TimerHandle] = {}
        event: str = self.config["event"]
        offset: timedelta = self.config["offset"]

        def schedule(after: datetime) -> None:
            when = self.next_after(after)
            if when is None:
                _LOGGER.warning("no %s within a year at these coordinates; trigger idle", event)
                return
            timers["next"] = clock.call_at(when, lambda: ring(when))

        def ring(when: datetime) -> None:
            schedule(max(when, clock.now()))
            fire(self._variables(event, event=event, offset=offset, now=clock.now()))

        schedule(clock.now())
        return _detach_all([], timers)


class IncidentTrigger(Trigger):
    """``trigger: incident`` (an estatehub extension): an incident raised, escalated,
    acknowledged or resolved, filtered by ``kind``/``location`` (shell-style patterns such
    as ``home.*`` or ``b3-*``) and ``severity``."""

    kind = "incident"

    def attach(self, fire: Fire) -> Detach:
        config = self.config
        kinds: list[str] | None = config.get("kind")
        severities: list[str] | None = config.get("severity")
        locations: list[str] | None = config.get("location")

        def wanted(value: Any, patterns: list[str] | None) -> bool:
            return patterns is None or any(fnmatch.fnmatchcase(str(value), p) for p in patterns)

        def handler_for(what: str) -> EventHandler:
            def handle(event: Event) -> None:
                data = event.data
                if not wanted(data.get("kind"), kinds) or not wanted(
                    data.get("location"), locations
                ):
                    return
                if severities is not None and str(data.get("severity")) not in severities:
                    return
                fire(
                    self._variables(
                        f"incident {data.get('id')} {what}",
                        event=what,
                        incident=dict(data),
                        incident_id=data.get("id"),
                        kind=data.get("kind"),
                        severity=data.get("severity"),
                        location=data.get("location"),
                    )
                )

            return handle

        return _detach_all(
            [
                self.host.index.on_event(f"incident.{what}", handler_for(what))
                for what in config["event"]
            ]
        )


TRIGGER_CLASSES: dict[str, type[Trigger]] = {
    cls.kind: cls
    for cls in (
        EventTrigger,
        StateTrigger,
        NumericStateTrigger,
        TimeTrigger,
        TimePatternTrigger,
        SunTrigger,
        IncidentTrigger,
    )
}


def build_trigger(config: Mapping[str, Any], index: int, host: TriggerHost) -> Trigger:
    """The trigger for one validated trigger config."""
    return TRIGGER_CLASSES[config["trigger"]](config, index, host)
