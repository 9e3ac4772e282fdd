"""Hook implementations of the zigbee2mqtt plugin: it provides one ``home`` adapter."""

from __future__ import annotations

from collections.abc import Callable

from estatehub import hookimpl
from estatehub.hookspecs.base import AdapterSpec

from .adapter import DETECTOR_OPTIONS_SCHEMA, Zigbee2MqttDetector

ADAPTER_NAME = "zigbee2mqtt"
"""What an estate writes as ``adapter:`` for a detector paired with zigbee2mqtt."""


@hookimpl
def estatehub_register_adapters(register: Callable[[AdapterSpec], None]) -> None:
    """Register the zigbee2mqtt detector adapter for the ``home`` subsystem."""
    register(
        AdapterSpec(
            subsystem="home",
            name=ADAPTER_NAME,
            factory=Zigbee2MqttDetector,
            options_schema=DETECTOR_OPTIONS_SCHEMA,
            description="Smoke, gas and water-leak detectors paired with zigbee2mqtt",
        )
    )
