"""Hook implementations of the parking plugin.

Registers the ``parking`` subsystem, the generic ``mqtt_json`` gate adapter, and the
default fee and verdict policies as ``trylast`` implementations, so any integrator's plugin
can override either by answering first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from estatehub import hookimpl
from estatehub.hookspecs.base import AdapterSpec, SubsystemSpec
from estatehub.hookspecs.parking import (
    GateDecisionContext,
    ParkingSession,
    Plate,
    PlateRead,
    Tariff,
    Verdict,
)

from .mqtt_gate import MQTT_GATE_OPTIONS_SCHEMA, MqttJsonGate
from .schema import PARKING_SCHEMA, adapter_slots, registry_check
from .subsystem import ParkingModule, default_fee, default_verdict


@hookimpl
def estatehub_register_subsystems(register: Callable[[SubsystemSpec], None]) -> None:
    """The ``parking`` subsystem."""
    register(
        SubsystemSpec(
            name="parking",
            factory=ParkingModule,
            config_schema=PARKING_SCHEMA,
            description="Vehicle gates: plate recognition, barrier decisions, sessions and fees",
            adapter_slots=adapter_slots,
            registry_check=registry_check,
        )
    )


@hookimpl
def estatehub_register_adapters(register: Callable[[AdapterSpec], None]) -> None:
    """The generic MQTT JSON gate (docs/adapters/mqtt-json-gate.md)."""
    register(
        AdapterSpec(
            subsystem="parking",
            name="mqtt_json",
            factory=MqttJsonGate,
            options_schema=MQTT_GATE_OPTIONS_SCHEMA,
            description="Any gate speaking estatehub's documented MQTT JSON topics",
        )
    )


@hookimpl(trylast=True)
def estatehub_parking_fee(
    session: ParkingSession, tariff: Tariff, exited_at: datetime
) -> int | None:
    """Default fee: residents park free; everyone else pays the estate tariff."""
    return default_fee(session, tariff, exited_at)


@hookimpl(trylast=True)
def estatehub_parking_verdict(read: PlateRead, plate: Plate, context: GateDecisionContext) -> Any:
    """Default gate policy (see :func:`estatehub_parking.subsystem.default_verdict`)."""
    verdict: tuple[Verdict, str] = default_verdict(read, plate, context)
    return verdict
