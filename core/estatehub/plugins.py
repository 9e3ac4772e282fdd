"""The one module that touches pluggy: a typed facade over the plugin manager.

Plugins (first-party and third-party alike) are found through the ``estatehub`` entry-point
group. Which ones load is decided by the allow/block lists from the estate config and the
``ESTATEHUB_PLUGINS`` (allow, comma-separated) and ``ESTATEHUB_BLOCK_PLUGINS`` environment
variables. A plugin that fails to import is recorded as failed with its error, and the
others still load. Nothing outside this module calls ``pm.hook``.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from .exceptions import PluginError

if TYPE_CHECKING:
    from .hookspecs.base import AdapterSpec, ConfigSectionSpec, SubsystemSpec
    from .hookspecs.notify import NotifierSpec
    from .hookspecs.parking import (
        GateDecisionContext,
        ParkingSession,
        Plate,
        PlateRead,
        Tariff,
        Verdict,
    )
    from .hub import Hub

PROJECT = "estatehub"
ENTRY_POINT_GROUP = "estatehub"
ENV_ALLOW = "ESTATEHUB_PLUGINS"
ENV_BLOCK = "ESTATEHUB_BLOCK_PLUGINS"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

_LOGGER = logging.getLogger(__name__)

CORE_SECTIONS = frozenset(
    {
        "estate",
        "api",
        "mqtt",
        "store",
        "plugins",
        "capture",
        "registry",
        "modules",
        "automations",
        "escalation",
    }
)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``estatehub plugins`` shows about one plugin.

    ``status`` is ``loaded``, ``blocked``, ``not allowed`` or ``failed`` (then ``error``
    says why).
    """

    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]
    status: str
    error: str = ""


@dataclass(slots=True)
class Registrations:
    """Everything plugins registered, with who registered it."""

    subsystems: dict[str, SubsystemSpec] = field(default_factory=dict)
    adapters: dict[tuple[str, str], AdapterSpec] = field(default_factory=dict)
    sections: dict[str, ConfigSectionSpec] = field(default_factory=dict)
    notifiers: dict[str, NotifierSpec] = field(default_factory=dict)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)


