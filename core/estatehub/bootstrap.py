"""Putting a hub together: plugins loaded, config validated (adapters included), hub built.

The CLI, the demo, replay and tests all come through here, so ``check-config`` reports
exactly what ``run`` would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import voluptuous as vol

from .config import (
    ConfigError,
    ConfigIssue,
    EstateConfig,
    load_estate_config,
    load_yaml,
    position,
    validate,
)
from .plugins import PluginManager


def load_plugins(allow: Any = None, block: Any = ()) -> PluginManager:
    """A plugin manager with every allowed entry-point plugin loaded."""
    plugins = PluginManager(allow=allow, block=block)
    plugins.load_entry_points()
    return plugins


def _preliminary_plugin_lists(path: Path) -> tuple[Any, Any]:
    # The allow/block lists live in the config, but the config's module schemas come from
    # the plugins: read just the `plugins:` section first, leniently.
    import yaml

    from .config import MAX_FILE_BYTES

    try:
        # Only a regular file of sane size: a pipe or a device would hang here, before the
        # full loader (which reports such files with a clear error) gets to look at it.
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None, ()
        with path.open(encoding="utf-8") as handle:
            document = next(yaml.compose_all(handle), None)
    except Exception:  # the full load reports YAML errors with file and line
        return None, ()
    return _plugin_lists_from_node(document)


def _plugin_lists_from_node(node: Any) -> tuple[Any, Any]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None, ()
    for key, value in node.value:
        if getattr(key, "value", None) == "plugins" and isinstance(value, yaml.MappingNode):
            allow = block = None
            for k, v in value.value:
                if isinstance(v, yaml.SequenceNode):
                    names = [getattr(item, "value", "") for item in v.value]
                elif isinstance(v, yaml.ScalarNode) and v.value:
                    names = [v.value]  # `allow: parking`, a single name
                else:
                    continue
                if k.value == "allow":
                    allow = names
                elif k.value == "block":
                    block = names
            return allow, block or ()
    return None, ()


def plugins_for_config(path: Path) -> PluginManager:
    """Load plugins honouring the config's ``plugins:`` allow/block lists and the env vars."""
    allow, block = _preliminary_plugin_lists(path)
    return load_plugins(allow, block)


def load_config(path: Path, plugins: PluginManager) -> EstateConfig:
    """Load and validate an estate config against the loaded plugins' schemas.

    Raises :class:`ConfigError` listing every problem: the core sections, every module's
    schema, and each device's adapter options checked against its adapter's schema (also
    when other parts of the file are wrong, so one run shows everything to fix).
    """
    regs = plugins.registrations()
    module_schemas = {
        name: spec.config_schema
        if spec.config_schema is not None
        else vol.Schema(dict, extra=vol.ALLOW_EXTRA)
        for name, spec in regs.subsystems.items()
    }
    section_schemas = {name: spec.schema for name, spec in regs.sections.items()}
    always_on = [name for name, spec in regs.subsystems.items() if spec.always_on]
    issues: list[ConfigIssue] = []
    config: EstateConfig | None = None
    try:
        config = load_estate_config(path, module_schemas, section_schemas, always_on)
        raw = config.raw
        modules: Mapping[str, Any] = config.modules
    except ConfigError as err:
        issues.extend(err.issues)
        try:
            raw = load_yaml(path)
        except ConfigError:
            raise err from None
        found = raw.get("modules") if isinstance(raw, Mapping) else None
        if not isinstance(found, Mapping):
            raise
        modules = found
    for name, module_config in modules.items():
        spec = regs.subsystems.get(name)
        if spec is None or spec.adapter_slots is None or not isinstance(module_config, Mapping):
            continue
        try:
            slots = list(spec.adapter_slots(module_config))
        except Exception:  # a raw config the module schema already reported on
            continue
        for slot in slots:
            issues.extend(_check_slot(name, slot, raw, regs, path))
    if config is not None and not issues:
        issues.extend(_check_registry_references(config, regs, path))
    if issues or config is None:
        unique = {(i.file, i.line, i.path, i.message): i for i in issues}
        raise ConfigError(
            tuple(sorted(unique.values(), key=lambda i: (i.file, i.line or 0, str(i.path))))
        )
    return config


def _check_slot(name: str, slot: Any, raw: Any, regs: Any, path: Path) -> list[ConfigIssue]:
    where = ("modules", name, *slot.path)
    raw_entry = _walk(raw, where)
    adapter = regs.adapters.get((name, slot.adapter))
    if adapter is None:
        known = sorted(n for (s, n) in regs.adapters if s == name)
        if not (isinstance(raw_entry, Mapping) and "adapter" in raw_entry):
            # The module-wide default names it: report it once, there.
            raw_entry, where = _walk(raw, ("modules", name)), ("modules", name)
        file, line = _where(raw_entry, "adapter", path)
        return [
            ConfigIssue(
                file,
                line,
                (*where, "adapter"),
                f"no {name} adapter {slot.adapter!r} is installed (installed: {', '.join(known) or 'none'})",
            )
        ]
    if adapter.options_schema is None:
        return []
    raw_options = _walk(raw_entry, ("options",)) if raw_entry is not None else None
    data = raw_options if isinstance(raw_options, Mapping) else dict(slot.options)
    if "kind" in slot.options and "kind" not in data:
        data = {**data, "kind": slot.options["kind"]}
    _, found = validate(data, _schema(adapter.options_schema), (*where, "options"))
    if found and not isinstance(raw_options, Mapping):
        file, line = _where(raw_entry, None, path)
        found = [ConfigIssue(file, line, i.path, i.message) for i in found]
    return list(found)


def _check_registry_references(config: EstateConfig, regs: Any, path: Path) -> list[ConfigIssue]:
    from .registry import EstateRegistry

    registry = EstateRegistry(config.registry)
    found: list[ConfigIssue] = []
    for name, module_config in config.modules.items():
        spec = regs.subsystems.get(name)
        if spec is None or spec.registry_check is None:
            continue
        for relative, message in spec.registry_check(module_config, registry):
            where = ("modules", name, *relative)
            node = _walk(config.raw, where[:-1])
            file, line = _where(node, where[-1] if isinstance(where[-1], str) else None, path)
            found.append(ConfigIssue(file, line, where, message))
    return found


def _schema(schema: Any) -> vol.Schema:
    return schema if isinstance(schema, vol.Schema) else vol.Schema(schema)


def _walk(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        if (isinstance(node, Mapping) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        ):
            node = node[key]
        else:
            return None
    return node


def _where(node: Any, key: str | None, path: Path) -> tuple[str, int | None]:
    found = position(node, key) if node is not None else None
    if found is None and node is not None:
        found = position(node)
    if found is None:
        return path.name, None
    return found
