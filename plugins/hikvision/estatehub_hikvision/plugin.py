"""Hook implementations of the hikvision plugin: it registers the ANPR gate adapter."""

from __future__ import annotations

from collections.abc import Callable

from estatehub import hookimpl
from estatehub.hookspecs.base import AdapterSpec

from .gate import GATE_OPTIONS_SCHEMA, HikvisionGate


@hookimpl
def estatehub_register_adapters(register: Callable[[AdapterSpec], None]) -> None:
    """Register ``parking/hikvision``: ANPR pushes in, ISAPI barrier control out."""
    register(
        AdapterSpec(
            subsystem="parking",
            name="hikvision",
            factory=HikvisionGate,
            options_schema=GATE_OPTIONS_SCHEMA,
            description=(
                "Hikvision ANPR camera: plate pushes to /api/webhook/hikvision/<gate>, "
                "barrier open/close over ISAPI (digest auth)"
            ),
        )
    )
