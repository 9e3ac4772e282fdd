"""Peak memory of the demo hub, as a child process, read off /proc.

Run from the repository root::

    .venv/bin/python bench/demo_rss.py                 # demo 30 s, run 10 s
    .venv/bin/python bench/demo_rss.py --demo-for 10 --run-for 5

Two children, each started with this interpreter (``python -m estatehub …``) and polled
every ``--interval`` seconds (50 ms) through ``/proc/<pid>/status``:

1. ``estatehub demo --for 30 --port 0``: the shipped demo (virtual clock, embedded broker,
   replayed captures, API on a free port) until it stops by itself.
2. ``estatehub demo --write DIR``, then ``estatehub run -c DIR/estate.yaml`` on that demo
   estate for ``--run-for`` seconds (10) after its API answers, with webhook traffic: real-
   format Hikvision ANPR pushes (``estatehub_hikvision.samples``) at ``--rate`` per second,
   each visitor entering at the north gate and leaving at the south gate a few pushes
   later (inside the free minutes, so both barriers open). Then SIGTERM. The written
   config is edited before the run: the API port becomes a free one, and the two gates'
   camera hosts (documentation addresses, 192.0.2.10/11) become 127.0.0.1 and the port of
   a stand-in ISAPI camera in this process, which answers every barrier PUT with 200. The
   script refuses to run if any ``host:`` in the config is left off loopback.

``VmHWM`` is the kernel's own peak resident set (it cannot miss a short spike); "final
VmRSS" is the last reading before the process was gone (for ``run``, the reading just
before SIGTERM is reported as well); "max sampled VmRSS" is the largest 50 ms sample, to
show how close sampling gets to the kernel's peak. MiB = kB / 1024.

Output: a table on stdout, then one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

SHANGHAI = ZoneInfo("Asia/Shanghai")
ISAPI_OK = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    '<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\r\n'
    "<statusCode>1</statusCode>\r\n<statusString>OK</statusString>\r\n</ResponseStatus>\r\n"
)
_HOST_LINE = re.compile(r"^(?P<indent>[ \t]*)host:[ \t]*(?P<host>[^\s#]+).*$", re.MULTILINE)
_API_PORT_LINE = re.compile(r"^(?P<indent>[ \t]*)port:[ \t]*8740\b.*$", re.MULTILINE)


class BenchError(Exception):
    """The benchmark could not run as designed; the message says what went wrong."""


def log(message: str) -> None:
    """Progress on stderr, so stdout stays table + JSON."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    from estatehub.testing.mosquitto import free_port as pick

    return pick()


# -- sampling ----------------------------------------------------------------------------


def read_status(pid: int) -> dict[str, int] | None:
    """VmHWM and VmRSS of ``pid`` in kB, or None once it has exited (or is a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(value.split()[0])
    # A zombie has no memory lines any more: that counts as gone.
    return found if len(found) == 2 else None


@dataclass(slots=True)
class MemorySampler:
    """Polls one process's /proc status until it is gone."""

    pid: int
    interval: float
    samples: int = 0
    hwm_kb: int = 0
    last_rss_kb: int = 0
    max_rss_kb: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    per_second_kb: list[int] = field(default_factory=list)

    async def run(self) -> None:
        """Sample every ``interval`` seconds; returns when the process has gone."""
        while True:
            status = read_status(self.pid)
            if status is None:
                return
            now = time.monotonic()
            if not self.samples:
                self.first_at = now
            self.samples += 1
            self.last_at = now
            self.hwm_kb = max(self.hwm_kb, status["VmHWM"])
            self.last_rss_kb = status["VmRSS"]
            self.max_rss_kb = max(self.max_rss_kb, status["VmRSS"])
            if now - self.first_at >= len(self.per_second_kb):  # one reading a second
                self.per_second_kb.append(status["VmRSS"])
            await asyncio.sleep(self.interval)

    def report(self) -> dict[str, Any]:
        """The figures, in MiB."""
        return {
            "vmhwm_mib": round(self.hwm_kb / 1024, 1),
            "final_vmrss_mib": round(self.last_rss_kb / 1024, 1),
            "max_sampled_vmrss_mib": round(self.max_rss_kb / 1024, 1),
            "samples": self.samples,
            "sampled_s": round(self.last_at - self.first_at, 2),
            "vmrss_mib_each_second": [round(kb / 1024, 1) for kb in self.per_second_kb],
        }


