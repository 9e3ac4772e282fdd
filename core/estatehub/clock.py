"""Time for the hub: a real clock and a virtual one for deterministic replay and tests.

Everything in the hub asks its clock for the time and for timers, never ``datetime.now()``
or ``loop.call_later`` directly; that is what makes a replay on the virtual clock give the
same output every time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")


class TimerHandle:
    """A scheduled callback; :meth:`cancel` stops it from running."""

    __slots__ = ("_cancelled", "_inner", "callback", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self._cancelled = False
        self._inner: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        """Cancel the timer; a no-op if it already ran."""
        self._cancelled = True
        if self._inner is not None:
            self._inner.cancel()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled


class Clock(ABC):
    """The hub's source of time and timers, in the estate's timezone."""

    def __init__(self, tz: ZoneInfo = DEFAULT_TIMEZONE) -> None:
        self.tz = tz

    @abstractmethod
    def timestamp(self) -> float:
        """Seconds since the epoch (wall time, or virtual time)."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in the estate's timezone."""
        return datetime.fromtimestamp(self.timestamp(), self.tz)

    def to_local(self, ts: float) -> datetime:
        """A timestamp from :meth:`timestamp` as an aware local datetime."""
        return datetime.fromtimestamp(ts, self.tz)

    @abstractmethod
    def call_at(self, when: datetime | float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (sync, on the loop) at ``when``; returns a cancellable handle."""

    def call_later(self, delay: float | timedelta, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` (seconds or a timedelta)."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        return self.call_at(self.timestamp() + seconds, callback)

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Sleep on this clock's time."""


def _as_timestamp(when: datetime | float) -> float:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError(f"naive datetime {when.isoformat()} given to the clock; use aware")
        return when.timestamp()
    return float(when)


class RealClock(Clock):
    """Wall-clock time with timers on the running asyncio loop."""

    def timestamp(self) -> float:
        return time.time()

    def call_at(self, when: datetime | float, callback: Callable[[], None]) -> TimerHandle:
        target = _as_timestamp(when)
        handle = TimerHandle(target, callback)
        delay = max(0.0, target - time.time())
        handle._inner = asyncio.get_running_loop().call_later(delay, callback)
        return handle

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock(Clock):
    """Time that only moves when told to; timers run in time order as it moves.

    Used by replay and tests: :meth:`advance_to` runs every timer due up to the target, each
    with the clock set to the timer's own time, so the same inputs always give the same
    sequence of events.
    """

    def __init__(self, start: datetime | float, tz: ZoneInfo = DEFAULT_TIMEZONE) -> None:
        super().__init__(tz)
        self._now = _as_timestamp(start)
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()

    def timestamp(self) -> float:
        return self._now

    def call_at(self, when: datetime | float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(max(_as_timestamp(when), self._now), callback)
        heapq.heappush(self._timers, (handle.when, next(self._order), handle))
        return handle

    def next_timer(self) -> float | None:
        """When the next pending timer is due, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance_to(self, when: datetime | float) -> int:
        """Move time forward to ``when``, running due timers in order; returns how many ran.

        Time never moves backwards: a target in the past only runs timers already due.
        """
        target = max(_as_timestamp(when), self._now)
        ran = 0
        while True:
            due = self.next_timer()
            if due is None or due > target:
                break
            _, _, handle = heapq.heappop(self._timers)
            self._now = max(self._now, handle.when)
            handle._cancelled = True  # a handle runs once
            handle.callback()
            ran += 1
        self._now = target
        return ran

    def advance(self, delta: float | timedelta) -> int:
        """Move time forward by ``delta``; see :meth:`advance_to`."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        return self.advance_to(self._now + seconds)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        self.call_later(seconds, wake)
        await future
