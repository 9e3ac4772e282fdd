"""Benchmark: 400 events/s against 50 automations on a hub driven by the real clock.

    .venv/bin/python tests/automation/bench_automations.py [--rate 400] [--seconds 10]

A script, not a test (timings belong in benchmarks, never in unit tests). It builds a hub
exactly as the harness does, but on the RealClock, with 50 automations of the kinds an
estate runs (20 state, 10 numeric_state, 10 event with event_data, 5 incident, 5 time),
and feeds it a paced mix of events for ``--seconds``: door sensors opening and closing,
gas readings crossing a threshold, e-bikes seen in lifts, and traffic no automation
listens to (parking decisions, an unwatched sensor).

It reports the index's evaluations per bus event (overall and by kind of input), and the
latency from firing an event to the service call its automation makes: p50, p99, max.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from estatehub import hookimpl
from estatehub.automation import AUTOMATIONS_SCHEMA, AutomationEngine
from estatehub.bootstrap import load_config
from estatehub.config import CORE_SECTIONS
from estatehub.hookspecs.base import ConfigSectionSpec
from estatehub.hub import Hub
from estatehub.plugins import PluginManager
from estatehub.services import ServiceCall
from estatehub.store import Store

HEAD = """\
estate:
  name: Bench Estate
  timezone: Asia/Shanghai
  latitude: 31.2304
  longitude: 121.4737
plugins:
  allow: []
automations:
"""


def automations_yaml() -> str:
    """50 automations; every action is one service call carrying the input's sequence no."""
    parts = []
    for n in range(20):
        parts.append(
            f"""
  - id: door_{n}
    mode: parallel
    max: 50
    triggers: {{trigger: state, entity_id: binary_sensor.door_{n}, to: "on"}}
    conditions: ["{{{{ trigger.to_state.attributes.seq is defined }}}}"]
    actions:
      - action: bench.record
        data: {{seq: "{{{{ trigger.to_state.attributes.seq }}}}"}}"""
        )
    for n in range(10):
        parts.append(
            f"""
  - id: gas_{n}
    mode: parallel
    max: 50
    triggers: {{trigger: numeric_state, entity_id: sensor.gas_{n}, above: 50}}
    actions:
      - action: bench.record
        data: {{seq: "{{{{ trigger.to_state.attributes.seq }}}}"}}"""
        )
    for n in range(10):
        parts.append(
            f"""
  - id: ebike_lift_{n}
    mode: parallel
    max: 50
    triggers: {{trigger: event, event_type: ebike.detected, event_data: {{lift: "L{n}"}}}}
    actions:
      - action: bench.record
        data: {{seq: "{{{{ trigger.event.data.seq }}}}"}}"""
        )
    for n in range(5):
        parts.append(
            f"""
  - id: incident_{n}
    triggers: {{trigger: incident, kind: "fence.zone_{n}"}}
    actions: [{{action: bench.record, data: {{seq: -1}}}}]"""
        )
    for n in range(5):
        parts.append(
            f"""
  - id: night_{n}
    triggers: {{trigger: time, at: "03:0{n}"}}
    actions: [{{action: bench.record, data: {{seq: -1}}}}]"""
        )
    return HEAD + "".join(parts) + "\n"


@hookimpl
def estatehub_register_config_sections(register: Callable[[ConfigSectionSpec], None]) -> None:
    register(ConfigSectionSpec("automations", AUTOMATIONS_SCHEMA, "automations (bench wiring)"))


# Once the core owns `automations:`, the hub builds and runs the engine itself.
WIRED_IN_CORE = "automations" in CORE_SECTIONS


def plugins() -> PluginManager:
    manager = PluginManager(allow=(), environ={})
    if not WIRED_IN_CORE:
        manager.register(
            types.SimpleNamespace(
                estatehub_register_config_sections=estatehub_register_config_sections
            ),
            "automation-section",
        )
    manager.check()
    return manager


