"""Home Assistant's side of the bus/state benchmark: the same work as bench/bus_states.py.

Runs inside the separate HA venv (``bash bench/ha_venv.sh`` builds it)::

    .ha-venv/bin/python bench/ha_reference.py [--n 200000] [--repeat 3]

It builds a bare Home Assistant 2025.4 core by hand (no default integrations, no network),
runs the workloads described in bench/README.md ("Bus and state workloads") and prints ONE
JSON object on stdout: each figure is the median of ``--repeat`` runs, and ``runs`` holds
every sample so the noise is visible. Progress and HA's own log lines go to stderr.

Every run happens in a fresh child process (this script re-invoking itself with
``--child``): start-up time and RSS only mean something in a process that has done nothing
else, and a fresh process per run keeps one run's garbage out of the next one's timings.
Per run there are two children: ``memory`` (start-up, RSS after start, RSS after 100k
states) and ``throughput`` (the four timed workloads, in a fixed order).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Shared with bench/bus_states.py: change both or neither (see bench/README.md).
EVENT_TYPE = "bench.plate_read"
PLATE = "沪A12345"
ENTITY_COUNT = 10_000
MEMORY_STATE_COUNT = 100_000
DEFAULT_N = 200_000
DEFAULT_REPEAT = 3

METRIC_KEYS = (
    "events_per_s_1_callback",
    "events_per_s_10_callbacks",
    "events_per_s_10_coroutines",
    "state_writes_per_s",
    "rss_mib_after_start",
    "rss_mib_after_100k_states",
    "startup_s",
    "import_s",
    "python_calls_per_s",
)
SECONDS_KEYS = frozenset({"startup_s", "import_s"})


def entity_id(k: int) -> str:
    """The benchmark's k-th entity: ``sensor.bench_<k>``."""
    return f"sensor.bench_{k}"


def entity_attributes(k: int) -> dict[str, Any]:
    """The attribute dict of entity k, built once per entity (an integration's cached attrs)."""
    return {"friendly_name": f"Bench {k}", "unit_of_measurement": "vehicles"}


def rss_mib() -> float:
    """Resident set size of this process in MiB, from /proc/self/status (VmRSS).

    A full collection first, so the figure does not depend on where the collector's
    generation counters happened to stand; bench/bus_states.py does the same.
    """
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


@dataclass(slots=True)
class Tally:
    """What the listeners saw: how many events, and the sum of their ``n`` fields.

    The sum proves every event arrived with its own payload, not just that something ran.
    """

    count: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class BareCore:
    """A started Home Assistant core and the temporary config dir it lives in."""

    hass: Any
    config_dir: Path
    startup_s: float


async def start_bare_core() -> BareCore:
    """Build and start a Home Assistant core with no integrations, timing it.

    This is what ``bootstrap.async_from_config_dict`` does minus the default integrations
    (which install packages at run time and reach outside services): the object, the
    integration loader, config entries, the registries, then ``async_start``. The clock
    runs from ``HomeAssistant(...)`` to ``async_start`` returning; imports are timed apart
    (``import_s``), as bench/bus_states.py times building and starting its Hub.
    """
    from homeassistant import bootstrap, config_entries, loader
    from homeassistant.core import HomeAssistant

    config_dir = Path(tempfile.mkdtemp(prefix="ha-bench-"))
    # The MQTT entry, should a later benchmark add it, re-reads this file; it must exist.
    (config_dir / "configuration.yaml").write_text("")

    started = time.perf_counter()
    hass = HomeAssistant(str(config_dir))
    loader.async_setup(hass)
    hass.config.skip_pip = True
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await bootstrap.async_load_base_functionality(hass)
    await hass.async_start()
    await hass.async_block_till_done()
    startup_s = time.perf_counter() - started
    return BareCore(hass, config_dir, startup_s)


async def stop_bare_core(core: BareCore) -> None:
    """Stop the core and remove its config dir."""
    await core.hass.async_stop()
    shutil.rmtree(core.config_dir, ignore_errors=True)


