"""One channel's delivery: its own queue and worker, rate limit, timeout, retries, audit.

Each channel has a worker task owned by the notify module, so a channel that is down or
hangs only delays its own queue: ``enqueue`` never waits, and other channels and the bus go
on. Every wait (backoff, rate limit, attempt timeout) is on the hub clock, so replays and
tests on the virtual clock are deterministic.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .models import DeliveryError, Notification, Notifier

if TYPE_CHECKING:
    from estatehub.bus import EventBus
    from estatehub.clock import Clock
    from estatehub.store import Store

_LOGGER = logging.getLogger(__name__)

ACTOR = "notify"
DELIVERED = "notify.delivered"
ATTEMPT_FAILED = "notify.attempt_failed"
GAVE_UP = "notify.gave_up"
DROPPED = "notify.dropped"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard a channel tries.

    :param attempts: attempts per notification before giving up (≥ 1).
    :param backoff_initial: wait after the first failure; doubled after each next one …
    :param backoff_max: … up to this cap.
    :param timeout: one attempt that has not finished by then failed.
    :param rate_count: at most this many attempts …
    :param rate_period: … per this sliding window (the WeCom and DingTalk robots allow 20
        messages a minute).
    :param queue_size: notifications waiting beyond this are dropped (logged and audited).
    """

    attempts: int = 5
    backoff_initial: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=1)
    timeout: timedelta = timedelta(seconds=10)
    rate_count: int = 20
    rate_period: timedelta = timedelta(minutes=1)
    queue_size: int = 1000

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1, 2, …)."""
        delay = self.backoff_initial.total_seconds() * 2 ** (failures - 1)
        return min(delay, self.backoff_max.total_seconds())


class WorkerState(enum.StrEnum):
    """What a channel's worker is doing (tests and the module's ``idle`` look at it)."""

    IDLE = "idle"
    SENDING = "sending"
    WAITING = "waiting"  # on the hub clock: backoff or rate limit
    STOPPED = "stopped"


class Channel:
    """A named notifier with its queue, worker task and delivery policy."""

    def __init__(
        self,
        name: str,
        kind: str,
        notifier: Notifier,
        policy: DeliveryPolicy,
        *,
        clock: Clock,
        store: Store,
        bus: EventBus,
    ) -> None:
        self.name = name
        self.kind = kind
        self.notifier = notifier
        self.policy = policy
        self.state = WorkerState.STOPPED
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0
        self.dropped = 0
        self._clock = clock
        self._store = store
        # Outcomes go on the bus too, so automations can react to a guard room unreached.
        self._bus = bus
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(policy.queue_size)
        self._attempt_times: deque[float] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Notifications waiting in the queue (the one being sent not counted)."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker task."""
        self.state = WorkerState.IDLE
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"notify channel {self.name}"
        )

    async def stop(self) -> None:
        """Cancel the worker (an attempt in flight is abandoned) and wait for it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.state = WorkerState.STOPPED

    def enqueue(self, message: Notification) -> bool:
        """Queue a notification without waiting; False (audited) when the queue is full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            _LOGGER.error(
                "notify channel %s: queue full (%d), dropped %s for %s",
                self.name,
                self.policy.queue_size,
                message.id,
                message.target,
            )
            self._audit(DROPPED, message, {"reason": "queue full"})
            return False
        return True

    # -- the worker -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self.state = WorkerState.IDLE
            message = await self._queue.get()
            try:
                await self._deliver(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken notifier must not end the channel
                _LOGGER.exception("notify channel %s failed on %s", self.name, message.id)

    async def _deliver(self, message: Notification) -> None:
        policy = self.policy
        for attempt in range(1, policy.attempts + 1):
            await self._respect_rate_limit()
            self.state = WorkerState.SENDING
            try:
                await self._attempt(message)
            except DeliveryError as err:
                self.failed_attempts += 1
                last = attempt == policy.attempts or not err.retryable
                detail = {"attempt": attempt, "error": err.reason}
                self._bus.fire(ATTEMPT_FAILED, self._audit(ATTEMPT_FAILED, message, detail))
                if last:
                    self.given_up += 1
                    _LOGGER.error(
                        "notify channel %s gave up on %s for %s after %d attempt(s): %s",
                        self.name,
                        message.id,
                        message.target,
                        attempt,
                        err.reason,
                    )
                    self._bus.fire(GAVE_UP, self._audit(GAVE_UP, message, detail))
                    return
                delay = policy.backoff(attempt)
                _LOGGER.warning(
                    "notify channel %s: attempt %d for %s failed (%s); retrying in %g s",
                    self.name,
                    attempt,
                    message.id,
                    err.reason,
                    delay,
                )
                self.state = WorkerState.WAITING
                await self._clock.sleep(delay)
            else:
                self.delivered += 1
                self._bus.fire(DELIVERED, self._audit(DELIVERED, message, {"attempt": attempt}))
                return

    async def _attempt(self, message: Notification) -> None:
        # The timeout runs on the hub clock (not asyncio.wait_for), so a hanging channel
        # times out on the virtual clock exactly as it would on the wall clock.
        send = asyncio.ensure_future(self.notifier.send(message))
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            send.cancel()

        timer = self._clock.call_later(self.policy.timeout, expire)
        try:
            await send
        except asyncio.CancelledError:
            if timed_out:
                raise DeliveryError(
                    f"no answer within {self.policy.timeout.total_seconds():g} s"
                ) from None
            raise
        except DeliveryError:
            raise
        except Exception as err:  # a third-party notifier's own error is a failed attempt
            raise DeliveryError(f"{type(err).__name__}: {err}") from None
        finally:
            timer.cancel()

    async def _respect_rate_limit(self) -> None:
        period = self.policy.rate_period.total_seconds()
        times = self._attempt_times
        while True:
            now = self._clock.timestamp()
            while times and times[0] <= now - period:
                times.popleft()
            if len(times) < self.policy.rate_count:
                times.append(now)
                return
            self.state = WorkerState.WAITING
            await self._clock.sleep(times[0] + period - now)

    def _audit(
        self, action: str, message: Notification, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        detail = {
            "channel": self.name,
            "type": self.kind,
            "notification": message.id,
            "target": message.target,
            **extra,
        }
        self._store.audit(self._clock.now(), ACTOR, action, f"notify:{self.name}", detail)
        return detail
