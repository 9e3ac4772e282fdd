"""Plugins load through one facade; a module that raises or hangs fails alone."""

from __future__ import annotations

import asyncio
import logging
import types

import pytest
import voluptuous as vol

from estatehub import hookimpl
from estatehub.hookspecs.base import AdapterSpec, ConfigSectionSpec, SubsystemSpec
from estatehub.hub import ModuleStatus
from estatehub.plugins import PluginError, PluginManager
from estatehub.testing.harness import EstateHarness


class GoodModule:
    def __init__(self, hub, config):
        self.config = config
        self.started = False

    async def start(self, hub):
        hub.states.set("sensor.good", "running")
        self.started = True

    async def stop(self):
        self.started = False


class RaisingModule(GoodModule):
    async def start(self, hub):
        raise RuntimeError("cannot reach the vendor cloud")


class HangingModule(GoodModule):
    async def start(self, hub):
        await asyncio.sleep(3600)


def subsystem_plugin(name: str, module_cls: type, schema=None) -> types.SimpleNamespace:
    @hookimpl
    def estatehub_register_subsystems(register):
        register(
            SubsystemSpec(name=name, factory=module_cls, config_schema=schema or vol.Schema(dict))
        )

    return types.SimpleNamespace(estatehub_register_subsystems=estatehub_register_subsystems)


def manager(*plugins: tuple[str, object]) -> PluginManager:
    pm = PluginManager(allow=(), environ={})
    for name, plugin in plugins:
        pm.register(plugin, name)
    pm.check()
    return pm


ESTATE = "estate: {name: test}\nmodules:\n  good:\n  broken:\n  stuck:\n"


async def test_a_module_that_raises_or_hangs_fails_alone_with_an_incident_and_a_log_line(
    tmp_path, caplog
):
    plugins = manager(
        ("acme-good", subsystem_plugin("good", GoodModule)),
        ("acme-broken", subsystem_plugin("broken", RaisingModule)),
        ("acme-stuck", subsystem_plugin("stuck", HangingModule)),
    )
    harness = EstateHarness.from_yaml(tmp_path, ESTATE, plugins=plugins)
    harness.hub.start_timeout = 0.2
    caplog.set_level(logging.ERROR)
    async with harness as e:
        status = {name: rec.status for name, rec in e.hub.modules.items()}
        assert status == {
            "good": ModuleStatus.RUNNING,
            "broken": ModuleStatus.FAILED,
            "stuck": ModuleStatus.FAILED,
        }
        assert e.hub.modules["broken"].error == "RuntimeError: cannot reach the vendor cloud"
        assert e.hub.modules["stuck"].error == "did not start within 0.2 s"
        raised = {d["summary"] for d in e.events_of("incident.raised")}
        assert raised == {
            "module broken (plugin acme-broken) failed: RuntimeError: cannot reach the vendor cloud",
            "module stuck (plugin acme-stuck) failed: did not start within 0.2 s",
        }
        assert "module broken (plugin acme-broken) failed" in caplog.text
        assert e.hub.states.get("sensor.good").state == "running"
        failed = {p.name: p.status for p in plugins.plugins()}
        assert failed == {"acme-good": "loaded", "acme-broken": "failed", "acme-stuck": "failed"}


async def test_module_listed_in_config_without_a_plugin_is_a_config_error(tmp_path):
    from estatehub.config import ConfigError

    with pytest.raises(ConfigError, match="parking"):
        EstateHarness.from_yaml(
            tmp_path, "estate: {name: t}\nmodules:\n  parking:\n", plugins=manager()
        )


def test_two_plugins_registering_the_same_subsystem_name_both_named():
    plugins = manager(
        ("first", subsystem_plugin("good", GoodModule)),
        ("second", subsystem_plugin("good", GoodModule)),
    )
    with pytest.raises(
        PluginError,
        match="plugin 'second' registers subsystem 'good', already registered by 'first'",
    ):
        plugins.registrations()


def test_registering_the_wrong_kind_of_spec_names_the_plugin():
    @hookimpl
    def estatehub_register_adapters(register):
        register({"name": "dict-not-spec"})

    plugins = manager(
        ("sloppy", types.SimpleNamespace(estatehub_register_adapters=estatehub_register_adapters))
    )
    with pytest.raises(PluginError, match="plugin 'sloppy' registered dict, expected AdapterSpec"):
        plugins.registrations()


