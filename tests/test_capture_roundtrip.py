"""What a running hub captures, replay reproduces: the same decisions, fees and incidents."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from estatehub.api.auth import ApiUser
from estatehub.api.server import perform_write
from estatehub.bootstrap import load_config, plugins_for_config
from estatehub.clock import VirtualClock
from estatehub.demo import write_demo
from estatehub.hub import Hub
from estatehub.replay import advance, event_line, replay
from estatehub.store import Store
from estatehub.transports.base import InboundHttp
from estatehub.transports.capture import CaptureWriter, read_capture
from estatehub.transports.embedded import EmbeddedMqtt
from estatehub_hikvision import samples as hik

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
KEEP = (
    "parking.decision",
    "parking.fee_due",
    "parking.session_closed",
    "incident.raised",
    "incident.escalated",
    "incident.acknowledged",
    "transport.rejected",
)


async def test_a_live_capture_replays_to_the_same_events(tmp_path):
    write_demo(tmp_path)
    config_path = tmp_path / "estate.yaml"
    plugins = plugins_for_config(config_path)
    config = load_config(config_path, plugins)
    clock = VirtualClock(START, tz=SHANGHAI)
    capture_path = tmp_path / "live.jsonl"
    hub = Hub(
        config,
        plugins,
        clock=clock,
        store=Store(":memory:"),
        mqtt=EmbeddedMqtt(now=clock.now),
        serve_api=False,
        replaying=True,
        capture=CaptureWriter(capture_path),
    )
    live: list[str] = []
    hub.bus.listen("*", lambda e: live.append(event_line(e, clock)) if e.type in KEEP else None)
    await hub.start()

    def push(gate: str, plate: str, uuid: str) -> None:
        content_type, body = hik.anpr_push(plate, when=clock.now(), uuid=uuid)
        hub.http.dispatch(
            InboundHttp("POST", f"/api/webhook/hikvision/{gate}", content_type, body, clock.now())
        )

    push("north", "沪C5N728", "cap-1")
    await advance(hub, clock, START + timedelta(minutes=40))
    await hub.mqtt.publish("zigbee2mqtt/b3-1202-smoke", b'{"smoke":true,"battery":88}', qos=0)
    await hub.settle()
    await advance(hub, clock, START + timedelta(minutes=46))
    incident = hub.incidents.open_incidents()[0]
    await perform_write(
        hub,
        "POST",
        f"/api/incidents/{incident.id}/acknowledge",
        ApiUser("property-desk", frozenset({"operator"})),
        {"note": "seen"},
    )
    await advance(hub, clock, START + timedelta(hours=2))
    push("south", "沪C5N728", "cap-2")
    hub.http.dispatch(
        InboundHttp(
            "POST", "/api/webhook/hikvision/south", "application/xml", b"<oops", clock.now()
        )
    )
    await hub.settle()
    await hub.stop()

    records = list(read_capture(capture_path))
    assert [r.transport for r in records] == ["http", "mqtt", "api", "http", "http"]
    assert "body_b64" in records[0].fields  # the multipart push carries binary JPEG parts
    assert records[2].fields["user"] == "property-desk"
    assert "token" not in json.dumps(records[2].fields)

    out = io.StringIO()
    await replay(config_path, capture_path, out, tail=timedelta(0))
    replayed = [line for line in out.getvalue().splitlines() if json.loads(line)["type"] in KEEP]
    assert [json.loads(x)["type"] for x in replayed] == [json.loads(x)["type"] for x in live]
    assert replayed == live
