"""The real-broker transport against a real Mosquitto (never a mock client).

Every test gets its own broker on a free port (``mosquitto_broker``) and its own topic
prefix, and checks what a second, independent aiomqtt client sees where that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from estatehub.exceptions import PayloadRejected, TransportError
from estatehub.testing.mosquitto import Mosquitto, free_port
from estatehub.testing.mosquitto import mosquitto_broker as mosquitto_broker  # fixture
from estatehub.transports import mqtt as mqtt_module
from estatehub.transports.base import MqttMessage
from estatehub.transports.mqtt import (
    AiomqttTransport,
    ConnectionState,
    _IngestClient,
    _ReadBufferedSocket,
    reconnect_delay,
)
from estatehub.transports.topics import InvalidTopicError

AT = datetime(2026, 3, 1, 8, 15, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
SMOKE_ALARM = (
    b'{"smoke":true,"battery_low":false,"linkquality":26,"last_seen":"2019-06-24T15:30:53.312Z"}'
)
SMOKE_CLEAR = b'{"battery":"100.00","voltage":3055,"linkquality":60,"smoke":false}'


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """What estatehub.config.MqttSettings carries, for a test broker."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    keepalive: int = 60
    reconnect_min: float = 0.05
    reconnect_max: float = 0.4
    tls: object = None


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses."""
    return f"test/{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_transport(
    mosquitto_broker: Mosquitto,
) -> AsyncIterator[Callable[..., AiomqttTransport]]:
    made: list[AiomqttTransport] = []

    def make(**kwargs: object) -> AiomqttTransport:
        transport = AiomqttTransport(
            Settings(mosquitto_broker.host, mosquitto_broker.port),
            now=lambda: AT,
            rng=random.Random(1),
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.stop()


@contextlib.asynccontextmanager
async def other_client(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """An independent, stock aiomqtt client on the same broker."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        yield client


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def next_messages(
    client: aiomqtt.Client, count: int, timeout: float = 5.0
) -> list[aiomqtt.Message]:
    async def collect() -> list[aiomqtt.Message]:
        got: list[aiomqtt.Message] = []
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                return got
        return got

    return await asyncio.wait_for(collect(), timeout)


async def test_smoke_alarm_published_by_the_hub_comes_back_to_its_subscriber(
    make_transport: Callable[..., AiomqttTransport], prefix: str
) -> None:
    transport = make_transport()
    seen: list[MqttMessage] = []
    transport.subscribe(f"{prefix}/zigbee2mqtt/b3-1202-smoke", seen.append)  # before start
    async with transport:
        await transport.wait_connected(5)
        await transport.publish(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_ALARM)
        await wait_until(lambda: len(seen) == 1)

    assert seen == [MqttMessage(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_ALARM, AT, 1, False)]
    assert transport.state is ConnectionState.STOPPED
    assert transport.stats.received == 1
    assert transport.stats.dispatched == 1


