"""estatehub's side of the bus/state benchmark: the same work as bench/ha_reference.py.

    .venv/bin/python bench/bus_states.py [--n 200000] [--repeat 3]

Runs the workloads of bench/README.md ("Bus and state workloads") on a started estatehub
Hub (no modules, no API) and prints ONE JSON object with the same keys as
ha_reference.py. ``bench/compare.py`` runs both side by side and prints the ratios. Each
run is a fresh child process, for the same reasons as on the HA side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Shared with bench/ha_reference.py: change both or neither (see bench/README.md).
EVENT_TYPE = "bench.plate_read"
PLATE = "沪A12345"
ENTITY_COUNT = 10_000
MEMORY_STATE_COUNT = 100_000
DEFAULT_N = 200_000
DEFAULT_REPEAT = 3
METRIC_KEYS = (
    "python_calls_per_s",
    "events_per_s_1_callback",
    "events_per_s_10_callbacks",
    "events_per_s_10_coroutines",
    "state_writes_per_s",
    "rss_mib_after_start",
    "rss_mib_after_100k_states",
    "startup_s",
    "import_s",
)
SECONDS_KEYS = frozenset({"startup_s", "import_s"})
CONFIG = "estate:\n  name: bench\nstore:\n  path: ':memory:'\n"


def entity_id(k: int) -> str:
    """The benchmark's k-th entity: ``sensor.bench_<k>``."""
    return f"sensor.bench_{k}"


def entity_attributes(k: int) -> dict[str, Any]:
    """Entity k's attribute dict, built once per entity."""
    return {"friendly_name": f"Bench {k}", "unit_of_measurement": "vehicles"}


