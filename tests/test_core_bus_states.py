"""The event bus, the state machine and the clocks, as modules and adapters use them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from estatehub.bus import EventBus
from estatehub.clock import RealClock, VirtualClock
from estatehub.states import StateMachine

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI)


def make_bus() -> tuple[EventBus, VirtualClock]:
    clock = VirtualClock(START, tz=SHANGHAI)
    return EventBus(clock), clock


def test_listeners_get_events_of_their_type_in_registration_order():
    bus, _ = make_bus()
    seen: list[str] = []
    bus.listen("parking.decision", lambda e: seen.append(f"first {e.data['verdict']}"))
    bus.listen("parking.decision", lambda e: seen.append(f"second {e.data['verdict']}"))
    bus.listen("home.alarm", lambda e: seen.append("wrong type"))
    bus.fire("parking.decision", {"verdict": "open"})
    assert seen == ["first open", "second open"]


def test_match_all_listener_sees_every_event_after_the_typed_ones():
    bus, clock = make_bus()
    seen: list[tuple[str, float]] = []
    bus.listen("*", lambda e: seen.append((e.type, e.at)))
    bus.listen("a", lambda e: seen.append(("typed a", e.at)))
    bus.fire("a")
    clock.advance(5)
    bus.fire("b")
    assert seen == [
        ("typed a", START.timestamp()),
        ("a", START.timestamp()),
        ("b", START.timestamp() + 5),
    ]


def test_a_failing_listener_is_counted_and_the_others_still_run(caplog):
    bus, _ = make_bus()
    seen = []

    def broken(event):
        raise RuntimeError("plugin bug")

    bus.listen("x", broken)
    bus.listen("x", lambda e: seen.append(e.type))
    bus.fire("x")
    assert seen == ["x"]
    assert bus.listener_errors == 1
    assert "broken" in caplog.text and "failed on x" in caplog.text


def test_unsubscribe_during_dispatch_is_safe_and_takes_effect_next_time():
    bus, _ = make_bus()
    seen = []
    remove = None

    def once(event):
        seen.append("once")
        remove()

    remove = bus.listen("x", once)
    bus.listen("x", lambda e: seen.append("always"))
    bus.fire("x")
    bus.fire("x")
    assert seen == ["once", "always", "always"]
    assert bus.listener_count("x") == 1


async def test_coroutine_listeners_run_as_tasks_and_drain_waits_for_them():
    bus, _ = make_bus()
    seen = []

    async def slow(event):
        await asyncio.sleep(0.01)
        seen.append(event.data["n"])

    bus.listen("x", slow)
    bus.fire("x", {"n": 1})
    assert seen == []
    await bus.drain()
    assert seen == [1]


def test_state_write_fires_once_per_real_change():
    bus, clock = make_bus()
    states = StateMachine(bus)
    changes = []
    bus.listen(
        "state_changed", lambda e: changes.append((e.data["entity_id"], e.data["new_state"].state))
    )
    states.set("binary_sensor.b3_1202_smoke", "off", {"flat": "b3-1-1202"})
    states.set("binary_sensor.b3_1202_smoke", "off", {"flat": "b3-1-1202"})  # no change: no event
    clock.advance(10)
    states.set("binary_sensor.b3_1202_smoke", "on", {"flat": "b3-1-1202"})
    assert changes == [
        ("binary_sensor.b3_1202_smoke", "off"),
        ("binary_sensor.b3_1202_smoke", "on"),
    ]
    state = states.get("binary_sensor.b3_1202_smoke")
    assert state.last_changed == START.timestamp() + 10
    assert state.domain == "binary_sensor"


def test_attribute_change_updates_last_updated_but_not_last_changed():
    bus, clock = make_bus()
    states = StateMachine(bus)
    states.set("sensor.x", "1", {"battery": 90})
    clock.advance(60)
    new = states.set("sensor.x", "1", {"battery": 80})
    assert new.last_changed == START.timestamp()
    assert new.last_updated == START.timestamp() + 60
    with pytest.raises(TypeError):
        new.attributes["battery"] = 1  # read-only


def test_virtual_clock_runs_timers_in_time_order_with_their_own_time():
    clock = VirtualClock(START, tz=SHANGHAI)
    ran: list[tuple[str, datetime]] = []
    clock.call_later(timedelta(minutes=5), lambda: ran.append(("5m", clock.now())))
    clock.call_later(120, lambda: ran.append(("2m", clock.now())))
    cancelled = clock.call_later(60, lambda: ran.append(("never", clock.now())))
    cancelled.cancel()
    assert clock.advance(timedelta(minutes=10)) == 2
    assert ran == [("2m", START + timedelta(minutes=2)), ("5m", START + timedelta(minutes=5))]
    assert clock.now() == START + timedelta(minutes=10)


def test_virtual_clock_never_goes_backwards():
    clock = VirtualClock(START, tz=SHANGHAI)
    clock.advance_to(START - timedelta(hours=1))
    assert clock.now() == START


def test_clock_refuses_naive_datetimes():
    clock = VirtualClock(START, tz=SHANGHAI)
    with pytest.raises(ValueError, match="naive"):
        clock.call_at(datetime(2026, 3, 2, 9, 0), lambda: None)


async def test_real_clock_timer_fires_on_the_loop():
    clock = RealClock(SHANGHAI)
    fired = asyncio.Event()
    clock.call_later(0.01, fired.set)
    await asyncio.wait_for(fired.wait(), 2)
    assert clock.now().tzinfo == SHANGHAI


async def test_coroutine_listener_that_never_waits_runs_inside_fire():
    bus, _ = make_bus()
    seen = []

    async def quick(event):
        seen.append(event.data["n"])

    bus.listen("x", quick)
    bus.fire("x", {"n": 7})
    assert seen == [7]
    assert not bus._tasks


async def test_coroutine_listener_that_waits_twice_finishes_with_its_results():
    bus, _ = make_bus()
    seen = []
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[str] = loop.create_future()

    async def waits(event):
        seen.append("start")
        value = await gate
        await asyncio.sleep(0)
        seen.append(value)

    bus.listen("x", waits)
    bus.fire("x")
    assert seen == ["start"]
    gate.set_result("opened")
    await bus.drain()
    assert seen == ["start", "opened"]


async def test_coroutine_listener_sees_the_exception_of_what_it_awaited():
    bus, _ = make_bus()
    seen = []
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[str] = loop.create_future()

    async def waits(event):
        try:
            await gate
        except KeyError as err:
            seen.append(f"caught {err}")

    bus.listen("x", waits)
    bus.fire("x")
    gate.set_exception(KeyError("gone"))
    await bus.drain()
    assert seen == ["caught 'gone'"]