class Feed:
    """The paced input, and what came out of it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.fired_by_kind: dict[str, int] = {}
        self.evaluations_by_kind: dict[str, int] = {}
        self.sequence = 0
        self.high: dict[str, bool] = {}

    def flip(self, entity_id: str) -> bool:
        """Alternate an entity between its two values; True when it goes high (on, 60)."""
        self.high[entity_id] = not self.high.get(entity_id, False)
        return self.high[entity_id]

    def record(self, call: ServiceCall) -> None:
        sequence = int(call.data["seq"])
        sent = self.sent_at.pop(sequence, None)
        if sent is not None:
            self.latencies.append(time.perf_counter() - sent)

    def emit(self, n: int, engine: AutomationEngine) -> None:
        """The n-th input: 40% doors, 20% gas, 20% e-bikes, 20% traffic nobody watches."""
        self.sequence += 1
        sequence = self.sequence
        states, bus = self.hub.states, self.hub.bus
        slot = n % 10
        before = engine.index.evaluations
        if slot < 4:
            kind = "door state"
            door = f"binary_sensor.door_{(n // 10 * 4 + slot) % 20}"
            opening = self.flip(door)
            if opening:
                self.sent_at[sequence] = time.perf_counter()
            states.set(door, "on" if opening else "off", {"seq": sequence})
        elif slot < 6:
            kind = "gas reading"
            sensor = f"sensor.gas_{(n // 10 * 2 + slot - 4) % 10}"
            high = self.flip(sensor)
            if high:
                self.sent_at[sequence] = time.perf_counter()
            states.set(sensor, "60" if high else "20", {"seq": sequence})
        elif slot < 8:
            kind = "e-bike event"
            self.sent_at[sequence] = time.perf_counter()
            bus.fire("ebike.detected", {"lift": f"L{n % 10}", "tag": f"E200-{n}", "seq": sequence})
        elif slot == 8:
            kind = "unrelated event"
            bus.fire("parking.decision", {"verdict": "open", "seq": sequence})
        else:
            kind = "unwatched state"
            states.set("sensor.unwatched_temperature", str(20 + n % 7), {"seq": sequence})
        self.fired_by_kind[kind] = self.fired_by_kind.get(kind, 0) + 1
        self.evaluations_by_kind[kind] = (
            self.evaluations_by_kind.get(kind, 0) + engine.index.evaluations - before
        )


async def run(rate: float, seconds: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-automations-"))
    (folder / "estate.yaml").write_text(automations_yaml(), encoding="utf-8")
    manager = plugins()
    config = load_config(folder / "estate.yaml", manager)
    hub = Hub(config, manager, store=Store(":memory:"), serve_api=False)
    events = 0

    def count(_event: Any) -> None:
        nonlocal events
        events += 1

    feed = Feed(hub)
    hub.services.register("bench", "record", feed.record)
    await hub.start()
    if WIRED_IN_CORE:
        engine: AutomationEngine = getattr(hub, "automations")  # noqa: B009
    else:
        engine = AutomationEngine(hub, config.sections["automations"])
        await engine.start()
    hub.bus.listen("*", count)
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    started = loop.time()
    lag: list[float] = []
    try:
        for n in range(total):
            due = started + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag.append(-delay)
            feed.emit(n, engine)
        elapsed = loop.time() - started
        await asyncio.sleep(0.2)  # the last runs finish
        stats = engine.stats()
        bus_events = events
    finally:
        await engine.stop()
        await hub.stop()
    # Every bus event counts, the inputs' own and any the runs fire (none here), so
    # evaluations per bus event is the index's whole average cost.
    return {
        "automations": stats.automations,
        "inputs": total,
        "bus_events": bus_events,
        "elapsed_s": elapsed,
        "achieved_rate": total / elapsed,
        "evaluations": stats.evaluations,
        "evaluations_per_event": stats.evaluations / bus_events if bus_events else 0.0,
        "by_kind": {
            kind: feed.evaluations_by_kind[kind] / count_
            for kind, count_ in feed.fired_by_kind.items()
        },
        "runs_started": stats.runs_started,
        "runs_dropped": stats.runs_dropped,
        "runs_failed": stats.runs_failed,
        "condition_failures": stats.condition_failures,
        "latencies": sorted(feed.latencies),
        "unanswered": len(feed.sent_at),
        "behind_schedule": len(lag),
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to feed")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.rate, args.seconds))
    latencies = result["latencies"]
    ms = 1000.0
    print(f"automations            {result['automations']}")
    print(
        f"inputs fed             {result['inputs']} in {result['elapsed_s']:.2f} s "
        f"({result['achieved_rate']:.0f}/s; {result['behind_schedule']} sent late)"
    )
    print(f"bus events             {result['bus_events']}")
    print(
        f"evaluations            {result['evaluations']} "
        f"({result['evaluations_per_event']:.2f} per bus event; a scan would be 50)"
    )
    for kind, per_input in sorted(result["by_kind"].items()):
        print(f"  {kind:<20} {per_input:.2f} per input")
    print(
        f"runs                   {result['runs_started']} started, {result['runs_dropped']} "
        f"dropped, {result['runs_failed']} failed, {result['condition_failures']} "
        "stopped by conditions"
    )
    print(
        f"trigger → action       {len(latencies)} measured, {result['unanswered']} unanswered: "
        f"p50 {percentile(latencies, 0.50) * ms:.3f} ms, "
        f"p99 {percentile(latencies, 0.99) * ms:.3f} ms, "
        f"max {(latencies[-1] if latencies else float('nan')) * ms:.3f} ms, "
        f"mean {(statistics.fmean(latencies) if latencies else float('nan')) * ms:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
