"""Every shipped blueprint passes Home Assistant's own blueprint and automation validators.

Home Assistant runs in its own venv (Python 3.13, homeassistant 2025.4.4; it pins older
aiohttp, zeroconf and voluptuous than ours), so the check is tools/ha_validate_blueprints.py
run as a subprocess with that venv's python. Without the venv this test fails and says how
to build it: a compatibility check that silently does not run is no check.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from estatehub.automation.blueprint import load_blueprint

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "ha_validate_blueprints.py"
#: Where the Home Assistant venv is looked for: $HA_VENV, the checkout's .ha-venv, then a
#: cache shared by every checkout on this machine (CI included), which is built there with
#: bench/ha_venv.sh when nothing exists yet (about 2 minutes with a warm pip cache).
HA_CACHE = Path.home() / ".cache" / "estatehub" / "ha-venv-2025.4.4"


def _find_ha_venv() -> Path:
    if "HA_VENV" in os.environ:
        return Path(os.environ["HA_VENV"])
    for candidate in (REPO / ".ha-venv", HA_CACHE):
        if (candidate / "bin" / "python").exists():
            return candidate
    subprocess.run(
        ["bash", str(REPO / "bench" / "ha_venv.sh")],
        env={**os.environ, "HA_VENV": str(HA_CACHE)},
        check=False,
        timeout=900,
    )
    return HA_CACHE


HA_VENV = _find_ha_venv()
HA_PYTHON = HA_VENV / "bin" / "python"

#: The blueprints Home Assistant accepts exactly as written; the others use estatehub's
#: notify action or incident trigger and pass with those replaced by stand-ins.
PURE_HOME_ASSISTANT = {
    "home/smoke_alarm_release_doors.yaml",
    "home/wristband_no_activity.yaml",
    "infra/manhole_tilt_work_order.yaml",
    "infra/street_lights_sun.yaml",
}


def ha_validate(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    if not HA_PYTHON.exists():
        pytest.fail(
            f"the Home Assistant venv is missing ({HA_PYTHON} does not exist); build it with "
            "`bash bench/ha_venv.sh` (about 2.5 minutes, needs pyenv's Python 3.13.0), or set "
            "HA_VENV to where it lives",
            pytrace=False,
        )
    done = subprocess.run(
        [str(HA_PYTHON), str(TOOL), "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no verdicts from {TOOL.name}: {done.stderr[-2000:]}"
    return done.returncode, [json.loads(line) for line in lines]


def test_every_shipped_blueprint_passes_home_assistants_validators():
    returncode, verdicts = ha_validate()
    shipped = sorted(
        p.relative_to(REPO / "blueprints").as_posix() for p in (REPO / "blueprints").rglob("*.yaml")
    )
    assert [v["blueprint"] for v in verdicts] == shipped
    failures = [v for v in verdicts if v["status"] == "failed"]
    assert failures == []
    assert returncode == 0
    assert {v["blueprint"] for v in verdicts if v["status"] == "ok"} == PURE_HOME_ASSISTANT
    for verdict in verdicts:
        # The tool (in HA's venv) and our loader agree on which extensions each one uses.
        ours = load_blueprint(REPO / "blueprints" / verdict["blueprint"]).extensions
        assert tuple(verdict["extensions"]) == ours
        if verdict["blueprint"] not in PURE_HOME_ASSISTANT:
            assert verdict["status"] == "ok with stand-ins"
            assert "notify action" in ours


def test_home_assistant_refuses_broken_blueprints_so_the_check_is_real(tmp_path):
    good = (REPO / "blueprints/home/smoke_alarm_release_doors.yaml").read_text(encoding="utf-8")
    (tmp_path / "a_undeclared.yaml").write_text(
        good.replace("entity_id: !input detectors", "entity_id: !input detector"),
        encoding="utf-8",
    )
    (tmp_path / "b_bad_trigger.yaml").write_text(
        good.replace('to: "on"', 'to: "on"\n    bogus_option: 1'), encoding="utf-8"
    )
    (tmp_path / "c_bad_selector.yaml").write_text(
        textwrap.dedent(
            """\
            blueprint:
              name: Bad selector
              domain: automation
              input:
                hours: {name: Hours, selector: {nubmer: {min: 1, max: 4}}}
            triggers: [{trigger: time, at: "08:00:00"}]
            actions: [{delay: {hours: !input hours}}]
            """
        ),
        encoding="utf-8",
    )
    returncode, verdicts = ha_validate(tmp_path)
    assert returncode == 1
    assert [(Path(v["blueprint"]).name, v["status"], v["stage"]) for v in verdicts] == [
        ("a_undeclared.yaml", "failed", "blueprint"),
        ("b_bad_trigger.yaml", "failed", "automation"),
        ("c_bad_selector.yaml", "failed", "blueprint"),
    ]
    assert "Missing input definition for detector" in verdicts[0]["message"]
    assert "bogus_option" in verdicts[1]["message"]
    assert "nubmer" in verdicts[2]["message"]
