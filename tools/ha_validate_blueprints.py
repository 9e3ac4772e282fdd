"""Validate estatehub's shipped blueprints with Home Assistant's own validators.

Run it with the Python of the separate Home Assistant venv (it imports ``homeassistant``,
never ``estatehub``)::

    bash bench/ha_venv.sh                       # builds .ha-venv once
    .ha-venv/bin/python tools/ha_validate_blueprints.py [--json] [FILE_OR_FOLDER …]

For every blueprint it does what Home Assistant does with one:

1. load the file with ``homeassistant.util.yaml``'s ``!input``-aware loader;
2. ``Blueprint(data, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA)``
   (the blueprint schema, the selectors, every ``!input`` declared);
3. build a ``use_blueprint`` config with an input value for every input (the default if
   there is one, else a value made from the input's selector: ``binary_sensor.example``
   for an entity selector of that domain, the lowest number of a number selector …),
   check it with ``BlueprintInputs.validate`` and substitute it;
4. run the automation config validator (``automation.config.async_validate_config_item``)
   on a headless ``HomeAssistant`` with no integrations set up, which checks the
   triggers, conditions and actions with their own platform schemas.

estatehub's two extensions are not Home Assistant's, so step 4 cannot accept them as
written. A blueprint that uses one is validated with a stand-in in its place: a ``notify:``
action becomes the ``notify.notify`` service call with the same message, title and target
data, an ``incident`` trigger the ``event`` trigger on ``incident.<event>`` it listens to in
estatehub. Such a blueprint is reported as ``ok with stand-ins`` and names its extensions;
``ok`` means Home Assistant accepts the blueprint exactly as written.

Exit status: 0 when every blueprint passes, 1 when any fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "blueprints"

OK = "ok"
OK_WITH_STAND_INS = "ok with stand-ins"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What Home Assistant said about one blueprint.

    :param stage: where it failed (``load``, ``blueprint``, ``inputs``, ``automation``), or
        ``""`` when it passed.
    :param extensions: estatehub extensions replaced by stand-ins for step 4.
    """

    blueprint: str
    status: str
    stage: str
    message: str
    extensions: tuple[str, ...]


# --------------------------------------------------------------------------- inputs


def example_value(selector: dict[str, Any] | None) -> Any:
    """A value an input with this selector accepts, for inputs without a default."""
    if not selector:
        return "example"
    ((kind, options),) = selector.items()
    options = options or {}
    multiple = bool(options.get("multiple"))
    value: Any
    if kind == "entity":
        domains = options.get("domain") or ["sensor"]
        domain = domains[0] if isinstance(domains, list) else domains
        value = f"{domain}.example"
    elif kind == "number":
        value = options.get("min", 0)
    elif kind == "boolean":
        value = False
    elif kind == "select":
        first = options["options"][0]
        value = first["value"] if isinstance(first, dict) else first
    elif kind == "duration":
        value = {"hours": 0, "minutes": 1, "seconds": 0}
    elif kind == "time":
        value = "08:00:00"
    elif kind in ("device", "area"):
        value = "example"
    elif kind in ("action", "trigger", "condition"):
        value = []
    elif kind == "object":
        value = {}
    else:  # text, template
        value = "example"
    return [value] if multiple else value


# --------------------------------------------------------------------------- stand-ins


def _stand_ins(node: Any, used: set[str]) -> Any:
    """``node`` with estatehub's extensions replaced by the Home Assistant they stand for."""
    if isinstance(node, list):
        return [_stand_ins(item, used) for item in node]
    if not isinstance(node, dict):
        return node
    if "notify" in node and isinstance(node["notify"], dict):
        used.add("notify action")
        body = node["notify"]
        data = {key: body[key] for key in ("message", "title", "target") if key in body}
        rest = {k: v for k, v in node.items() if k != "notify"}
        return {**_stand_ins(rest, used), "action": "notify.notify", "data": data}
    kind_key = "trigger" if "trigger" in node else "platform" if "platform" in node else None
    if kind_key is not None and node[kind_key] == "incident":
        used.add("incident trigger")
        events = node.get("event", ["raised"])
        events = events if isinstance(events, list) else [events]
        kept = {k: v for k, v in node.items() if k in ("id", "alias", "enabled", "variables")}
        return {**kept, "trigger": "event", "event_type": [f"incident.{e}" for e in events]}
    return {key: _stand_ins(value, used) for key, value in node.items()}


