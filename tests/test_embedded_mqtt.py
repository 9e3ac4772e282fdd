"""The in-process broker the demo and the tests run on, with real device payloads."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from estatehub.exceptions import PayloadRejected, TransportError
from estatehub.transports.base import MqttMessage
from estatehub.transports.embedded import EmbeddedMqtt
from estatehub.transports.mqtt import ConnectionState
from estatehub.transports.topics import InvalidTopicError

AT = datetime(2026, 3, 1, 8, 15, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
SMOKE_TOPIC = "zigbee2mqtt/b3-1202-smoke"
SMOKE_ALARM = (
    b'{"smoke":true,"battery_low":false,"linkquality":26,"last_seen":"2019-06-24T15:30:53.312Z"}'
)
SMOKE_CLEAR = b'{"battery":"100.00","voltage":3055,"linkquality":60,"smoke":false}'


async def settle(rounds: int = 5) -> None:
    """Let every delivery scheduled with call_soon (and the ones they schedule) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedMqtt]:
    embedded = EmbeddedMqtt(now=lambda: AT)
    await embedded.start()
    yield embedded
    await embedded.stop()


async def test_smoke_states_arrive_in_publish_order_with_the_hub_clock(
    broker: EmbeddedMqtt,
) -> None:
    seen: list[MqttMessage] = []
    broker.subscribe("zigbee2mqtt/+", seen.append)

    await broker.publish(SMOKE_TOPIC, SMOKE_ALARM, qos=0)
    await broker.publish(SMOKE_TOPIC, SMOKE_CLEAR)
    await broker.publish("zigbee2mqtt/b3-1202-gas", '{"gas":false}')
    assert seen == []  # nothing is delivered inside publish()
    await settle()

    assert seen == [
        MqttMessage(SMOKE_TOPIC, SMOKE_ALARM, AT, 0, False),
        MqttMessage(SMOKE_TOPIC, SMOKE_CLEAR, AT, 1, False),
        MqttMessage("zigbee2mqtt/b3-1202-gas", b'{"gas":false}', AT, 1, False),
    ]
    assert broker.stats.received == 3
    assert broker.stats.dispatched == 3


async def test_callback_that_publishes_is_not_reentered(broker: EmbeddedMqtt) -> None:
    order: list[str] = []
    depth = 0

    def relay(message: MqttMessage) -> None:
        nonlocal depth
        depth += 1
        assert depth == 1, "a callback was re-entered synchronously"
        order.append(message.text())
        if message.text() == "first":
            asyncio.get_running_loop().create_task(broker.publish("relay/x", "echo"))
            order.append("published echo")
        depth -= 1

    broker.subscribe("relay/x", relay)
    await broker.publish("relay/x", "first")
    await broker.publish("relay/x", "second")
    await settle()
    assert order == ["first", "published echo", "second", "echo"]


async def test_retained_power_state_reaches_a_late_subscriber_flagged_retained(
    broker: EmbeddedMqtt,
) -> None:
    early: list[MqttMessage] = []
    broker.subscribe("stat/+/POWER", early.append)
    await broker.publish("stat/lamp-7/POWER", "ON", retain=True)
    await settle()

    late: list[MqttMessage] = []
    broker.subscribe("stat/#", late.append)
    await settle()

    assert early == [MqttMessage("stat/lamp-7/POWER", b"ON", AT, 1, False)]
    assert late == [MqttMessage("stat/lamp-7/POWER", b"ON", AT, 1, True)]
    assert broker.retained("stat/lamp-7/POWER") == MqttMessage(
        "stat/lamp-7/POWER", b"ON", AT, 1, True
    )


async def test_empty_retained_discovery_config_deletes_the_entity(broker: EmbeddedMqtt) -> None:
    topic = "homeassistant/binary_sensor/b3-1202-smoke/config"
    await broker.publish(topic, '{"name":null,"dev_cla":"smoke","stat_t":"~/state"}', retain=True)
    await broker.publish("homeassistant/lock/gate-north/config", '{"name":"Gate"}', retain=True)
    await broker.publish(topic, b"", retain=True)
    await settle()

    late: list[MqttMessage] = []
    broker.subscribe("homeassistant/#", late.append)
    await settle()

    assert broker.retained(topic) is None
    assert broker.retained_topics() == ["homeassistant/lock/gate-north/config"]
    assert [m.topic for m in late] == ["homeassistant/lock/gate-north/config"]
    assert late[0].retained is True


async def test_newer_retained_value_replaces_the_old_one(broker: EmbeddedMqtt) -> None:
    await broker.publish("tele/lamp-7/LWT", "Online", retain=True)
    await broker.publish("tele/lamp-7/LWT", "Offline", retain=True)
    late: list[MqttMessage] = []
    broker.subscribe("tele/+/LWT", late.append)
    await settle()
    assert [(m.payload, m.retained) for m in late] == [(b"Offline", True)]


