"""Turn zigbee2mqtt MQTT messages into :class:`DetectorReading` (pure, no I/O).

zigbee2mqtt publishes one JSON object per device on ``<base_topic>/<friendly_name>`` and
the device's reachability on ``<base_topic>/<friendly_name>/availability``. Releases and
device converters differ in the details (docs/adapters/zigbee2mqtt.md lists the variants
and their public sources); every variant we have seen is handled here, and everything else
is refused with a :class:`PayloadRejected` whose reason names the topic and the field, so
the hub can count it and keep going.

Decisions (documented in docs/adapters/zigbee2mqtt.md):

- ``null`` or a missing key means "this message did not report it" (``None``), never
  "false".
- Flags accept JSON ``true``/``false`` and, exactly, the strings ``"ON"``/``"OFF"``: these
  are zigbee2mqtt's own ``value_on``/``value_off`` for binary exposes, which some converters
  emit instead of booleans. Dropping a real smoke alarm because of how a converter spells
  "true" would be worse than accepting zigbee2mqtt's documented spelling. Anything else
  (``"maybe"``, ``"on"``, ``1``) is rejected.
- ``battery`` may be a number or a numeric string (``"100.00"`` in old releases).
- ``last_seen`` may be an ISO 8601 string with ``Z`` or an offset, or epoch milliseconds.
  A string that is not an absolute timestamp (a relative "5 minutes ago", or an ISO time
  without offset, whose zone we cannot know) is ignored: ``device_time`` stays ``None``.
- The ``device`` object that old releases (``include_device_information``) embed is
  ignored; so are keys the hub has no use for (``voltage``, ``temperature`` …).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.home import DetectorKind, DetectorReading
from estatehub.payloads import parse_json_object, show_value
from estatehub.transports.base import MqttMessage

VENDOR = "zigbee2mqtt"
"""The ``vendor`` every reading from this adapter carries."""

_FLAG_STRINGS = {"ON": True, "OFF": False}
_AVAILABILITY_STATES = {"online": True, "offline": False}
_MAX_LINK_QUALITY = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_state(message: MqttMessage, detector: str, kind: DetectorKind) -> DetectorReading:
    """Parse a message from ``<base_topic>/<friendly_name>`` into a reading.

    :param message: the MQTT message as the transport delivered it.
    :param detector: the detector id from the estate config.
    :param kind: which hazard key to read (``smoke``, ``gas`` or ``water_leak``).
    :returns: a reading with every field the message reported; the rest ``None``.
    :raises PayloadRejected: the payload is empty, not UTF-8 JSON, not an object, or a
        field has a value of the wrong type or out of range.
    """
    state = _json_object(message)
    topic = message.topic
    return DetectorReading(
        detector=detector,
        received_at=message.received_at,
        alarm=_flag(state, kind.value, topic),
        battery_percent=_battery(state, topic),
        battery_low=_flag(state, "battery_low", topic),
        tamper=_flag(state, "tamper", topic),
        device_time=_last_seen(state, topic),
        link_quality=_link_quality(state, topic),
        retained=message.retained,
        vendor=VENDOR,
    )


def parse_state_for_safety(
    message: MqttMessage, detector: str, kind: DetectorKind
) -> tuple[DetectorReading, list[str]]:
    """Like :func:`parse_state`, but a bad secondary field never costs the hazard state.

    Life safety first: ``{"smoke": true, "battery": "garbage"}`` must still raise the smoke
    alarm. The hazard key (and the JSON itself) is parsed strictly; every other field that
    fails is left out of the reading and its reason returned, for the caller to count.

    :raises PayloadRejected: the payload is not a JSON object, or the hazard key is bad.
    """
    state = _json_object(message)
    topic = message.topic
    alarm = _flag(state, kind.value, topic)
    problems: list[str] = []

    def lenient(parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except PayloadRejected as err:
            problems.append(err.reason)
            return None

    reading = DetectorReading(
        detector=detector,
        received_at=message.received_at,
        alarm=alarm,
        battery_percent=lenient(_battery, state, topic),
        battery_low=lenient(_flag, state, "battery_low", topic),
        tamper=lenient(_flag, state, "tamper", topic),
        device_time=lenient(_last_seen, state, topic),
        link_quality=lenient(_link_quality, state, topic),
        retained=message.retained,
        vendor=VENDOR,
    )
    return reading, problems


def parse_availability(message: MqttMessage, detector: str) -> DetectorReading:
    """Parse a message from ``<base_topic>/<friendly_name>/availability``.

    Current releases send ``{"state":"online"}``; old ones (and
    ``legacy_availability_payload``) send plain ``online`` / ``offline``.

    :param message: the MQTT message as the transport delivered it.
    :param detector: the detector id from the estate config.
    :returns: a reading with only ``available`` set.
    :raises PayloadRejected: the payload is empty or is neither form.
    """
    topic = message.topic
    text = _text(message).strip()
    if text in _AVAILABILITY_STATES:
        available = _AVAILABILITY_STATES[text]
    else:
        document = _json_object(message)
        state = document.get("state")
        if not isinstance(state, str) or state not in _AVAILABILITY_STATES:
            raise PayloadRejected(
                f'{topic}: field \'state\' must be "online" or "offline", got {show_value(state)}'
            )
        available = _AVAILABILITY_STATES[state]
    return DetectorReading(
        detector=detector,
        received_at=message.received_at,
        available=available,
        retained=message.retained,
        vendor=VENDOR,
    )


def _text(message: MqttMessage) -> str:
    if not message.payload.strip():
        # zigbee2mqtt clears a removed device's retained state with an empty payload.
        raise PayloadRejected(f"{message.topic}: empty payload (device removed?)")
    try:
        return message.text()
    except UnicodeDecodeError as exc:
        raise PayloadRejected(f"{message.topic}: payload is not UTF-8 ({exc.reason})") from exc


def _json_object(message: MqttMessage) -> Mapping[str, Any]:
    return parse_json_object(_text(message), message.topic)


def _flag(state: Mapping[str, Any], field: str, topic: str) -> bool | None:
    value = state.get(field)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _FLAG_STRINGS:
        return _FLAG_STRINGS[value]
    raise PayloadRejected(
        f"{topic}: field '{field}' must be true or false, got {show_value(value)}"
    )


def _is_number(value: object) -> bool:
    # bool is an int subclass; a JSON true is never a number here.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _battery(state: Mapping[str, Any], topic: str) -> float | None:
    value = state.get("battery")
    if value is None:
        return None
    percent: float | None = None
    if _is_number(value):
        percent = float(value)
    elif isinstance(value, str):
        try:
            percent = float(value.strip())
        except ValueError:
            percent = None
    if percent is None or not math.isfinite(percent):
        raise PayloadRejected(
            f"{topic}: field 'battery' must be a number of percent, got {show_value(value)}"
        )
    if not 0.0 <= percent <= 100.0:
        raise PayloadRejected(f"{topic}: field 'battery' must be 0–100, got {show_value(value)}")
    return percent


def _link_quality(state: Mapping[str, Any], topic: str) -> int | None:
    value = state.get("linkquality")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadRejected(
            f"{topic}: field 'linkquality' must be an integer, got {show_value(value)}"
        )
    if not 0 <= value <= _MAX_LINK_QUALITY:
        raise PayloadRejected(
            f"{topic}: field 'linkquality' must be 0–{_MAX_LINK_QUALITY}, got {value}"
        )
    return value


def _last_seen(state: Mapping[str, Any], topic: str) -> datetime | None:
    value = state.get("last_seen")
    if value is None:
        return None
    if isinstance(value, str):
        return _iso_with_offset(value)
    if _is_number(value):
        # last_seen: epoch publishes JavaScript's Date.now(): milliseconds since 1970 UTC.
        try:
            # Exact arithmetic: fromtimestamp(ms / 1000) could round a millisecond away.
            return _EPOCH + timedelta(milliseconds=value)
        except (OverflowError, ValueError) as exc:
            raise PayloadRejected(
                f"{topic}: field 'last_seen' is not a valid epoch in ms, got {show_value(value)}"
            ) from exc
    raise PayloadRejected(
        f"{topic}: field 'last_seen' must be a timestamp string or epoch ms, got {show_value(value)}"
    )


def _iso_with_offset(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None  # not an absolute timestamp (e.g. a relative "5 minutes ago")
    return parsed if parsed.utcoffset() is not None else None