# --------------------------------------------------------------------------- validation


def _blueprint_files(targets: list[Path]) -> Iterator[Path]:
    for target in targets:
        if target.is_dir():
            yield from sorted(target.rglob("*.yaml"))
        else:
            yield target


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(SHIPPED).as_posix()
    except ValueError:
        return str(path)


async def _headless_hass(config_dir: Path) -> Any:
    from homeassistant import loader
    from homeassistant.core import HomeAssistant

    hass = HomeAssistant(str(config_dir))
    hass.config.skip_pip = True
    loader.async_setup(hass)
    return hass


async def validate_blueprint(hass: Any, path: Path) -> Verdict:
    """Run Home Assistant's blueprint and automation validators over one file."""
    from homeassistant.components.automation.config import (
        AUTOMATION_BLUEPRINT_SCHEMA,
        async_validate_config_item,
    )
    from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
    from homeassistant.exceptions import HomeAssistantError
    from homeassistant.util import yaml as ha_yaml

    shown = _shown(path)

    def verdict(status: str, stage: str, message: str, used: tuple[str, ...] = ()) -> Verdict:
        return Verdict(shown, status, stage, message, used)

    try:
        data = ha_yaml.load_yaml(str(path))
    except HomeAssistantError as err:
        return verdict(FAILED, "load", str(err))
    try:
        blueprint = Blueprint(
            data, path=shown, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
        )
    except HomeAssistantError as err:
        return verdict(FAILED, "blueprint", str(err))
    inputs = {
        key: example_value((declared or {}).get("selector"))
        for key, declared in blueprint.inputs.items()
        if "default" not in (declared or {})
    }
    instance = {"use_blueprint": {"path": shown, "input": inputs}}
    try:
        blueprint_inputs = BlueprintInputs(blueprint, instance)
        blueprint_inputs.validate()
        automation = blueprint_inputs.async_substitute()
    except HomeAssistantError as err:
        return verdict(FAILED, "inputs", str(err))
    used: set[str] = set()
    automation = _stand_ins(automation, used)
    extensions = tuple(sorted(used))
    automation.setdefault("id", path.stem)
    try:
        await async_validate_config_item(hass, "automation", automation)
    except Exception as err:  # HA raises vol.Invalid or HomeAssistantError here
        return verdict(FAILED, "automation", f"{type(err).__name__}: {err}", extensions)
    return verdict(OK_WITH_STAND_INS if extensions else OK, "", "", extensions)


async def validate_all(paths: list[Path]) -> list[Verdict]:
    """Validate every blueprint file among ``paths`` (folders are searched for *.yaml)."""
    with tempfile.TemporaryDirectory() as config_dir:
        Path(config_dir, "configuration.yaml").write_text("", encoding="utf-8")
        hass = await _headless_hass(Path(config_dir))
        try:
            return [await validate_blueprint(hass, path) for path in _blueprint_files(paths)]
        finally:
            await hass.async_stop(force=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: print one line (or JSON object) per blueprint; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[SHIPPED])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    try:
        import homeassistant.const
    except ImportError:
        print(
            "homeassistant is not importable: run this with the HA venv's python "
            "(bash bench/ha_venv.sh builds .ha-venv)",
            file=sys.stderr,
        )
        return 2
    verdicts = asyncio.run(validate_all(args.paths))
    for item in verdicts:
        if args.json:
            print(json.dumps(asdict(item), ensure_ascii=False))
        else:
            extra = f" ({', '.join(item.extensions)})" if item.extensions else ""
            detail = f" at {item.stage}: {item.message}" if item.status == FAILED else ""
            print(f"{item.blueprint}: {item.status}{extra}{detail}")
    if not args.json:
        print(f"homeassistant {homeassistant.const.__version__}: {len(verdicts)} blueprints")
    return 1 if any(item.status == FAILED for item in verdicts) or not verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
