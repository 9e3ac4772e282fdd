"""The state machine: the current state of every entity, and ``state_changed`` events.

An entity id is ``domain.object_id`` (``binary_sensor.b3_1202_smoke``). A write that
changes neither the state nor the attributes is a no-op and fires nothing, as in Home
Assistant, so adapters can report the same state as often as devices send it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .bus import EMPTY, EventBus

STATE_CHANGED = "state_changed"


class State(NamedTuple):
    """An entity's state at one moment; immutable.

    :param entity_id: ``domain.object_id``.
    :param state: the state as a string (``"on"``, ``"12.5"``, ``"unavailable"``).
    :param attributes: read-only extra data.
    :param last_changed: when ``state`` last changed (epoch seconds).
    :param last_updated: when the state or the attributes last changed.
    """

    entity_id: str
    state: str
    attributes: Mapping[str, Any]
    last_changed: float
    last_updated: float

    @property
    def domain(self) -> str:
        """The part of the entity id before the dot."""
        return self.entity_id.partition(".")[0]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (times as epoch seconds)."""
        return {
            "entity_id": self.entity_id,
            "state": self.state,
            "attributes": dict(self.attributes),
            "last_changed": self.last_changed,
            "last_updated": self.last_updated,
        }


class StateMachine:
    """Holds :class:`State` per entity and fires ``state_changed`` on every real change."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._states: dict[str, State] = {}
        self._clock_timestamp = bus._clock.timestamp

    def get(self, entity_id: str) -> State | None:
        """The entity's current state, or None if it has none."""
        return self._states.get(entity_id)

    def set(self, entity_id: str, state: str, attributes: Mapping[str, Any] | None = None) -> State:
        """Set an entity's state; fires ``state_changed`` unless nothing changed."""
        old = self._states.get(entity_id)
        attrs: Mapping[str, Any] = MappingProxyType(dict(attributes)) if attributes else EMPTY
        if old is not None and old.state == state and old.attributes == attrs:
            return old
        now = self._clock_timestamp()
        changed = now if old is None or old.state != state else old.last_changed
        new = State(entity_id, state, attrs, changed, now)
        self._states[entity_id] = new
        self._bus.fire(STATE_CHANGED, {"entity_id": entity_id, "old_state": old, "new_state": new})
        return new

    def remove(self, entity_id: str) -> bool:
        """Forget an entity; fires ``state_changed`` with ``new_state`` None if it existed."""
        old = self._states.pop(entity_id, None)
        if old is None:
            return False
        self._bus.fire(STATE_CHANGED, {"entity_id": entity_id, "old_state": old, "new_state": None})
        return True

    def all(self, domain: str | None = None) -> list[State]:
        """Every state, or those of one domain, sorted by entity id."""
        if domain is None:
            return sorted(self._states.values(), key=lambda s: s.entity_id)
        prefix = domain + "."
        return sorted(
            (s for s in self._states.values() if s.entity_id.startswith(prefix)),
            key=lambda s: s.entity_id,
        )

    def __iter__(self) -> Iterator[State]:
        return iter(list(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)
