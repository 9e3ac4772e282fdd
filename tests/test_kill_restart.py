"""`estatehub run` killed with SIGKILL mid-day loses neither an open parking session nor an
unacknowledged safety incident.

Everything is real: the hub runs as its own process, a private Mosquitto carries the
zigbee2mqtt traffic, the Hikvision pushes arrive over HTTP in the camera's multipart
format, and the barrier commands go to a stand-in ISAPI camera on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from estatehub.testing.mosquitto import Mosquitto, free_port
from estatehub_hikvision import samples

TOKEN = "restart-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SHANGHAI = ZoneInfo("Asia/Shanghai")

ESTATE = """
estate: {{name: restart estate}}
store: {{path: hub.db}}
api:
  host: 127.0.0.1
  port: {api_port}
  tokens:
    - {{name: desk, token: {token}, roles: [operator]}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, reconnect: {{min: 0.2s, max: 2s}}}}
plugins:
  allow: [parking, home, hikvision, zigbee2mqtt]
registry:
  buildings:
    - id: b3
      units: [{{id: "1", flats: [{{id: "1202", household: h-wang}}]}}]
  households: [{{id: h-wang, name: 王家}}]
modules:
  parking:
    gates:
      north:
        adapter: hikvision
        direction: in
        options: {{host: 127.0.0.1, port: {camera_port}, username: admin, password: pw}}
      south:
        adapter: hikvision
        direction: out
        options: {{host: 127.0.0.1, port: {camera_port}, username: admin, password: pw}}
  home:
    detectors:
      b3-1202-smoke: {{flat: b3-1-1202, options: {{friendly_name: b3-1202-smoke}}}}
"""


class Camera:
    """A stand-in ISAPI endpoint that records barrier commands."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    async def barrier(self, request: web.Request) -> web.Response:
        self.commands.append(f"{request.method} {request.path} {await request.text()}")
        return web.Response(
            text="<ResponseStatus><statusCode>1</statusCode></ResponseStatus>",
            content_type="application/xml",
        )


def start_hub(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "estatehub", "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def wait_until(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (aiohttp.ClientError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_killed_hub_restarts_with_its_open_session_and_unacknowledged_incident(tmp_path):
    camera = Camera()
    app = web.Application()
    app.router.add_route("PUT", "/ISAPI/Parking/channels/{channel}/barrierGate", camera.barrier)
    runner = web.AppRunner(app)
    await runner.setup()
    camera_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", camera_port).start()
    api_port = free_port()
    log = tmp_path / "hub.log"
    with Mosquitto() as broker:
        config = tmp_path / "estate.yaml"
        config.write_text(
            ESTATE.format(
                api_port=api_port, mqtt_port=broker.port, camera_port=camera_port, token=TOKEN
            ),
            encoding="utf-8",
        )
        base = f"http://127.0.0.1:{api_port}"
        hub = start_hub(config, log)
        try:
            async with aiohttp.ClientSession(base) as http:

                async def healthy():
                    async with http.get("/api/health") as response:
                        return response.status == 200

                await wait_until(healthy, "the hub to serve its API")
                content_type, body = samples.anpr_push(
                    "沪C5N728", when=datetime.now(SHANGHAI), uuid="kill-1"
                )
                async with http.post(
                    "/api/webhook/hikvision/north",
                    data=body,
                    headers={"Content-Type": content_type},
                ) as response:
                    assert response.status == 200, await response.text()
                async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                    await client.publish(
                        "zigbee2mqtt/b3-1202-smoke", b'{"smoke":true,"battery":97}', qos=1
                    )

                async def smoke_incident():
                    async with http.get("/api/incidents", headers=AUTH) as response:
                        found = [i for i in await response.json() if i["kind"] == "smoke"]
                        return found[0] if found else None

                incident = await wait_until(smoke_incident, "the smoke incident")
                await wait_until(lambda: _true(camera.commands), "the north barrier to open")
                assert camera.commands[0].startswith("PUT /ISAPI/Parking/channels/1/barrierGate")
                assert "<ctrlMode>open</ctrlMode>" in camera.commands[0]

                hub.send_signal(signal.SIGKILL)
                assert hub.wait(10) == -signal.SIGKILL

                hub = start_hub(config, log)
                await wait_until(healthy, "the restarted hub")
                async with http.get(f"/api/incidents/{incident['id']}", headers=AUTH) as response:
                    again = await response.json()
                assert (again["state"], again["kind"], again["location"]) == (
                    "raised",
                    "smoke",
                    "b3-1-1202",
                )
                async with http.get(
                    "/api/states/sensor.parking_open_sessions", headers=AUTH
                ) as response:
                    assert (await response.json())["state"] == "1"
                # The visitor leaves through the south gate: the restored session is priced.
                content_type, body = samples.anpr_push(
                    "沪C5N728", when=datetime.now(SHANGHAI), uuid="kill-2", ip="192.0.2.11"
                )
                async with http.post(
                    "/api/webhook/hikvision/south",
                    data=body,
                    headers={"Content-Type": content_type},
                ) as response:
                    assert response.status == 200
                async with http.get(
                    "/api/states/sensor.parking_open_sessions", headers=AUTH
                ) as response:
                    assert (await response.json())["state"] == "0"  # within the free minutes
                async with http.post(
                    f"/api/incidents/{incident['id']}/acknowledge",
                    headers=AUTH,
                    json={"note": "after restart"},
                ) as response:
                    assert response.status == 200
                    assert (await response.json())["acknowledged_by"] == "desk"
            hub.send_signal(signal.SIGTERM)
            assert hub.wait(15) == 0, log.read_text()
        finally:
            if hub.poll() is None:
                hub.kill()
                hub.wait()
            await runner.cleanup()


async def _true(value):
    return bool(value)


def test_log_of_a_run_masks_plates(tmp_path):
    pytest.importorskip("estatehub_hikvision")
    from estatehub.privacy import mask_plate

    assert mask_plate("沪C5N728") == "沪C·***28"
    assert json.dumps(mask_plate("沪AD12345"), ensure_ascii=False) == '"沪A·****45"'