async def time_events(hass: Any, n: int, listener_count: int, coroutines: bool) -> float:
    """Fire ``n`` events at ``listener_count`` listeners; events per second until all ran.

    Reading HA 2025.4's core.py: ``bus.async_fire`` from the loop thread calls each
    ``@callback`` listener synchronously (``async_run_hass_job`` -> ``target(event)``), and
    starts each coroutine listener as an *eager* task, which runs to completion inside
    ``async_fire`` when the coroutine never suspends. We still await
    ``async_block_till_done`` inside the timed span, so the figure is "until every listener
    has finished" whatever the dispatch does, and check the tally after it.
    """
    from homeassistant.core import callback

    tally = Tally()

    if coroutines:

        async def on_plate_read(event: Any) -> None:
            tally.count += 1
            tally.total += event.data["n"]

        listener: Callable[[Any], Awaitable[None] | None] = on_plate_read
    else:

        @callback
        def on_plate_read_callback(event: Any) -> None:
            tally.count += 1
            tally.total += event.data["n"]

        listener = on_plate_read_callback

    unsubscribes = [hass.bus.async_listen(EVENT_TYPE, listener) for _ in range(listener_count)]
    fire = hass.bus.async_fire  # looked up once, as bench/bus_states.py does with bus.fire
    started = time.perf_counter()
    for i in range(n):
        # A fresh payload per event, as a real plate read would carry.
        fire(EVENT_TYPE, {"plate": PLATE, "n": i})
    await hass.async_block_till_done()
    elapsed = time.perf_counter() - started
    for unsubscribe in unsubscribes:
        unsubscribe()

    expected_total = listener_count * n * (n - 1) // 2
    if tally.count != listener_count * n or tally.total != expected_total:
        raise RuntimeError(
            f"{listener_count} listeners saw {tally.count} events (sum {tally.total}), "
            f"expected {listener_count * n} (sum {expected_total})"
        )
    return n / elapsed


async def time_state_writes(hass: Any, n: int) -> float:
    """Write ``n`` states cycling over ENTITY_COUNT entities; writes per second.

    The entities are created before the clock starts (seeded with state ``"seed"``), so
    every timed write is an update. Write i sets entity ``i % ENTITY_COUNT`` to ``str(i)``:
    i never repeats, so each write is a real change (HA builds a new State and fires
    ``state_changed``) and never the cheaper "same state, same attributes" report path.
    Attributes are the entity's own dict, built once beforehand and passed every time, like
    an integration that keeps its attributes and changes only the state.
    """
    entity_ids = [entity_id(k) for k in range(ENTITY_COUNT)]
    attributes = [entity_attributes(k) for k in range(ENTITY_COUNT)]
    set_state = hass.states.async_set
    for k in range(ENTITY_COUNT):
        set_state(entity_ids[k], "seed", attributes[k])
    await hass.async_block_till_done()

    started = time.perf_counter()
    for i in range(n):
        k = i % ENTITY_COUNT
        set_state(entity_ids[k], str(i), attributes[k])
    await hass.async_block_till_done()
    elapsed = time.perf_counter() - started

    last = n - 1
    if hass.states.get(entity_id(last % ENTITY_COUNT)).state != str(last):
        raise RuntimeError(f"entity {entity_id(last % ENTITY_COUNT)} missed write {last}")
    return n / elapsed


def bus_listener_counts(hass: Any) -> dict[str, int]:
    """Listeners the bare core itself has registered, per event type (for the report)."""
    return dict(sorted(hass.bus.async_listeners().items()))


async def run_memory_child() -> dict[str, Any]:
    """Start-up time, RSS after start, and RSS after MEMORY_STATE_COUNT states."""
    core = await start_bare_core()
    hass = core.hass
    result: dict[str, Any] = {
        "startup_s": core.startup_s,
        "rss_mib_after_start": rss_mib(),
    }
    set_state = hass.states.async_set
    for k in range(MEMORY_STATE_COUNT):
        # Each entity its own state value and its own attribute dict, as 100k devices have.
        set_state(entity_id(k), str(k), entity_attributes(k))
    await hass.async_block_till_done()
    if len(hass.states.async_entity_ids()) < MEMORY_STATE_COUNT:
        raise RuntimeError("state machine holds fewer states than were set")
    result["rss_mib_after_100k_states"] = rss_mib()
    result["listeners_at_start"] = bus_listener_counts(hass)
    await stop_bare_core(core)
    return result