async def test_wildcard_subscriptions_each_get_what_they_match(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport()
    by_filter: dict[str, list[str]] = {}
    for topic_filter in (
        "zigbee2mqtt/+",
        "zigbee2mqtt/#",
        "zigbee2mqtt/b3-1202-smoke",
        "tele/+/STATE",
    ):
        by_filter[topic_filter] = []
        transport.subscribe(
            f"{prefix}/{topic_filter}",
            lambda m, f=topic_filter: by_filter[f].append(m.topic.removeprefix(prefix + "/")),
        )
    await transport.start()
    await transport.wait_connected(5)
    async with other_client(mosquitto_broker) as device:
        for topic in (
            "zigbee2mqtt/b3-1202-smoke",
            "zigbee2mqtt/b3-1202-smoke/availability",
            "zigbee2mqtt/b3-1202-gas",
            "tele/lamp-7/SENSOR",  # no filter wants it, so the broker keeps it to itself
            "tele/lamp-7/STATE",  # last: once it is here, everything sent before has come
        ):
            await device.publish(f"{prefix}/{topic}", b"{}", qos=1)
    await wait_until(lambda: by_filter["tele/+/STATE"] == ["tele/lamp-7/STATE"])

    assert by_filter == {
        "zigbee2mqtt/+": ["zigbee2mqtt/b3-1202-smoke", "zigbee2mqtt/b3-1202-gas"],
        "zigbee2mqtt/#": [
            "zigbee2mqtt/b3-1202-smoke",
            "zigbee2mqtt/b3-1202-smoke/availability",
            "zigbee2mqtt/b3-1202-gas",
        ],
        "zigbee2mqtt/b3-1202-smoke": ["zigbee2mqtt/b3-1202-smoke"],
        "tele/+/STATE": ["tele/lamp-7/STATE"],
    }
    assert transport.stats.received == 4  # one copy per message despite overlapping filters
    assert transport.subscriptions() == [
        (f"{prefix}/zigbee2mqtt/+", 1),
        (f"{prefix}/zigbee2mqtt/#", 1),
        (f"{prefix}/zigbee2mqtt/b3-1202-smoke", 1),
        (f"{prefix}/tele/+/STATE", 1),
    ]


async def test_retained_lock_state_arrives_flagged_retained(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    async with other_client(mosquitto_broker) as lock:
        await lock.publish(f"{prefix}/gate-north/state", b"LOCKED", qos=1, retain=True)
    transport = make_transport()
    seen: list[MqttMessage] = []
    transport.subscribe(f"{prefix}/+/state", seen.append)
    await transport.start()
    await wait_until(lambda: len(seen) == 1)
    assert seen == [MqttMessage(f"{prefix}/gate-north/state", b"LOCKED", AT, 1, True)]


async def test_subscriptions_come_back_after_the_broker_is_killed_and_restarted(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport()
    states: list[ConnectionState] = []
    transport.state_listeners.append(states.append)
    seen: list[bytes] = []
    transport.subscribe(f"{prefix}/zigbee2mqtt/+", lambda m: seen.append(m.payload))
    await transport.start()
    await transport.wait_connected(5)
    await transport.publish(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_CLEAR)
    await wait_until(lambda: seen == [SMOKE_CLEAR])

    mosquitto_broker.kill()
    await wait_until(lambda: transport.state is ConnectionState.BACKING_OFF)
    mosquitto_broker.start()  # same port, fresh broker: it knows no subscriptions
    await transport.wait_connected(10)

    async with other_client(mosquitto_broker) as device:
        await device.publish(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_ALARM, qos=1)
    await wait_until(lambda: seen == [SMOKE_CLEAR, SMOKE_ALARM])
    assert transport.stats.reconnects == 1
    assert states[:3] == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
    ]
    assert ConnectionState.BACKING_OFF in states
    assert states[-1] is ConnectionState.CONNECTED


async def test_state_listeners_hear_a_first_attempt_fail_when_no_broker_listens() -> None:
    broker = Mosquitto(port=free_port())  # not started yet: nothing listens on its port
    transport = AiomqttTransport(
        Settings(broker.host, broker.port, reconnect_min=1.0, reconnect_max=1.0), now=lambda: AT
    )
    heard: list[tuple[ConnectionState, str | None]] = []
    transport.state_listeners.append(lambda state: heard.append((state, transport.last_error)))
    try:
        await transport.start()
        await wait_until(lambda: transport.state is ConnectionState.BACKING_OFF)
        broker.start()  # within the one-second backoff
        await transport.wait_connected(5)
        await transport.stop()
    finally:
        await transport.stop()
        broker.close()

    refused = "[Errno 111] Connection refused"
    assert heard == [
        (ConnectionState.CONNECTING, None),
        (ConnectionState.DISCONNECTED, refused),
        (ConnectionState.BACKING_OFF, refused),
        (ConnectionState.CONNECTING, refused),
        (ConnectionState.CONNECTED, None),
        (ConnectionState.STOPPED, None),
    ]
    assert transport.stats.reconnects == 0  # the first successful connection is no reconnect


async def test_state_listeners_hear_every_step_when_the_broker_is_killed_and_restarted(
    mosquitto_broker: Mosquitto,
) -> None:
    transport = AiomqttTransport(
        Settings(
            mosquitto_broker.host, mosquitto_broker.port, reconnect_min=1.0, reconnect_max=1.0
        ),
        now=lambda: AT,
    )
    heard: list[ConnectionState] = []
    errors: list[str | None] = []

    def listener(state: ConnectionState) -> None:
        heard.append(state)
        errors.append(transport.last_error)

    transport.state_listeners.append(listener)
    try:
        await transport.start()
        await transport.wait_connected(5)
        mosquitto_broker.kill()  # a crash: no DISCONNECT, the socket just dies
        await wait_until(lambda: transport.state is ConnectionState.BACKING_OFF)
        mosquitto_broker.start()  # same port, within the one-second backoff
        await wait_until(lambda: heard.count(ConnectionState.CONNECTED) == 2)
    finally:
        await transport.stop()

    assert heard == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
        ConnectionState.BACKING_OFF,
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.STOPPED,
    ]
    assert errors[:2] == [None, None]
    assert errors[2] is not None and errors[2] == errors[3] == errors[4]
    assert errors[5:] == [None, None]
    assert transport.stats.reconnects == 1


def test_reconnect_delays_double_up_to_the_cap() -> None:
    class Highest:
        def uniform(self, low: float, high: float) -> float:
            return high

    class Lowest:
        def uniform(self, low: float, high: float) -> float:
            return low

    highest = [reconnect_delay(n, 0.5, 8.0, Highest()) for n in range(7)]  # type: ignore[arg-type]
    lowest = [reconnect_delay(n, 0.5, 8.0, Lowest()) for n in range(7)]  # type: ignore[arg-type]
    assert highest == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert lowest == [0.5] * 7
    assert reconnect_delay(5000, 0.5, 8.0, Highest()) == 8.0  # type: ignore[arg-type]


def test_reconnect_delays_are_jittered_reproducibly_with_a_seed() -> None:
    first = [reconnect_delay(n, 1.0, 30.0, random.Random(2026)) for n in range(12)]
    again = [reconnect_delay(n, 1.0, 30.0, random.Random(2026)) for n in range(12)]
    assert first == again
    caps = [min(30.0, 2.0**n) for n in range(12)]
    assert all(1.0 <= delay <= cap for delay, cap in zip(first, caps, strict=True))
    rng = random.Random(7)
    spread = {round(reconnect_delay(6, 1.0, 30.0, rng), 3) for _ in range(50)}
    assert len(spread) == 50  # jittered: fifty hubs do not retry in lock-step
    assert min(spread) >= 1.0
    assert max(spread) <= 30.0


async def test_command_is_sent_qos1_and_not_retained(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    command_topic = f"{prefix}/zigbee2mqtt/b3-1202-siren/set"
    transport = make_transport()
    await transport.start()
    await transport.wait_connected(5)
    async with other_client(mosquitto_broker) as siren:
        await siren.subscribe(command_topic, qos=1)
        await transport.publish_command(command_topic, '{"warning":{"mode":"stop"}}')
        [received] = await next_messages(siren, 1)
    assert received.qos == 1
    assert received.retain is False
    assert received.payload == b'{"warning":{"mode":"stop"}}'

    # Nothing is retained: a newcomer subscribing to the command topic and to a topic with a
    # retained marker gets the marker only (retained messages come in filter order).
    async with other_client(mosquitto_broker) as marker:
        await marker.publish(f"{prefix}/marker", b"x", qos=1, retain=True)
    async with other_client(mosquitto_broker) as newcomer:
        await newcomer.subscribe([(command_topic, 1), (f"{prefix}/marker", 1)])
        [first] = await next_messages(newcomer, 1)
    assert first.topic.value == f"{prefix}/marker"


async def test_retained_command_left_on_a_command_topic_is_cleared(
    make_transport: Callable[..., AiomqttTransport],
    mosquitto_broker: Mosquitto,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    command_topic = f"{prefix}/cmnd/pump-2/POWER"
    async with other_client(mosquitto_broker) as careless_tool:
        await careless_tool.publish(command_topic, b"ON", qos=1, retain=True)
    transport = make_transport()
    await transport.start()
    await transport.wait_connected(5)
    with caplog.at_level(logging.WARNING, logger="estatehub.transports.mqtt"):
        await transport.publish_command(command_topic, "OFF")
        await wait_until(lambda: transport.stats.retained_commands_cleared == 1)
        await wait_until(lambda: not transport._background)
    assert [r.getMessage()[:48] for r in caplog.records] == [
        f"found a retained command on {command_topic}"[:48]
    ]
    async with other_client(mosquitto_broker) as marker:
        await marker.publish(f"{prefix}/marker", b"x", qos=1, retain=True)
    async with other_client(mosquitto_broker) as newcomer:
        await newcomer.subscribe([(command_topic, 1), (f"{prefix}/marker", 1)])
        [first] = await next_messages(newcomer, 1)
    assert first.topic.value == f"{prefix}/marker"
    with pytest.raises(TransportError):
        await transport.publish(command_topic, "ON", retain=True)


@pytest.mark.parametrize("connected_first", [False, True], ids=["before-start", "while-connected"])
async def test_guarded_command_topic_loses_its_retained_open_within_a_second_of_start(
    make_transport: Callable[..., AiomqttTransport],
    mosquitto_broker: Mosquitto,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    connected_first: bool,
) -> None:
    command_topic = f"{prefix}/gate/east/command"
    async with other_client(mosquitto_broker) as careless_tool:
        await careless_tool.publish(command_topic, b'{"action":"open"}', qos=1, retain=True)
    transport = make_transport()
    loop = asyncio.get_running_loop()
    async with other_client(mosquitto_broker) as gate_controller:
        await gate_controller.subscribe(command_topic, qos=1)
        [stored] = await next_messages(gate_controller, 1)
        assert (stored.payload, stored.retain) == (b'{"action":"open"}', True)
        with caplog.at_level(logging.WARNING, logger="estatehub.transports.mqtt"):
            if connected_first:
                await transport.start()
                await transport.wait_connected(5)
                started = loop.time()
                transport.guard_command_topic(command_topic)
            else:
                started = loop.time()
                transport.guard_command_topic(command_topic)  # as an adapter's start() does
                await transport.start()
            # Deleting a retained message is an empty retained publish; live subscribers
            # get it as an empty message.
            [cleared] = await next_messages(gate_controller, 1, timeout=1.0)
            elapsed = loop.time() - started
            await wait_until(lambda: not transport._background)

    assert (cleared.topic.value, cleared.payload) == (command_topic, b"")
    assert elapsed < 1.0
    assert transport.stats.retained_commands_cleared == 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            f"found a retained command on {command_topic} (17 bytes); clearing it so the "
            "device is not re-actuated on every reconnect. Whoever published it must send "
            "commands with retain=false.",
        )
    ]
    # A gate controller reconnecting now gets nothing stored on its command topic.
    async with other_client(mosquitto_broker) as marker:
        await marker.publish(f"{prefix}/marker", b"x", qos=1, retain=True)
    async with other_client(mosquitto_broker) as reconnected:
        await reconnected.subscribe([(command_topic, 1), (f"{prefix}/marker", 1)])
        [first] = await next_messages(reconnected, 1)
    assert first.topic.value == f"{prefix}/marker"
    with pytest.raises(TransportError):
        await transport.publish(command_topic, '{"action":"open"}', retain=True)


async def test_guarding_a_command_topic_twice_subscribes_once_and_wildcards_are_refused(
    make_transport: Callable[..., AiomqttTransport], prefix: str
) -> None:
    transport = make_transport()
    transport.guard_command_topic(f"{prefix}/gate/east/command")
    transport.guard_command_topic(f"{prefix}/gate/east/command")
    assert transport.subscriptions() == [(f"{prefix}/gate/east/command", 1)]
    with pytest.raises(InvalidTopicError) as caught:
        transport.guard_command_topic(f"{prefix}/gate/+/command")
    assert caught.value.reason == "wildcards '+' and '#' are only allowed in subscription filters"
    assert transport.subscriptions() == [(f"{prefix}/gate/east/command", 1)]


async def test_rejected_payload_is_reported_and_the_next_message_still_arrives(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport()
    rejected: list[tuple[bytes, str]] = []
    transport.on_rejected = lambda message, reason: rejected.append((message.payload, reason))
    parsed: list[bytes] = []

    def parse_smoke(message: MqttMessage) -> None:
        if not message.payload.startswith(b"{"):
            raise PayloadRejected(f"not a JSON object: {message.payload[:20]!r}")
        parsed.append(message.payload)

    transport.subscribe(f"{prefix}/zigbee2mqtt/+", parse_smoke)
    await transport.start()
    await transport.wait_connected(5)
    async with other_client(mosquitto_broker) as device:
        await device.publish(f"{prefix}/zigbee2mqtt/b3-1202-smoke", b"offline", qos=1)
        await device.publish(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_ALARM, qos=1)
    await wait_until(lambda: len(parsed) == 1)
    assert rejected == [(b"offline", "not a JSON object: b'offline'")]
    assert parsed == [SMOKE_ALARM]
    assert transport.stats.rejected == 1
    assert transport.state is ConnectionState.CONNECTED


async def test_crashing_callback_is_logged_and_the_connection_survives(
    make_transport: Callable[..., AiomqttTransport], prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make_transport()

    def broken_adapter(message: MqttMessage) -> None:
        raise ZeroDivisionError("vendor firmware sent 0 as the divisor")

    seen: list[bytes] = []
    transport.subscribe(f"{prefix}/x", broken_adapter)
    transport.subscribe(f"{prefix}/x", lambda m: seen.append(m.payload))
    await transport.start()
    await transport.wait_connected(5)
    with caplog.at_level(logging.ERROR, logger="estatehub.transports.mqtt"):
        await transport.publish(f"{prefix}/x", "1")
        await transport.publish(f"{prefix}/x", "2")
        await wait_until(lambda: seen == [b"1", b"2"])
    name = f"{broken_adapter.__module__}.{broken_adapter.__qualname__}"
    assert [r.getMessage() for r in caplog.records] == [
        f"MQTT callback {name} failed on a message on {prefix}/x"
    ] * 2
    assert transport.stats.callback_errors == 2
    assert transport.stats.reconnects == 0


async def test_recursion_error_escaping_a_callback_is_a_rejection_and_the_connection_stays(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport()
    rejected: list[tuple[str, str]] = []
    transport.on_rejected = lambda message, reason: rejected.append((message.topic, reason))
    parsed: list[object] = []

    def third_party_adapter(message: MqttMessage) -> None:
        parsed.append(json.loads(message.payload))  # catches nothing, as careless code does

    transport.subscribe(f"{prefix}/zigbee2mqtt/+", third_party_adapter)
    await transport.start()
    await transport.wait_connected(5)
    topic = f"{prefix}/zigbee2mqtt/b3-1202-smoke"
    async with other_client(mosquitto_broker) as attacker:
        await attacker.publish(topic, b'{"smoke":' + b"[" * 5000 + b"]" * 5000 + b"}", qos=1)
        await attacker.publish(topic, SMOKE_ALARM, qos=1)
    await wait_until(lambda: len(parsed) == 1)

    name = f"{third_party_adapter.__module__}.{third_party_adapter.__qualname__}"
    assert rejected == [
        (
            topic,
            f"{topic}: callback {name} hit RecursionError, most likely on JSON nested too deeply",
        )
    ]
    assert parsed == [json.loads(SMOKE_ALARM)]
    assert (transport.stats.rejected, transport.stats.callback_errors) == (1, 0)
    assert transport.state is ConnectionState.CONNECTED
    assert transport.stats.reconnects == 0


async def test_publishing_while_the_broker_is_down(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport(publish_wait=0.3)
    await transport.start()
    await transport.wait_connected(5)
    mosquitto_broker.stop()
    await wait_until(lambda: transport.state is not ConnectionState.CONNECTED)

    with pytest.raises(TransportError) as command_error:
        await transport.publish_command(f"{prefix}/cmnd/pump-2/POWER", "ON")
    assert "Commands are never queued for later delivery" in str(command_error.value)
    assert f"127.0.0.1:{mosquitto_broker.port}" in str(command_error.value)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransportError) as publish_error:
        await transport.publish(f"{prefix}/state", "x")
    assert loop.time() - started >= 0.3  # it waited publish_wait for the broker
    assert str(publish_error.value).startswith(
        f"cannot publish to '{prefix}/state': not connected to the MQTT broker at "
    )

    mosquitto_broker.start()
    await transport.wait_connected(10)
    await transport.publish(f"{prefix}/state", "x")  # fine again


async def test_a_normal_publish_rides_out_a_quick_reconnect(
    make_transport: Callable[..., AiomqttTransport], mosquitto_broker: Mosquitto, prefix: str
) -> None:
    transport = make_transport(publish_wait=5.0)
    seen: list[bytes] = []
    transport.subscribe(f"{prefix}/state", lambda m: seen.append(m.payload))
    await transport.start()
    await transport.wait_connected(5)
    mosquitto_broker.kill()
    await wait_until(lambda: transport.state is not ConnectionState.CONNECTED)
    pending = asyncio.ensure_future(transport.publish(f"{prefix}/state", "after restart"))
    await asyncio.sleep(0.1)
    assert not pending.done()
    mosquitto_broker.start()
    await asyncio.wait_for(pending, 10)
    await wait_until(lambda: seen == [b"after restart"])


async def test_broker_sees_one_subscription_per_filter_and_loses_it_with_the_last_callback(
    prefix: str,
) -> None:
    with Mosquitto(log_types=("error", "subscribe", "unsubscribe")) as broker:
        transport = AiomqttTransport(
            Settings(broker.host, broker.port, client_id="hub-under-test"), now=lambda: AT
        )
        async with transport:
            await transport.wait_connected(5)
            first = transport.subscribe(f"{prefix}/zigbee2mqtt/#", lambda m: None)
            second = transport.subscribe(f"{prefix}/zigbee2mqtt/#", lambda m: None)
            await wait_until(lambda: not transport._background)
            first()
            await asyncio.sleep(0.1)
            second()
            await wait_until(lambda: not transport._background)
            await asyncio.sleep(0.1)
        lines = [
            line.split(": ", 1)[1] for line in broker.log_text().splitlines() if prefix in line
        ]
    assert lines == [
        f"hub-under-test 1 {prefix}/zigbee2mqtt/#",
        f"hub-under-test {prefix}/zigbee2mqtt/#",
    ]


async def test_a_burst_of_thousands_of_messages_arrives_complete_and_in_order(
    make_transport: Callable[..., AiomqttTransport],
    mosquitto_broker: Mosquitto,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tiny per-wake-up budget forces the path where bytes are left in our read buffer,
    # invisible to the selector, and the reader must come back for them by itself.
    monkeypatch.setattr(mqtt_module, "_PACKETS_PER_READ_EVENT", 7)
    clock_reads = 0

    def counting_now() -> datetime:
        nonlocal clock_reads
        clock_reads += 1
        return AT

    transport = make_transport()
    transport._now = counting_now
    seen: list[int] = []
    transport.subscribe(f"{prefix}/zigbee2mqtt/+", lambda m: seen.append(int(m.payload)), qos=0)
    await transport.start()
    await transport.wait_connected(5)
    clock_reads = 0
    async with other_client(mosquitto_broker) as devices:
        # gather: every PUBLISH is handed to the socket in the same loop step, a burst.
        await asyncio.gather(
            *(devices.publish(f"{prefix}/zigbee2mqtt/dev-{n % 50}", b"%d" % n) for n in range(5000))
        )
    await wait_until(lambda: len(seen) == 5000, timeout=30)
    assert seen == list(range(5000))
    assert clock_reads < 2500  # one clock read per read burst, not one per message


async def test_injected_message_is_dispatched_without_the_broker(
    make_transport: Callable[..., AiomqttTransport], prefix: str
) -> None:
    transport = make_transport()
    events: list[str] = []
    transport.taps.append(lambda m: events.append("tap"))
    transport.subscribe(f"{prefix}/zigbee2mqtt/+", lambda m: events.append(m.text()))
    transport.inject(MqttMessage(f"{prefix}/zigbee2mqtt/b3-1202-smoke", SMOKE_ALARM, AT))
    assert events == ["tap", SMOKE_ALARM.decode()]
    assert transport.state is ConnectionState.DISCONNECTED


async def test_bad_filter_is_refused_before_reaching_the_broker(
    make_transport: Callable[..., AiomqttTransport],
) -> None:
    transport = make_transport()
    with pytest.raises(InvalidTopicError) as caught:
        transport.subscribe("zigbee2mqtt/#/availability", lambda m: None)
    assert caught.value.reason == "'#' is only allowed as the last level"
    assert transport.subscriptions() == []


async def test_stop_leaves_no_tasks_and_no_sockets_behind(
    make_transport: Callable[..., AiomqttTransport], prefix: str
) -> None:
    def open_sockets() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor
                count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        return count

    before = open_sockets()
    transport = make_transport()
    transport.subscribe(f"{prefix}/#", lambda m: None)
    await transport.start()
    await transport.wait_connected(5)
    assert open_sockets() > before
    await transport.stop()
    assert transport.state is ConnectionState.STOPPED
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("estatehub-mqtt")]
    assert leftover == []
    assert open_sockets() == before
    with pytest.raises(TransportError) as caught:
        await transport.publish(f"{prefix}/x", "1")
    assert str(caught.value) == f"cannot publish to '{prefix}/x': the MQTT transport is stopped"


async def test_aiomqtt_internals_the_fast_path_relies_on_exist(
    make_transport: Callable[..., AiomqttTransport], prefix: str
) -> None:
    # If an aiomqtt or paho upgrade moves any of these, _IngestClient must be revisited.
    for name in ("_on_socket_open", "_misc_loop", "_on_message"):
        assert callable(getattr(aiomqtt.Client, name)), name
    transport = make_transport()
    await transport.start()
    await transport.wait_connected(5)
    client = transport._client
    assert isinstance(client, _IngestClient)
    for name in ("_client", "_disconnected", "_loop"):
        assert hasattr(client, name), name
    assert isinstance(client._disconnected, asyncio.Future)
    paho_client = client._client
    assert paho_client.on_message == client._estatehub_on_message
    assert isinstance(paho_client._sock, _ReadBufferedSocket)  # our reader is installed
    assert paho_client.socket() is paho_client._sock


async def test_transport_takes_the_estate_config_mqtt_settings(
    mosquitto_broker: Mosquitto, prefix: str
) -> None:
    from estatehub.config import MqttSettings

    settings = MqttSettings(
        host=mosquitto_broker.host,
        port=mosquitto_broker.port,
        client_id=f"estate-hub-{uuid.uuid4().hex[:6]}",
        reconnect_min=0.05,
        reconnect_max=0.2,
    )
    seen: list[bytes] = []
    async with AiomqttTransport(settings, now=lambda: AT) as transport:
        transport.subscribe(f"{prefix}/bridge/state", lambda m: seen.append(m.payload))
        await transport.wait_connected(5)
        await wait_until(lambda: not transport._background)
        await transport.publish(f"{prefix}/bridge/state", '{"state":"online"}')
        await wait_until(lambda: seen == [b'{"state":"online"}'])