def _split_env(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class PluginManager:
    """Loads plugins and calls their hooks through one typed method per hook."""

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from .hookspecs import base, notify, parking

        environ = os.environ if environ is None else environ
        env_allow = _split_env(environ.get(ENV_ALLOW))
        allowed = frozenset(allow) if allow is not None else None
        if env_allow is not None:
            allowed = env_allow if allowed is None else allowed & env_allow
        self.allow = allowed
        self.block = frozenset(block) | (_split_env(environ.get(ENV_BLOCK)) or frozenset())
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(base)
        self._pm.add_hookspecs(parking)
        self._pm.add_hookspecs(notify)
        self._infos: dict[str, PluginInfo] = {}
        self._registrations: Registrations | None = None

    # -- loading -----------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every plugin of the ``estatehub`` entry-point group that lists allow."""
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            self._load_entry_point(ep)
        self.check()

    def _load_entry_point(self, ep: EntryPoint) -> None:
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if ep.name in self.block:
            self._infos[ep.name] = PluginInfo(ep.name, version, dist, (), "blocked")
            return
        if self.allow is not None and ep.name not in self.allow:
            self._infos[ep.name] = PluginInfo(ep.name, version, dist, (), "not allowed")
            return
        try:
            module = ep.load()
        except Exception as err:  # a broken plugin must not stop the others
            _LOGGER.error("plugin %s (%s) failed to import: %s", ep.name, dist, err)
            self._infos[ep.name] = PluginInfo(
                ep.name, version, dist, (), "failed", f"{type(err).__name__}: {err}"
            )
            return
        self.register(module, ep.name, version=version, distribution=dist)

    def register(
        self, plugin: ModuleType | object, name: str, *, version: str = "", distribution: str = ""
    ) -> None:
        """Register a plugin object directly (tests, embedding); blocked names are skipped."""
        if name in self.block:
            self._infos[name] = PluginInfo(name, version, distribution, (), "blocked")
            return
        if self._pm.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        self._pm.register(plugin, name=name)
        hooks = tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ()))
        self._infos[name] = PluginInfo(name, version or "", distribution or name, hooks, "loaded")
        self._registrations = None

    def check(self) -> None:
        """Fail loudly on a hook implementation that matches no spec (a misspelt hook)."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as err:
            name = self._pm.get_name(err.plugin) or repr(err.plugin)
            raise PluginError(f"plugin {name!r}: {err}") from err

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, by name."""
        return sorted(self._infos.values(), key=lambda p: p.name)

    def mark_failed(self, name: str, error: str) -> None:
        """Record that a loaded plugin failed at run time (shown by ``GET /api/plugins``)."""
        info = self._infos.get(name)
        if info is not None:
            self._infos[name] = PluginInfo(
                info.name, info.version, info.distribution, info.hooks, "failed", error
            )

    # -- registrar hooks ---------------------------------------------------------------

    def _each_impl(
        self, hook_name: str
    ) -> Iterable[tuple[str, Callable[..., Any], tuple[str, ...]]]:
        caller = getattr(self._pm.hook, hook_name)
        # pluggy calls implementations last-registered first; registrars run in
        # registration order instead, so listings and duplicate errors are stable.
        for impl in caller.get_hookimpls():
            yield impl.plugin_name, impl.function, tuple(impl.argnames)

    def registrations(self) -> Registrations:
        """Call the registrar hooks (once) and return what was registered.

        Raises :class:`PluginError` naming the plugin when a registration is invalid or a
        duplicate.
        """
        if self._registrations is not None:
            return self._registrations
        from .hookspecs.base import AdapterSpec, ConfigSectionSpec, SubsystemSpec
        from .hookspecs.notify import NotifierSpec

        regs = Registrations()

        def registrar(plugin: str, kind: str) -> Callable[[Any], None]:
            def register(spec: Any) -> None:
                if kind == "subsystem":
                    _expect(plugin, spec, SubsystemSpec)
                    key = ("subsystem", spec.name)
                    if spec.name in regs.subsystems:
                        raise PluginError(
                            f"plugin {plugin!r} registers subsystem {spec.name!r}, "
                            f"already registered by {regs.owner[key]!r}"
                        )
                    regs.subsystems[spec.name] = spec
                elif kind == "adapter":
                    _expect(plugin, spec, AdapterSpec)
                    key = (f"adapter:{spec.subsystem}", spec.name)
                    if (spec.subsystem, spec.name) in regs.adapters:
                        raise PluginError(
                            f"plugin {plugin!r} registers adapter {spec.name!r} for "
                            f"{spec.subsystem!r}, already registered by {regs.owner[key]!r}"
                        )
                    regs.adapters[(spec.subsystem, spec.name)] = spec
                elif kind == "notifier":
                    _expect(plugin, spec, NotifierSpec)
                    key = ("notifier", spec.name)
                    if spec.name in regs.notifiers:
                        raise PluginError(
                            f"plugin {plugin!r} registers notifier {spec.name!r}, "
                            f"already registered by {regs.owner[key]!r}"
                        )
                    regs.notifiers[spec.name] = spec
                else:
                    _expect(plugin, spec, ConfigSectionSpec)
                    key = ("section", spec.name)
                    if spec.name in CORE_SECTIONS or spec.name in regs.sections:
                        holder = regs.owner.get(key, "the core")
                        raise PluginError(
                            f"plugin {plugin!r} registers config section {spec.name!r}, "
                            f"already taken by {holder!r}"
                        )
                    regs.sections[spec.name] = spec
                if not callable(getattr(spec, "factory", print)):
                    raise PluginError(f"plugin {plugin!r}: {spec.name!r} has no callable factory")
                regs.owner[key] = plugin

            return register

        for hook, kind in (
            ("estatehub_register_subsystems", "subsystem"),
            ("estatehub_register_adapters", "adapter"),
            ("estatehub_register_config_sections", "section"),
            ("estatehub_register_notifiers", "notifier"),
        ):
            for plugin, function, argnames in self._each_impl(hook):
                kwargs = {"register": registrar(plugin, kind)} if "register" in argnames else {}
                try:
                    function(**kwargs)
                except PluginError:
                    raise
                except Exception as err:
                    raise PluginError(
                        f"plugin {plugin!r} failed in {hook}: {type(err).__name__}: {err}"
                    ) from err
        self._registrations = regs
        return regs

    def owner_of(self, kind: str, name: str) -> str:
        """Which plugin registered a subsystem (``kind="subsystem"``) or adapter."""
        return self.registrations().owner.get((kind, name), "?")

    # -- lifecycle and policy hooks ----------------------------------------------------

    def hub_started(self, hub: Hub) -> None:
        """Call ``estatehub_hub_started``; a failing implementation is logged, not raised."""
        for plugin, function, argnames in self._each_impl("estatehub_hub_started"):
            try:
                function(**({"hub": hub} if "hub" in argnames else {}))
            except Exception:
                _LOGGER.exception("plugin %s failed in estatehub_hub_started", plugin)
                self.mark_failed(plugin, "estatehub_hub_started raised")

    def parking_fee(self, session: ParkingSession, tariff: Tariff, exited_at: Any) -> int | None:
        """``estatehub_parking_fee``: the first plugin's fee in fen (None if none answers)."""
        return self._pm.hook.estatehub_parking_fee(
            session=session, tariff=tariff, exited_at=exited_at
        )

    def parking_verdict(
        self, read: PlateRead, plate: Plate, context: GateDecisionContext
    ) -> tuple[Verdict, str] | None:
        """``estatehub_parking_verdict``: the first plugin's (verdict, reason)."""
        return self._pm.hook.estatehub_parking_verdict(read=read, plate=plate, context=context)


def _expect(plugin: str, spec: Any, cls: type) -> None:
    if not isinstance(spec, cls):
        raise PluginError(
            f"plugin {plugin!r} registered {type(spec).__name__}, expected {cls.__name__}"
        )


def import_plugin_module(path: str) -> ModuleType:
    """Import ``package.module`` for registering a plugin by dotted path (tests, embedding)."""
    return importlib.import_module(path)
