"""The zigbee2mqtt detector adapter: one instance per detector in the estate config.

It subscribes, through the hub's MQTT transport, to the device's state topic and its
availability topic, parses what arrives with :mod:`estatehub_zigbee2mqtt.payload` and hands
every reading to the ``home`` subsystem's sink. A bad payload raises
:class:`~estatehub.exceptions.PayloadRejected` out of the callback; the transport counts it
and fires ``transport.rejected``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.home import (
    DetectorKind,
    DetectorReadingSink,
    HomeError,
)
from estatehub.transports.base import MqttMessage, Unsubscribe

from .payload import parse_availability, parse_state_for_safety

if TYPE_CHECKING:
    from estatehub.hub import Hub

DEFAULT_BASE_TOPIC = "zigbee2mqtt"
_WILDCARDS = ("+", "#")


class Zigbee2MqttConfigError(HomeError):
    """A detector's ``options:`` cannot work with zigbee2mqtt (the message says why)."""


def _topic_part(option: str) -> Callable[[Any], str]:
    """A validator for a string that becomes part of an MQTT topic we subscribe to."""

    def validate(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise vol.Invalid(f"{option} must be a non-empty string")
        for wildcard in _WILDCARDS:
            if wildcard in value:
                raise vol.Invalid(
                    f"{option} {value!r} contains the MQTT wildcard {wildcard!r}; "
                    "a topic the hub subscribes to by name must not contain '+' or '#'"
                )
        if "\x00" in value:
            raise vol.Invalid(f"{option} {value!r} contains a NUL character")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise vol.Invalid(
                f"{option} {value!r} has an empty topic level (leading, trailing or double '/')"
            )
        return value

    return validate


def _friendly_name(value: Any) -> str:
    name = _topic_part("friendly_name")(value)
    if name.endswith("/availability") or name == "availability":
        # zigbee2mqtt would publish this device's availability on .../availability/availability
        # and our state subscription would collide with another device's availability topic.
        raise vol.Invalid(f"friendly_name {name!r} must not end with '/availability'")
    return name


DETECTOR_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required("friendly_name"): _friendly_name,
        vol.Optional("base_topic", default=DEFAULT_BASE_TOPIC): _topic_part("base_topic"),
        vol.Optional("kind", default=DetectorKind.SMOKE.value): vol.All(
            vol.In(
                [kind.value for kind in DetectorKind],
                msg="kind must be one of: " + ", ".join(kind.value for kind in DetectorKind),
            ),
            vol.Coerce(DetectorKind),
        ),
    }
)
"""The ``options:`` of a detector with ``adapter: zigbee2mqtt``.

``friendly_name`` is the device's name in zigbee2mqtt (``/`` allowed, ``+``/``#`` not);
``base_topic`` is zigbee2mqtt's ``mqtt.base_topic``; ``kind`` picks the hazard key
(``smoke``, ``gas`` or ``water_leak``).
"""


class Zigbee2MqttDetector:
    """A smoke, gas or water-leak detector paired with zigbee2mqtt.

    :param hub: the running hub (its ``mqtt`` transport is used in :meth:`start`).
    :param detector_id: the detector id from the estate config.
    :param options: the detector's ``options:`` (see :data:`DETECTOR_OPTIONS_SCHEMA`).
    :param sink: called on the event loop with every reading.
    :raises Zigbee2MqttConfigError: the options are invalid.
    """

    def __init__(
        self,
        hub: Hub,
        detector_id: str,
        options: Mapping[str, Any],
        sink: DetectorReadingSink,
    ) -> None:
        try:
            validated = DETECTOR_OPTIONS_SCHEMA(dict(options))
        except vol.Invalid as exc:
            raise Zigbee2MqttConfigError(
                f"detector {detector_id!r}: invalid zigbee2mqtt options: {exc}"
            ) from exc
        self._hub = hub
        self.detector_id = detector_id
        self.friendly_name: str = validated["friendly_name"]
        self.base_topic: str = validated["base_topic"]
        self.kind: DetectorKind = validated["kind"]
        self._sink = sink
        self._unsubscribes: list[Unsubscribe] = []

    @property
    def state_topic(self) -> str:
        """The topic zigbee2mqtt publishes the device's state on."""
        return f"{self.base_topic}/{self.friendly_name}"

    @property
    def availability_topic(self) -> str:
        """The topic zigbee2mqtt publishes the device's availability on."""
        return f"{self.state_topic}/availability"

    async def start(self, hub: Hub) -> None:
        """Subscribe to the state and availability topics (QoS 1)."""
        self._hub = hub
        await self.stop()  # a second start must not double every reading
        self._unsubscribes = [
            hub.mqtt.subscribe(self.state_topic, self._on_state, qos=1),
            hub.mqtt.subscribe(self.availability_topic, self._on_availability, qos=1),
        ]

    async def stop(self) -> None:
        """Unsubscribe from both topics; safe to call more than once."""
        unsubscribes, self._unsubscribes = self._unsubscribes, []
        for unsubscribe in unsubscribes:
            unsubscribe()

    def _on_state(self, message: MqttMessage) -> None:
        reading, problems = parse_state_for_safety(message, self.detector_id, self.kind)
        self._sink(reading)
        if problems:
            # Counted and reported like any rejection, after the hazard state went through.
            raise PayloadRejected(
                "; ".join(problems) + f" (the {self.kind.value} state was still used)"
            )

    def _on_availability(self, message: MqttMessage) -> None:
        self._sink(parse_availability(message, self.detector_id))
