"""The generic MQTT JSON gate: its pure parsing/encoding, and the adapter on a real Mosquitto.

The hub's MQTT transport is being written in parallel, so the broker test runs the adapter
over :class:`AiomqttStandIn`: the same ``subscribe`` / ``publish`` / ``publish_command``
interface, built directly on a real ``aiomqtt.Client`` talking to a real Mosquitto started
by this module (no mocks). Switch it to the hub's transport once that lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
import voluptuous as vol
from paho.mqtt.subscribeoptions import SubscribeOptions

from estatehub.exceptions import PayloadRejected, TransportError
from estatehub.hookspecs.parking import BarrierCommand, Direction, PlateRead
from estatehub.transports.base import MqttCallback, MqttMessage, Unsubscribe
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
    ],
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


# --- a minimal stand-in for hub.mqtt on a real client --------------------------------

MOSQUITTO = "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def mosquitto_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Start a private Mosquitto on a free loopback port; stop it by PID afterwards."""
    directory: Path = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "persistence false\n"
    )
    log_path = directory / "mosquitto.log"
    with log_path.open("wb") as log:
        broker = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if broker.poll() is not None:
                raise RuntimeError(f"mosquitto exited early: {log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {port}: {log_path.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(timeout=5)


class FrozenClock:
    """The hub clock, frozen so ``received_at`` can be asserted exactly."""

    def now(self) -> datetime:
        """Always :data:`RECEIVED`."""
        return RECEIVED


class AiomqttStandIn:
    """``hub.mqtt`` as adapters see it, on a real ``aiomqtt.Client``.

    ``subscribe`` is synchronous like the hub's: it registers the callback at once and
    sends the SUBSCRIBE in a task; :meth:`settle` waits for those tasks. A callback that
    raises :class:`PayloadRejected` is counted in :attr:`rejections`, as the hub does.
    """

    def __init__(self, client: aiomqtt.Client, clock: FrozenClock) -> None:
        self._client = client
        self._clock = clock
        self._callbacks: dict[object, tuple[str, MqttCallback]] = {}
        self._pending: set[asyncio.Task[object]] = set()
        self.rejections: list[str] = []

    def subscribe(self, topic_filter: str, callback: MqttCallback, qos: int = 1) -> Unsubscribe:
        """Register ``callback`` for ``topic_filter`` and subscribe at the broker."""
        token = object()
        self._callbacks[token] = (topic_filter, callback)
        self._track(self._client.subscribe(topic_filter, qos=qos))

        def unsubscribe() -> None:
            if self._callbacks.pop(token, None) is None:
                return
            if all(existing != topic_filter for existing, _ in self._callbacks.values()):
                self._track(self._client.unsubscribe(topic_filter))

        return unsubscribe

    def _track(self, operation: Any) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(operation)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait until every SUBSCRIBE/UNSUBSCRIBE sent so far has been acknowledged."""
        while self._pending:
            await asyncio.gather(*self._pending)

    async def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish as the hub would; a client failure becomes a TransportError."""
        try:
            await self._client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"publish to {topic} failed: {exc}") from exc

    async def publish_command(self, topic: str, payload: bytes | str) -> None:
        """Publish a command: always QoS 1, never retained."""
        await self.publish(topic, payload, qos=1, retain=False)

    async def dispatch_forever(self) -> None:
        """Hand every incoming message to the callbacks whose filter matches."""
        async for incoming in self._client.messages:
            payload = incoming.payload
            message = MqttMessage(
                topic=incoming.topic.value,
                payload=payload if isinstance(payload, bytes) else str(payload or "").encode(),
                received_at=self._clock.now(),
                qos=incoming.qos,
                retained=incoming.retain,
            )
            for topic_filter, callback in list(self._callbacks.values()):
                if incoming.topic.matches(topic_filter):
                    try:
                        callback(message)
                    except PayloadRejected as rejected:
                        self.rejections.append(rejected.reason)


@dataclass
class StandInHub:
    """The two parts of the hub an MQTT adapter touches."""

    mqtt: AiomqttStandIn
    clock: FrozenClock


