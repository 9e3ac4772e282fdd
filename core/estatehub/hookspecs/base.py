"""Registrar hooks every plugin may implement, and the specs they register.

Hooks here are synchronous and loop-safe: they register things and never do I/O. What they
register owns its async lifecycle (``async start`` / ``async stop``), run by the hub.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..plugins import hookspec

if TYPE_CHECKING:
    from ..hub import Hub
    from ..registry import EstateRegistry


class Module(Protocol):
    """A running piece of a subsystem (or anything a plugin wants started and stopped)."""

    async def start(self, hub: Hub) -> None:
        """Start: subscribe, schedule, load state. Runs under the hub's start timeout."""

    async def stop(self) -> None:
        """Stop and release everything :meth:`start` took."""


@dataclass(frozen=True, slots=True)
class AdapterSlot:
    """A place in a module's config that names a vendor adapter and holds its options.

    :param path: config path of the device entry, e.g. ``("gates", "north")``.
    :param adapter: the adapter name written there.
    :param options: the ``options:`` mapping to validate with the adapter's schema.
    """

    path: tuple[str | int, ...]
    adapter: str
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SubsystemSpec:
    """A subsystem an estate can enable under ``modules:``.

    :param name: the key under ``modules:`` (``"parking"``).
    :param factory: ``factory(hub, config) -> Module``, called once with the validated config.
    :param config_schema: a voluptuous schema (or a dict for one) for the module's config.
    :param description: one line for ``estatehub plugins``.
    :param always_on: enabled even when the estate does not list it (the governance base).
    :param adapter_slots: ``adapter_slots(config) -> iterable of AdapterSlot``: where the
        validated module config names adapters, so ``check-config`` can validate each
        device's ``options:`` with its adapter's schema and report the file and line.
    :param registry_check: ``registry_check(config, registry) -> iterable of (path, message)``:
        references from the module config into the estate registry that do not hold (a
        detector in a flat that does not exist); ``path`` is relative to the module's config.
        ``check-config`` reports each with its file and line.
    """

    name: str
    factory: Callable[[Hub, Mapping[str, Any]], Module]
    config_schema: Any = None
    description: str = ""
    always_on: bool = False
    adapter_slots: Callable[[Mapping[str, Any]], Iterable[AdapterSlot]] | None = None
    registry_check: (
        Callable[[Mapping[str, Any], EstateRegistry], Iterable[tuple[tuple[str | int, ...], str]]]
        | None
    ) = None


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """A vendor adapter for one subsystem's devices.

    :param subsystem: which subsystem uses it (``"parking"``, ``"home"`` …).
    :param name: the name estates write as ``adapter:`` (``"hikvision"``).
    :param factory: the subsystem defines the call; for ``parking`` it is
        ``factory(hub, gate_id, options, sink) -> GateAdapter``; for ``home``
        ``factory(hub, detector_id, options, sink) -> DetectorAdapter``.
    :param options_schema: voluptuous schema for the device's ``options:`` mapping.
    :param description: one line for ``estatehub plugins``.
    """

    subsystem: str
    name: str
    factory: Callable[..., Any]
    options_schema: Any = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ConfigSectionSpec:
    """A top-level config section a plugin adds (e.g. ``district_uplink:``)."""

    name: str
    schema: Any
    description: str = ""


Registrar = Callable[[Any], None]
"""The ``register`` callable passed to registrar hooks; it validates what it is given."""


@hookspec
def estatehub_register_subsystems(register: Callable[[SubsystemSpec], None]) -> None:
    """Register the subsystems this plugin provides.

    Called once, at plugin load, before the config is validated (so the module schemas are
    known). Call ``register(SubsystemSpec(...))`` once per subsystem. A name registered
    twice is an error naming both plugins.

    :param register: validates and stores a :class:`SubsystemSpec`.

    Call mode: every implementation is called; return value ignored.

    .. versionadded:: 0.1
    """


@hookspec
def estatehub_register_adapters(register: Callable[[AdapterSpec], None]) -> None:
    """Register the vendor adapters this plugin provides.

    Called once at plugin load, after :func:`estatehub_register_subsystems`. Call
    ``register(AdapterSpec(...))`` per adapter. An adapter for a subsystem that no plugin
    provides is kept but reported by ``estatehub plugins``; a duplicate
    ``(subsystem, name)`` is an error naming both plugins.

    :param register: validates and stores an :class:`AdapterSpec`.

    Call mode: every implementation is called; return value ignored.

    .. versionadded:: 0.1
    """


@hookspec
def estatehub_register_config_sections(register: Callable[[ConfigSectionSpec], None]) -> None:
    """Register top-level config sections besides the core ones and ``modules:``.

    Called once at plugin load. The section is validated with its schema and handed to
    whoever reads ``hub.config.sections[name]``. Core section names (``estate``, ``api``,
    ``mqtt``, ``store``, ``plugins``, ``capture``, ``registry``, ``modules``) cannot be taken.

    :param register: validates and stores a :class:`ConfigSectionSpec`.

    Call mode: every implementation is called; return value ignored.

    .. versionadded:: 0.1
    """


@hookspec
def estatehub_hub_started(hub: Hub) -> None:
    """Called once the hub has started every module (successfully or not).

    For plugins that want to look at the running hub (e.g. to register extra services or
    listeners) without being a subsystem. Must not block; start tasks with
    ``hub.create_task``.

    :param hub: the running hub.

    Call mode: every implementation is called; return value ignored.

    .. versionadded:: 0.1
    """
