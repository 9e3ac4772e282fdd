"""The event bus: synchronous, in-order dispatch of events to listeners on the loop.

``fire`` calls every listener of the event's type, then every ``"*"`` listener, before it
returns. Listeners are plain callables that must not block; a coroutine function is
accepted and run as a task. A listener that raises is logged (naming it and the event) and
the others still run. This is the hub's hottest path, so it avoids any per-event work that
is not needed: no locks, no per-event task, no datetime until someone asks for one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .clock import Clock

_LOGGER = logging.getLogger(__name__)

MATCH_ALL = "*"
EMPTY: Mapping[str, Any] = MappingProxyType({})


class Event(NamedTuple):
    """One event on the bus.

    A NamedTuple rather than a frozen dataclass: it is just as immutable and about three
    times cheaper to build, which matters at hundreds of thousands of events a second.

    :param type: dotted event type, ``"parking.decision"``.
    :param data: JSON-friendly payload; treat it as read-only.
    :param at: when it was fired, seconds since the epoch on the hub's clock.
    """

    type: str
    data: Mapping[str, Any]
    at: float


Listener = Callable[[Event], Any]
Unsubscribe = Callable[[], None]


class EventBus:
    """Fires events to listeners registered per event type (or ``"*"`` for all)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # Tuples, replaced on change, so a listener may (un)subscribe while we iterate.
        self._listeners: dict[str, tuple[Listener, ...]] = {}
        self._match_all: tuple[Listener, ...] = ()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.listener_errors = 0

    def listen(self, event_type: str, listener: Listener) -> Unsubscribe:
        """Call ``listener(event)`` for every event of ``event_type`` (``"*"``: all events).

        Returns a callable that removes the listener again.
        """
        if inspect.iscoroutinefunction(listener):
            listener = self._as_task(listener)
        if event_type == MATCH_ALL:
            self._match_all = (*self._match_all, listener)
        else:
            self._listeners[event_type] = (*self._listeners.get(event_type, ()), listener)

        def unsubscribe() -> None:
            if event_type == MATCH_ALL:
                self._match_all = tuple(x for x in self._match_all if x is not listener)
                return
            remaining = tuple(x for x in self._listeners.get(event_type, ()) if x is not listener)
            if remaining:
                self._listeners[event_type] = remaining
            else:
                self._listeners.pop(event_type, None)

        return unsubscribe

    def fire(self, event_type: str, data: Mapping[str, Any] = EMPTY) -> Event:
        """Dispatch an event to its listeners now, in registration order; returns it."""
        event = Event(event_type, data, self._clock.timestamp())
        listeners = self._listeners.get(event_type)
        if listeners:
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    self._listener_failed(listener, event)
        if self._match_all:
            for listener in self._match_all:
                try:
                    listener(event)
                except Exception:
                    self._listener_failed(listener, event)
        return event

    def listener_count(self, event_type: str | None = None) -> int:
        """How many listeners a type has (all types when None), ``"*"`` listeners included."""
        if event_type is None:
            return sum(map(len, self._listeners.values())) + len(self._match_all)
        return len(self._listeners.get(event_type, ())) + len(self._match_all)

    def _as_task(self, coroutine_function: Callable[[Event], Coroutine[Any, Any, Any]]) -> Listener:
        # Coroutine listeners start eagerly: they run inside ``fire`` up to their first
        # real suspension, and only then become a task. Most listeners never suspend, and
        # a task per event per listener would cost more than the listener itself.
        tasks = self._tasks
        task_done = self._task_done

        def start(event: Event) -> None:
            task = _start_eagerly(coroutine_function(event))
            if task is not None:
                tasks.add(task)
                task.add_done_callback(task_done)

        start.__qualname__ = getattr(coroutine_function, "__qualname__", "listener")
        return start

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.listener_errors += 1
            _LOGGER.error("async event listener failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until every task started for coroutine listeners has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _listener_failed(self, listener: Listener, event: Event) -> None:
        self.listener_errors += 1
        name = getattr(listener, "__qualname__", repr(listener))
        _LOGGER.exception("event listener %s failed on %s", name, event.type)


# Starting the coroutine by hand (rather than ``asyncio.Task(..., eager_start=True)`` on
# 3.12+) is measurably cheaper: no Task object at all for a listener that never suspends.
def _start_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
    """Run ``coro`` until it first waits; return a task for the rest, or None if done."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    except Exception:
        _LOGGER.exception("async event listener failed")
        return None
    return asyncio.get_running_loop().create_task(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    # Drive the rest of a coroutine the way a Task would: wait for the future it
    # yielded (asyncio's protocol), then send it on; pass cancellation through.
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                try:
                    await asyncio.wait((waiting_on,))
                except asyncio.CancelledError:
                    waiting_on = coro.throw(asyncio.CancelledError())
                    continue
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value
