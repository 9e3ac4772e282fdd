"""An estate with automations, on the virtual clock.

Until the core owns the ``automations:`` section (and the hub runs the engine), a test
plugin registers it as a config section with the engine's own schema and the tests build
the engine themselves. Either way the estate YAML goes through the real loader (file and
line on every error), and the engine runs what the loader validated.
"""

from __future__ import annotations

import textwrap
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from estatehub import hookimpl
from estatehub.automation import AUTOMATIONS_SCHEMA, AutomationEngine
from estatehub.config import CORE_SECTIONS, EstateConfig
from estatehub.hookspecs.base import ConfigSectionSpec
from estatehub.plugins import PluginManager
from estatehub.services import ServiceCall
from estatehub.testing.harness import EstateHarness

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday morning.
MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI)

ESTATE_HEAD = """\
estate:
  name: Xinyuan Garden
  timezone: Asia/Shanghai
  latitude: 31.2304
  longitude: 121.4737
plugins:
  allow: []
"""


@hookimpl
def estatehub_register_config_sections(register: Callable[[ConfigSectionSpec], None]) -> None:
    register(ConfigSectionSpec("automations", AUTOMATIONS_SCHEMA, "automations (test wiring)"))


#: True once the core validates ``automations:`` and the hub runs the engine itself.
WIRED_IN_CORE = "automations" in CORE_SECTIONS


def automation_plugins() -> PluginManager:
    """Plugins for a test estate: none, or the one that registers ``automations:``."""
    plugins = PluginManager(allow=(), environ={})
    if not WIRED_IN_CORE:
        plugins.register(
            types.SimpleNamespace(
                estatehub_register_config_sections=estatehub_register_config_sections
            ),
            "automation-section",
        )
    plugins.check()
    return plugins


def automations_of(config: EstateConfig) -> list[Any]:
    """The validated ``automations:`` of a loaded estate config."""
    if WIRED_IN_CORE:
        return list(getattr(config, "automations"))  # noqa: B009 - absent until wired
    return list(config.sections.get("automations", ()))


def estate_yaml(automations: str, head: str = ESTATE_HEAD) -> str:
    """The estate file: ``head`` and the ``automations:`` list given (any indentation)."""
    body = textwrap.indent(textwrap.dedent(automations).strip("\n"), "  ")
    return f"{head}automations:\n{body}\n"


class AutomatedEstate:
    """A started hub with an automation engine, and helpers to poke it."""

    def __init__(self, harness: EstateHarness, engine: AutomationEngine) -> None:
        self.harness = harness
        self.hub = harness.hub
        self.clock = harness.clock
        self.engine = engine
        self.calls: dict[str, list[ServiceCall]] = {}

    def record(self, service: str, result: Any = None) -> list[ServiceCall]:
        """Register ``domain.name`` as a service that records its calls; returns the list."""
        domain, name = service.split(".")
        calls = self.calls.setdefault(service, [])

        def handler(call: ServiceCall) -> Any:
            calls.append(call)
            return result

        self.hub.services.register(domain, name, handler)
        return calls

    def data_of(self, service: str) -> list[dict[str, Any]]:
        """The data of every call of a recording service, in order."""
        return [dict(call.data) for call in self.calls.get(service, [])]

    async def settle(self) -> None:
        """Let every run move as far as it can without time passing."""
        for _ in range(3):
            await self.hub.settle()
            await self.engine.settle()

    async def fire(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Fire an event now and let the automations react."""
        self.hub.bus.fire(event_type, data or {})
        await self.settle()

    async def set(self, entity_id: str, state: str, **attributes: Any) -> None:
        """Set an entity's state now and let the automations react."""
        self.hub.states.set(entity_id, state, attributes or None)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock, one due timer at a time, settling after each."""
        goal = self.clock.timestamp() + seconds
        while True:
            due = self.clock.next_timer()
            if due is None or due > goal:
                break
            self.clock.advance_to(due)
            await self.settle()
        self.clock.advance_to(goal)
        await self.settle()

    async def advance_to(self, moment: datetime) -> None:
        """Move the virtual clock to ``moment``."""
        await self.advance(moment.timestamp() - self.clock.timestamp())

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        """The data of every event of this type fired so far."""
        return self.harness.events_of(event_type)

    def traces(self, automation_id: str) -> list[dict[str, Any]]:
        """The engine's traces of one automation."""
        return self.engine.traces(automation_id)

    def last_trace(self, automation_id: str) -> dict[str, Any]:
        """The newest trace of one automation."""
        return self.engine.traces(automation_id)[-1]


@asynccontextmanager
async def automated_estate(
    folder: Path,
    automations: str,
    *,
    start: datetime = MONDAY_8AM,
    head: str = ESTATE_HEAD,
    before_start: Callable[[AutomatedEstate], None] | None = None,
) -> AsyncIterator[AutomatedEstate]:
    """A started estate whose ``automations:`` are running; stopped on exit."""
    harness = EstateHarness.from_yaml(
        folder, estate_yaml(automations, head), plugins=automation_plugins(), start=start
    )
    if WIRED_IN_CORE:
        # The hub builds, starts and stops its own engine.
        estate = AutomatedEstate(harness, getattr(harness.hub, "automations"))  # noqa: B009
        if before_start is not None:
            before_start(estate)
        async with harness:
            yield estate
        return
    async with harness:
        engine = AutomationEngine(harness.hub, automations_of(harness.config))
        estate = AutomatedEstate(harness, engine)
        if before_start is not None:
            before_start(estate)
        await engine.start()
        try:
            yield estate
        finally:
            await engine.stop()


@pytest.fixture
def estate_factory(tmp_path: Path) -> Callable[..., Any]:
    """``async with estate_factory(AUTOMATIONS_YAML) as estate: …``."""

    def make(automations: str, **kwargs: Any) -> Any:
        return automated_estate(tmp_path, automations, **kwargs)

    return make
