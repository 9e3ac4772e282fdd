"""The generic MQTT JSON gate: a small protocol any gate controller can speak.

For gates that are not Hikvision (or anything else with an adapter of its own), the
integrator's controller publishes plate reads as JSON and obeys barrier commands, all on
three topics under ``<prefix>/<gate_id>/`` (``prefix`` defaults to ``estatehub/gate``):

``plate`` (controller → hub, QoS 1, never retained)
    ``{"plate": "沪A12345", "time": "2026-03-01T08:15:02+08:00", "direction": "in",
    "confidence": 93, "colour": "blue", "event_id": "…", "retransmission": false}``;
    only ``plate`` is required, ``time`` must carry a UTC offset.
``command`` (hub → controller, QoS 1, never retained)
    ``{"action": "open", "command_id": "…", "gate": "…", "plate": "…", "reason": "…",
    "issued_at": "…"}``. The hub guards this topic from start: a retained message found
    there is cleared (an empty retained publish, which the controller must ignore).
``status`` (controller → hub, optional, retained welcome)
    ``{"state": "online" | "offline" | "fault", "detail": "…"}``.

A retained message on the plate topic is state from before the hub subscribed, never a
vehicle at the gate: it is logged and ignored, so no barrier ever opens for it. The full
protocol, with examples and a ``mosquitto_pub`` walk-through, is in
docs/adapters/mqtt-json-gate.md.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from estatehub.exceptions import PayloadRejected, TransportError
from estatehub.hookspecs.parking import (
    BarrierCommand,
    Direction,
    ParkingError,
    PlateRead,
    PlateReadSink,
)
from estatehub.payloads import parse_json_object, show_value
from estatehub.transports.base import MqttMessage, Unsubscribe

if TYPE_CHECKING:
    from estatehub.hub import Hub

_LOGGER = logging.getLogger(__name__)

ADAPTER_NAME = "mqtt_json"
"""What an estate writes as ``adapter:`` for a gate that speaks this protocol."""

VENDOR = "mqtt_json"
"""The ``vendor`` of every :class:`PlateRead` this adapter produces."""

DEFAULT_PREFIX = "estatehub/gate"
BARRIER_ACTIONS = ("open", "close")
"""The ``action`` values a command may carry."""

MAX_PLATE_LENGTH = 32
"""Longer ``plate`` strings are garbage, not a plate with a colour prefix or separators."""

_WILDCARDS = ("+", "#")
_DIRECTIONS = frozenset(direction.value for direction in Direction)


class MqttGateConfigError(ParkingError):
    """A gate's id or ``options:`` cannot work with the MQTT JSON protocol."""


class GateCommandFailed(ParkingError):
    """A barrier command could not be encoded or published; the message says why."""


class GateState(enum.StrEnum):
    """What a gate controller says about itself on its ``status`` topic."""

    ONLINE = "online"
    OFFLINE = "offline"
    FAULT = "fault"


_GATE_STATES = frozenset(state.value for state in GateState)


@dataclass(frozen=True, slots=True)
class GateStatus:
    """The last thing a gate controller said on its ``status`` topic.

    :param gate: the gate id from the estate config.
    :param state: online, offline or fault.
    :param received_at: when the hub received it.
    :param detail: the controller's free-text explanation, if any.
    :param retained: it came from the broker's store (the controller's last word before
        the hub subscribed, e.g. its last will), not live.
    """

    gate: str
    state: GateState
    received_at: datetime
    detail: str | None = None
    retained: bool = False


# --- parsing (pure) -----------------------------------------------------------------


