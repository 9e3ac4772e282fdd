"""MQTT ingest benchmark: how fast can the hub take messages off a real Mosquitto?

Run from the repository root::

    .venv/bin/python bench/mqtt_ingest.py                 # 200k messages, 3 runs
    .venv/bin/python bench/mqtt_ingest.py -n 50000 -r 1   # quicker
    .venv/bin/python bench/mqtt_ingest.py --profile       # also cProfile our subscriber

It starts its own Mosquitto (``estatehub.testing.mosquitto``) and, for each run and each
subscriber kind, starts the subscriber in its own process, waits until the broker logs its
SUBSCRIBE, then lets a publisher process blast N pre-encoded QoS 0 PUBLISH packets
(zigbee2mqtt-style state JSON, one topic per device) down one socket. Subscribers:

* ``mosquitto_sub``: ``mosquitto_sub -C N`` writing to /dev/null, the C baseline;
* ``aiomqtt naive``: ``async for message in client.messages`` with a dict write;
* ``estatehub``: :class:`~estatehub.transports.mqtt.AiomqttTransport` dispatching every
  message into a subscriber callback that writes ``states[topic] = payload``.

The rate is N divided by the time from the publisher's first byte to the subscriber's last
message (its process exit for mosquitto_sub, a monotonic timestamp printed by the Python
subscribers; CLOCK_MONOTONIC is shared by all processes on Linux). Medians over the runs are
printed with the ratio to mosquitto_sub, plus the subscriber's CPU time per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPIC_FILTER = "zigbee2mqtt/#"
KINDS = ("mosquitto_sub", "aiomqtt naive", "estatehub")


# -- the publisher ---------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        digit, value = value % 128, value // 128
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _mqtt_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _varint(len(body)) + body


def device_topic(index: int, devices: int) -> str:
    """zigbee2mqtt/<friendly name> for the index-th device of a made-up estate."""
    device = index % devices
    building, flat = device // 60 + 1, device % 60
    return f"zigbee2mqtt/b{building}-{flat // 4 + 1:02d}{flat % 4 + 1:02d}-smoke"


def state_payload(seq: int) -> bytes:
    """A zigbee2mqtt smoke detector state (FORMATS.md 7a), with a sequence number."""
    return json.dumps(
        {
            "battery": 97,
            "battery_low": False,
            "linkquality": 60 + seq % 40,
            "smoke": False,
            "tamper": False,
            "voltage": 3055,
            "seq": seq,
        },
        separators=(",", ":"),
    ).encode()


def run_publisher(port: int, messages: int, devices: int) -> None:
    """Encode every PUBLISH up front, connect, say READY, and on GO send them all at once.

    Encoding in advance and writing with one ``sendall`` makes the publisher far faster
    than any subscriber, so the broker and the subscriber are what is measured.
    """
    stream = b"".join(
        _packet(0x30, _mqtt_string(device_topic(i, devices)) + state_payload(i))
        for i in range(messages)
    )
    sock = socket.create_connection(("127.0.0.1", port))
    connect = _mqtt_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60)
    sock.sendall(_packet(0x10, connect + _mqtt_string(f"bench-pub-{os.getpid()}")))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[3] != 0:
        raise SystemExit(f"publisher: broker refused CONNECT: {connack!r}")
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        raise SystemExit("publisher: expected GO")
    sock.sendall(stream)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


# -- the Python subscribers ------------------------------------------------------------


async def _naive_subscriber(port: int, messages: int, client_id: str) -> None:
    import aiomqtt

    states: dict[str, bytes] = {}
    count = 0
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client:
        await client.subscribe(TOPIC_FILTER)
        async for message in client.messages:
            states[message.topic.value] = message.payload  # type: ignore[assignment]
            count += 1
            if count >= messages:
                break
        print(f"DONE {time.monotonic()!r}", flush=True)


@dataclass
class _BenchSettings:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive: int = 60
    reconnect_min: float = 0.5
    reconnect_max: float = 5.0
    tls: object = None


async def _estatehub_subscriber(port: int, messages: int, client_id: str, profile: bool) -> None:
    from estatehub.transports.base import MqttMessage
    from estatehub.transports.mqtt import AiomqttTransport

    loop = asyncio.get_running_loop()
    finished: asyncio.Future[float] = loop.create_future()
    states: dict[str, bytes] = {}
    count = 0

    def on_state(message: MqttMessage) -> None:
        nonlocal count
        states[message.topic] = message.payload
        count += 1
        if count == messages:
            finished.set_result(time.monotonic())

    transport = AiomqttTransport(
        _BenchSettings("127.0.0.1", port, client_id), now=lambda: datetime.now(UTC)
    )
    transport.subscribe(TOPIC_FILTER, on_state, qos=0)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    async with transport:
        await transport.wait_connected(10)
        if profiler is not None:
            profiler.enable()
        done_at = await finished
        if profiler is not None:
            profiler.disable()
    print(f"DONE {done_at!r}", flush=True)
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(18)


# -- the orchestrator ------------------------------------------------------------------


@dataclass
class Trial:
    """One subscriber kind in one run."""

    kind: str
    seconds: float | None
    cpu_seconds: float
    error: str = ""

    def rate(self, messages: int) -> float | None:
        """Messages per second, or None if the trial failed."""
        return messages / self.seconds if self.seconds else None


def _wait_for_subscribe(broker_log: Path, client_id: str, timeout: float) -> None:
    needle = f" {client_id} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = broker_log.read_text(encoding="utf-8", errors="replace")
        if any(needle in line and TOPIC_FILTER in line for line in text.splitlines()):
            # The broker logs SUBSCRIBE while handling it; give it a moment to finish.
            time.sleep(0.2)
            return
        time.sleep(0.02)
    raise SystemExit(f"subscriber {client_id} did not subscribe within {timeout} s")


def _wait4(process: subprocess.Popen[str], timeout: float) -> tuple[float | None, float]:
    """Wait for exit; (monotonic exit time or None on timeout, CPU seconds used)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            exited = time.monotonic()
            process.returncode = os.waitstatus_to_exitcode(status)
            return exited, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            _, _, usage = os.wait4(process.pid, 0)
            process.returncode = -9
            return None, usage.ru_utime + usage.ru_stime
        time.sleep(0.0005)


