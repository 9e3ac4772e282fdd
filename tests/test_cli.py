"""The command line as an estate's operator meets it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from estatehub.automation.blueprint import SHIPPED_BLUEPRINTS
from estatehub.cli import main
from estatehub.demo import write_demo

ESTATEHUB = [sys.executable, "-m", "estatehub"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ESTATEHUB, *args], capture_output=True, text=True, check=False, timeout=120, cwd=cwd
    )


def test_check_config_accepts_the_demo_estate(tmp_path):
    write_demo(tmp_path)
    done = run("check-config", "-c", str(tmp_path / "estate.yaml"))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "modules: parking, home" in done.stdout


def test_check_config_lists_every_error_with_file_line_and_path(tmp_path):
    write_demo(tmp_path)
    config = tmp_path / "estate.yaml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("free_minutes: 15", "free_minutes: abc")
    text = text.replace("host: 192.0.2.11", "hots: 192.0.2.11")
    text = text.replace("adapter: zigbee2mqtt\n", "adapter: zigbee3mqtt\n", 1)
    config.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    free_line = next(i for i, line in enumerate(lines, 1) if "free_minutes: abc" in line)
    done = run("check-config", "-c", str(config))
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert (
        f"estate.yaml, line {free_line}: modules → parking → tariff → free_minutes: expected int, got 'abc'"
        in errors
    )
    assert any(
        "modules → parking → gates → south → options" in e and "hots" in e for e in errors
    ), errors
    assert any(
        e.startswith("estate.yaml, line ")
        and "modules → home → adapter: no home adapter 'zigbee3mqtt'"
        " is installed (installed: zigbee2mqtt)"
        in e
        for e in errors
    ), errors
    assert errors[-1] == f"4 errors in {config}"


def test_check_config_on_a_yaml_syntax_error_names_the_line(tmp_path):
    config = tmp_path / "estate.yaml"
    config.write_text("estate:\n  name: x\n modules: [\n", encoding="utf-8")
    done = run("check-config", "-c", str(config))
    assert done.returncode == 1
    assert done.stderr.startswith("estate.yaml, line ")


def test_check_config_on_a_missing_file(tmp_path):
    done = run("check-config", "-c", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "nope.yaml" in done.stderr


def test_plugins_lists_name_version_status_and_hooks():
    import json

    done = run("plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["hikvision"] == {
        "name": "hikvision",
        "version": "0.1.0",
        "distribution": "estatehub-hikvision",
        "status": "loaded",
        "error": "",
        "hooks": ["estatehub_register_adapters"],
        "provides": ["parking adapter hikvision"],
    }
    assert plugins["parking"]["provides"] == ["subsystem parking", "parking adapter mqtt_json"]
    assert "estatehub_parking_fee" in plugins["parking"]["hooks"]
    table = run("plugins")
    assert table.returncode == 0 and "zigbee2mqtt" in table.stdout


def test_plugins_honours_the_environment_block_list():
    import json
    import os

    env = {**os.environ, "ESTATEHUB_BLOCK_PLUGINS": "hikvision"}
    done = subprocess.run(
        [*ESTATEHUB, "plugins", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    statuses = {p["name"]: p["status"] for p in json.loads(done.stdout)}
    assert statuses["hikvision"] == "blocked" and statuses["parking"] == "loaded"


def test_replay_of_a_broken_capture_names_the_line(tmp_path):
    write_demo(tmp_path)
    capture = tmp_path / "bad.jsonl"
    capture.write_text(
        '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": "x", "payload": ""}\n'
        '{"at": "2026-03-02T08:00:00", "transport": "mqtt", "topic": "x"}\n',
        encoding="utf-8",
    )
    done = run("replay", "-c", str(tmp_path / "estate.yaml"), str(capture))
    assert done.returncode == 1
    assert "bad.jsonl, line 2: 'at' must be an ISO 8601 time with an offset" in done.stderr


def test_demo_write_gives_a_starting_point_that_replays(tmp_path):
    done = run("demo", "--write", str(tmp_path / "mine"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "mine").rglob("*") if p.is_file()) == [
        "demo.jsonl",
        "estate.yaml",
        "secrets.yaml",
    ]
    replay = run(
        "replay",
        "-c",
        str(tmp_path / "mine" / "estate.yaml"),
        str(tmp_path / "mine" / "captures" / "demo.jsonl"),
    )
    assert replay.returncode == 0 and '"type": "incident.acknowledged"' in replay.stdout


def test_demo_runs_by_itself_for_a_while_and_stops(tmp_path):
    done = run("demo", "--for", "25", "--port", "0")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "resident → OPEN" in out
    assert "15.00 CNY due" in out and "paid 15.00 CNY" in out
    assert "ESCALATED" in out and "call 119" in out
    assert "acknowledged by property-desk" in out
    assert "沪C5N728" not in out  # plates are masked on screen


def test_blueprint_validate_names_the_file_and_line_of_each_error(tmp_path):
    shipped = SHIPPED_BLUEPRINTS / "access/door_held_open.yaml"
    ok = CliRunner().invoke(main, ["blueprint", "validate", str(shipped)])
    assert (ok.exit_code, ok.stdout) == (
        0,
        f"{shipped}: valid — blueprint 'Door held open, send a guard', inputs: door, held_for, "
        "guards; estatehub extensions: notify action; triggers and actions are checked where "
        "it is used (no default: door)\n",
    )
    broken = tmp_path / "door.yaml"
    broken.write_text(shipped.read_text(encoding="utf-8").replace("!input door", "!input doors"))
    failed = CliRunner().invoke(main, ["blueprint", "validate", str(broken)])
    assert failed.exit_code == 1
    assert failed.stderr.splitlines() == [
        f"{broken}, line 28: !input doors is not declared under blueprint → input (did you mean "
        "'door'?); declared: door, guards, held_for",
        f"1 error in {broken}",
    ]