def parse_plate_message(
    message: MqttMessage, gate: str, *, default_direction: Direction | None = None
) -> PlateRead:
    """Parse a message from ``<prefix>/<gate>/plate`` into a :class:`PlateRead`.

    A ``null`` value means the same as leaving the field out; unknown fields are ignored
    so controllers can send more than the hub reads.

    :param message: the MQTT message as the transport delivered it.
    :param gate: the gate id from the estate config.
    :param default_direction: used when the message has no ``direction``.
    :returns: the read; ``received_at`` is the transport's, ``device_time`` the ``time``.
    :raises PayloadRejected: the message is retained (old state, never a vehicle), the
        payload is not a JSON object, ``plate`` is missing or empty, ``time`` has no UTC
        offset, or a field has the wrong type or an impossible value. The reason names
        the topic and the field.
    """
    topic = message.topic
    if message.retained:
        raise PayloadRejected(
            f"{topic}: retained message is old state, not a vehicle at the gate; ignored"
        )
    document = _json_object(message)
    plate = document.get("plate")
    if not isinstance(plate, str) or not plate.strip():
        raise PayloadRejected(
            f"{topic}: field 'plate' is required and must be a non-empty string, got {show_value(plate)}"
        )
    if len(plate) > MAX_PLATE_LENGTH:
        raise PayloadRejected(
            f"{topic}: field 'plate' is longer than {MAX_PLATE_LENGTH} characters"
        )
    direction = _optional_direction(document, topic)
    return PlateRead(
        gate=gate,
        raw_plate=plate,
        received_at=message.received_at,
        device_time=_optional_time(document, "time", topic),
        direction=direction if direction is not None else default_direction,
        confidence=_optional_confidence(document, topic),
        plate_colour=_optional_string(document, "colour", topic),
        event_key=_optional_string(document, "event_id", topic),
        retransmission=_optional_bool(document, "retransmission", topic) or False,
        vendor=VENDOR,
    )


def parse_status_message(message: MqttMessage, gate: str) -> GateStatus:
    """Parse a message from ``<prefix>/<gate>/status`` into a :class:`GateStatus`.

    Retained status messages are welcome: status is state, and a controller's last will
    (``{"state":"offline"}``, retained) is how the hub learns it vanished.

    :param message: the MQTT message as the transport delivered it.
    :param gate: the gate id from the estate config.
    :raises PayloadRejected: not a JSON object, ``state`` not one of online/offline/fault,
        or ``detail`` not a string.
    """
    topic = message.topic
    document = _json_object(message)
    state = document.get("state")
    if not isinstance(state, str) or state not in _GATE_STATES:
        allowed = ", ".join(f'"{member.value}"' for member in GateState)
        raise PayloadRejected(
            f"{topic}: field 'state' must be one of {allowed}, got {show_value(state)}"
        )
    return GateStatus(
        gate=gate,
        state=GateState(state),
        received_at=message.received_at,
        detail=_optional_string(document, "detail", topic),
        retained=message.retained,
    )