def start(args: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``python -m estatehub <args>`` with its output in ``log_path``."""
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "estatehub", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def tail(path: Path, lines: int = 20) -> str:
    """The end of a child's log."""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# -- 1. the demo ---------------------------------------------------------------------------


async def measure_demo(workdir: Path, seconds: float, interval: float) -> dict[str, Any]:
    """``estatehub demo --for SECONDS --port 0`` until it exits by itself."""
    log_path = workdir / "demo.log"
    log(f"estatehub demo --for {seconds:g} --port 0")
    started = time.monotonic()
    process = start(["demo", "--for", f"{seconds:g}", "--port", "0"], log_path, workdir)
    sampler = MemorySampler(process.pid, interval)
    try:
        await asyncio.wait_for(sampler.run(), seconds + 60)
    except TimeoutError:
        process.kill()
        raise BenchError(f"the demo did not stop within {seconds + 60:g} s") from None
    code = process.wait()
    if code != 0:
        raise BenchError(f"the demo exited with {code}:\n{tail(log_path)}")
    return {
        "command": f"estatehub demo --for {seconds:g} --port 0",
        "wall_s": round(time.monotonic() - started, 2),
        "exit_code": code,
        **sampler.report(),
    }


# -- 2. run on the demo estate -------------------------------------------------------------


class StandInCamera:
    """Answers every ISAPI barrier PUT with 200 and counts them (127.0.0.1 only)."""

    def __init__(self) -> None:
        self.commands = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("PUT", "/ISAPI/Parking/channels/{channel}/barrierGate", self._put)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _put(self, request: web.Request) -> web.Response:
        await request.read()
        self.commands += 1
        return web.Response(text=ISAPI_OK, content_type="application/xml")


def loopback_demo_config(text: str, api_port: int, camera_port: int) -> str:
    """The written demo estate.yaml with its API port and camera hosts on loopback.

    :raises BenchError: the file no longer looks like the demo config this expects, or a
        ``host:`` would stay off loopback (the run must never reach another machine).
    """
    edited, api_lines = _API_PORT_LINE.subn(rf"\g<indent>port: {api_port}", text)
    if api_lines != 1:
        raise BenchError(f"expected one 'port: 8740' line in the demo config, found {api_lines}")

    def to_camera(match: re.Match[str]) -> str:
        indent = match["indent"]
        if match["host"] == "127.0.0.1":  # the API's own host
            return match[0]
        return f"{indent}host: 127.0.0.1\n{indent}port: {camera_port}"

    edited = _HOST_LINE.sub(to_camera, edited)
    hosts = {m["host"] for m in _HOST_LINE.finditer(edited)}
    if hosts != {"127.0.0.1"}:
        raise BenchError(f"the demo config still names hosts {sorted(hosts)}; refusing to run")
    return edited


@dataclass(slots=True)
class Traffic:
    """What the webhook traffic did."""

    pushes: int = 0
    answered_200: int = 0
    other_answers: dict[int, int] = field(default_factory=dict)


async def webhook_traffic(api: str, seconds: float, rate: float, traffic: Traffic) -> None:
    """Visitors in at north, out at south four pushes later, ``rate`` pushes a second."""
    from estatehub_hikvision import samples

    interval = 1.0 / rate
    inside: list[str] = []
    visitors = 0
    next_at = time.monotonic()
    deadline = next_at + seconds
    async with aiohttp.ClientSession(api) as http:
        while time.monotonic() < deadline:
            # Every other push is an exit once three visitors are inside.
            if traffic.pushes % 2 and len(inside) >= 3:
                plate, gate = inside.pop(0), "south"
            else:
                plate, gate = f"沪B{visitors:05d}", "north"
                visitors += 1
                inside.append(plate)
            content_type, body = samples.anpr_push(
                plate,
                when=datetime.now(SHANGHAI),
                uuid=f"rss-{traffic.pushes:06d}-{secrets.token_hex(4)}",
            )
            async with http.post(
                f"/api/webhook/hikvision/{gate}", data=body, headers={"Content-Type": content_type}
            ) as reply:
                await reply.read()
            traffic.pushes += 1
            if reply.status == 200:
                traffic.answered_200 += 1
            else:
                traffic.other_answers[reply.status] = traffic.other_answers.get(reply.status, 0) + 1
            next_at += interval  # paced on a schedule, so the rate holds whatever a push costs
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def measure_run(
    workdir: Path, seconds: float, rate: float, interval: float
) -> dict[str, Any]:
    """``estatehub run`` on the written demo estate, with traffic, then SIGTERM."""
    estate_dir = workdir / "estate"
    written = subprocess.run(
        [sys.executable, "-m", "estatehub", "demo", "--write", str(estate_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if written.returncode != 0:
        raise BenchError(f"estatehub demo --write failed:\n{written.stderr}")
    camera = StandInCamera()
    await camera.start()
    config = estate_dir / "estate.yaml"
    api_port = free_port()
    config.write_text(
        loopback_demo_config(config.read_text(encoding="utf-8"), api_port, camera.port),
        encoding="utf-8",
    )
    api = f"http://127.0.0.1:{api_port}"
    log_path = workdir / "run.log"
    log(f"estatehub run -c {config} ({seconds:g} s of traffic at {rate:g} pushes/s)")
    process = start(["run", "-c", str(config)], log_path, estate_dir)
    sampler = MemorySampler(process.pid, interval)
    sampling = asyncio.create_task(sampler.run())
    traffic = Traffic()
    try:
        ready_after = await wait_ready(api, process, log_path)
        rss_ready_kb = sampler.last_rss_kb
        await webhook_traffic(api, seconds, rate, traffic)
        await asyncio.sleep(0.5)  # the last barrier commands
        before_stop = read_status(process.pid) or {}
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sampling, 30)
        code = process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        sampling.cancel()
        await camera.stop()
    if code != 0:
        raise BenchError(f"estatehub run exited with {code}:\n{tail(log_path)}")
    return {
        "command": "estatehub run -c <demo estate>/estate.yaml",
        "ready_after_s": round(ready_after, 2),
        "traffic_s": seconds,
        "pushes": traffic.pushes,
        "pushes_answered_200": traffic.answered_200,
        "other_answers": traffic.other_answers,
        "barrier_commands_received": camera.commands,
        "exit_code": code,
        "vmrss_mib_when_ready": round(rss_ready_kb / 1024, 1),
        "vmrss_mib_before_sigterm": round(before_stop.get("VmRSS", 0) / 1024, 1),
        **sampler.report(),
    }


async def wait_ready(api: str, process: subprocess.Popen[bytes], log_path: Path) -> float:
    """Seconds until /api/health answers 200."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < 30:
            if process.poll() is not None:
                raise BenchError(
                    f"estatehub run exited with {process.returncode}:\n{tail(log_path)}"
                )
            try:
                async with http.get(f"{api}/api/health") as reply:
                    if reply.status == 200:
                        return time.monotonic() - started
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise BenchError(f"estatehub run did not answer on {api} within 30 s:\n{tail(log_path)}")


# -- the whole run -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Load and versions, so the figures can be read in context."""
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return {
        "uptime": uptime.strip(),
        "loadavg": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


async def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both measurements, one after the other."""
    report: dict[str, Any] = {"machine_before": machine(), "interval_s": args.interval}
    report["demo"] = await measure_demo(workdir, args.demo_for, args.interval)
    report["run"] = await measure_run(workdir, args.run_for, args.rate, args.interval)
    report["machine_after"] = machine()
    return report


def print_table(report: dict[str, Any]) -> None:
    """The human-readable part of the output."""
    rows = [
        (f"{report['demo']['command']}", report["demo"]),
        (
            f"estatehub run, demo estate, {report['run']['traffic_s']:g} s, "
            f"{report['run']['pushes']} pushes",
            report["run"],
        ),
    ]
    header = (
        f"{'process':<52} {'VmHWM':>8} {'final VmRSS':>12} {'max sampled':>12} "
        f"{'samples':>8} {'sampled s':>10}"
    )
    print("peak and final resident memory, MiB")
    print(header)
    print("-" * len(header))
    for name, r in rows:
        print(
            f"{name:<52} {r['vmhwm_mib']:>8.1f} {r['final_vmrss_mib']:>12.1f} "
            f"{r['max_sampled_vmrss_mib']:>12.1f} {r['samples']:>8} {r['sampled_s']:>10.2f}"
        )
    run = report["run"]
    print(
        f"\nrun: VmRSS {run['vmrss_mib_when_ready']:.1f} MiB when the API answered, "
        f"{run['vmrss_mib_before_sigterm']:.1f} MiB before SIGTERM; "
        f"{run['pushes_answered_200']}/{run['pushes']} pushes answered 200, "
        f"{run['barrier_commands_received']} barrier commands reached the stand-in camera"
    )
    print(f"machine before: {report['machine_before']['uptime']}")
    print(f"machine after:  {report['machine_after']['uptime']}")
    print()


def main(argv: list[str] | None = None) -> int:
    """Measure both children and print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-for", type=float, default=30.0, help="seconds of demo")
    parser.add_argument("--run-for", type=float, default=10.0, help="seconds of run traffic")
    parser.add_argument("--rate", type=float, default=20.0, help="webhook pushes per second")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between samples")
    args = parser.parse_args(argv)
    if args.demo_for <= 0 or args.run_for <= 0 or args.rate <= 0 or args.interval <= 0:
        parser.error("--demo-for, --run-for, --rate and --interval must be positive")
    with tempfile.TemporaryDirectory(prefix="estatehub-demo-rss-") as tmp:
        try:
            report = asyncio.run(run_all(args, Path(tmp)))
        except BenchError as err:
            print(f"benchmark failed: {err}", file=sys.stderr)
            return 1
    print_table(report)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
