"""Gate latency benchmark: plate read → barrier command, on loopback, through a real hub.

Run from the repository root::

    .venv/bin/python bench/gate_latency.py                  # 2000 vehicles per path
    .venv/bin/python bench/gate_latency.py --n 500 --paths mqtt
    .venv/bin/python bench/gate_latency.py --auth none      # camera without digest auth
    .venv/bin/python bench/gate_latency.py --profile always # py-spy the hub (if installed)

The hub under test is a real ``estatehub run`` process with its own temporary config,
SQLite store and API port. The load generator and the measuring endpoints live in this
process; every interval is read off ``time.perf_counter_ns`` in this process.

Phases, each on a fresh hub process so that one phase's plates never weigh on the next:

* **hikvision**: a real-format multipart ANPR push (``estatehub_hikvision.samples``, its own
  plate and UUID per vehicle) is POSTed to ``/api/webhook/hikvision/north`` over a kept-alive
  connection; the hub opens the barrier with ``PUT /ISAPI/Parking/channels/1/barrierGate``
  to a stand-in camera, an aiohttp server in this process on 127.0.0.1. Latency = the moment
  the camera's handler receives the *accepted* PUT − the moment just before the POST was
  sent. The camera does HTTP digest auth like an ISAPI device (``--auth digest``, the
  default: 401 with a ``WWW-Authenticate: Digest qop="auth"`` challenge, every
  ``Authorization`` checked with MD5, one nonce for the camera's lifetime) or none at all
  (``--auth none``: no credentials in the gate's options and no challenge), the same for
  hub and baseline. The ``401s`` column counts the challenges during the measured run; the
  JSON also has the warm-up's (the first command of a hub) and that first vehicle's
  latency. Runs with resident plates, with unknown visitors (admitted), and with resident
  plates after the hub has already seen ``--history`` other plates.
* **mqtt**: a plate message on ``estatehub/gate/north/plate`` (QoS 1) through a private
  Mosquitto (:class:`estatehub.testing.mosquitto.Mosquitto`); latency = when the command
  on ``estatehub/gate/north/command`` reaches this process's subscriber − just before the
  publish. The subscriber reads through aiomqtt's message queue, so the figure includes
  one loop iteration of this process. This process's MQTT socket has TCP_NODELAY set (a
  controller that PUBACKs a command and then publishes the next plate would otherwise add
  its own ~40 ms Nagle stall per vehicle). Each chain stall is then shown by its own row:
  Mosquitto as configured by default (``set_tcp_nodelay false``), Mosquitto with
  ``set_tcp_nodelay true``, and that broker plus a hub whose MQTT socket has TCP_NODELAY
  (a what-if: the hub is started with a ``sitecustomize`` that sets it in
  ``socket.create_connection``, which only paho uses; the shipped hub does not set it).

Closed loop (one vehicle at a time, the next only after the command for the last one
arrived) gives the latency percentiles; open loop (``--concurrency`` requests in flight,
never waiting for commands) gives the sustained throughput: vehicles whose command
arrived / (last command − first send). Every plate is a distinct GA 36 ordinary plate
(沪A + 5 digits for residents, 沪B visitors, 沪D history), so the hub's dedupe window never
drops a read. Percentiles are nearest-rank.

Baselines: the same round trips through an echo process with no hub logic (an aiohttp
server that answers the POST and PUTs to the camera with the hub's client settings, and
an aiomqtt client that answers each plate with a command). ``cpu/veh`` is the CPU time
(utime + stime from /proc, sys in brackets) of the hub (of the echo on baseline rows) over
the measured run divided by its vehicles; it rises when vehicles are far apart (every
vehicle then wakes an idle process), so compare it with the open-loop figure too.

If the resident run of a path misses the p99 target (or with ``--profile always``) and
py-spy is found (``--py-spy``, ``$PY_SPY`` or PATH), one more closed-loop pass runs on a
fresh hub with ``py-spy record --nonblocking --function`` attached, and the samples are
summarised by package and by function. The profiled pass is not part of the latency
figures (py-spy takes CPU on the same two cores). Samples inside a socket send include
the kernel's loopback delivery to the peer, which the process's CPU time does not count.

Output: a table on stdout, then one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
TARGET_P99_MS = 5.0
GATE = "north"
CAMERA_USER = "admin"
CAMERA_PASSWORD = "bench-gate-password"
CAMERA_REALM = "IP Camera(E12345678)"
PLATE_TOPIC = f"estatehub/gate/{GATE}/plate"
COMMAND_TOPIC = f"estatehub/gate/{GATE}/command"
WEBHOOK_PATH = f"/api/webhook/hikvision/{GATE}"
BARRIER_PATH = "/ISAPI/Parking/channels/{channel}/barrierGate"
RESIDENT_PREFIX, VISITOR_PREFIX, HISTORY_PREFIX = "沪A", "沪B", "沪D"
COMMAND_TIMEOUT = 5.0
BROKER_NODELAY = "mqtt resident, broker set_tcp_nodelay"
BOTH_NODELAY = "mqtt resident, broker+hub NODELAY (what-if)"
NO_AUTH = " (no auth)"

ISAPI_OK = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    '<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\r\n'
    "<requestURL>/ISAPI/Parking/channels/1/barrierGate</requestURL>\r\n"
    "<statusCode>1</statusCode>\r\n<statusString>OK</statusString>\r\n"
    "<subStatusCode>ok</subStatusCode>\r\n</ResponseStatus>\r\n"
)
ISAPI_UNAUTHORISED = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    "<userCheck>\r\n<statusValue>401</statusValue>\r\n"
    "<statusString>Unauthorized</statusString>\r\n</userCheck>\r\n"
)
_AUTH_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


class BenchError(Exception):
    """The benchmark could not run as designed; the message says what went wrong."""


def log(message: str) -> None:
    """Progress on stderr, so stdout stays table + JSON."""
    print(message, file=sys.stderr, flush=True)


def now_ns() -> int:
    """The one clock every interval in this benchmark is read from."""
    return time.perf_counter_ns()


# -- plates ----------------------------------------------------------------------------


def plates(prefix: str, start: int, count: int) -> list[str]:
    """``count`` distinct GA 36 ordinary plates: province + letter + 5 digits."""
    if start + count > 100_000:
        raise BenchError(f"{prefix}: only 100000 five-digit serials, asked for {start + count}")
    return [f"{prefix}{index:05d}" for index in range(start, start + count)]


def check_plates(all_plates: Iterable[str]) -> None:
    """Fail early unless every plate is what the hub will call a valid ordinary plate."""
    from estatehub.hookspecs.parking import PlateKind
    from estatehub_parking.plates import normalise_plate

    for raw in all_plates:
        plate = normalise_plate(raw)
        if not plate.valid or plate.kind is not PlateKind.ORDINARY or plate.plate != raw:
            raise BenchError(f"generated plate {raw!r} is not a valid ordinary plate: {plate}")


# -- the stand-in camera ---------------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class StandInCamera:
    """An ISAPI barrier endpoint on 127.0.0.1 that timestamps every accepted command.

    With ``digest`` it answers a request without valid credentials with 401 and a
    ``Digest`` challenge (qop ``auth``, one nonce for its lifetime) and checks the MD5
    response of every ``Authorization`` header, as a Hikvision device does.
    """

    def __init__(self, *, digest: bool) -> None:
        self.digest = digest
        self.nonce = secrets.token_hex(16)
        self._ha1 = _md5(f"{CAMERA_USER}:{CAMERA_REALM}:{CAMERA_PASSWORD}")
        self.port = 0
        self.challenges = 0
        self.bad_credentials = 0
        self.bad_bodies = 0
        self.accepted = 0
        self.last_arrival = 0
        self._waiter: asyncio.Future[int] | None = None
        self._target: tuple[int, asyncio.Future[None]] | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("PUT", BARRIER_PATH, self._barrier)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner is not None:
            await self._runner.cleanup()

    def expect(self) -> asyncio.Future[int]:
        """A future for the arrival time (ns) of the next accepted command."""
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def until(self, accepted: int) -> asyncio.Future[None]:
        """A future done once ``accepted`` commands in total have been accepted."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._target = (accepted, done)
        if self.accepted >= accepted:
            done.set_result(None)
        return done

    def _challenge(self, stale: bool) -> web.Response:
        self.challenges += 1
        header = (
            f'Digest qop="auth", realm="{CAMERA_REALM}", nonce="{self.nonce}", '
            f'stale="{"TRUE" if stale else "FALSE"}"'
        )
        return web.Response(
            status=401,
            text=ISAPI_UNAUTHORISED,
            content_type="application/xml",
            headers={"WWW-Authenticate": header},
        )

    def _check_credentials(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return self._challenge(stale=False)
        params = {
            m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _AUTH_PARAM.finditer(rest)
        }
        if params.get("nonce") != self.nonce:
            return self._challenge(stale=True)
        ha2 = _md5(f"{request.method}:{params.get('uri', '')}")
        expected = _md5(
            f"{self._ha1}:{self.nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
            f"{params.get('qop', '')}:{ha2}"
        )
        if (
            params.get("username") != CAMERA_USER
            or params.get("uri") != request.raw_path
            or params.get("qop") != "auth"
            or params.get("response") != expected
        ):
            self.bad_credentials += 1
            return self._challenge(stale=False)
        return None

    async def _barrier(self, request: web.Request) -> web.Response:
        arrived = now_ns()
        body = await request.read()
        if self.digest:
            refusal = self._check_credentials(request)
            if refusal is not None:
                return refusal
        if b"<ctrlMode>open</ctrlMode>" not in body:
            self.bad_bodies += 1
            return web.Response(status=400, text="expected ctrlMode open")
        self.accepted += 1
        self.last_arrival = arrived
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(arrived)
        if self._target is not None and self.accepted >= self._target[0]:
            if not self._target[1].done():
                self._target[1].set_result(None)
            self._target = None
        return web.Response(text=ISAPI_OK, content_type="application/xml")


# -- the bench's MQTT gate controller --------------------------------------------------


class GateController:
    """Plays the gate controller on MQTT: publishes plates, timestamps barrier commands."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.received = 0
        self.last_arrival = 0
        self.waiters: dict[str, asyncio.Future[int]] = {}
        self._target: tuple[int, asyncio.Future[None]] | None = None

    async def read_commands(self) -> None:
        """Timestamp every command as it comes off aiomqtt's queue."""
        async for message in self.client.messages:
            arrived = now_ns()
            if message.retain:
                continue
            command = json.loads(message.payload)
            if command.get("action") != "open":
                raise BenchError(f"unexpected barrier command {command}")
            self.received += 1
            self.last_arrival = arrived
            waiter = self.waiters.pop(command.get("plate", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(arrived)
            if self._target is not None and self.received >= self._target[0]:
                if not self._target[1].done():
                    self._target[1].set_result(None)
                self._target = None

    def expect(self, plate: str) -> asyncio.Future[int]:
        """A future for the arrival time (ns) of the command for ``plate``."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[plate] = waiter
        return waiter

    def until(self, received: int) -> asyncio.Future[None]:
        """A future done once ``received`` commands in total have arrived."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._target = (received, done)
        if self.received >= received:
            done.set_result(None)
        return done


def plate_message(plate: str, event_id: str) -> bytes:
    """A plate read in the MQTT JSON gate protocol (docs/adapters/mqtt-json-gate.md)."""
    document = {
        "plate": plate,
        "time": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "direction": "in",
        "confidence": 93,
        "colour": "blue",
        "event_id": event_id,
    }
    return json.dumps(document, ensure_ascii=False).encode()


# -- processes -------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    from estatehub.testing.mosquitto import free_port as pick

    return pick()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


class CpuMeter:
    """CPU a process spends between construction and :meth:`stop`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = cpu_seconds(pid)
        self.user = self.system = 0.0

    def stop(self) -> CpuMeter:
        """Take the second reading."""
        after = cpu_seconds(self.pid)
        self.user, self.system = after[0] - self.before[0], after[1] - self.before[1]
        return self

    def per_vehicle(self, vehicles: int) -> dict[str, float]:
        """Milliseconds of CPU per vehicle, total and in the kernel."""
        return {
            "hub_cpu_ms_per_vehicle": round(1000 * (self.user + self.system) / vehicles, 3),
            "hub_sys_ms_per_vehicle": round(1000 * self.system / vehicles, 3),
        }


def set_nodelay(sock: Any) -> None:
    """Turn Nagle's algorithm off on a TCP socket (paho leaves it on)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# Written beside the what-if hub's config and put on its PYTHONPATH: paho opens its socket
# with socket.create_connection, so this turns Nagle off on the hub's MQTT connection and
# on nothing else (aiohttp sets TCP_NODELAY on its own sockets already).
NODELAY_SITECUSTOMIZE = """\
import socket

_create_connection = socket.create_connection


def create_connection(*args, **kwargs):
    sock = _create_connection(*args, **kwargs)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


socket.create_connection = create_connection
"""


def estate_config(
    *, api_port: int, gate: dict[str, Any], residents: Sequence[str], mqtt_port: int | None
) -> dict[str, Any]:
    """The hub's estate.yaml: one entry gate, two resident plates per household."""
    households: dict[str, list[str]] = {}
    for index, plate in enumerate(residents):
        households.setdefault(f"h-{index // 2:05d}", []).append(plate)
    config: dict[str, Any] = {
        "estate": {"name": "gate latency bench", "timezone": "Asia/Shanghai"},
        "store": {"path": "hub.db"},
        # No mDNS announcements: they are not part of the gate path, and they are traffic.
        "api": {"host": "127.0.0.1", "port": api_port, "advertise": False},
        "plugins": {"allow": ["parking", "hikvision"]},
        "modules": {
            "parking": {
                "gates": {GATE: gate},
                "residents": households,
                "unknown_vehicles": "admit",
                "dedupe_window": "10s",
            }
        },
    }
    if mqtt_port is not None:
        config["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port}
    return config


class HubProcess:
    """One ``estatehub run`` process with its own directory, config, store and port."""

    def __init__(
        self, workdir: Path, name: str, config: dict[str, Any], *, nodelay_what_if: bool = False
    ) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.config_path = self.dir / "estate.yaml"
        self.config_path.write_text(
            yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        self.log_path = self.dir / "hub.log"
        self.api = f"http://127.0.0.1:{config['api']['port']}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if nodelay_what_if:
            site = self.dir / "what-if"
            site.mkdir()
            (site / "sitecustomize.py").write_text(NODELAY_SITECUSTOMIZE, encoding="utf-8")
            self.env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(site), os.environ.get("PYTHONPATH")])
            )

    @property
    def pid(self) -> int:
        """The hub's process id."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start ``python -m estatehub run -c estate.yaml``, output to hub.log."""
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "estatehub", "run", "-c", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.dir,
            )

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Wait until /api/health says the parking module runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(f"the hub exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{self.api}/api/health") as response:
                    if response.status == 200:
                        modules = (await response.json())["modules"]
                        if modules.get("parking") == "running":
                            return
                        if modules.get("parking") == "failed":
                            raise BenchError(f"the parking module failed:\n{self.tail()}")
            await asyncio.sleep(0.05)
        raise BenchError(f"the hub did not get ready within {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; a non-zero exit is reported, not raised."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code != 0:
            log(f"warning: hub {self.dir.name} exited with {code}:\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        """The end of the hub's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# -- measuring -------------------------------------------------------------------------


def percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p95/p99/max/mean/min in milliseconds."""
    ordered = sorted(samples_ns)
    result = {f"p{round(q * 100)}_ms": percentile(ordered, q) / 1e6 for q in (0.5, 0.95, 0.99)}
    result["max_ms"] = ordered[-1] / 1e6
    result["mean_ms"] = statistics.fmean(ordered) / 1e6
    result["min_ms"] = ordered[0] / 1e6
    return {key: round(value, 3) for key, value in result.items()}


@dataclass(slots=True)
class ClosedLoop:
    """Per-vehicle samples of one closed-loop run."""

    latency_ns: list[int] = field(default_factory=list)
    request_ns: list[int] = field(default_factory=list)  # POST answered / PUBACK received
    command_first: int = 0  # commands that arrived before the request was answered
    cpu: CpuMeter | None = None

    def report(self, request_name: str) -> dict[str, Any]:
        """The JSON figures of this run."""
        n = len(self.latency_ns)
        return {
            "n": n,
            **summary_ms(self.latency_ns),
            request_name: summary_ms(self.request_ns),
            "command_before_answer_pct": round(100 * self.command_first / n, 1),
            **(self.cpu.per_vehicle(n) if self.cpu is not None else {}),
        }


Sender = Callable[[int], Awaitable[tuple[int, int, asyncio.Future[int]]]]


async def closed_loop(count: int, send: Sender, what: str) -> ClosedLoop:
    """Send vehicles one at a time; ``send(i)`` returns (sent, answered, command future)."""
    run = ClosedLoop()
    for index in range(count):
        sent, answered, command = await send(index)
        try:
            arrived = await asyncio.wait_for(command, COMMAND_TIMEOUT)
        except TimeoutError:
            raise BenchError(
                f"{what}: no barrier command within {COMMAND_TIMEOUT} s for vehicle {index}"
            ) from None
        run.latency_ns.append(arrived - sent)
        run.request_ns.append(answered - sent)
        run.command_first += arrived < answered
    return run


async def open_loop(
    count: int,
    concurrency: int,
    send: Callable[[int], Awaitable[None]],
    arrivals: Callable[[], asyncio.Future[None]],
    last_arrival: Callable[[], int],
    hub_pid: int,
    what: str,
) -> dict[str, Any]:
    """``concurrency`` senders push ``count`` vehicles without waiting for commands."""
    done = arrivals()
    cursor = iter(range(count))

    async def sender() -> None:
        for index in cursor:  # one shared iterator: each vehicle is sent exactly once
            await send(index)

    cpu, own = CpuMeter(hub_pid), CpuMeter(os.getpid())
    started = now_ns()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    all_sent = now_ns()
    try:
        await asyncio.wait_for(done, 30.0)
    except TimeoutError:
        raise BenchError(f"{what}: not every barrier command arrived within 30 s") from None
    cpu.stop()
    own.stop()
    elapsed = (last_arrival() - started) / 1e9
    return {
        "vehicles": count,
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 3),
        "vehicles_per_s": round(count / elapsed, 1),
        "sent_per_s": round(count / ((all_sent - started) / 1e9), 1),
        **cpu.per_vehicle(count),
        "hub_cpu_share": round((cpu.user + cpu.system) / elapsed, 2),
        # If this is near 1, the load generator, not the hub, set the pace.
        "bench_cpu_share": round((own.user + own.system) / elapsed, 2),
    }


# -- the Hikvision path ----------------------------------------------------------------


def anpr_pushes(plate_list: Sequence[str], tag: str) -> list[tuple[str, bytes]]:
    """One real-format push per plate, each with its own UUID (built before timing)."""
    from estatehub_hikvision import samples

    when = datetime.now(SHANGHAI)
    return [
        samples.anpr_push(plate, when=when, uuid=f"{tag}-{index:06d}-{secrets.token_hex(4)}")
        for index, plate in enumerate(plate_list)
    ]


def hikvision_gate(camera: StandInCamera) -> dict[str, Any]:
    """The gate's config: entry gate on the stand-in camera, credentials if it wants them."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": camera.port}
    if camera.digest:
        options |= {"username": CAMERA_USER, "password": CAMERA_PASSWORD}
    return {"adapter": "hikvision", "direction": "in", "options": options}


def http_sender(
    http: aiohttp.ClientSession,
    url: str,
    camera: StandInCamera,
    pushes: Sequence[tuple[str, bytes]],
) -> Sender:
    """Closed-loop step: POST push ``i``, return (sent, answered, command future)."""

    async def send(index: int) -> tuple[int, int, asyncio.Future[int]]:
        content_type, body = pushes[index]
        command = camera.expect()
        sent = now_ns()
        async with http.post(url, data=body, headers={"Content-Type": content_type}) as reply:
            await reply.read()
            answered = now_ns()
            if reply.status != 200:
                raise BenchError(f"POST {url} answered {reply.status}: {await reply.text()}")
        return sent, answered, command

    return send


def http_pusher(
    http: aiohttp.ClientSession, url: str, pushes: Sequence[tuple[str, bytes]]
) -> Callable[[int], Awaitable[None]]:
    """Open-loop step: POST push ``i`` and wait only for the HTTP answer."""

    async def push(index: int) -> None:
        content_type, body = pushes[index]
        async with http.post(url, data=body, headers={"Content-Type": content_type}) as reply:
            await reply.read()
            if reply.status != 200:
                raise BenchError(f"POST {url} answered {reply.status}: {await reply.text()}")

    return push


@dataclass(slots=True)
class Settings:
    """What the command line asked for."""

    n: int
    warmup: int
    history: int
    concurrency: int
    auth: str
    paths: tuple[str, ...]
    profile: str
    py_spy: str | None
    workdir: Path


async def hikvision_phase(
    settings: Settings,
    http: aiohttp.ClientSession,
    camera: StandInCamera,
    name: str,
    *,
    measured: Sequence[str],
    history: Sequence[str] = (),
    open_loop_run: bool = False,
    profile: bool = False,
) -> dict[str, Any]:
    """One fresh hub: warm-up, optional history, then closed (or open) loop on ``measured``.

    With ``profile`` the closed loop runs under py-spy and its summary is in ``"profile"``.
    """
    warm = plates(RESIDENT_PREFIX, 90_000, settings.warmup)
    residents = warm + [p for p in measured if p.startswith(RESIDENT_PREFIX)]
    hub = HubProcess(
        settings.workdir,
        name,
        estate_config(
            api_port=free_port(), gate=hikvision_gate(camera), residents=residents, mqtt_port=None
        ),
    )
    url = f"{hub.api}{WEBHOOK_PATH}"
    warm_pushes = anpr_pushes(warm, f"{name}-warm")
    history_pushes = anpr_pushes(history, f"{name}-history")
    pushes = anpr_pushes(measured, name)
    log(f"{name}: starting hub")
    hub.start()
    try:
        await hub.wait_ready(http)
        challenges_before = camera.challenges
        warm_run = await closed_loop(len(warm), http_sender(http, url, camera, warm_pushes), name)
        result: dict[str, Any] = {
            "cold_first_vehicle_ms": round(warm_run.latency_ns[0] / 1e6, 3) if warm else None,
            "warmup_auth_challenges": camera.challenges - challenges_before,
        }
        if history:
            log(f"{name}: feeding {len(history)} history plates")
            accepted = camera.accepted
            await open_loop(
                len(history),
                settings.concurrency,
                http_pusher(http, url, history_pushes),
                lambda: camera.until(accepted + len(history)),
                lambda: camera.last_arrival,
                hub.pid,
                name,
            )
        challenges_before = camera.challenges
        log(f"{name}: {len(measured)} vehicles, {'open' if open_loop_run else 'closed'} loop")
        if open_loop_run:
            accepted = camera.accepted
            result |= await open_loop(
                len(measured),
                settings.concurrency,
                http_pusher(http, url, pushes),
                lambda: camera.until(accepted + len(measured)),
                lambda: camera.last_arrival,
                hub.pid,
                name,
            )
        else:
            async with py_spy_attached(settings, hub, profile) as spied:
                cpu = CpuMeter(hub.pid)
                run = await closed_loop(len(pushes), http_sender(http, url, camera, pushes), name)
                run.cpu = cpu.stop()
            result |= run.report("post_answered") | spied
        result["auth_challenges"] = camera.challenges - challenges_before
        result["distinct_plates_seen_by_hub"] = len(warm) + len(history) + len(measured)
        return result
    finally:
        hub.stop()


# -- the MQTT path ---------------------------------------------------------------------


def mqtt_sender(controller: GateController, messages: Sequence[tuple[str, bytes]]) -> Sender:
    """Closed-loop step: publish plate ``i`` (QoS 1), return (sent, PUBACK, command future)."""

    async def send(index: int) -> tuple[int, int, asyncio.Future[int]]:
        plate, payload = messages[index]
        command = controller.expect(plate)
        sent = now_ns()
        await controller.client.publish(PLATE_TOPIC, payload, qos=1)
        return sent, now_ns(), command

    return send


def mqtt_publisher(
    controller: GateController, messages: Sequence[tuple[str, bytes]]
) -> Callable[[int], Awaitable[None]]:
    """Open-loop step: publish plate ``i`` and wait only for its PUBACK."""

    async def publish(index: int) -> None:
        await controller.client.publish(PLATE_TOPIC, messages[index][1], qos=1)

    return publish


def plate_messages(plate_list: Sequence[str], tag: str) -> list[tuple[str, bytes]]:
    """(plate, payload) per plate, each with its own event id."""
    return [(p, plate_message(p, f"{tag}-{i:06d}")) for i, p in enumerate(plate_list)]


@contextlib.asynccontextmanager
async def gate_controller(port: int) -> Any:
    """An aiomqtt client subscribed to the command topic, with its reader running."""
    import aiomqtt

    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=f"bench-{secrets.token_hex(4)}"
    ) as client:
        # A controller that answers a command with PUBACK and then publishes the next plate
        # would otherwise wait ~40 ms per vehicle for the broker's delayed ACK (Nagle).
        # paho's socket is only reachable through aiomqtt's private _client.
        set_nodelay(client._client.socket())
        controller = GateController(client)
        await client.subscribe(COMMAND_TOPIC, qos=1)
        reader = asyncio.create_task(controller.read_commands(), name="bench command reader")
        try:
            yield controller
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def wait_for_subscriber(
    controller: GateController, probes: Sequence[tuple[str, bytes]], what: str
) -> int:
    """Publish probe plates until one is answered: the far end has subscribed. Returns probes used."""
    for used, (plate, payload) in enumerate(probes, start=1):
        command = controller.expect(plate)
        await controller.client.publish(PLATE_TOPIC, payload, qos=1)
        try:
            await asyncio.wait_for(command, 0.5)
            return used
        except TimeoutError:
            controller.waiters.pop(plate, None)
    raise BenchError(f"{what}: no command for any of {len(probes)} probe plates")


async def mqtt_phase(
    settings: Settings,
    http: aiohttp.ClientSession,
    broker_port: int,
    name: str,
    *,
    measured: Sequence[str],
    open_loop_run: bool = False,
    profile: bool = False,
    nodelay_what_if: bool = False,
) -> dict[str, Any]:
    """One fresh hub on the private broker: warm-up, then closed (or open) loop.

    ``nodelay_what_if`` starts the hub with TCP_NODELAY on its MQTT socket (see
    :data:`NODELAY_SITECUSTOMIZE`): what the figures would be if the transport set it.
    """
    warm = plates(RESIDENT_PREFIX, 90_000, max(settings.warmup, 40))
    gate = {"adapter": "mqtt_json", "direction": "in"}
    config = estate_config(
        api_port=free_port(), gate=gate, residents=[*warm, *measured], mqtt_port=broker_port
    )
    config["plugins"]["allow"] = ["parking"]
    hub = HubProcess(settings.workdir, name, config, nodelay_what_if=nodelay_what_if)
    warm_messages = plate_messages(warm, f"{name}-warm")
    messages = plate_messages(measured, name)
    log(f"{name}: starting hub")
    hub.start()
    try:
        async with gate_controller(broker_port) as controller:
            await hub.wait_ready(http)
            probes = await wait_for_subscriber(controller, warm_messages[:30], name)
            await closed_loop(
                len(warm) - probes, mqtt_sender(controller, warm_messages[probes:]), name
            )
            result: dict[str, Any] = {}
            log(f"{name}: {len(measured)} vehicles, {'open' if open_loop_run else 'closed'} loop")
            if open_loop_run:
                received = controller.received
                result |= await open_loop(
                    len(measured),
                    settings.concurrency,
                    mqtt_publisher(controller, messages),
                    lambda: controller.until(received + len(measured)),
                    lambda: controller.last_arrival,
                    hub.pid,
                    name,
                )
            else:
                async with py_spy_attached(settings, hub, profile) as spied:
                    cpu = CpuMeter(hub.pid)
                    run = await closed_loop(len(messages), mqtt_sender(controller, messages), name)
                    run.cpu = cpu.stop()
                result |= run.report("puback") | spied
            result["distinct_plates_seen_by_hub"] = len(warm) + len(measured)
            return result
    finally:
        hub.stop()


# -- baselines: the same round trips with no hub logic ----------------------------------


async def serve_http_echo(port: int, camera_port: int, digest: bool) -> None:
    """Answer each push with 200 and PUT to the camera in a background task, as the hub does."""
    from aiohttp import DigestAuthMiddleware

    middlewares = (DigestAuthMiddleware(CAMERA_USER, CAMERA_PASSWORD),) if digest else ()
    client = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=2.0), middlewares=middlewares
    )
    barrier_url = f"http://127.0.0.1:{camera_port}{BARRIER_PATH.format(channel=1)}"
    body = b'<?xml version="1.0" encoding="UTF-8"?><BarrierGate><ctrlMode>open</ctrlMode></BarrierGate>'
    tasks: set[asyncio.Task[None]] = set()

    async def barrier() -> None:
        async with client.put(
            barrier_url, data=body, headers={"Content-Type": "application/xml; charset=UTF-8"}
        ) as response:
            await response.read()

    async def webhook(request: web.Request) -> web.Response:
        await request.content.read(8 * 1024 * 1024 + 1)
        task = asyncio.get_running_loop().create_task(barrier())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.Response(status=200, text="", content_type="text/plain")

    app = web.Application(client_max_size=9 * 1024 * 1024)
    app.router.add_route("*", "/api/webhook/{tail:.+}", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def serve_mqtt_echo(port: int, nodelay: bool) -> None:
    """Answer each plate message with an open command carrying its plate (QoS 1)."""
    import aiomqtt

    tasks: set[asyncio.Task[None]] = set()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-echo") as client:
        if nodelay:
            set_nodelay(client._client.socket())
        await client.subscribe(PLATE_TOPIC, qos=1)
        print("ready", flush=True)
        async for message in client.messages:
            plate = json.loads(message.payload)["plate"]
            payload = json.dumps({"action": "open", "plate": plate}, ensure_ascii=False)
            task = asyncio.get_running_loop().create_task(
                client.publish(COMMAND_TOPIC, payload.encode(), qos=1)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)


@contextlib.asynccontextmanager
async def echo_process(*args: str) -> Any:
    """This script in ``--echo`` mode as a child process, until it says ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        if line.strip() != b"ready":
            raise BenchError(f"echo process {args} did not start (said {line!r})")
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def http_baseline(
    settings: Settings, http: aiohttp.ClientSession, camera: StandInCamera
) -> dict[str, Any]:
    """POST → echo process → PUT to the camera, closed loop."""
    port = free_port()
    args = ["--echo", "http", "--echo-port", str(port), "--camera-port", str(camera.port)]
    args += ["--auth", "digest" if camera.digest else "none"]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    count = settings.warmup + settings.n
    pushes = anpr_pushes(plates(RESIDENT_PREFIX, 0, count), "echo")
    log("baseline http echo")
    async with echo_process(*args) as process:
        send = http_sender(http, url, camera, pushes)
        await closed_loop(settings.warmup, send, "http echo")
        challenges = camera.challenges
        cpu = CpuMeter(process.pid)

        async def measured(index: int) -> tuple[int, int, asyncio.Future[int]]:
            return await send(settings.warmup + index)

        run = await closed_loop(settings.n, measured, "http echo")
        run.cpu = cpu.stop()
        return run.report("post_answered") | {"auth_challenges": camera.challenges - challenges}


async def mqtt_baseline(settings: Settings, broker_port: int, nodelay: bool) -> dict[str, Any]:
    """Plate → echo client → command, through the same broker, closed loop."""
    count = 30 + settings.warmup + settings.n
    messages = plate_messages(plates(RESIDENT_PREFIX, 0, count), "echo")
    log(f"baseline mqtt echo ({'TCP_NODELAY' if nodelay else 'paho defaults'})")
    args = ["--echo", "mqtt", "--mqtt-port", str(broker_port)] + (["--echo-nodelay"] * nodelay)
    async with (
        gate_controller(broker_port) as controller,
        echo_process(*args) as process,
    ):
        probes = await wait_for_subscriber(controller, messages[:30], "mqtt echo")
        rest = messages[probes:]
        await closed_loop(settings.warmup, mqtt_sender(controller, rest), "mqtt echo")
        rest = rest[settings.warmup :]
        cpu = CpuMeter(process.pid)
        run = await closed_loop(settings.n, mqtt_sender(controller, rest), "mqtt echo")
        run.cpu = cpu.stop()
        return run.report("puback")


# -- profiling with py-spy -------------------------------------------------------------


def find_py_spy(explicit: str | None) -> str | None:
    """py-spy from --py-spy, $PY_SPY or PATH."""
    for candidate in (explicit, os.environ.get("PY_SPY"), shutil.which("py-spy")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def package_of(frame: str) -> str:
    """Which package a py-spy frame ``func (path:line)`` belongs to, for the summary."""
    match = re.search(r"\((.*):\d+\)$", frame)
    path = match.group(1) if match else frame
    for marker, name in (
        ("estatehub_hikvision", "estatehub_hikvision"),
        ("estatehub_parking", "estatehub_parking"),
        ("estatehub/store", "estatehub.store (sqlite)"),
        ("estatehub/console", "estatehub.console (LiveLog)"),
        ("estatehub/", "estatehub core"),
        ("rich/", "rich"),
        ("aiohttp/", "aiohttp"),
        ("multidict", "multidict/yarl"),
        ("yarl/", "multidict/yarl"),
        ("aiomqtt/", "aiomqtt"),
        ("paho/", "paho"),
        ("pluggy/", "pluggy"),
        ("voluptuous", "voluptuous"),
        ("defusedxml", "xml"),
        ("xml/", "xml"),
        ("logging/", "logging"),
        ("asyncio/", "asyncio"),
        ("json/", "json"),
        ("sqlite3", "sqlite3"),
    ):
        if marker in path:
            return name
    return "other (stdlib, C, interpreter)"


def summarise_profile(raw: str) -> dict[str, Any]:
    """Self samples by package and by function, inclusive samples of chosen functions."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        by_package[package_of(leaf)] += count
        by_function[leaf] += count
        # By bare function name, once per stack (so a name is at most 100 %).
        for name in {frame.split(" (")[0] for frame in frames}:
            inclusive[name] += count
    if not total:
        return {"samples": 0}

    def share(counter: Counter[str], top: int) -> list[list[Any]]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(top)]

    wanted = (
        "on_plate_read",
        "_on_push",
        "parse_anpr_push",
        "normalise_plate",
        "send",
        "_deliver",
        "handle",
        "fire",
        "put",
        "next_sequence",
        "_dispatch",
        "_estatehub_read_burst",
        "_run_once",
        "select",
    )
    return {
        "samples": total,
        "self_by_package_pct": share(by_package, 20),
        "self_by_function_pct": share(by_function, 15),
        "inclusive_pct": {
            name: round(100 * inclusive[name] / total, 1) for name in wanted if inclusive[name]
        },
    }