def command_payload(command: BarrierCommand) -> bytes:
    """Encode a barrier command as the JSON the controller receives (UTF-8, compact).

    Every field is always present; ``plate`` and ``reason`` may be empty strings.

    :raises GateCommandFailed: the action is not ``open``/``close`` or ``issued_at`` is
        naive (the controller could not tell when it was issued).
    """
    if command.action not in BARRIER_ACTIONS:
        raise GateCommandFailed(
            f"gate {command.gate!r}: barrier action {command.action!r} is not one of "
            f"{', '.join(BARRIER_ACTIONS)} (command {command.command_id})"
        )
    if command.issued_at.utcoffset() is None:
        raise GateCommandFailed(
            f"gate {command.gate!r}: command {command.command_id} has a naive issued_at"
        )
    document = {
        "action": command.action,
        "command_id": command.command_id,
        "gate": command.gate,
        "plate": command.plate,
        "reason": command.reason,
        "issued_at": command.issued_at.isoformat(),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_object(message: MqttMessage) -> Mapping[str, Any]:
    topic = message.topic
    if not message.payload.strip():
        raise PayloadRejected(f"{topic}: empty payload")
    try:
        text = message.text()
    except UnicodeDecodeError as exc:
        raise PayloadRejected(f"{topic}: payload is not UTF-8 ({exc.reason})") from exc
    return parse_json_object(text, topic)


def _optional_string(document: Mapping[str, Any], field: str, topic: str) -> str | None:
    value = document.get(field)
    if value is None or isinstance(value, str):
        return value
    raise PayloadRejected(f"{topic}: field '{field}' must be a string, got {show_value(value)}")


def _optional_bool(document: Mapping[str, Any], field: str, topic: str) -> bool | None:
    value = document.get(field)
    if value is None or isinstance(value, bool):
        return value
    raise PayloadRejected(
        f"{topic}: field '{field}' must be true or false, got {show_value(value)}"
    )


def _optional_direction(document: Mapping[str, Any], topic: str) -> Direction | None:
    value = document.get("direction")
    if value is None:
        return None
    if isinstance(value, str) and value in _DIRECTIONS:
        return Direction(value)
    raise PayloadRejected(
        f'{topic}: field \'direction\' must be "in" or "out", got {show_value(value)}'
    )


def _optional_confidence(document: Mapping[str, Any], topic: str) -> int | None:
    value = document.get("confidence")
    if value is None:
        return None
    # Integers only: a fraction like 0.93 would otherwise pass as "1 %".
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise PayloadRejected(
            f"{topic}: field 'confidence' must be an integer 0–100, got {show_value(value)}"
        )
    return value


def _optional_time(document: Mapping[str, Any], field: str, topic: str) -> datetime | None:
    value = document.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadRejected(
            f"{topic}: field '{field}' must be an ISO 8601 string, got {show_value(value)}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadRejected(
            f"{topic}: field '{field}' is not an ISO 8601 time, got {show_value(value)}"
        ) from exc
    if parsed.utcoffset() is None:
        raise PayloadRejected(
            f"{topic}: field '{field}' must carry a UTC offset (e.g. +08:00 or Z), "
            f"got {show_value(value)}"
        )
    return parsed


# --- options ------------------------------------------------------------------------


def _topic_levels(option: str, *, single_level: bool) -> Callable[[Any], str]:
    """A validator for a string that becomes part of the topics the adapter uses."""

    def validate(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise vol.Invalid(f"{option} must be a non-empty string")
        for wildcard in _WILDCARDS:
            if wildcard in value:
                raise vol.Invalid(f"{option} {value!r} contains the MQTT wildcard {wildcard!r}")
        if "\x00" in value:
            raise vol.Invalid(f"{option} {value!r} contains a NUL character")
        if single_level and "/" in value:
            raise vol.Invalid(f"{option} {value!r} must be a single topic level (no '/')")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise vol.Invalid(
                f"{option} {value!r} has an empty topic level (leading, trailing or double '/')"
            )
        return value

    return validate


MQTT_GATE_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Optional("prefix", default=DEFAULT_PREFIX): _topic_levels("prefix", single_level=False),
        vol.Optional("default_direction", default=None): vol.Any(
            None,
            vol.All(vol.In(sorted(_DIRECTIONS)), vol.Coerce(Direction)),
            msg='default_direction must be "in" or "out" (or left out)',
        ),
    }
)
"""The ``options:`` of a gate with ``adapter: mqtt_json``.

``prefix`` is the topic prefix (default ``estatehub/gate``); ``default_direction``
(``in``/``out``) is used for plate messages that carry no ``direction``.
"""

_validate_gate_id = _topic_levels("gate id", single_level=True)


# --- the adapter --------------------------------------------------------------------


