"""The documentation stays true to the code.

Every hook, config option, event, API route, service and command the code has must be in
docs/, and everything docs/ shows (config examples, fee examples, command lines, links, the
plugin guide's example packages and their replay output) must work as written. A change on
either side that leaves the other behind fails here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import io
import json
import pkgutil
import re
import shlex
import sys
import tomllib
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest
import voluptuous as vol
import yaml

import estatehub.hookspecs
import estatehub.testing.harness as harness_module
from estatehub import config as config_module
from estatehub import hookimpl
from estatehub import replay as replay_module
from estatehub.bootstrap import load_config
from estatehub.cli import main as cli_main
from estatehub.config import load_yaml
from estatehub.demo import write_demo
from estatehub.plugins import ENV_ALLOW, ENV_BLOCK, PROJECT, PluginManager
from estatehub_home.subsystem import HOME_SCHEMA
from estatehub_parking import subsystem as parking_subsystem
from estatehub_parking.schema import PARKING_SCHEMA
from estatehub_parking.tariff import parking_fee

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SPEC_MARK = f"{PROJECT}_spec"
SOURCE_FILES = sorted(
    {*ROOT.glob("core/estatehub/**/*.py"), *ROOT.glob("plugins/*/estatehub_*/**/*.py")}
)
TEST_FILES = sorted(
    {*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")}
    - {Path(__file__).resolve()}
)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


gen_hook_docs = _load_tool("gen_hook_docs")


def page(relative: str) -> str:
    """The text of one documentation page."""
    return (DOCS / relative).read_text(encoding="utf-8")


def all_pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.rglob("*.md"))


_FENCE = re.compile(r"^(`{3,})([^\n`]*)\n(.*?)^\1[ \t]*$", re.M | re.S)


def code_blocks(text: str) -> Iterator[tuple[str, str, str]]:
    """``(info string, body, marker)`` of every fenced block; ``marker`` is the
    ``<!-- … -->`` comment on the lines just before the block (a file label line and
    blank lines in between skipped), or ""."""
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").splitlines()[-4:]
        marker = ""
        for line in reversed(before):
            found = re.fullmatch(r"<!-- (.+) -->", line.strip())
            if found:
                marker = found[1]
                break
        yield match[2].strip(), match[3], marker


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return _FENCE.sub("", text)


def mentioned(name: str, text: str) -> bool:
    """``name`` appears in ``text`` as (the start of) a code span."""
    return any(f"`{name}{end}" in text for end in ("`", " ", ":", "="))


# -- hooks -----------------------------------------------------------------------------


def hookspecs() -> dict[str, Callable[..., Any]]:
    """Every function carrying the estatehub hookspec marker in estatehub.hookspecs.*."""
    found: dict[str, Callable[..., Any]] = {}
    prefix = estatehub.hookspecs.__name__ + "."
    for info in pkgutil.walk_packages(estatehub.hookspecs.__path__, prefix):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isfunction(value)
                and value.__module__ == module.__name__
                and hasattr(value, SPEC_MARK)
            ):
                found[name] = value
    return found


def test_every_hookspec_is_in_the_hook_reference_with_its_call_mode_and_version() -> None:
    specs = hookspecs()
    assert {"estatehub_register_adapters", "estatehub_parking_fee"} <= set(specs)
    reference = page("hooks.md")
    problems = []
    for name, function in specs.items():
        doc = inspect.getdoc(function) or ""
        if f"### `{name}`" not in reference:
            problems.append(f"{name}: not in docs/hooks.md")
        if "Call mode" not in doc:
            problems.append(f"{name}: the docstring has no 'Call mode'")
        if "versionadded" not in doc:
            problems.append(f"{name}: the docstring has no '.. versionadded::'")
        if getattr(function, SPEC_MARK).get("firstresult") and "firstresult" not in doc:
            problems.append(f"{name}: a firstresult hook whose docstring does not say so")
    assert problems == []


def test_every_hookspec_can_be_implemented_through_the_plugin_manager() -> None:
    # A hookspec module the PluginManager does not load would be documented but never called.
    probe = ModuleType("docs_probe")
    for name in hookspecs():

        def implementation() -> None:
            return None

        setattr(probe, name, hookimpl(implementation))
    manager = PluginManager(environ={})
    manager.register(probe, "docs-probe")
    manager.check()
    (info,) = manager.plugins()
    assert set(info.hooks) == set(hookspecs())


def test_the_hook_reference_is_up_to_date() -> None:
    assert gen_hook_docs.is_up_to_date(gen_hook_docs.HOOKS_MD), (
        "docs/hooks.md is out of date: run .venv/bin/python tools/gen_hook_docs.py"
    )


def test_gen_hook_docs_check_exits_1_on_a_stale_page_and_0_once_regenerated(
    tmp_path: Path,
) -> None:
    stale = tmp_path / "hooks.md"
    stale.write_text("# Hook reference\n\nan old copy\n", encoding="utf-8")
    assert gen_hook_docs.main(["--check", "--output", str(stale)]) == 1
    assert gen_hook_docs.main(["--output", str(stale)]) == 0
    assert gen_hook_docs.main(["--check", "--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == gen_hook_docs.render()


def test_every_hook_is_exercised_by_a_test() -> None:
    texts = [path.read_text(encoding="utf-8") for path in TEST_FILES]
    untested = sorted(name for name in hookspecs() if not any(name in text for text in texts))
    assert untested == [], (
        f"no test under tests/ or plugins/*/tests/ names these hooks: {', '.join(untested)}"
    )


# -- config options --------------------------------------------------------------------


def _sub_validators(node: Any) -> list[Any] | None:
    """The validators inside ``vol.All``, ``vol.Any`` and their kin, else None."""
    found = getattr(node, "validators", None)
    return list(found) if isinstance(found, list | tuple) else None


def schema_words(schema: Any) -> tuple[set[str], set[str]]:
    """``(option keys, allowed values)`` written in a voluptuous schema, at every depth.

    Follows nested schemas, dicts, lists, ``All``/``Any`` and the like, and plain
    validator functions (through their closures, and the schemas they name).
    """
    keys: set[str] = set()
    choices: set[str] = set()
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen or isinstance(node, str | int | float | bool | type(None)):
            return
        seen.add(id(node))
        if isinstance(node, vol.Schema):
            walk(node.schema)
        elif isinstance(node, dict):
            for key, value in node.items():
                written = key.schema if isinstance(key, vol.Marker) else key
                if isinstance(written, str):
                    keys.add(written)
                elif isinstance(written, vol.In):
                    keys.update(str(c) for c in written.container if isinstance(c, str))
                walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)
        elif isinstance(node, vol.In):
            choices.update(str(c) for c in node.container if isinstance(c, str))
        elif _sub_validators(node) is not None:
            for validator in _sub_validators(node) or ():
                walk(validator)
        elif inspect.isfunction(node):
            for cell in node.__closure__ or ():
                try:
                    walk(cell.cell_contents)
                except ValueError:  # an empty cell
                    continue
            for name in node.__code__.co_names:
                named = node.__globals__.get(name)
                if isinstance(named, vol.Schema) or _sub_validators(named) is not None:
                    walk(named)

    walk(schema)
    return keys, choices


def core_schemas() -> list[vol.Schema]:
    """Every module-level schema of estatehub.config (the core sections and the registry)."""
    return [value for value in vars(config_module).values() if isinstance(value, vol.Schema)]


def _undocumented(schemas: list[Any], text: str) -> list[str]:
    missing = []
    for schema in schemas:
        keys, choices = schema_words(schema)
        missing += [f"option {key}" for key in sorted(keys) if not mentioned(key, text)]
        missing += [f"value {value}" for value in sorted(choices) if not mentioned(value, text)]
    return sorted(set(missing))


@pytest.mark.parametrize(
    ("relative", "schemas"),
    [
        ("config/parking.md", [PARKING_SCHEMA]),
        ("config/home.md", [HOME_SCHEMA]),
        ("config/estate.md", core_schemas()),
    ],
    ids=["parking", "home", "estate"],
)
def test_every_config_option_and_allowed_value_is_documented(
    relative: str, schemas: list[Any]
) -> None:
    options = set().union(*(schema_words(schema)[0] for schema in schemas))
    assert len(options) >= 10  # the walk found the schemas' options
    assert _undocumented(schemas, page(relative)) == []


def test_every_core_section_is_documented() -> None:
    text = page("config/estate.md")
    assert [name for name in config_module.CORE_SECTIONS if f"## `{name}`" not in text] == [
        "modules"
    ]
    assert "## Modules: X+1" in text


def _write_example(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "estate.yaml"
    config.write_text(text, encoding="utf-8")
    secrets = sorted(set(re.findall(r"!secret\s+(\w+)", text)))
    (folder / "secrets.yaml").write_text(
        "".join(f"{name}: docs-{name}-0123456789abcdef\n" for name in secrets), encoding="utf-8"
    )
    return config


def _installed_plugins() -> PluginManager:
    manager = PluginManager(environ={})  # the runner's ESTATEHUB_* variables do not apply
    manager.load_entry_points()
    return manager


def _yaml_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {str(key) for key in node}
        for value in node.values():
            found |= _yaml_keys(value)
        return found
    if isinstance(node, list):
        return set().union(*(_yaml_keys(item) for item in node)) if node else set()
    return set()


def full_config_examples() -> list[tuple[str, int, str]]:
    """``(page, index, yaml)`` of every YAML example that is a whole estate config.

    A block with a top-level ``estate:`` line is one; other blocks are fragments. The plugin
    guide's examples need their own package installed and are tested below.
    """
    found = []
    for path in all_pages():
        if path.name == "plugin-authors.md":
            continue
        for index, (info, body, _) in enumerate(code_blocks(path.read_text(encoding="utf-8"))):
            if info == "yaml" and re.search(r"^estate:", body, re.M):
                found.append((str(path.relative_to(DOCS)), index, body))
    return found


@pytest.mark.parametrize(
    ("relative", "index", "text"),
    full_config_examples(),
    ids=[f"{p}#{i}" for p, i, _ in full_config_examples()],
)
def test_every_full_config_example_passes_check_config(
    tmp_path: Path, relative: str, index: int, text: str
) -> None:
    config = load_config(_write_example(tmp_path, text), _installed_plugins())
    assert config.name


@pytest.mark.parametrize(
    ("relative", "schemas"),
    [
        ("config/parking.md", [PARKING_SCHEMA]),
        ("config/home.md", [HOME_SCHEMA]),
        ("config/estate.md", core_schemas()),
    ],
    ids=["parking", "home", "estate"],
)
def test_the_complete_example_of_each_config_page_uses_every_option(
    tmp_path: Path, relative: str, schemas: list[Any]
) -> None:
    (example,) = [
        body
        for info, body, marker in code_blocks(page(relative))
        if marker == "docs-test: reference-example"
    ]
    written = _yaml_keys(load_yaml(_write_example(tmp_path, example)))
    options = set().union(*(schema_words(schema)[0] for schema in schemas))
    assert sorted(options - written) == []


def _fee_rows() -> Iterator[tuple[dict[str, str], str, str, bool, int]]:
    text = page("config/parking.md")
    for table in re.findall(r"<!-- docs-test: fee-examples -->\n+((?:\|.*\n)+)", text):
        for row in table.splitlines()[2:]:
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            changes = dict(re.findall(r"`(\w+): ([^`]+)`", " ".join(c for c in cells if "`" in c)))
            stay = next(c for c in cells if "→" in c)
            start, end, next_day = re.fullmatch(
                r"(\d\d:\d\d) → (\d\d:\d\d)( next day)?", stay
            ).groups()
            fee_cell = cells[cells.index(stay) + 1]
            fee = re.match(r"(\d+)(元)?", fee_cell)
            assert fee is not None, row
            fen = int(fee[1]) * (100 if fee[2] else 1)
            yield changes, start, end, bool(next_day), fen


def test_the_worked_fee_examples_are_what_the_tariff_charges() -> None:
    rows = list(_fee_rows())
    assert len(rows) == 10
    for changes, start, end, next_day, documented in rows:
        tariff_text = "\n".join(f"    {key}: {value}" for key, value in changes.items())
        written = yaml.safe_load(f"gates: {{g: {{adapter: x}}}}\ntariff:\n{tariff_text or '  {}'}")
        tariff = PARKING_SCHEMA(written)["tariff"]
        day = datetime(2026, 3, 2, tzinfo=SHANGHAI)
        entered = day.replace(hour=int(start[:2]), minute=int(start[3:]))
        exited = day.replace(hour=int(end[:2]), minute=int(end[3:])) + timedelta(days=next_day)
        assert (changes, start, end, parking_fee(entered, exited, tariff).fee_fen) == (
            changes,
            start,
            end,
            documented,
        )


# -- events ----------------------------------------------------------------------------

_FIRE_LITERAL = re.compile(r"""\.fire\(\s*["']([a-z_][a-z0-9_.]*)["']""")
_FIRE_CONSTANT = re.compile(r"""\.fire\(\s*([A-Z][A-Z0-9_]*)\s*,""")


def _constant(name: str, preferred: str) -> str:
    pattern = re.compile(rf"""^{name}\s*=\s*["']([^"']+)["']""", re.M)
    for text in [preferred, *(path.read_text(encoding="utf-8") for path in SOURCE_FILES)]:
        found = pattern.search(text)
        if found:
            return found[1]
    raise AssertionError(f"fire({name}, …): no string constant {name} in the sources")


def fired_event_types() -> set[str]:
    """Every event type the sources fire: ``fire("type", …)`` literals, and constants."""
    fired: set[str] = set()
    for path in SOURCE_FILES:
        text = path.read_text(encoding="utf-8")
        fired.update(_FIRE_LITERAL.findall(text))
        fired.update(_constant(name, text) for name in _FIRE_CONSTANT.findall(text))
    return fired


def documented_events() -> dict[str, str]:
    """Event type → its section of docs/events.md."""
    text = page("events.md")
    sections = re.split(r"^(?=##+ )", text, flags=re.M)
    found = {}
    for section in sections:
        heading = re.match(r"### `([a-z_][a-z0-9_.]*)`", section)
        if heading:
            found[heading[1]] = section
    return found


def test_every_event_type_fired_is_documented_and_every_documented_one_is_fired() -> None:
    fired = fired_event_types()
    assert {"parking.decision", "incident.raised", "state_changed", "transport.rejected"} <= fired
    documented = set(documented_events())
    assert (sorted(fired - documented), sorted(documented - fired)) == ([], [])


def _dict_keys(node: ast.AST, tree: ast.Module) -> set[str] | None:
    """The keys of a dict literal; ``**x.method()`` spreads resolved through ``method``'s
    own ``return {…}`` in the same module. None when the data is not a literal."""
    if not isinstance(node, ast.Dict):
        return None
    keys: set[str] = set()
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
        elif key is None and isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            method = value.func.attr
            for function in ast.walk(tree):
                if isinstance(function, ast.FunctionDef) and function.name == method:
                    for returned in ast.walk(function):
                        if isinstance(returned, ast.Return) and returned.value is not None:
                            keys |= _dict_keys(returned.value, tree) or set()
    return keys


def fired_event_fields() -> dict[str, set[str]]:
    """Event type → every data field some ``fire`` call gives it."""
    fields: dict[str, set[str]] = {}
    for path in SOURCE_FILES:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "fire"
                and len(node.args) >= 2
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                event_type = first.value
            elif isinstance(first, ast.Name):
                event_type = _constant(first.id, text)
            else:
                continue
            keys = _dict_keys(node.args[1], tree)
            if keys is not None:
                fields.setdefault(event_type, set()).update(keys)
    return fields


def test_every_event_data_field_is_documented_with_its_event() -> None:
    sections = documented_events()
    fields = fired_event_fields()
    assert fields["incident.escalated"] >= {"id", "level", "repeat", "notify", "instruction"}
    missing = sorted(
        f"{event}: {field}"
        for event, names in fields.items()
        for field in names
        if event in sections and f"`{field}`" not in sections[event]
    )
    assert missing == []


# -- API, services, commands -----------------------------------------------------------


def api_routes() -> list[tuple[str, str]]:
    text = (ROOT / "core/estatehub/api/server.py").read_text(encoding="utf-8")
    return re.findall(r'add_(get|post)\(\s*"([^"]+)"', text)


def _route_pattern(method: str, path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile(method.upper() + " " + r"[^\s/`]+".join(map(re.escape, parts)) + "$")


def test_every_api_route_is_documented_and_every_documented_route_exists() -> None:
    routes = api_routes()
    assert ("get", "/api/health") in routes
    documented = re.findall(r"`((?:GET|POST) /api/[^`\s?]*)", page("api.md"))
    patterns = [_route_pattern(method, path) for method, path in routes]
    undocumented = [
        f"{m.upper()} {p}"
        for (m, p), pattern in zip(routes, patterns, strict=True)
        if not any(pattern.match(d) for d in documented)
    ]
    unknown = [
        d
        for d in documented
        if not d.startswith("POST /api/webhook/") and not any(p.match(d) for p in patterns)
    ]
    assert (undocumented, unknown) == ([], [])


def registered_services() -> set[str]:
    found = set()
    for path in SOURCE_FILES:
        text = path.read_text(encoding="utf-8")
        for domain, name in re.findall(r'services\.register\(\s*"(\w+)",\s*"(\w+)"', text):
            found.add(f"{domain}.{name}")
    return found


def test_every_service_and_its_fields_are_in_the_api_reference() -> None:
    services = registered_services()
    assert "parking.pay" in services
    text = page("api.md")
    section = text[text.index("## Parking services") :]
    assert sorted(s for s in services if f"`{s}`" not in section) == []
    schemas = [v for k, v in vars(parking_subsystem).items() if k.endswith("_SCHEMA")]
    assert len(schemas) == 5
    assert _undocumented(schemas, section) == []


def _commands() -> dict[str, click.Command]:
    return dict(cli_main.commands)


def test_every_command_and_option_is_in_the_command_reference() -> None:
    text = page("index.md")
    missing = []
    for name, command in _commands().items():
        if f"`estatehub {name}" not in text:
            missing.append(f"estatehub {name}")
        for param in command.params:
            if isinstance(param, click.Option):
                missing += [f"{name} {o}" for o in param.opts if f"`{o}" not in text]
    assert "`estatehub --version`" in text
    assert missing == []


def _command_lines(text: str) -> Iterator[str]:
    for info, body, _ in code_blocks(text):
        if info == "console":
            yield from (line[2:] for line in body.splitlines() if line.startswith("$ "))
    yield from re.findall(r"`(estatehub [^`]+)`", prose(text))


def test_every_documented_command_line_uses_real_commands_and_options() -> None:
    commands = _commands()
    problems = []
    for path in all_pages():
        for line in _command_lines(path.read_text(encoding="utf-8")):
            words = shlex.split(line)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                assert words[0].split("=")[0] in (ENV_ALLOW, ENV_BLOCK), line
                words.pop(0)
            if not words or words[0] != "estatehub":
                continue  # curl, pip, cd, pytest …
            if len(words) < 2 or not re.fullmatch(r"[a-z][a-z-]*|--version|--help", words[1]):
                continue  # not a command line: `estatehub = hikvision -> …` and the like
            if words[1] in ("--version", "--help"):
                continue
            command = commands.get(words[1])
            if command is None:
                problems.append(f"{path.name}: {line}: no such command")
                continue
            rest = words[2:]
            if isinstance(command, click.Group):  # `estatehub automations trace …`
                sub = command.commands.get(rest[0]) if rest else None
                if sub is None:
                    problems.append(f"{path.name}: {line}: no such {words[1]} command")
                    continue
                command, rest = sub, rest[1:]
            known = {o for p in command.params for o in getattr(p, "opts", ())} | {"--help"}
            problems += [
                f"{path.name}: {line}: {word}"
                for word in rest
                if word.startswith("-") and word not in known
            ]
    assert problems == []


def test_the_plugin_environment_variables_are_documented_where_plugins_are() -> None:
    for relative in ("config/estate.md", "plugin-authors.md", "index.md"):
        assert mentioned(ENV_ALLOW, page(relative)), relative
        assert mentioned(ENV_BLOCK, page(relative)), relative


# -- links and site --------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (mkdocs) gives a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_every_relative_link_in_the_docs_points_at_an_existing_file_and_heading() -> None:
    broken = []
    for path in all_pages():
        text = re.sub(r"`[^`\n]*`", "", prose(path.read_text(encoding="utf-8")))
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.relative_to(DOCS)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{path.relative_to(DOCS)}: {target} (no such heading)")
    assert broken == []


def _nav_pages(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_pages(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_pages(value)


def test_the_site_navigation_lists_every_page_once_and_only_existing_ones() -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert (site["docs_dir"], site["theme"]["name"]) == ("docs", "material")
    listed = list(_nav_pages(site["nav"]))
    pages = sorted(str(p.relative_to(DOCS)) for p in all_pages())
    assert sorted(listed) == pages


def _layout_block() -> str:
    text = page("architecture.md")
    section = text[text.index("## The layout") : text.index("## From the command line")]
    ((layout,),) = [[body] for info, body, _ in code_blocks(section) if info == "text"]
    return layout


def test_the_architecture_layout_names_every_core_module_and_plugin_and_only_real_ones() -> None:
    layout = _layout_block()
    core = ROOT / "core" / "estatehub"
    modules = {p.name for p in core.rglob("*.py") if p.name != "__init__.py"}
    packages = {p.parent.name + "/" for p in core.glob("*/__init__.py")}
    plugins = {p.name + "/" for p in (ROOT / "plugins").iterdir() if p.is_dir()}
    named_files = set(re.findall(r"\b[a-z_]+\.py\b", layout))
    unnamed = sorted(n for n in modules | packages | plugins if n not in layout)
    unknown = sorted(named_files - modules)
    assert (unnamed, unknown) == ([], [])


# -- the worked examples ---------------------------------------------------------------


def example_files(relative: str, target: Path) -> dict[str, Path]:
    """Write every ``<!-- file: path -->`` block of a page under ``target``."""
    written = {}
    for _, body, marker in code_blocks(page(relative)):
        if marker.startswith("file: "):
            path = target / marker.removeprefix("file: ")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            written[marker.removeprefix("file: ")] = path
    return written


@pytest.fixture
def isolated_modules() -> Iterator[None]:
    """Forget the modules a test imported from its temporary example packages."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _import_example(
    package_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, PluginManager]:
    """Import an example package's entry point as pip would make it loadable."""
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))
    ((name, target),) = project["project"]["entry-points"]["estatehub"].items()
    package = target.split(".")[0]
    for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.syspath_prepend(str(package_dir))
    module = importlib.import_module(target)
    manager = _installed_plugins()
    manager.register(module, name)
    manager.check()
    monkeypatch.setattr(replay_module, "plugins_for_config", lambda path: manager)
    monkeypatch.setattr(harness_module, "plugins_for_config", lambda path: manager)
    return name, manager


async def _replayed(folder: Path) -> list[str]:
    out = io.StringIO()
    await replay_module.replay(folder / "estate.yaml", folder / "capture.jsonl", out)
    return out.getvalue().splitlines()


def _test_module(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    name = f"docs_example_{path.parent.parent.name.replace('-', '_')}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("isolated_modules")
async def test_the_acme_adapter_example_installs_replays_and_passes_its_own_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = example_files("plugin-authors.md", tmp_path)
    package = tmp_path / "estatehub-acme"
    name, manager = _import_example(package, monkeypatch)
    assert name == "acme"
    info = {p.name: p for p in manager.plugins()}["acme"]
    assert (info.status, info.hooks) == ("loaded", ("estatehub_register_adapters",))
    assert ("parking", "acme") in manager.registrations().adapters

    expected = files["estatehub-acme/tests/expected.jsonl"].read_text(encoding="utf-8")
    assert await _replayed(package / "tests") == expected.splitlines()

    for test_file in ("test_replay.py", "test_adapter.py"):
        module = _test_module(package / "tests" / test_file, monkeypatch)
        tests = [v for k, v in vars(module).items() if k.startswith("test_")]
        assert tests, test_file
        for index, test in enumerate(tests):
            arguments = inspect.signature(test).parameters
            folder = tmp_path / f"{test_file}-{index}"
            await (test(folder) if "tmp_path" in arguments else test())


@pytest.mark.usefixtures("isolated_modules")
async def test_the_nev_fee_example_overrides_the_fee_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = example_files("plugin-authors.md", tmp_path)
    package = tmp_path / "estatehub-nev-fee"
    name, manager = _import_example(package, monkeypatch)
    assert {p.name: p.hooks for p in manager.plugins()}[name] == ("estatehub_parking_fee",)

    lines = await _replayed(package / "tests")
    expected = files["estatehub-nev-fee/tests/expected.jsonl"].read_text(encoding="utf-8")
    assert lines == expected.splitlines()
    fees = [
        (event["data"]["plate"], event["data"]["fee_fen"])
        for event in map(json.loads, lines)
        if event["type"] == "parking.fee_due"
    ]
    assert fees == [("沪AD12345", 200), ("沪C5N728", 1500)]


async def test_the_demo_replay_excerpt_is_what_replay_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    monkeypatch.delenv(ENV_BLOCK, raising=False)
    write_demo(tmp_path)
    out = io.StringIO()
    await replay_module.replay(tmp_path / "estate.yaml", tmp_path / "captures/demo.jsonl", out)
    printed = out.getvalue().splitlines()
    ((excerpt,),) = [
        [body]
        for _, body, marker in code_blocks(page("replay.md"))
        if marker == "docs-test: demo-replay-excerpt"
    ]
    shown = excerpt.splitlines()
    assert len(shown) == 11
    positions = [printed.index(line) if line in printed else -1 for line in shown]
    assert -1 not in positions, [line for line, at in zip(shown, positions, strict=True) if at < 0]
    assert positions == sorted(positions)