@contextlib.asynccontextmanager
async def py_spy_attached(settings: Settings, hub: HubProcess, enabled: bool) -> Any:
    """Run the body with ``py-spy record --nonblocking`` on the hub; fills ``{"profile": …}``."""
    found: dict[str, Any] = {}
    if not enabled:
        yield found
        return
    assert settings.py_spy is not None
    out = hub.dir / "py-spy.txt"
    spy = await asyncio.create_subprocess_exec(
        settings.py_spy,
        "record",
        "--pid",
        str(hub.pid),
        "--rate",
        "1000",
        "--nonblocking",
        "--function",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(1.0)  # let it attach before the first vehicle
    try:
        yield found
    finally:
        spy.send_signal(signal.SIGINT)
        _, errors = await spy.communicate()
        if out.exists():
            found["profile"] = summarise_profile(out.read_text(encoding="utf-8", errors="replace"))
        else:
            found["profile"] = {"error": errors.decode(errors="replace")[-500:]}


# -- the whole run ---------------------------------------------------------------------


def python_calls_per_s() -> float:
    """Calibration, as in bench/bus_states.py: how fast this interpreter runs right now.

    The machine is shared and its speed moves by up to 2x between runs; this figure, taken
    before and after, says how fast it was while the benchmark ran.
    """

    def no_op(data: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for i in range(1_000_000):
        no_op({"plate": "沪A12345", "n": i})
    return round(1_000_000 / (time.perf_counter() - started))


def machine() -> dict[str, Any]:
    """Load, interpreter speed and versions, so the figures can be read in context."""
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return {
        "uptime": uptime.strip(),
        "python_calls_per_s": python_calls_per_s(),
        "loadavg": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }


async def hikvision_rows(
    settings: Settings, http: aiohttp.ClientSession, report: dict[str, Any], auth: str
) -> None:
    """Every Hikvision phase with one camera (``auth`` digest or none), into ``report``."""
    closed, opened, n = report["closed_loop"], report["open_loop"], settings.n
    suffix = "" if auth == "digest" else NO_AUTH
    residents = plates(RESIDENT_PREFIX, 0, n)
    camera = StandInCamera(digest=auth == "digest")
    await camera.start()
    try:
        closed["hikvision resident" + suffix] = await hikvision_phase(
            settings, http, camera, f"hik-resident-{auth}", measured=residents
        )
        closed["hikvision visitor" + suffix] = await hikvision_phase(
            settings, http, camera, f"hik-visitor-{auth}", measured=plates(VISITOR_PREFIX, 0, n)
        )
        if settings.history:
            closed[
                f"hikvision resident after {settings.history} plates" + suffix
            ] = await hikvision_phase(
                settings,
                http,
                camera,
                f"hik-history-{auth}",
                measured=residents,
                history=plates(HISTORY_PREFIX, 0, settings.history),
            )
        opened["hikvision resident" + suffix] = await hikvision_phase(
            settings, http, camera, f"hik-open-{auth}", measured=residents, open_loop_run=True
        )
        closed["baseline http echo" + suffix] = await http_baseline(settings, http, camera)
        missed = closed["hikvision resident" + suffix]["p99_ms"] > TARGET_P99_MS
        if settings.py_spy and (settings.profile == "always" or missed):
            report["profile"]["hikvision resident" + suffix] = await hikvision_phase(
                settings,
                http,
                camera,
                f"hik-profile-{auth}",
                measured=plates(RESIDENT_PREFIX, 50_000, min(n, 1000)),
                profile=True,
            )
    finally:
        await camera.stop()


async def run_all(settings: Settings) -> dict[str, Any]:
    """Every phase the settings ask for; returns the JSON report."""
    from estatehub.testing.mosquitto import Mosquitto

    n = settings.n
    check_plates(
        plates(RESIDENT_PREFIX, 0, n)
        + plates(VISITOR_PREFIX, 0, n)
        + plates(HISTORY_PREFIX, 0, settings.history)
        + plates(RESIDENT_PREFIX, 90_000, max(settings.warmup, 40))
    )
    report: dict[str, Any] = {
        "target_p99_ms": TARGET_P99_MS,
        "machine_before": machine(),
        "settings": {
            "n": n,
            "warmup": settings.warmup,
            "history": settings.history,
            "concurrency": settings.concurrency,
            "auth": settings.auth,
            "paths": list(settings.paths),
        },
        "closed_loop": {},
        "open_loop": {},
        "profile": {},
    }
    closed, opened = report["closed_loop"], report["open_loop"]
    residents = plates(RESIDENT_PREFIX, 0, n)
    connector = aiohttp.TCPConnector(limit=max(settings.concurrency, 1))
    async with aiohttp.ClientSession(connector=connector) as http:
        for auth in ("digest", "none") if settings.auth == "both" else (settings.auth,):
            if "hikvision" in settings.paths:
                await hikvision_rows(settings, http, report, auth)
        if "mqtt" in settings.paths:
            # Mosquitto's default (set_tcp_nodelay false, also what the test helper writes),
            # then a broker with Nagle off, so each TCP stall shows up as its own difference.
            with Mosquitto() as broker:
                closed["mqtt resident"] = await mqtt_phase(
                    settings, http, broker.port, "mqtt-resident", measured=residents
                )
                opened["mqtt resident"] = await mqtt_phase(
                    settings, http, broker.port, "mqtt-open", measured=residents, open_loop_run=True
                )
                closed["baseline mqtt echo, paho defaults"] = await mqtt_baseline(
                    settings, broker.port, nodelay=False
                )
            with Mosquitto(extra_config=["set_tcp_nodelay true"]) as broker:
                for what_if, name in ((False, BROKER_NODELAY), (True, BOTH_NODELAY)):
                    tag = "-nodelay" if what_if else "-broker-nodelay"
                    closed[name] = await mqtt_phase(
                        settings,
                        http,
                        broker.port,
                        f"mqtt-resident{tag}",
                        measured=residents,
                        nodelay_what_if=what_if,
                    )
                    opened[name] = await mqtt_phase(
                        settings,
                        http,
                        broker.port,
                        f"mqtt-open{tag}",
                        measured=residents,
                        open_loop_run=True,
                        nodelay_what_if=what_if,
                    )
                closed["baseline mqtt echo, TCP_NODELAY everywhere"] = await mqtt_baseline(
                    settings, broker.port, nodelay=True
                )
                missed = closed["mqtt resident"]["p99_ms"] > TARGET_P99_MS
                if settings.py_spy and (settings.profile == "always" or missed):
                    # Profiled without the TCP stalls: they are idle time, py-spy sees none of it.
                    report["profile"][BOTH_NODELAY] = await mqtt_phase(
                        settings,
                        http,
                        broker.port,
                        "mqtt-profile",
                        measured=plates(RESIDENT_PREFIX, 50_000, min(n, 1000)),
                        profile=True,
                        nodelay_what_if=True,
                    )
    report["met_target"] = {
        name: figures["p99_ms"] <= TARGET_P99_MS
        for name, figures in closed.items()
        if not name.startswith("baseline")
    }
    report["machine_after"] = machine()
    return report


def comparisons(closed: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language differences between rows that isolate one cause each."""
    lines = []

    def p50(name: str) -> float | None:
        return closed[name]["p50_ms"] if name in closed else None

    for suffix in ("", NO_AUTH):
        hub, echo = p50("hikvision resident" + suffix), p50("baseline http echo" + suffix)
        if hub is not None and echo is not None:
            cpu = closed["hikvision resident" + suffix].get("hub_cpu_ms_per_vehicle")
            lines.append(
                f"hikvision{suffix}: hub p50 {hub:.3f} ms − echo p50 {echo:.3f} ms = "
                f"{hub - echo:.3f} ms of hub work per vehicle (hub cpu {cpu:.3f} ms/vehicle)"
            )
    shipped, broker, both = p50("mqtt resident"), p50(BROKER_NODELAY), p50(BOTH_NODELAY)
    if shipped is not None and broker is not None and both is not None:
        lines.append(
            f"mqtt: {shipped - broker:.3f} ms of p50 is Mosquitto's Nagle (broker default "
            f"set_tcp_nodelay false): {shipped:.3f} → {broker:.3f} ms with set_tcp_nodelay true"
        )
        lines.append(
            f"mqtt: {broker - both:.3f} ms of p50 is Nagle on the hub's own MQTT socket (paho "
            f"leaves TCP_NODELAY off): {broker:.3f} → {both:.3f} ms with it set (what-if)"
        )
    echo = p50("baseline mqtt echo, TCP_NODELAY everywhere")
    if both is not None and echo is not None:
        lines.append(
            f"mqtt: what-if hub p50 {both:.3f} ms − echo p50 {echo:.3f} ms = {both - echo:.3f} ms "
            "of hub work per vehicle; both stalls are idle time, not CPU"
        )
    return lines


def print_table(report: dict[str, Any]) -> None:
    """The human-readable part of the output."""
    header = (
        f"{'closed loop':<44} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"{'mean':>7} {'answer p50':>10} {'cmd first':>9} {'401s':>5} {'cpu/veh (sys)':>14}"
    )
    print(f"plate read → barrier command, ms (target p99 ≤ {TARGET_P99_MS:g} ms)")
    print(header)
    print("-" * len(header))
    for name, r in report["closed_loop"].items():
        answer = r.get("post_answered") or r.get("puback") or {}
        challenges = r.get("auth_challenges")
        cpu = f"{r['hub_cpu_ms_per_vehicle']:.3f} ({r['hub_sys_ms_per_vehicle']:.3f})"
        print(
            f"{name:<44} {r['n']:>5} {r['p50_ms']:>7.3f} {r['p95_ms']:>7.3f} {r['p99_ms']:>7.3f} "
            f"{r['max_ms']:>7.3f} {r['mean_ms']:>7.3f} {answer.get('p50_ms', 0):>10.3f} "
            f"{r['command_before_answer_pct']:>8.1f}% "
            f"{'-' if challenges is None else challenges:>5} {cpu:>14}"
        )
    print(
        "answer = POST answered (hikvision) / PUBACK received (mqtt); cmd first = command "
        "arrived before that answer; 401s = digest challenges during the measured run; "
        "cpu/veh = CPU ms per vehicle of the hub (of the echo process on baseline rows)"
    )
    print()
    for name, r in report["open_loop"].items():
        print(
            f"open loop, {name}: {r['vehicles_per_s']:.0f} vehicles/s sustained "
            f"({r['vehicles']} vehicles, {r['concurrency']} in flight, {r['elapsed_s']:.2f} s; "
            f"hub cpu {r['hub_cpu_ms_per_vehicle']:.3f} ms/vehicle, "
            f"{100 * r['hub_cpu_share']:.0f}% of a core; load generator "
            f"{100 * r['bench_cpu_share']:.0f}% of a core)"
        )
    print()
    for line in comparisons(report["closed_loop"]):
        print(line)
    for name, phase in report["profile"].items():
        p = phase.get("profile", {})
        if not p.get("samples"):
            print(f"\nprofile {name}: {p}")
            continue
        print(
            f"\nwhere the hub's CPU time goes, {name} (py-spy --nonblocking, {p['samples']} "
            f"non-idle samples over {phase['n']} vehicles; that run: p50 {phase['p50_ms']:.3f}, "
            f"p99 {phase['p99_ms']:.3f} ms, hub cpu {phase['hub_cpu_ms_per_vehicle']:.3f} ms/vehicle)"
        )
        print(
            "  self time by package: " + ", ".join(f"{k} {v}%" for k, v in p["self_by_package_pct"])
        )
        print("  inclusive: " + ", ".join(f"{k} {v}%" for k, v in p["inclusive_pct"].items()))
        for frame, pct in p["self_by_function_pct"]:
            print(f"  {pct:>5.1f}%  {frame}")
    print()
    for when in ("before", "after"):
        figures = report[f"machine_{when}"]
        print(
            f"machine {when + ':':<7} {figures['uptime']}; "
            f"{figures['python_calls_per_s'] / 1e6:.2f}M python calls/s (calibration)"
        )
    print()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="vehicles per measured run")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured vehicles first")
    parser.add_argument(
        "--history", type=int, default=5000, help="plates the hub sees before the history run"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="open loop: in flight")
    parser.add_argument(
        "--auth",
        choices=("digest", "none", "both"),
        default="digest",
        help="the stand-in camera's auth (both: every Hikvision phase once with each)",
    )
    parser.add_argument("--paths", default="hikvision,mqtt", help="comma list of hikvision, mqtt")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy pass: when p99 misses the target (auto), always, never",
    )
    parser.add_argument("--py-spy", dest="py_spy", help="path of the py-spy binary")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (hub logs)")
    parser.add_argument("--echo", choices=("http", "mqtt"), help=argparse.SUPPRESS)
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--camera-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mqtt-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--echo-nodelay", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden --echo, one baseline echo process)."""
    args = parse_args(argv)
    if args.echo == "http":
        asyncio.run(serve_http_echo(args.echo_port, args.camera_port, args.auth == "digest"))
        return 0
    if args.echo == "mqtt":
        asyncio.run(serve_mqtt_echo(args.mqtt_port, args.echo_nodelay))
        return 0
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    unknown = set(paths) - {"hikvision", "mqtt"}
    if unknown or args.n < 1 or args.warmup < 1:
        print(f"bad arguments: paths {sorted(unknown)}, n {args.n}, warmup {args.warmup}")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="estatehub-gate-latency-"))
    py_spy = find_py_spy(args.py_spy) if args.profile != "never" else None
    if args.profile != "never" and py_spy is None:
        log("py-spy not found: no profile pass (give --py-spy PATH or put it on PATH)")
    settings = Settings(
        n=args.n,
        warmup=args.warmup,
        history=args.history,
        concurrency=args.concurrency,
        auth=args.auth,
        paths=paths,
        profile=args.profile,
        py_spy=py_spy,
        workdir=workdir,
    )
    try:
        report = asyncio.run(run_all(settings))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            log(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(report)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