def test_a_core_section_name_cannot_be_taken():
    @hookimpl
    def estatehub_register_config_sections(register):
        register(ConfigSectionSpec("mqtt", vol.Schema(dict)))

    plugins = manager(
        (
            "grabby",
            types.SimpleNamespace(
                estatehub_register_config_sections=estatehub_register_config_sections
            ),
        )
    )
    with pytest.raises(PluginError, match="config section 'mqtt', already taken by 'the core'"):
        plugins.registrations()


def test_a_misspelt_hook_fails_loudly():
    @hookimpl
    def estatehub_register_adaptors(register):  # "adaptors"
        pass

    pm = PluginManager(allow=(), environ={})
    pm.register(
        types.SimpleNamespace(estatehub_register_adaptors=estatehub_register_adaptors), "typo"
    )
    with pytest.raises(PluginError, match="typo"):
        pm.check()


def test_allow_and_block_lists_from_config_and_environment():
    everything = {p.name: p.status for p in _loaded(PluginManager(environ={}))}
    assert {"parking", "home", "hikvision", "zigbee2mqtt"} <= set(everything)
    only = {
        p.name: p.status
        for p in _loaded(PluginManager(environ={"ESTATEHUB_PLUGINS": "parking, home"}))
    }
    assert only["parking"] == "loaded" and only["hikvision"] == "not allowed"
    blocked = {
        p.name: p.status
        for p in _loaded(
            PluginManager(block=["home"], environ={"ESTATEHUB_BLOCK_PLUGINS": "zigbee2mqtt"})
        )
    }
    assert (
        blocked["home"] == "blocked"
        and blocked["zigbee2mqtt"] == "blocked"
        and blocked["parking"] == "loaded"
    )
    both = {
        p.name: p.status
        for p in _loaded(
            PluginManager(allow=["parking", "home"], environ={"ESTATEHUB_PLUGINS": "home"})
        )
    }
    assert both["home"] == "loaded" and both["parking"] == "not allowed"


def _loaded(pm: PluginManager):
    pm.load_entry_points()
    return pm.plugins()


def test_first_party_plugins_register_what_they_provide():
    pm = PluginManager(environ={})
    pm.load_entry_points()
    regs = pm.registrations()
    assert set(regs.subsystems) >= {"parking", "home"}
    assert {("parking", "hikvision"), ("parking", "mqtt_json"), ("home", "zigbee2mqtt")} <= set(
        regs.adapters
    )
    assert pm.owner_of("subsystem", "parking") == "parking"
    assert all(isinstance(spec, AdapterSpec) for spec in regs.adapters.values())


def test_policy_hooks_can_be_overridden_by_an_integrators_plugin():
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from estatehub.hookspecs.parking import ParkingSession, PlateKind, Tariff

    class NevDiscount:
        @hookimpl
        def estatehub_parking_fee(self, session, tariff, exited_at):
            if session.kind is PlateKind.NEW_ENERGY_SMALL:
                return 0
            return None

    pm = PluginManager(environ={})
    pm.load_entry_points()
    pm.register(NevDiscount(), "nev-discount")
    entered = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    nev = ParkingSession("PS-1", "沪AD12345", PlateKind.NEW_ENERGY_SMALL, "north", entered)
    petrol = ParkingSession("PS-2", "沪C5N728", PlateKind.ORDINARY, "north", entered)
    assert pm.parking_fee(nev, Tariff(), entered + timedelta(hours=3)) == 0
    assert pm.parking_fee(petrol, Tariff(), entered + timedelta(hours=3)) == 1500


async def test_estatehub_hub_started_sees_the_running_hub_and_a_failing_impl_is_contained(
    tmp_path, caplog
):
    seen = []

    class Watcher:
        @hookimpl
        def estatehub_hub_started(self, hub):
            seen.append({name: rec.status.value for name, rec in hub.modules.items()})

    class Broken:
        @hookimpl
        def estatehub_hub_started(self, hub):
            raise RuntimeError("boom")

    plugins = manager(
        ("acme-good", subsystem_plugin("good", GoodModule)),
        ("watcher", Watcher()),
        ("broken", Broken()),
    )
    async with EstateHarness.from_yaml(
        tmp_path, "estate: {name: t}\nmodules:\n  good:\n", plugins=plugins
    ) as e:
        assert seen == [{"good": "running"}]
        assert e.types("hub.") == ["hub.started"]
    assert "plugin broken failed in estatehub_hub_started" in caplog.text
    assert {p.name: p.status for p in plugins.plugins()}["broken"] == "failed"


