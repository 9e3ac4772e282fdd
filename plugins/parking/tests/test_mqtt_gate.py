"""The generic MQTT JSON gate: its pure parsing/encoding, and the adapter on a real Mosquitto.

The broker tests run the adapter on the hub's own transport (``AiomqttTransport``) against
a Mosquitto started for this module on a free port; the gate controller is a second,
independent aiomqtt client (no mocks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
import voluptuous as vol
from paho.mqtt.subscribeoptions import SubscribeOptions

from estatehub.exceptions import PayloadRejected, TransportError
from estatehub.hookspecs.parking import BarrierCommand, Direction, PlateRead
from estatehub.testing.mosquitto import Mosquitto
from estatehub.transports.base import MqttMessage
from estatehub.transports.mqtt import AiomqttTransport, ConnectionState
from estatehub_parking.mqtt_gate import (
    MQTT_GATE_OPTIONS_SCHEMA,
    GateCommandFailed,
    GateState,
    GateStatus,
    MqttGateConfigError,
    MqttJsonGate,
    command_payload,
    parse_plate_message,
    parse_status_message,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 3, 1, 8, 15, 2, 400000, tzinfo=SHANGHAI)
PLUS_EIGHT = timezone(timedelta(hours=8))
GATE = "gate-north"
PLATE_TOPIC = f"estatehub/gate/{GATE}/plate"
STATUS_TOPIC = f"estatehub/gate/{GATE}/status"

FULL_PLATE_MESSAGE = (
    '{"plate":"沪A12345","time":"2026-03-01T08:15:02+08:00","direction":"in",'
    '"confidence":93,"colour":"blue","event_id":"3f1c9e2a-0d7b-4c55-9a51-1b2f4e6d8c01",'
    '"retransmission":false}'
).encode()


def on_topic(topic: str, payload: bytes, *, retained: bool = False) -> MqttMessage:
    """A message as the transport delivers it."""
    return MqttMessage(topic=topic, payload=payload, received_at=RECEIVED, qos=1, retained=retained)


# --- plate messages -----------------------------------------------------------------


def test_full_plate_message_becomes_a_plate_read_with_every_field() -> None:
    read = parse_plate_message(on_topic(PLATE_TOPIC, FULL_PLATE_MESSAGE), GATE)
    assert read == PlateRead(
        gate=GATE,
        raw_plate="沪A12345",
        received_at=RECEIVED,
        device_time=datetime(2026, 3, 1, 8, 15, 2, tzinfo=PLUS_EIGHT),
        direction=Direction.IN,
        confidence=93,
        plate_colour="blue",
        event_key="3f1c9e2a-0d7b-4c55-9a51-1b2f4e6d8c01",
        retransmission=False,
        vendor="mqtt_json",
    )


def test_plate_alone_is_enough_and_takes_the_gates_default_direction() -> None:
    read = parse_plate_message(
        on_topic(PLATE_TOPIC, '{"plate":"沪AD12345"}'.encode()),
        GATE,
        default_direction=Direction.OUT,
    )
    assert read == PlateRead(
        gate=GATE,
        raw_plate="沪AD12345",
        received_at=RECEIVED,
        direction=Direction.OUT,
        vendor="mqtt_json",
    )


def test_plate_alone_without_a_default_leaves_direction_unknown() -> None:
    read = parse_plate_message(on_topic(PLATE_TOPIC, '{"plate":"沪A12345"}'.encode()), GATE)
    assert read.direction is None


def test_direction_in_the_message_beats_the_gates_default() -> None:
    payload = '{"plate":"沪A12345","direction":"out"}'.encode()
    read = parse_plate_message(on_topic(PLATE_TOPIC, payload), GATE, default_direction=Direction.IN)
    assert read.direction is Direction.OUT


def test_plate_is_kept_exactly_as_the_controller_sent_it() -> None:
    # Normalising (colour prefix, separator dot) is the parking subsystem's job.
    payload = '{"plate":"蓝沪A·12345","colour":null,"event_id":null}'.encode()
    read = parse_plate_message(on_topic(PLATE_TOPIC, payload), GATE)
    assert (read.raw_plate, read.plate_colour, read.event_key) == ("蓝沪A·12345", None, None)


def test_utc_time_with_z_and_a_resend_flag() -> None:
    payload = b'{"plate":"\\u6caaA12345","time":"2026-03-01T00:15:02.250Z","retransmission":true}'
    read = parse_plate_message(on_topic(PLATE_TOPIC, payload), GATE)
    assert (read.raw_plate, read.device_time, read.retransmission) == (
        "沪A12345",
        datetime(2026, 3, 1, 0, 15, 2, 250000, tzinfo=UTC),
        True,
    )


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    payload = '{"plate":"沪A12345","lane":2,"picture_url":"http://10.0.0.7/p/1.jpg"}'.encode()
    read = parse_plate_message(on_topic(PLATE_TOPIC, payload), GATE)
    assert read == PlateRead(
        gate=GATE, raw_plate="沪A12345", received_at=RECEIVED, vendor="mqtt_json"
    )


def test_retained_plate_message_never_becomes_a_plate_read() -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_plate_message(on_topic(PLATE_TOPIC, FULL_PLATE_MESSAGE, retained=True), GATE)
    assert rejected.value.reason == (
        f"{PLATE_TOPIC}: retained message is old state, not a vehicle at the gate; ignored"
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "empty payload"),
        ("沪A12345", "payload is not JSON (Expecting value: line 1 column 1 (char 0))"),
        ('["沪A12345"]', "payload must be a JSON object, got list"),
        ("{}", "field 'plate' is required and must be a non-empty string, got null"),
        ('{"plate":""}', "field 'plate' is required and must be a non-empty string, got \"\""),
        ('{"plate":"  "}', "field 'plate' is required and must be a non-empty string, got \"  \""),
        ('{"plate":12345}', "field 'plate' is required and must be a non-empty string, got 12345"),
        ('{"plate":"' + "A" * 33 + '"}', "field 'plate' is longer than 32 characters"),
        (
            '{"plate":"沪A12345","time":"2026-03-01T08:15:02"}',
            "field 'time' must carry a UTC offset (e.g. +08:00 or Z), got \"2026-03-01T08:15:02\"",
        ),
        (
            '{"plate":"沪A12345","time":"20260301T081502"}',
            "field 'time' must carry a UTC offset (e.g. +08:00 or Z), got \"20260301T081502\"",
        ),
        (
            '{"plate":"沪A12345","time":"08:15 this morning"}',
            "field 'time' is not an ISO 8601 time, got \"08:15 this morning\"",
        ),
        (
            '{"plate":"沪A12345","time":1772324102}',
            "field 'time' must be an ISO 8601 string, got 1772324102",
        ),
        (
            '{"plate":"沪A12345","direction":"IN"}',
            'field \'direction\' must be "in" or "out", got "IN"',
        ),
        (
            '{"plate":"沪A12345","direction":"forward"}',
            'field \'direction\' must be "in" or "out", got "forward"',
        ),
        (
            '{"plate":"沪A12345","confidence":0.93}',
            "field 'confidence' must be an integer 0–100, got 0.93",
        ),
        (
            '{"plate":"沪A12345","confidence":101}',
            "field 'confidence' must be an integer 0–100, got 101",
        ),
        (
            '{"plate":"沪A12345","confidence":"93"}',
            "field 'confidence' must be an integer 0–100, got \"93\"",
        ),
        (
            '{"plate":"沪A12345","confidence":true}',
            "field 'confidence' must be an integer 0–100, got true",
        ),
        ('{"plate":"沪A12345","colour":7}', "field 'colour' must be a string, got 7"),
        ('{"plate":"沪A12345","event_id":42}', "field 'event_id' must be a string, got 42"),
        (
            '{"plate":"沪A12345","retransmission":"false"}',
            "field 'retransmission' must be true or false, got \"false\"",
        ),
        ('{"plate":"沪A12345","confidence":NaN}', "payload is not JSON (NaN is not valid JSON)"),
        ('{"plate":' + "[" * 5000 + "]" * 5000 + "}", "payload is JSON nested too deeply"),
        ("[" * 100_000, "payload is JSON nested too deeply"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_plate_message_that_cannot_be_trusted_is_rejected_naming_the_field(
    payload: str, reason: str
) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_plate_message(on_topic(PLATE_TOPIC, payload.encode()), GATE)
    assert rejected.value.reason == f"{PLATE_TOPIC}: {reason}"


# --- status messages ----------------------------------------------------------------


def test_fault_status_with_detail() -> None:
    payload = b'{"state":"fault","detail":"barrier arm motor overcurrent"}'
    assert parse_status_message(on_topic(STATUS_TOPIC, payload), GATE) == GateStatus(
        gate=GATE,
        state=GateState.FAULT,
        received_at=RECEIVED,
        detail="barrier arm motor overcurrent",
    )


def test_retained_offline_status_is_the_controllers_last_will() -> None:
    status = parse_status_message(
        on_topic(STATUS_TOPIC, b'{"state":"offline"}', retained=True), GATE
    )
    assert status == GateStatus(
        gate=GATE, state=GateState.OFFLINE, received_at=RECEIVED, retained=True
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"online", "payload is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (
            b'{"state":"broken"}',
            'field \'state\' must be one of "online", "offline", "fault", got "broken"',
        ),
        (
            b'{"detail":"x"}',
            'field \'state\' must be one of "online", "offline", "fault", got null',
        ),
        (
            b'{"state":"fault","detail":{"code":7}}',
            "field 'detail' must be a string, got {\"code\": 7}",
        ),
        (
            b'{"state":"online","detail":' + b"[" * 5000 + b"]" * 5000 + b"}",
            "payload is JSON nested too deeply",
        ),
    ],
)
def test_status_in_no_known_form_is_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_status_message(on_topic(STATUS_TOPIC, payload), GATE)
    assert rejected.value.reason == f"{STATUS_TOPIC}: {reason}"


# --- commands -----------------------------------------------------------------------

OPEN_FOR_RESIDENT = BarrierCommand(
    gate=GATE,
    action="open",
    command_id="cmd-20260301-0815-0001",
    issued_at=datetime(2026, 3, 1, 8, 15, 3, tzinfo=SHANGHAI),
    plate="沪A12345",
    reason="resident",
)


def test_open_command_payload_is_compact_utf8_json_with_every_field() -> None:
    assert (
        command_payload(OPEN_FOR_RESIDENT)
        == (
            '{"action":"open","command_id":"cmd-20260301-0815-0001","gate":"gate-north",'
            '"plate":"沪A12345","reason":"resident","issued_at":"2026-03-01T08:15:03+08:00"}'
        ).encode()
    )


def test_guard_close_command_keeps_empty_plate_and_reason() -> None:
    command = BarrierCommand(
        gate=GATE,
        action="close",
        command_id="cmd-2",
        issued_at=datetime(2026, 3, 1, 0, 20, tzinfo=UTC),
    )
    assert json.loads(command_payload(command)) == {
        "action": "close",
        "command_id": "cmd-2",
        "gate": GATE,
        "plate": "",
        "reason": "",
        "issued_at": "2026-03-01T00:20:00+00:00",
    }


def test_command_with_an_unknown_action_is_refused() -> None:
    command = BarrierCommand(
        gate=GATE, action="lift", command_id="cmd-3", issued_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    with pytest.raises(GateCommandFailed) as failed:
        command_payload(command)
    assert str(failed.value) == (
        "gate 'gate-north': barrier action 'lift' is not one of open, close (command cmd-3)"
    )


def test_command_with_a_naive_time_is_refused() -> None:
    command = BarrierCommand(
        gate=GATE, action="open", command_id="cmd-4", issued_at=datetime(2026, 3, 1, 8, 15)
    )
    with pytest.raises(GateCommandFailed) as failed:
        command_payload(command)
    assert str(failed.value) == "gate 'gate-north': command cmd-4 has a naive issued_at"


# --- options ------------------------------------------------------------------------


def test_options_default_to_the_estatehub_prefix_and_no_direction() -> None:
    assert MQTT_GATE_OPTIONS_SCHEMA({}) == {"prefix": "estatehub/gate", "default_direction": None}


def test_entry_gate_options() -> None:
    assert MQTT_GATE_OPTIONS_SCHEMA(
        {"prefix": "estate/sh-0042/gates", "default_direction": "in"}
    ) == {
        "prefix": "estate/sh-0042/gates",
        "default_direction": Direction.IN,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "estate/+/gates"}, "prefix 'estate/+/gates' contains the MQTT wildcard '+'"),
        ({"prefix": "estate/"}, "prefix 'estate/' has an empty topic level"),
        ({"default_direction": "sideways"}, 'default_direction must be "in" or "out"'),
        ({"direction": "in"}, "extra keys not allowed"),
    ],
)
def test_options_that_break_the_topics_are_config_errors(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(vol.Invalid) as invalid:
        MQTT_GATE_OPTIONS_SCHEMA(options)
    assert str(invalid.value).startswith(message)


@pytest.mark.parametrize("gate_id", ["north/1", "gate+", "gate#", ""])
def test_gate_id_must_be_one_topic_level(gate_id: str) -> None:
    with pytest.raises(MqttGateConfigError) as error:
        MqttJsonGate(None, gate_id, {}, lambda _: None)  # type: ignore[arg-type]
    assert str(error.value).startswith(f"gate {gate_id!r}: invalid MQTT JSON gate setup: gate id")


def test_gate_topics_under_a_custom_prefix() -> None:
    gate = MqttJsonGate(None, GATE, {"prefix": "estate/sh-0042"}, lambda _: None)  # type: ignore[arg-type]
    assert (gate.plate_topic, gate.command_topic, gate.status_topic) == (
        "estate/sh-0042/gate-north/plate",
        "estate/sh-0042/gate-north/command",
        "estate/sh-0042/gate-north/status",
    )


# --- the adapter on the hub's transport and a real Mosquitto ----------------------------


class FrozenClock:
    """The hub clock, frozen so ``received_at`` can be asserted exactly."""

    def now(self) -> datetime:
        """Always :data:`RECEIVED`."""
        return RECEIVED


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """What ``estatehub.config.MqttSettings`` carries, for the test broker."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    keepalive: int = 60
    reconnect_min: float = 0.05
    reconnect_max: float = 0.4
    tls: object = None