class MqttJsonGate:
    """A gate whose controller speaks the estatehub MQTT JSON protocol.

    :param hub: the hub (its ``mqtt`` transport carries everything).
    :param gate_id: the gate id from the estate config; it becomes one topic level.
    :param options: the gate's ``options:`` (see :data:`MQTT_GATE_OPTIONS_SCHEMA`).
    :param sink: called on the event loop with every live plate read.
    :raises MqttGateConfigError: the gate id or the options cannot be used in topics.
    """

    def __init__(
        self, hub: Hub, gate_id: str, options: Mapping[str, Any], sink: PlateReadSink
    ) -> None:
        try:
            self.gate_id = _validate_gate_id(gate_id)
            validated = MQTT_GATE_OPTIONS_SCHEMA(dict(options))
        except vol.Invalid as exc:
            raise MqttGateConfigError(
                f"gate {gate_id!r}: invalid MQTT JSON gate setup: {exc}"
            ) from exc
        self._hub = hub
        self.prefix: str = validated["prefix"]
        self.default_direction: Direction | None = validated["default_direction"]
        self._sink = sink
        self._unsubscribes: list[Unsubscribe] = []
        self._running = False
        self.last_status: GateStatus | None = None
        """What the controller last said on its status topic (None: nothing yet)."""
        self.retained_plates_ignored = 0
        """How many retained plate messages were dropped as old state."""

    @property
    def plate_topic(self) -> str:
        """Where the controller publishes plate reads."""
        return f"{self.prefix}/{self.gate_id}/plate"

    @property
    def command_topic(self) -> str:
        """Where the hub publishes barrier commands."""
        return f"{self.prefix}/{self.gate_id}/command"

    @property
    def status_topic(self) -> str:
        """Where the controller publishes its status."""
        return f"{self.prefix}/{self.gate_id}/status"

    async def start(self, hub: Hub) -> None:
        """Guard the command topic, then subscribe to the plate and status topics (QoS 1).

        Guarding first means a retained ``open`` that some tool left on the command topic
        is cleared as soon as the hub starts, before the controller can reconnect and
        receive it, not only when the hub sends its first command.
        """
        await self.stop()  # a second start must not double every read
        self._hub = hub
        hub.mqtt.guard_command_topic(self.command_topic)
        self._unsubscribes = [
            hub.mqtt.subscribe(self.plate_topic, self._on_plate, qos=1),
            hub.mqtt.subscribe(self.status_topic, self._on_status, qos=1),
        ]
        self._running = True

    async def stop(self) -> None:
        """Unsubscribe; safe to call more than once."""
        self._running = False
        unsubscribes, self._unsubscribes = self._unsubscribes, []
        for unsubscribe in unsubscribes:
            unsubscribe()

    async def send(self, command: BarrierCommand) -> None:
        """Publish a barrier command on the command topic (QoS 1, never retained).

        :raises GateCommandFailed: the adapter is not started, the command is for another
            gate or cannot be encoded, or the transport could not publish it.
        """
        if command.gate != self.gate_id:
            raise GateCommandFailed(
                f"gate {self.gate_id!r} was asked to carry out command {command.command_id} "
                f"for gate {command.gate!r}"
            )
        if not self._running:
            raise GateCommandFailed(
                f"gate {self.gate_id!r} is not started; command {command.command_id} not sent"
            )
        payload = command_payload(command)
        try:
            await self._hub.mqtt.publish_command(self.command_topic, payload)
        except TransportError as exc:
            raise GateCommandFailed(
                f"gate {self.gate_id!r}: command {command.command_id} ({command.action}) "
                f"could not be published on {self.command_topic}: {exc}"
            ) from exc

    def _on_plate(self, message: MqttMessage) -> None:
        if message.retained:
            # Old state from the broker's store: opening a barrier for it would let in
            # whoever happens to be at the gate now. Not a malformed payload, so no
            # rejection; the plate itself stays out of the log (personal data).
            self.retained_plates_ignored += 1
            _LOGGER.info(
                "gate %s: ignored a retained message on %s (old state, not a vehicle)",
                self.gate_id,
                message.topic,
            )
            return
        self._sink(
            parse_plate_message(message, self.gate_id, default_direction=self.default_direction)
        )

    def _on_status(self, message: MqttMessage) -> None:
        if not message.payload.strip():
            # An empty retained publish is how MQTT deletes a stored status.
            self.last_status = None
            _LOGGER.info("gate %s: status cleared on %s", self.gate_id, message.topic)
            return
        self.last_status = parse_status_message(message, self.gate_id)
