"""Losing the MQTT broker is never silent: a log line, a degraded health, a critical incident
that resolves itself when the broker is back. Real Mosquitto, killed and restarted."""

from __future__ import annotations

import asyncio
import logging
import time

from estatehub.bootstrap import load_config, plugins_for_config
from estatehub.clock import VirtualClock
from estatehub.hub import Hub
from estatehub.replay import advance
from estatehub.store import Store
from estatehub.testing.harness import DEFAULT_START
from estatehub.testing.mosquitto import Mosquitto
from estatehub.transports.mqtt import ConnectionState


async def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_broker_outage_raises_a_critical_incident_and_resolves_it_on_reconnect(
    tmp_path, caplog
):
    caplog.set_level(logging.ERROR)
    with Mosquitto() as broker:
        (tmp_path / "estate.yaml").write_text(
            "estate: {name: outage}\nplugins: {allow: [home, zigbee2mqtt]}\n"
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, reconnect: {{min: 0.1s, max: 0.5s}}}}\n"
            "modules:\n  home:\n    detectors:\n      d1: {options: {friendly_name: d1}}\n",
            encoding="utf-8",
        )
        plugins = plugins_for_config(tmp_path / "estate.yaml")
        config = load_config(tmp_path / "estate.yaml", plugins)
        clock = VirtualClock(DEFAULT_START)
        hub = Hub(config, plugins, clock=clock, store=Store(":memory:"), serve_api=False)
        events: list[tuple[str, dict]] = []
        hub.bus.listen("*", lambda e: events.append((e.type, dict(e.data))))
        await hub.start()
        try:
            await wait_for(
                lambda: hub.mqtt.state is ConnectionState.CONNECTED, "the first connection"
            )
            broker.kill()
            await wait_for(
                lambda: hub.mqtt.state is not ConnectionState.CONNECTED, "the hub to notice"
            )
            assert "MQTT broker 127.0.0.1:" in caplog.text and "is unreachable" in caplog.text
            await advance(hub, clock, clock.timestamp() + 16)
            raised = [d for t, d in events if t == "incident.raised"]
            assert [(d["kind"], d["severity"], d["location"]) for d in raised] == [
                ("transport.mqtt_down", "critical", "hub")
            ]
            broker.restart()
            await wait_for(
                lambda: hub.mqtt.state is ConnectionState.CONNECTED, "the reconnection", 20
            )
            await hub.settle()
            resolved = [d for t, d in events if t == "incident.resolved"]
            assert [(d["kind"], d["by"]) for d in resolved] == [("transport.mqtt_down", "hub")]
        finally:
            await hub.stop()


async def test_a_short_blip_is_logged_but_raises_no_incident(tmp_path):
    with Mosquitto() as broker:
        (tmp_path / "estate.yaml").write_text(
            f"estate: {{name: blip}}\nplugins: {{allow: []}}\nmqtt: {{host: 127.0.0.1, port: {broker.port}, "
            "reconnect: {min: 0.1s, max: 0.3s}}\n",
            encoding="utf-8",
        )
        plugins = plugins_for_config(tmp_path / "estate.yaml")
        config = load_config(tmp_path / "estate.yaml", plugins)
        clock = VirtualClock(DEFAULT_START)
        hub = Hub(config, plugins, clock=clock, store=Store(":memory:"), serve_api=False)
        await hub.start()
        try:
            await wait_for(
                lambda: hub.mqtt.state is ConnectionState.CONNECTED, "the first connection"
            )
            broker.restart()
            await wait_for(
                lambda: (
                    hub.mqtt.state is ConnectionState.CONNECTED and hub.mqtt.stats.reconnects >= 1
                ),
                "the reconnection",
                20,
            )
            await advance(hub, clock, clock.timestamp() + 60)
            assert hub.incidents.open_incidents() == []
        finally:
            await hub.stop()