@dataclass
class TransportHub:
    """The parts of the hub an MQTT adapter touches, with the hub's real MQTT transport.

    The transport is not started: start the gate first, then :meth:`connect`, as the hub
    does (its modules start while the broker connection is still coming up).
    ``rejections`` collects every reason the transport reported through ``on_rejected``.
    """

    mqtt: AiomqttTransport
    clock: FrozenClock
    rejections: list[str] = field(default_factory=list)

    async def connect(self) -> None:
        """Start the transport and wait until every subscription is in place."""
        await self.mqtt.start()
        await self.mqtt.wait_connected(5)


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    """One Mosquitto on a free loopback port for this module; tests use their own prefix."""
    with Mosquitto() as running:
        yield running


@pytest.fixture
async def hub(broker: Mosquitto) -> AsyncIterator[TransportHub]:
    """A hub with an unstarted :class:`AiomqttTransport` on the test broker."""
    clock = FrozenClock()
    transport = AiomqttTransport(BrokerSettings(broker.host, broker.port), now=clock.now)
    stand_in = TransportHub(mqtt=transport, clock=clock)
    transport.on_rejected = lambda message, reason: stand_in.rejections.append(reason)
    try:
        yield stand_in
    finally:
        await transport.stop()


@pytest.fixture
async def controller(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """The integrator's gate controller: a second, independent MQTT v5 client.

    MQTT v5 lets it subscribe with *retain as published*, so it sees the retain flag the
    hub actually published with (in 3.1.1 a live subscriber always sees retain=0).
    """
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"gate-controller-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses, so retained messages never leak between tests."""
    return f"estatehub-test-{uuid.uuid4().hex[:8]}/gate"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the loop until it holds (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def next_message(client: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    """The next message the client receives."""
    async with asyncio.timeout(timeout):
        return await anext(aiter(client.messages))


async def first_message_for_a_newcomer(broker: Mosquitto, topic: str, prefix: str) -> str:
    """Which topic a client that subscribes to ``topic`` and then to a sentinel hears first.

    Retained messages are sent on SUBSCRIBE, before the sentinel published after both
    subscriptions; so the answer is ``topic`` exactly when the broker retains something there.
    """
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"late-{uuid.uuid4().hex[:8]}"
    ) as late:
        await late.subscribe(topic, qos=1)
        await late.subscribe(f"{prefix}/sentinel", qos=1)
        await late.publish(f"{prefix}/sentinel", b"done", qos=1)
        return str((await next_message(late)).topic)


async def test_gate_ignores_retained_read_takes_live_read_and_sends_open_command(
    hub: TransportHub, controller: aiomqtt.Client, broker: Mosquitto, prefix: str
) -> None:
    plate_topic = f"{prefix}/{GATE}/plate"
    command_topic = f"{prefix}/{GATE}/command"
    status_topic = f"{prefix}/{GATE}/status"

    # A controller that (wrongly) retained its last read, and its retained online status,
    # are waiting at the broker before the hub subscribes.
    stale = '{"plate":"沪B99999","time":"2026-02-28T23:59:00+08:00","direction":"in"}'
    await controller.publish(plate_topic, stale.encode(), qos=1, retain=True)
    await controller.publish(status_topic, b'{"state":"online"}', qos=1, retain=True)

    reads: list[PlateRead] = []
    gate = MqttJsonGate(hub, GATE, {"prefix": prefix, "default_direction": "in"}, reads.append)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    await hub.connect()
    await wait_until(lambda: gate.retained_plates_ignored == 1 and gate.last_status is not None)

    # The live read, as a controller sends it, and one without direction or time.
    await controller.publish(plate_topic, FULL_PLATE_MESSAGE, qos=1)
    await controller.publish(plate_topic, '{"plate":"沪AF12345","confidence":88}'.encode(), qos=1)
    await wait_until(lambda: len(reads) == 2)

    assert reads == [
        PlateRead(
            gate=GATE,
            raw_plate="沪A12345",
            received_at=RECEIVED,
            device_time=datetime(2026, 3, 1, 8, 15, 2, tzinfo=PLUS_EIGHT),
            direction=Direction.IN,
            confidence=93,
            plate_colour="blue",
            event_key="3f1c9e2a-0d7b-4c55-9a51-1b2f4e6d8c01",
            vendor="mqtt_json",
        ),
        PlateRead(
            gate=GATE,
            raw_plate="沪AF12345",
            received_at=RECEIVED,
            direction=Direction.IN,
            confidence=88,
            vendor="mqtt_json",
        ),
    ]
    assert gate.retained_plates_ignored == 1
    assert hub.rejections == []
    assert gate.last_status == GateStatus(
        gate=GATE, state=GateState.ONLINE, received_at=RECEIVED, retained=True
    )

    # A live fault report replaces the retained status.
    await controller.publish(status_topic, b'{"state":"fault","detail":"loop detector"}', qos=1)
    await wait_until(lambda: gate.last_status is not None and not gate.last_status.retained)
    assert gate.last_status == GateStatus(
        gate=GATE, state=GateState.FAULT, received_at=RECEIVED, detail="loop detector"
    )

    # The barrier command reaches the controller at QoS 1, not retained. Subscribing at
    # QoS 2 shows the QoS the hub published with (delivery is min(publish, subscribe)).
    await controller.subscribe(
        command_topic, options=SubscribeOptions(qos=2, retainAsPublished=True)
    )
    await gate.send(OPEN_FOR_RESIDENT)
    arrived = await next_message(controller)
    assert (str(arrived.topic), arrived.qos, arrived.retain) == (command_topic, 1, False)
    assert arrived.payload == command_payload(OPEN_FOR_RESIDENT)
    assert json.loads(arrived.payload) == {  # type: ignore[arg-type]
        "action": "open",
        "command_id": "cmd-20260301-0815-0001",
        "gate": GATE,
        "plate": "沪A12345",
        "reason": "resident",
        "issued_at": "2026-03-01T08:15:03+08:00",
    }

    # Nothing is left retained on the command topic: a late subscriber gets no command.
    assert await first_message_for_a_newcomer(broker, command_topic, prefix) == (
        f"{prefix}/sentinel"
    )
    assert hub.mqtt.stats.retained_commands_cleared == 0  # there was nothing to clear

    # A stopped gate neither takes reads nor sends commands.
    await gate.stop()
    with pytest.raises(GateCommandFailed) as failed:
        await gate.send(OPEN_FOR_RESIDENT)
    assert str(failed.value) == (
        "gate 'gate-north' is not started; command cmd-20260301-0815-0001 not sent"
    )


@pytest.mark.parametrize("connected_first", [False, True], ids=["hub-starting", "hub-running"])
async def test_retained_open_left_on_the_command_topic_is_cleared_at_start_before_any_command(
    hub: TransportHub,
    controller: aiomqtt.Client,
    broker: Mosquitto,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    connected_first: bool,
) -> None:
    command_topic = f"{prefix}/east/command"
    # Some tool published an open command retained: the broker would hand it to the gate
    # controller every time it reconnects, and the barrier would open for whoever is there.
    await controller.publish(command_topic, b'{"action":"open"}', qos=1, retain=True)
    # The controller is subscribed (it just got the stored "open", as the tester saw).
    await controller.subscribe(command_topic, options=SubscribeOptions(qos=1))
    stored = await next_message(controller)
    assert (stored.payload, stored.retain) == (b'{"action":"open"}', True)

    gate = MqttJsonGate(hub, "east", {"prefix": prefix}, lambda _: None)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, logger="estatehub.transports.mqtt"):
        if connected_first:
            await hub.connect()
            started = loop.time()
            await gate.start(hub)  # type: ignore[arg-type]
        else:
            started = loop.time()
            await gate.start(hub)  # type: ignore[arg-type]
            await hub.connect()
        # The clear is an empty retained publish; a live subscriber sees it as an empty
        # message (MQTT 3.1.1 semantics for deleting a retained message).
        cleared = await next_message(controller, timeout=1.0)
        elapsed = loop.time() - started

    assert (str(cleared.topic), cleared.payload) == (command_topic, b"")
    assert elapsed < 1.0
    assert hub.mqtt.stats.retained_commands_cleared == 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            f"found a retained command on {command_topic} (17 bytes); clearing it so the "
            "device is not re-actuated on every reconnect. Whoever published it must send "
            "commands with retain=false.",
        )
    ]
    # A controller that reconnects now finds nothing stored on its command topic, and the
    # hub never sent a command of its own.
    assert await first_message_for_a_newcomer(broker, command_topic, prefix) == (
        f"{prefix}/sentinel"
    )
    assert hub.rejections == []
    await gate.stop()