async def test_retained_messages_are_replayed_to_subscriptions_on_start() -> None:
    embedded = EmbeddedMqtt(now=lambda: AT)
    await embedded.start()
    await embedded.publish("tele/lamp-7/LWT", "Online", retain=True)
    await embedded.stop()

    seen: list[MqttMessage] = []
    embedded.subscribe("tele/#", seen.append)
    assert embedded.state is ConnectionState.STOPPED
    await embedded.start()
    await settle()
    assert seen == [MqttMessage("tele/lamp-7/LWT", b"Online", AT, 1, True)]
    await embedded.stop()


async def test_publishing_before_start_is_an_error() -> None:
    embedded = EmbeddedMqtt(now=lambda: AT)
    with pytest.raises(TransportError) as caught:
        await embedded.publish(SMOKE_TOPIC, SMOKE_ALARM)
    assert str(caught.value) == (
        "cannot publish to 'zigbee2mqtt/b3-1202-smoke': the embedded MQTT broker is disconnected"
    )


async def test_rejected_payload_is_reported_and_the_next_one_still_arrives(
    broker: EmbeddedMqtt,
) -> None:
    rejected: list[tuple[MqttMessage, str]] = []
    broker.on_rejected = lambda message, reason: rejected.append((message, reason))
    parsed: list[bytes] = []

    def parse_smoke(message: MqttMessage) -> None:
        if not message.payload.startswith(b"{"):
            raise PayloadRejected("payload is not a JSON object")
        parsed.append(message.payload)

    broker.subscribe(SMOKE_TOPIC, parse_smoke)
    await broker.publish(SMOKE_TOPIC, "online")
    await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
    await settle()

    assert rejected == [
        (MqttMessage(SMOKE_TOPIC, b"online", AT, 1, False), "payload is not a JSON object")
    ]
    assert parsed == [SMOKE_ALARM]
    assert broker.stats.rejected == 1
    assert broker.stats.dispatched == 1


