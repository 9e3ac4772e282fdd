"""Deterministic replay of a capture on the virtual clock.

The hub is built exactly as ``estatehub run`` would build it from the same config, except:
the clock is virtual and starts at the first record, the store is in memory, the API is not
served, and ``hub.replaying`` is set so no adapter actuates a real device. Each record is
injected at its ``at``; timers due in between (escalations) run in time order. Every event
the hub fires (``state_changed`` aside, unless asked) is written as one JSON line
``{"at", "type", "data"}``. The same capture and config always give the same output.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .api.auth import ApiUser
from .api.server import perform_write
from .bootstrap import load_config, plugins_for_config
from .bus import Event
from .clock import VirtualClock
from .hub import Hub
from .states import STATE_CHANGED, State
from .store import Store
from .transports.base import InboundHttp, MqttMessage
from .transports.capture import CaptureRecord, read_capture
from .transports.embedded import EmbeddedMqtt

_LOGGER = logging.getLogger(__name__)
DEFAULT_TAIL = timedelta(minutes=15)
REPLAY_ROLES = frozenset({"admin"})


def event_json_default(value: Any) -> Any:
    """JSON for the odd values events carry (times, enums, states, tuples)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, State):
        return {
            "entity_id": value.entity_id,
            "state": value.state,
            "attributes": dict(value.attributes),
        }
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def event_line(event: Event, clock: VirtualClock | Any) -> str:
    """One event as the JSON line replay prints."""
    return json.dumps(
        {"at": clock.to_local(event.at).isoformat(), "type": event.type, "data": dict(event.data)},
        ensure_ascii=False,
        default=event_json_default,
    )


async def inject(hub: Hub, record: CaptureRecord) -> None:
    """Feed one captured record into the hub through the transport it came from."""
    fields = record.fields
    now = hub.clock.now()
    if record.transport == "mqtt":
        hub.mqtt.inject(
            MqttMessage(
                topic=fields["topic"],
                payload=record.payload("payload"),
                received_at=now,
                qos=int(fields.get("qos", 0)),
                retained=bool(fields.get("retain", False)),
            )
        )
    elif record.transport == "http":
        hub.http.dispatch(
            InboundHttp(
                method=fields["method"],
                path=fields["path"],
                content_type=fields.get("content_type", ""),
                body=record.payload("body"),
                received_at=now,
                query=fields.get("query") or {},
            )
        )
    else:
        status, answer = await perform_write(
            hub,
            fields["method"],
            fields["path"],
            ApiUser(fields["user"], REPLAY_ROLES),
            fields.get("body"),
        )
        if status >= 400:
            hub.reject(
                "api", fields["path"], f"replayed API call failed ({status}): {answer.get('error')}"
            )


async def advance(hub: Hub, clock: VirtualClock, target: datetime | float) -> None:
    """Move the virtual clock to ``target`` one due timer at a time, settling after each."""
    goal = target.timestamp() if isinstance(target, datetime) else target
    while True:
        due = clock.next_timer()
        if due is None or due > goal:
            break
        clock.advance_to(due)
        await hub.settle()
    clock.advance_to(goal)
    await hub.settle()


async def replay(
    config_path: Path,
    capture_path: Path,
    out: IO[str] | Callable[[str], Any],
    *,
    tail: timedelta = DEFAULT_TAIL,
    include_states: bool = False,
) -> int:
    """Replay a capture against an estate config; returns the number of events printed."""
    plugins = plugins_for_config(config_path)
    config = load_config(config_path, plugins)
    records = list(read_capture(capture_path))
    start = records[0].at if records else datetime.now(config.timezone)
    clock = VirtualClock(start, tz=config.timezone)
    hub = Hub(
        config,
        plugins,
        clock=clock,
        store=Store(":memory:"),
        mqtt=EmbeddedMqtt(now=clock.now),
        serve_api=False,
        replaying=True,
    )
    write = out if callable(out) else (lambda line: out.write(line + "\n"))
    printed = 0

    def print_event(event: Event) -> None:
        nonlocal printed
        if event.type == STATE_CHANGED and not include_states:
            return
        write(event_line(event, clock))
        printed += 1

    hub.bus.listen("*", print_event)
    await hub.start()
    previous = None
    try:
        for record in records:
            if previous is not None and record.at < previous.at:
                # Time never runs backwards on the virtual clock: the record is injected at
                # the current time, in file order. Say so, an integrator will want to know.
                _LOGGER.warning(
                    "%s, line %d: 'at' %s is before line %d (%s); replayed in file order",
                    capture_path.name,
                    record.line,
                    record.at.isoformat(),
                    previous.line,
                    previous.at.isoformat(),
                )
            previous = record
            await advance(hub, clock, record.at)
            await inject(hub, record)
            await hub.settle()
        await advance(hub, clock, clock.timestamp() + tail.total_seconds())
    finally:
        await hub.stop()
    return printed
