"""The plugin registers its gate adapter through the estatehub entry point and hook."""

from __future__ import annotations

from importlib.metadata import entry_points

import pluggy

from estatehub.hookspecs import base
from estatehub.hookspecs.base import AdapterSpec
from estatehub_hikvision import plugin
from estatehub_hikvision.gate import GATE_OPTIONS_SCHEMA, HikvisionGate


def test_entry_point_estatehub_hikvision_points_at_the_plugin_module():
    found = {ep.name: ep.value for ep in entry_points(group="estatehub")}

    assert found["hikvision"] == "estatehub_hikvision.plugin"
    (hikvision_entry_point,) = entry_points(group="estatehub", name="hikvision")
    assert hikvision_entry_point.load() is plugin


def test_plugin_registers_the_parking_adapter_through_the_hook():
    manager = pluggy.PluginManager("estatehub")
    manager.add_hookspecs(base)
    manager.register(plugin, name="hikvision")
    manager.check_pending()
    registered: list[AdapterSpec] = []

    manager.hook.estatehub_register_adapters(register=registered.append)

    assert len(registered) == 1
    spec = registered[0]
    assert (spec.subsystem, spec.name) == ("parking", "hikvision")
    assert spec.factory is HikvisionGate
    assert spec.options_schema is GATE_OPTIONS_SCHEMA
    assert spec.description == (
        "Hikvision ANPR camera: plate pushes to /api/webhook/hikvision/<gate>, "
        "barrier open/close over ISAPI (digest auth)"
    )


def test_plugin_imports_only_estatehub_and_its_own_package():
    import ast
    from pathlib import Path

    package = Path(plugin.__file__).parent
    imported: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)

    assert {name for name in imported if name.startswith("estatehub")} == {"estatehub"}