def rss_mib() -> float:
    """VmRSS of this process in MiB, after a full collection (as on the HA side)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


@dataclass(slots=True)
class Tally:
    """How many events the listeners saw and the sum of their ``n`` (proves each arrived)."""

    count: int = 0
    total: int = 0


async def start_hub() -> tuple[Any, float]:
    """Build and start a Hub with no modules; returns it and the start-up time."""
    from estatehub.bootstrap import load_config
    from estatehub.hub import Hub
    from estatehub.plugins import PluginManager

    folder = Path(tempfile.mkdtemp(prefix="estatehub-bench-"))
    (folder / "estate.yaml").write_text(CONFIG, encoding="utf-8")
    started = time.perf_counter()
    plugins = PluginManager(allow=())
    config = load_config(folder / "estate.yaml", plugins)
    hub = Hub(config, plugins, serve_api=False)
    await hub.start()
    return hub, time.perf_counter() - started


async def time_events(hub: Any, n: int, listener_count: int, coroutines: bool) -> float:
    """Fire ``n`` events at ``listener_count`` listeners; events/s until every listener ran."""
    tally = Tally()
    if coroutines:

        async def on_plate_read(event: Any) -> None:
            tally.count += 1
            tally.total += event.data["n"]

        listener: Any = on_plate_read
    else:

        def on_plate_read_callback(event: Any) -> None:
            tally.count += 1
            tally.total += event.data["n"]

        listener = on_plate_read_callback
    unsubscribes = [hub.bus.listen(EVENT_TYPE, listener) for _ in range(listener_count)]
    fire = hub.bus.fire
    started = time.perf_counter()
    for i in range(n):
        fire(EVENT_TYPE, {"plate": PLATE, "n": i})
    await hub.bus.drain()
    elapsed = time.perf_counter() - started
    for unsubscribe in unsubscribes:
        unsubscribe()
    expected_total = listener_count * n * (n - 1) // 2
    if tally.count != listener_count * n or tally.total != expected_total:
        raise RuntimeError(
            f"listeners saw {tally.count} events (sum {tally.total}), expected {listener_count * n}"
        )
    return n / elapsed


async def time_state_writes(hub: Any, n: int) -> float:
    """Write ``n`` real state changes cycling over ENTITY_COUNT seeded entities."""
    entity_ids = [entity_id(k) for k in range(ENTITY_COUNT)]
    attributes = [entity_attributes(k) for k in range(ENTITY_COUNT)]
    set_state = hub.states.set
    for k in range(ENTITY_COUNT):
        set_state(entity_ids[k], "seed", attributes[k])
    started = time.perf_counter()
    for i in range(n):
        k = i % ENTITY_COUNT
        set_state(entity_ids[k], str(i), attributes[k])
    await hub.bus.drain()
    elapsed = time.perf_counter() - started
    last = n - 1
    if hub.states.get(entity_id(last % ENTITY_COUNT)).state != str(last):
        raise RuntimeError("a state write was lost")
    return n / elapsed


async def run_memory_child() -> dict[str, Any]:
    """Start-up time, RSS after start, and RSS after MEMORY_STATE_COUNT states."""
    hub, startup_s = await start_hub()
    result: dict[str, Any] = {"startup_s": startup_s, "rss_mib_after_start": rss_mib()}
    set_state = hub.states.set
    for k in range(MEMORY_STATE_COUNT):
        set_state(entity_id(k), str(k), entity_attributes(k))
    if len(hub.states) < MEMORY_STATE_COUNT:
        raise RuntimeError("state machine holds fewer states than were set")
    result["rss_mib_after_100k_states"] = rss_mib()
    await hub.stop()
    return result


def python_calls_per_s(calls: int = 1_000_000) -> float:
    """Calibration: plain Python calls per second on this machine right now (as on the HA side)."""

    def no_op(data: Any) -> None:
        return None

    started = time.perf_counter()
    for i in range(calls):
        no_op({"plate": PLATE, "n": i})
    return calls / (time.perf_counter() - started)


async def run_throughput_child(n: int) -> dict[str, Any]:
    """The four timed workloads, in the order ha_reference.py runs them."""
    hub, _ = await start_hub()
    result = {
        "python_calls_per_s": python_calls_per_s(),
        "events_per_s_1_callback": await time_events(hub, n, 1, coroutines=False),
        "events_per_s_10_callbacks": await time_events(hub, n, 10, coroutines=False),
        "events_per_s_10_coroutines": await time_events(hub, n, 10, coroutines=True),
        "state_writes_per_s": await time_state_writes(hub, n),
    }
    await hub.stop()
    return result


def run_child(mode: str, n: int) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    started = time.perf_counter()
    import estatehub.hub  # noqa: F401

    import_s = time.perf_counter() - started
    if mode == "memory":
        result = asyncio.run(run_memory_child())
        result["import_s"] = import_s
        return result
    return asyncio.run(run_throughput_child(n))


def run_all(n: int, repeat: int) -> dict[str, Any]:
    """Every run in fresh children; medians plus raw samples."""
    import estatehub

    runs: dict[str, list[float]] = {key: [] for key in METRIC_KEYS}
    for run in range(1, repeat + 1):
        for mode in ("memory", "throughput"):
            print(f"[bus_states] run {run}/{repeat}: {mode}", file=sys.stderr, flush=True)
            command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--n", str(n)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{mode} child failed:\n{done.stderr[-4000:]}")
            for key, value in json.loads(done.stdout).items():
                runs[key].append(value)
    report: dict[str, Any] = {
        "implementation": "estatehub",
        "version": estatehub.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "n": n,
        "repeat": repeat,
    }
    for key in METRIC_KEYS:
        median = statistics.median(runs[key])
        report[key] = round(median, 3) if key in SECONDS_KEYS else round(median, 1)
    report["runs"] = {key: [round(v, 3) for v in values] for key, values in runs.items()}
    return report


def main(argv: list[str] | None = None) -> int:
    """Print the JSON report (or, as a child, one run's raw figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    parser.add_argument("--child", choices=("memory", "throughput"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.n)))
    else:
        print(json.dumps(run_all(args.n, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