async def test_the_hub_refuses_to_retain_anything_on_a_guarded_command_topic(
    hub: TransportHub, prefix: str
) -> None:
    gate = MqttJsonGate(hub, GATE, {"prefix": prefix}, lambda _: None)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    await hub.connect()
    with pytest.raises(TransportError) as refused:
        await hub.mqtt.publish(gate.command_topic, b'{"action":"open"}', retain=True)
    assert str(refused.value) == (
        f"refusing to publish a retained message on command topic {gate.command_topic!r}: a "
        "retained command would be replayed to the device on every reconnect"
    )
    await gate.stop()


async def test_malformed_read_is_counted_and_the_gate_keeps_working(
    hub: TransportHub, controller: aiomqtt.Client, prefix: str
) -> None:
    plate_topic = f"{prefix}/{GATE}/plate"
    reads: list[PlateRead] = []
    gate = MqttJsonGate(hub, GATE, {"prefix": prefix}, reads.append)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    await hub.connect()

    await controller.publish(
        plate_topic, b'{"plate":"\\u6caaA12345","time":"2026-03-01 08:15:02"}', qos=1
    )
    await controller.publish(plate_topic, '{"plate":"沪A12345"}'.encode(), qos=1)
    await wait_until(lambda: len(reads) == 1)

    assert hub.rejections == [
        f"{plate_topic}: field 'time' must carry a UTC offset (e.g. +08:00 or Z), "
        'got "2026-03-01 08:15:02"'
    ]
    assert (reads[0].raw_plate, reads[0].direction) == ("沪A12345", None)
    await gate.stop()


