"""Hook implementations of the home plugin: registers the ``home`` subsystem."""

from __future__ import annotations

from collections.abc import Callable

from estatehub import hookimpl
from estatehub.hookspecs.base import SubsystemSpec

from .subsystem import HOME_SCHEMA, HomeModule, adapter_slots, registry_check


@hookimpl
def estatehub_register_subsystems(register: Callable[[SubsystemSpec], None]) -> None:
    """The ``home`` subsystem (smoke, gas and water-leak detectors)."""
    register(
        SubsystemSpec(
            name="home",
            factory=HomeModule,
            config_schema=HOME_SCHEMA,
            description="Household detectors mapped to flats; alarms escalate as safety incidents",
            adapter_slots=adapter_slots,
            registry_check=registry_check,
        )
    )