@pytest.fixture
async def hub(mosquitto_port: int) -> AsyncIterator[StandInHub]:
    """A stand-in hub connected to the private broker, dispatching until the test ends."""
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_port, identifier=f"hub-{uuid.uuid4().hex[:8]}"
    ) as client:
        transport = AiomqttStandIn(client, FrozenClock())
        dispatcher = asyncio.create_task(transport.dispatch_forever(), name="stand-in dispatch")
        try:
            yield StandInHub(mqtt=transport, clock=FrozenClock())
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher


@pytest.fixture
async def controller(mosquitto_port: int) -> AsyncIterator[aiomqtt.Client]:
    """The integrator's gate controller: a second, independent MQTT v5 client.

    MQTT v5 lets it subscribe with *retain as published*, so it sees the retain flag the
    hub actually published with (in 3.1.1 a live subscriber always sees retain=0).
    """
    async with aiomqtt.Client(
        "127.0.0.1",
        mosquitto_port,
        identifier=f"gate-controller-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        yield client


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the loop until it holds (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def next_message(client: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    """The next message the client receives."""
    async with asyncio.timeout(timeout):
        return await anext(aiter(client.messages))


# --- the adapter on a real broker ---------------------------------------------------


async def test_gate_ignores_retained_read_takes_live_read_and_sends_open_command(
    hub: StandInHub, controller: aiomqtt.Client, mosquitto_port: int
) -> None:
    prefix = f"estatehub-test-{uuid.uuid4().hex[:8]}/gate"
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
    await hub.mqtt.settle()

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
    assert hub.mqtt.rejections == []
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
    # Retained messages are sent on SUBSCRIBE, before the sentinel published after it.
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_port, identifier=f"late-{uuid.uuid4().hex[:8]}"
    ) as late:
        await late.subscribe(command_topic, qos=1)
        await late.subscribe(f"{prefix}/sentinel", qos=1)
        await late.publish(f"{prefix}/sentinel", b"done", qos=1)
        first = await next_message(late)
        assert (str(first.topic), first.payload) == (f"{prefix}/sentinel", b"done")

    # A stopped gate neither takes reads nor sends commands.
    await gate.stop()
    await hub.mqtt.settle()
    with pytest.raises(GateCommandFailed) as failed:
        await gate.send(OPEN_FOR_RESIDENT)
    assert str(failed.value) == (
        "gate 'gate-north' is not started; command cmd-20260301-0815-0001 not sent"
    )


async def test_malformed_read_is_counted_and_the_gate_keeps_working(
    hub: StandInHub, controller: aiomqtt.Client
) -> None:
    prefix = f"estatehub-test-{uuid.uuid4().hex[:8]}/gate"
    plate_topic = f"{prefix}/{GATE}/plate"
    reads: list[PlateRead] = []
    gate = MqttJsonGate(hub, GATE, {"prefix": prefix}, reads.append)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    await hub.mqtt.settle()

    await controller.publish(
        plate_topic, b'{"plate":"\\u6caaA12345","time":"2026-03-01 08:15:02"}', qos=1
    )
    await controller.publish(plate_topic, '{"plate":"沪A12345"}'.encode(), qos=1)
    await wait_until(lambda: len(reads) == 1)

    assert hub.mqtt.rejections == [
        f"{plate_topic}: field 'time' must carry a UTC offset (e.g. +08:00 or Z), "
        'got "2026-03-01 08:15:02"'
    ]
    assert (reads[0].raw_plate, reads[0].direction) == ("沪A12345", None)
    await gate.stop()


async def test_command_for_another_gate_is_refused(hub: StandInHub) -> None:
    gate = MqttJsonGate(hub, "gate-south", {}, lambda _: None)  # type: ignore[arg-type]
    await gate.start(hub)  # type: ignore[arg-type]
    with pytest.raises(GateCommandFailed) as failed:
        await gate.send(OPEN_FOR_RESIDENT)
    assert str(failed.value) == (
        "gate 'gate-south' was asked to carry out command cmd-20260301-0815-0001 "
        "for gate 'gate-north'"
    )
    await gate.stop()