async def test_plate_message_nested_5000_deep_is_a_counted_rejection_not_a_crash(
    hub: TransportHub, controller: aiomqtt.Client, prefix: str
) -> None:
    plate_topic = f"{prefix}/{GATE}/plate"
    reads: list[PlateRead] = []
    gate = MqttJsonGate(hub, GATE, {"prefix": prefix}, reads.append)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    await hub.connect()

    await controller.publish(plate_topic, b'{"plate":' + b"[" * 5000 + b"]" * 5000 + b"}", qos=1)
    await controller.publish(plate_topic, '{"plate":"沪A12345"}'.encode(), qos=1)
    await wait_until(lambda: len(reads) == 1)

    assert hub.rejections == [f"{plate_topic}: payload is JSON nested too deeply"]
    assert hub.mqtt.stats.rejected == 1
    assert hub.mqtt.stats.callback_errors == 0
    assert hub.mqtt.state is ConnectionState.CONNECTED
    assert reads[0].raw_plate == "沪A12345"
    await gate.stop()


async def test_command_for_another_gate_is_refused(hub: TransportHub) -> None:
    gate = MqttJsonGate(hub, "gate-south", {}, lambda _: None)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    with pytest.raises(GateCommandFailed) as failed:
        await gate.send(OPEN_FOR_RESIDENT)
    assert str(failed.value) == (
        "gate 'gate-south' was asked to carry out command cmd-20260301-0815-0001 "
        "for gate 'gate-north'"
    )
    await gate.stop()