def run_trial(
    kind: str, broker_port: int, broker_log: Path, args: argparse.Namespace, trial: int
) -> Trial:
    """Start one subscriber, publish the stream, and time it."""
    client_id = f"bench-sub-{trial}-{kind.replace(' ', '-')}"
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--port", str(broker_port), "-n", str(args.messages), "--client-id", client_id]
    if kind == "mosquitto_sub":
        command = [
            args.mosquitto_sub,
            *("-h", "127.0.0.1", "-p", str(broker_port), "-t", TOPIC_FILTER),
            *("-C", str(args.messages), "-i", client_id, "-q", "0"),
        ]
        subscriber = subprocess.Popen(command, stdout=subprocess.DEVNULL, text=True)
    else:
        role = "naive" if kind == "aiomqtt naive" else "estatehub"
        extra = ["--profile"] if args.profile and role == "estatehub" else []
        subscriber = subprocess.Popen(
            [*me, "--role", role, *common, *extra], stdout=subprocess.PIPE, text=True
        )
    publisher = subprocess.Popen(
        [*me, "--role", "publish", *common, "--devices", str(args.devices)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_subscribe(broker_log, client_id, timeout=30)
        assert publisher.stdout is not None and publisher.stdin is not None
        if publisher.stdout.readline().strip() != "READY":
            raise SystemExit("publisher did not get ready")
        started = time.monotonic()
        publisher.stdin.write("GO\n")
        publisher.stdin.flush()
        if kind == "mosquitto_sub":
            finished, cpu = _wait4(subscriber, args.timeout)
        else:
            assert subscriber.stdout is not None
            line = subscriber.stdout.readline().split()  # blocks until DONE (or exit)
            finished = float(line[1]) if len(line) == 2 and line[0] == "DONE" else None
            _, cpu = _wait4(subscriber, args.timeout)
        publisher.wait(args.timeout)
    finally:
        for process in (subscriber, publisher):
            if process.poll() is None:
                process.kill()
                process.wait()
    if finished is None:
        return Trial(kind, None, cpu, error=f"exit code {subscriber.returncode}")
    return Trial(kind, finished - started, cpu)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark, or one of its child roles."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=200_000)
    parser.add_argument("-r", "--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=600, help="distinct device topics")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per trial")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset")
    parser.add_argument("--profile", action="store_true", help="cProfile the estatehub run")
    parser.add_argument("--mosquitto-sub", default=shutil.which("mosquitto_sub") or "mosquitto_sub")
    parser.add_argument("--role", choices=("publish", "naive", "estatehub"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-id", default="bench-sub", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role == "publish":
        run_publisher(args.port, args.messages, args.devices)
        return 0
    if args.role == "naive":
        asyncio.run(_naive_subscriber(args.port, args.messages, args.client_id))
        return 0
    if args.role == "estatehub":
        asyncio.run(_estatehub_subscriber(args.port, args.messages, args.client_id, args.profile))
        return 0

    sys.path.insert(0, str(ROOT / "core"))
    from estatehub.testing.mosquitto import DEFAULT_LOG_TYPES, Mosquitto

    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {list(KINDS)}")
    results: dict[str, list[Trial]] = {kind: [] for kind in kinds}
    print(
        f"{args.messages} QoS 0 messages over {args.devices} topics, {args.runs} run(s), "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        flush=True,
    )
    with Mosquitto(log_types=(*DEFAULT_LOG_TYPES, "subscribe")) as broker:
        for run in range(1, args.runs + 1):
            for kind in kinds:
                result = run_trial(kind, broker.port, broker.log_path, args, run)
                results[kind].append(result)
                rate = result.rate(args.messages)
                shown = f"{rate:>10,.0f} msg/s" if rate else f"FAILED ({result.error})"
                print(f"  run {run} {kind:<14} {shown}", flush=True)

    baseline = _median_rate(results.get("mosquitto_sub", []), args.messages)
    print()
    print(f"{'subscriber':<16}{'median msg/s':>14}{'vs mosquitto_sub':>18}{'CPU µs/msg':>12}")
    for kind in kinds:
        rate = _median_rate(results[kind], args.messages)
        cpu = statistics.median(t.cpu_seconds for t in results[kind]) / args.messages * 1e6
        ratio = f"{rate / baseline:.2f}x" if rate and baseline else "-"
        shown = f"{rate:,.0f}" if rate else "failed"
        print(f"{kind:<16}{shown:>14}{ratio:>18}{cpu:>12.1f}")
    return 0


def _median_rate(trials: list[Trial], messages: int) -> float | None:
    rates = [rate for rate in (t.rate(messages) for t in trials) if rate]
    return statistics.median(rates) if len(rates) == len(trials) and rates else None


if __name__ == "__main__":
    raise SystemExit(main())
