"""The zigbee2mqtt detector adapter: options, its topics on a real Mosquitto, and bad input
on the hub's own transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
import voluptuous as vol

from estatehub.hookspecs.base import AdapterSpec
from estatehub.hookspecs.home import DetectorKind, DetectorReading
from estatehub.transports.embedded import EmbeddedMqtt
from estatehub_zigbee2mqtt import plugin, samples
from estatehub_zigbee2mqtt.adapter import (
    DETECTOR_OPTIONS_SCHEMA,
    Zigbee2MqttConfigError,
    Zigbee2MqttDetector,
)

# --- options ------------------------------------------------------------------------


def test_options_default_to_a_smoke_detector_under_the_zigbee2mqtt_base_topic() -> None:
    assert DETECTOR_OPTIONS_SCHEMA({"friendly_name": "b3/1202/smoke"}) == {
        "friendly_name": "b3/1202/smoke",
        "base_topic": "zigbee2mqtt",
        "kind": DetectorKind.SMOKE,
    }


def test_options_take_a_gas_detector_on_another_base_topic() -> None:
    assert DETECTOR_OPTIONS_SCHEMA(
        {"friendly_name": "b3-1202-kitchen", "base_topic": "z2m/estate", "kind": "gas"}
    ) == {"friendly_name": "b3-1202-kitchen", "base_topic": "z2m/estate", "kind": DetectorKind.GAS}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "required key not provided @ data['friendly_name']"),
        (
            {"friendly_name": "b3/+/smoke"},
            "friendly_name 'b3/+/smoke' contains the MQTT wildcard '+'; a topic the hub "
            "subscribes to by name must not contain '+' or '#' for dictionary value "
            "@ data['friendly_name']",
        ),
        (
            {"friendly_name": "b3/#"},
            "friendly_name 'b3/#' contains the MQTT wildcard '#'; a topic the hub "
            "subscribes to by name must not contain '+' or '#' for dictionary value "
            "@ data['friendly_name']",
        ),
        (
            {"friendly_name": "b3/1202/"},
            "friendly_name 'b3/1202/' has an empty topic level (leading, trailing or "
            "double '/') for dictionary value @ data['friendly_name']",
        ),
        (
            {"friendly_name": "b3/availability"},
            "friendly_name 'b3/availability' must not end with '/availability' "
            "for dictionary value @ data['friendly_name']",
        ),
        (
            {"friendly_name": ""},
            "friendly_name must be a non-empty string for dictionary value @ data['friendly_name']",
        ),
        (
            {"friendly_name": "b3-1202", "base_topic": "zigbee2mqtt/#"},
            "base_topic 'zigbee2mqtt/#' contains the MQTT wildcard '#'; a topic the hub "
            "subscribes to by name must not contain '+' or '#' for dictionary value "
            "@ data['base_topic']",
        ),
        (
            {"friendly_name": "b3-1202", "kind": "co"},
            "kind must be one of: smoke, gas, water_leak for dictionary value @ data['kind']",
        ),
        (
            {"friendly_name": "b3-1202", "sensitivity": "high"},
            "extra keys not allowed @ data['sensitivity']",
        ),
    ],
)
def test_options_that_cannot_be_subscribed_are_config_errors(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(vol.Invalid) as invalid:
        DETECTOR_OPTIONS_SCHEMA(options)
    assert str(invalid.value) == message


def test_building_an_adapter_with_a_wildcard_name_names_the_detector() -> None:
    with pytest.raises(Zigbee2MqttConfigError) as error:
        Zigbee2MqttDetector(None, "b3-1202-smoke", {"friendly_name": "b3+"}, lambda _: None)  # type: ignore[arg-type]
    assert str(error.value) == (
        "detector 'b3-1202-smoke': invalid zigbee2mqtt options: friendly_name 'b3+' contains "
        "the MQTT wildcard '+'; a topic the hub subscribes to by name must not contain "
        "'+' or '#' for dictionary value @ data['friendly_name']"
    )


def test_adapter_topics_keep_slashes_in_the_friendly_name() -> None:
    detector = Zigbee2MqttDetector(
        None,  # type: ignore[arg-type]
        "b3-1202-smoke",
        {"friendly_name": "b3/1202/smoke", "base_topic": "z2m"},
        lambda _: None,
    )
    assert (detector.state_topic, detector.availability_topic) == (
        "z2m/b3/1202/smoke",
        "z2m/b3/1202/smoke/availability",
    )
    assert detector.kind is DetectorKind.SMOKE


def test_plugin_registers_the_home_adapter() -> None:
    registered: list[AdapterSpec] = []
    plugin.estatehub_register_adapters(registered.append)
    assert registered == [
        AdapterSpec(
            subsystem="home",
            name="zigbee2mqtt",
            factory=Zigbee2MqttDetector,
            options_schema=DETECTOR_OPTIONS_SCHEMA,
            description="Smoke, gas and water-leak detectors paired with zigbee2mqtt",
        )
    ]


# --- on a real broker ---------------------------------------------------------------


async def test_retained_state_at_start_then_a_live_alarm_then_stop(
    hub: Any, device: aiomqtt.Client, unique_base_topic: str, until: Callable[..., Any]
) -> None:
    state_topic = f"{unique_base_topic}/b3/1202/smoke"
    # zigbee2mqtt publishes state and availability retained: they are waiting at the broker
    # before the hub subscribes.
    await device.publish(state_topic, samples.smoke_clear_battery_string_old_release(), 1, True)
    await device.publish(f"{state_topic}/availability", samples.availability_online(), 1, True)

    readings: list[DetectorReading] = []
    detector = Zigbee2MqttDetector(
        hub,
        "b3-1202-smoke",
        {"friendly_name": "b3/1202/smoke", "base_topic": unique_base_topic},
        readings.append,
    )
    await detector.start(hub)
    await hub.mqtt.settle()
    await until(lambda: len(readings) == 2)

    await device.publish(state_topic, samples.smoke_alarm_with_last_seen(), qos=1)
    await device.publish(state_topic, b'{"smoke":"maybe"}', qos=1)
    await device.publish(f"{state_topic}/availability", samples.availability_offline(), qos=1)
    await until(lambda: len(readings) == 4)

    received_at = hub.clock.now()
    retained_state = DetectorReading(
        detector="b3-1202-smoke",
        received_at=received_at,
        alarm=False,
        battery_percent=100.0,
        link_quality=60,
        retained=True,
        vendor="zigbee2mqtt",
    )
    retained_online = DetectorReading(
        detector="b3-1202-smoke",
        received_at=received_at,
        available=True,
        retained=True,
        vendor="zigbee2mqtt",
    )
    assert sorted(readings[:2], key=lambda r: r.available is not None) == [
        retained_state,
        retained_online,
    ]
    assert [(r.alarm, r.available, r.retained) for r in readings[2:]] == [
        (True, None, False),
        (None, False, False),
    ]
    assert hub.mqtt.rejections == [
        f"{state_topic}: field 'smoke' must be true or false, got \"maybe\""
    ]

    await detector.stop()
    await hub.mqtt.settle()
    # After stop, a later alarm must not reach the sink; a sentinel on another topic, sent
    # after it by the same publisher, proves the broker delivered past it.
    sentinel: list[bytes] = []
    hub.mqtt.subscribe(f"{unique_base_topic}/sentinel", lambda m: sentinel.append(m.payload))
    await hub.mqtt.settle()
    await device.publish(state_topic, samples.smoke_alarm_with_last_seen(), qos=1)
    await device.publish(f"{unique_base_topic}/sentinel", b"done", qos=1)
    await until(lambda: sentinel == [b"done"])
    assert len(readings) == 4


# --- on the hub's own in-process transport ------------------------------------------


@dataclass
class EmbeddedHub:
    """The part of the hub the adapter touches, with the transport the hub runs without a broker."""

    mqtt: EmbeddedMqtt


async def test_smoke_state_nested_5000_deep_is_a_counted_rejection_and_the_next_alarm_counts() -> (
    None
):
    at = datetime(2026, 3, 1, 8, 15, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    hub = EmbeddedHub(EmbeddedMqtt(now=lambda: at))
    rejected: list[tuple[str, str]] = []
    hub.mqtt.on_rejected = lambda message, reason: rejected.append((message.topic, reason))
    readings: list[DetectorReading] = []
    detector = Zigbee2MqttDetector(
        hub, "b3-1202-smoke", {"friendly_name": "b3/1202/smoke"}, readings.append
    )  # type: ignore[arg-type]
    await hub.mqtt.start()
    await detector.start(hub)  # type: ignore[arg-type]

    await hub.mqtt.publish(
        "zigbee2mqtt/b3/1202/smoke", b'{"smoke":' + b"[" * 5000 + b"]" * 5000 + b"}"
    )
    await hub.mqtt.publish("zigbee2mqtt/b3/1202/smoke", samples.smoke_alarm_with_last_seen())
    for _ in range(3):
        await asyncio.sleep(0)  # deliveries are scheduled with call_soon

    assert rejected == [
        (
            "zigbee2mqtt/b3/1202/smoke",
            "zigbee2mqtt/b3/1202/smoke: payload is JSON nested too deeply",
        )
    ]
    assert (hub.mqtt.stats.rejected, hub.mqtt.stats.callback_errors) == (1, 0)
    assert [reading.alarm for reading in readings] == [True]
    await detector.stop()
    await hub.mqtt.stop()