async def test_estatehub_register_config_sections_validates_the_section_with_file_and_line(
    tmp_path,
):
    from estatehub.config import ConfigError

    @hookimpl
    def estatehub_register_config_sections(register):
        register(ConfigSectionSpec("district_uplink", vol.Schema({vol.Required("broker"): str})))

    plugins = manager(
        (
            "uplink",
            types.SimpleNamespace(
                estatehub_register_config_sections=estatehub_register_config_sections
            ),
        )
    )
    harness = EstateHarness.from_yaml(
        tmp_path, "estate: {name: t}\ndistrict_uplink:\n  broker: mqtt.example\n", plugins=plugins
    )
    assert harness.config.sections["district_uplink"] == {"broker": "mqtt.example"}
    with pytest.raises(ConfigError, match=r"estate.yaml, line 3: district_uplink → brokr"):
        EstateHarness.from_yaml(
            tmp_path / "bad", "estate: {name: t}\ndistrict_uplink:\n  brokr: x\n", plugins=plugins
        )


async def test_estatehub_parking_verdict_override_decides_before_the_default(tmp_path):
    from estatehub.hookspecs.parking import Verdict

    class NightCurfew:
        @hookimpl
        def estatehub_parking_verdict(self, read, plate, context):
            if context.category == "unknown" and context.at.hour < 6:
                return Verdict.DENY, "no visitors before 06:00"
            return None

    plugins = PluginManager(allow=["parking"], environ={})
    plugins.load_entry_points()
    plugins.register(NightCurfew(), "curfew")
    yaml = (
        "estate: {name: t}\nplugins: {allow: [parking]}\nmodules:\n  parking:\n    gates:\n"
        "      north: {adapter: mqtt_json, direction: in}\n    residents: {h1: [沪A8K352]}\n"
    )
    from datetime import datetime
    from zoneinfo import ZoneInfo

    early = datetime(2026, 3, 2, 5, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with EstateHarness.from_yaml(tmp_path, yaml, plugins=plugins, start=early) as e:
        e.mqtt("estatehub/gate/north/plate", '{"plate": "沪C5N728"}')
        e.mqtt("estatehub/gate/north/plate", '{"plate": "沪A8K352"}')
        await e.settle()
        assert [
            (d["plate"], d["verdict"], d["reason"]) for d in e.events_of("parking.decision")
        ] == [
            ("沪C5N728", "deny", "no visitors before 06:00"),
            ("沪A8K352", "open", "resident"),
        ]


async def test_a_module_that_fails_half_way_through_start_is_stopped_to_release_what_it_took(
    tmp_path,
):
    released = []

    class HalfStarted(GoodModule):
        async def start(self, hub):
            self.unsubscribe = hub.mqtt.subscribe("vendor/+/state", lambda message: None)
            raise RuntimeError("second device unreachable")

        async def stop(self):
            self.unsubscribe()
            released.append("stopped")

    plugins = manager(("acme-half", subsystem_plugin("half", HalfStarted)))
    async with EstateHarness.from_yaml(
        tmp_path, "estate: {name: t}\nmodules:\n  half:\n", plugins=plugins
    ) as e:
        assert e.hub.modules["half"].status is ModuleStatus.FAILED
        assert released == ["stopped"]


def test_estatehub_register_notifiers_collects_notifier_types_and_refuses_duplicates():
    from estatehub.hookspecs.notify import NotifierSpec

    class LogToo:
        @hookimpl
        def estatehub_register_notifiers(self, register):
            register(NotifierSpec(name="log", factory=lambda context, options: None))

    pm = PluginManager(environ={})
    pm.load_entry_points()
    assert {"webhook", "wecom", "dingtalk", "smtp", "log"} <= set(pm.registrations().notifiers)
    assert pm.owner_of("notifier", "wecom") == "notify"
    clash = PluginManager(environ={})
    clash.load_entry_points()
    clash.register(LogToo(), "log-too")
    with pytest.raises(
        PluginError,
        match="plugin 'log-too' registers notifier 'log', already registered by 'notify'",
    ):
        clash.registrations()