async def test_crashing_callback_is_logged_by_name_and_others_still_run(
    broker: EmbeddedMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_adapter(message: MqttMessage) -> None:
        raise KeyError("smoke")

    after: list[str] = []
    broker.subscribe(SMOKE_TOPIC, broken_adapter)
    broker.subscribe(SMOKE_TOPIC, lambda m: after.append(m.topic))
    with caplog.at_level(logging.ERROR, logger="estatehub.transports.mqtt"):
        await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
        await settle()

    assert after == [SMOKE_TOPIC]
    assert broker.stats.callback_errors == 1
    assert broker.stats.dispatched == 1
    callback_name = f"{broken_adapter.__module__}.{broken_adapter.__qualname__}"
    assert [r.getMessage() for r in caplog.records] == [
        f"MQTT callback {callback_name} failed on a message on zigbee2mqtt/b3-1202-smoke"
    ]
    assert callback_name.endswith("<locals>.broken_adapter")


async def test_left_over_retained_siren_command_is_cleared_with_a_warning(
    broker: EmbeddedMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    command_topic = "zigbee2mqtt/b3-1202-siren/set"
    # Some other tool published the command retained: every reconnect would sound the siren.
    await broker.publish(command_topic, '{"warning":{"mode":"emergency"}}', retain=True)
    with caplog.at_level(logging.WARNING, logger="estatehub.transports.mqtt"):
        await broker.publish_command(command_topic, '{"warning":{"mode":"stop"}}')
        await settle()

    assert broker.retained(command_topic) is None
    assert broker.stats.retained_commands_cleared == 1
    # The size, not the payload: a gate command carries a plate, which stays out of logs.
    assert [r.getMessage() for r in caplog.records] == [
        "found a retained command on zigbee2mqtt/b3-1202-siren/set (32 bytes); clearing it "
        "so the device is not re-actuated on every reconnect. Whoever published it must "
        "send commands with retain=false."
    ]


async def test_guarded_gate_command_topic_loses_its_retained_open_as_soon_as_it_is_guarded(
    broker: EmbeddedMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    command_topic = "estatehub/gate/east/command"
    await broker.publish(command_topic, '{"action":"open"}', retain=True)
    controller: list[MqttMessage] = []
    broker.subscribe(command_topic, controller.append)
    await settle()
    assert [(m.payload, m.retained) for m in controller] == [(b'{"action":"open"}', True)]

    with caplog.at_level(logging.WARNING, logger="estatehub.transports.mqtt"):
        broker.guard_command_topic(command_topic)  # what MqttJsonGate.start() does
        await settle()

    assert broker.retained(command_topic) is None
    assert broker.stats.retained_commands_cleared == 1
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        f"found a retained command on {command_topic} (17 bytes)"
    ]
    # The controller saw the deletion (an empty live message), and no command was sent.
    assert [(m.payload, m.retained) for m in controller] == [
        (b'{"action":"open"}', True),
        (b"", False),
    ]
    with pytest.raises(TransportError):
        await broker.publish(command_topic, '{"action":"open"}', retain=True)


async def test_command_topic_guarded_before_start_is_cleared_on_start() -> None:
    embedded = EmbeddedMqtt(now=lambda: AT)
    await embedded.start()
    await embedded.publish("estatehub/gate/east/command", '{"action":"open"}', retain=True)
    await embedded.stop()  # the retained store survives, as a broker's does
    embedded.guard_command_topic("estatehub/gate/east/command")
    assert embedded.retained_topics() == ["estatehub/gate/east/command"]

    await embedded.start()
    await settle()

    assert embedded.retained_topics() == []
    assert embedded.stats.retained_commands_cleared == 1
    await embedded.stop()


async def test_recursion_error_escaping_a_callback_is_a_rejection_live_and_retained(
    broker: EmbeddedMqtt,
) -> None:
    rejected: list[str] = []
    broker.on_rejected = lambda message, reason: rejected.append(reason)
    deep = b'{"smoke":' + b"[" * 5000 + b"]" * 5000 + b"}"

    def careless_adapter(message: MqttMessage) -> None:
        json.loads(message.payload)

    name = f"{careless_adapter.__module__}.{careless_adapter.__qualname__}"
    await broker.publish("zigbee2mqtt/retained-bomb", deep, retain=True)
    broker.subscribe("zigbee2mqtt/+", careless_adapter)
    await settle()  # the retained message reaches the new subscription
    await broker.publish(SMOKE_TOPIC, deep)
    await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
    await settle()

    assert rejected == [
        f"zigbee2mqtt/retained-bomb: callback {name} hit RecursionError, most likely on "
        "JSON nested too deeply",
        f"{SMOKE_TOPIC}: callback {name} hit RecursionError, most likely on JSON nested too deeply",
    ]
    assert (broker.stats.rejected, broker.stats.callback_errors) == (2, 0)
    assert broker.stats.dispatched == 1  # SMOKE_ALARM went through


async def test_commands_are_qos1_and_never_retained(broker: EmbeddedMqtt) -> None:
    seen: list[MqttMessage] = []
    broker.subscribe("zigbee2mqtt/+/set", seen.append, qos=0)
    await broker.publish_command("zigbee2mqtt/b3-1202-siren/set", '{"warning":{"mode":"stop"}}')
    await settle()
    assert seen == [
        MqttMessage("zigbee2mqtt/b3-1202-siren/set", b'{"warning":{"mode":"stop"}}', AT, 1, False)
    ]
    assert broker.retained_topics() == []
    with pytest.raises(TransportError) as caught:
        await broker.publish("zigbee2mqtt/b3-1202-siren/set", "{}", retain=True)
    assert "refusing to publish a retained message on command topic" in str(caught.value)


async def test_injected_message_is_dispatched_at_once_and_seen_by_taps() -> None:
    embedded = EmbeddedMqtt(now=lambda: AT)  # replay does not even need start()
    events: list[str] = []
    embedded.taps.append(lambda m: events.append(f"tap {m.topic}"))
    embedded.subscribe(SMOKE_TOPIC, lambda m: events.append(f"adapter {m.payload!r}"))

    recorded = MqttMessage(SMOKE_TOPIC, SMOKE_ALARM, AT, 0, False)
    embedded.inject(recorded)

    assert events == [f"tap {SMOKE_TOPIC}", f"adapter {SMOKE_ALARM!r}"]
    assert embedded.retained_topics() == []
    assert embedded.stats.received == 1


async def test_unsubscribed_adapter_hears_nothing_more(broker: EmbeddedMqtt) -> None:
    seen: list[bytes] = []
    unsubscribe = broker.subscribe(SMOKE_TOPIC, lambda m: seen.append(m.payload))
    await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
    await settle()
    unsubscribe()
    unsubscribe()  # twice is harmless
    await broker.publish(SMOKE_TOPIC, SMOKE_CLEAR)
    await settle()
    assert seen == [SMOKE_ALARM]
    assert broker.subscriptions() == []
    assert broker.stats.unmatched == 1


async def test_bad_filter_and_bad_topic_are_refused(broker: EmbeddedMqtt) -> None:
    with pytest.raises(InvalidTopicError):
        broker.subscribe("zigbee2mqtt/#/set", lambda m: None)
    with pytest.raises(InvalidTopicError):
        await broker.publish("zigbee2mqtt/+/set", "{}")
    with pytest.raises(TransportError) as caught:
        broker.subscribe("zigbee2mqtt/#", lambda m: None, qos=3)
    assert str(caught.value) == "subscription to 'zigbee2mqtt/#': QoS must be 0, 1 or 2, got 3"


async def test_messages_after_stop_are_dropped(broker: EmbeddedMqtt) -> None:
    seen: list[bytes] = []
    broker.subscribe(SMOKE_TOPIC, lambda m: seen.append(m.payload))
    await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
    await broker.stop()
    await settle()
    assert seen == []
    with pytest.raises(TransportError):
        await broker.publish(SMOKE_TOPIC, SMOKE_ALARM)