def python_calls_per_s(calls: int = 1_000_000) -> float:
    """Calibration, not a result: plain calls of a no-op function with a fresh 2-key dict.

    The machine is shared and its speed drifts by up to 2x; this figure, taken in the same
    process right before the workloads, shows how fast the interpreter itself ran (and
    differs between HA's Python 3.13 and estatehub's 3.11).
    """

    def no_op(payload: dict[str, Any]) -> None:
        pass

    started = time.perf_counter()
    for i in range(calls):
        no_op({"plate": PLATE, "n": i})
    return calls / (time.perf_counter() - started)


async def run_throughput_child(n: int) -> dict[str, Any]:
    """The four timed workloads, in the order bench/bus_states.py runs them."""
    core = await start_bare_core()
    hass = core.hass
    result: dict[str, Any] = {
        "python_calls_per_s": python_calls_per_s(),
        "events_per_s_1_callback": await time_events(hass, n, 1, coroutines=False),
        "events_per_s_10_callbacks": await time_events(hass, n, 10, coroutines=False),
        "events_per_s_10_coroutines": await time_events(hass, n, 10, coroutines=True),
        # Last, so the 10k entities it leaves behind do not sit in the other workloads' heap.
        "state_writes_per_s": await time_state_writes(hass, n),
    }
    await stop_bare_core(core)
    return result


def run_child(mode: str, n: int) -> dict[str, Any]:
    """Run one child measurement on HA's own event loop policy, as ``hass`` itself does."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.perf_counter()
    from homeassistant import bootstrap, config_entries, core, loader, runner  # noqa: F401

    import_s = time.perf_counter() - started
    # HA's policy: the stock asyncio loop plus its executor and a cheaper loop.time.
    asyncio.set_event_loop_policy(runner.HassEventLoopPolicy(False))
    loop = asyncio.new_event_loop()
    try:
        if mode == "memory":
            result = loop.run_until_complete(run_memory_child())
            result["import_s"] = import_s
        else:
            result = loop.run_until_complete(run_throughput_child(n))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    return result


def spawn_child(mode: str, n: int) -> dict[str, Any]:
    """Run this script as a fresh child process and return the JSON it printed."""
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--n", str(n)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{mode} child exited with {completed.returncode}:\n{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout)


def run_all(n: int, repeat: int) -> dict[str, Any]:
    """Every run in fresh children; medians plus the raw samples."""
    from homeassistant.const import __version__ as ha_version

    runs: dict[str, list[float]] = {key: [] for key in METRIC_KEYS}
    listeners_at_start: dict[str, int] = {}
    for run in range(1, repeat + 1):
        for mode in ("memory", "throughput"):
            print(f"[ha_reference] run {run}/{repeat}: {mode}", file=sys.stderr, flush=True)
            sample = spawn_child(mode, n)
            listeners_at_start = sample.pop("listeners_at_start", listeners_at_start)
            for key, value in sample.items():
                runs[key].append(value)

    report: dict[str, Any] = {
        "implementation": "homeassistant",
        "version": ha_version,
        "python": ".".join(map(str, sys.version_info[:3])),
        "n": n,
        "repeat": repeat,
        "entities": ENTITY_COUNT,
        "memory_states": MEMORY_STATE_COUNT,
    }
    for key in METRIC_KEYS:
        median = statistics.median(runs[key])
        report[key] = round(median, 3) if key in SECONDS_KEYS else round(median, 1)
    report["runs"] = {key: [round(v, 3) for v in values] for key, values in runs.items()}
    report["listeners_at_start"] = listeners_at_start
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: --n, --repeat, and the internal --child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="events / writes per workload")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per figure")
    parser.add_argument("--child", choices=("memory", "throughput"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark's JSON report (or, as a child, one run's raw figures)."""
    args = parse_args(argv)
    try:
        import homeassistant  # noqa: F401
    except ImportError:
        print(
            "homeassistant is not importable: run this with the HA venv's python "
            "(.ha-venv/bin/python; build it with `bash bench/ha_venv.sh`)",
            file=sys.stderr,
        )
        return 2
    if args.child:
        print(json.dumps(run_child(args.child, args.n)))
    else:
        print(json.dumps(run_all(args.n, args.repeat), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
