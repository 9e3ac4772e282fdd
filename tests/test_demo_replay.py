"""The shipped demo estate, replayed: the events the issue promises, deterministically.

This drives the whole stack the way an integrator does: `estatehub demo --write`, then
`estatehub replay` over real-format Hikvision ISAPI pushes and zigbee2mqtt messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from estatehub.demo import write_demo

ESTATEHUB = [sys.executable, "-m", "estatehub"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    write_demo(folder)
    return folder


def run_replay(folder: Path) -> list[dict]:
    done = subprocess.run(
        [
            *ESTATEHUB,
            "replay",
            "-c",
            str(folder / "estate.yaml"),
            str(folder / "captures" / "demo.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def replayed(demo_dir) -> list[dict]:
    return run_replay(demo_dir)


def of(events: list[dict], event_type: str) -> list[dict]:
    return [e["data"] for e in events if e["type"] == event_type]


def test_every_line_is_an_event_with_at_type_and_data(replayed):
    assert replayed, "replay printed nothing"
    for event in replayed:
        assert set(event) == {"at", "type", "data"}
        assert event["at"].endswith("+08:00")


def test_replaying_twice_gives_identical_output(demo_dir, replayed):
    assert run_replay(demo_dir) == replayed


def test_resident_with_colour_prefixed_plate_is_admitted(replayed):
    first = of(replayed, "parking.plate_read")[0]
    assert first == {
        "gate": "north",
        "raw": "蓝沪A8K352",
        "plate": "沪A8K352",
        "kind": "ordinary",
        "valid": True,
        "issues": [],
        "changes": ["stripped colour prefix 蓝"],
        "candidate": None,
        "direction": "in",
        "device_time": "2026-03-02T08:12:30+08:00",
        "vendor": "hikvision",
    }
    assert of(replayed, "parking.decision")[0] == {
        "gate": "north",
        "plate": "沪A8K352",
        "verdict": "open",
        "reason": "resident",
        "direction": "in",
        "category": "resident",
    }


def test_repost_of_the_same_camera_event_is_counted_once(replayed):
    assert of(replayed, "parking.duplicate") == [
        {"gate": "north", "plate": "沪A8K352", "reason": "same event seen before"}
    ]


def test_visitor_is_charged_the_tariff_and_the_barrier_opens_after_payment(replayed):
    # 09:02:10 → 11:47:40 is 165 min: over the 15 free minutes, 3 started day hours × 5 CNY.
    assert of(replayed, "parking.fee_due")[0]["fee_fen"] == 1500
    visitor = [s for s in of(replayed, "parking.session_closed") if s["plate"] == "沪C5N728"]
    assert [(s["minutes"], s["fee_fen"], s["paid_fen"]) for s in visitor] == [(165, 1500, 1500)]
    barrier_after_pay = next(b for b in of(replayed, "parking.barrier") if b["gate"] == "south")
    assert barrier_after_pay["plate"] == "沪C5N728"


def test_camera_clock_in_2034_is_flagged(replayed):
    nev = next(r for r in of(replayed, "parking.plate_read") if r["plate"] == "沪AD12345")
    assert nev["kind"] == "new_energy_small"
    assert "device clock off by 2865 days ahead; hub receive time used" in nev["issues"]


def test_plate_with_o_goes_to_review_and_blocked_plate_is_denied(replayed):
    verdicts = {d["plate"]: (d["verdict"], d["reason"]) for d in of(replayed, "parking.decision")}
    assert verdicts["沪A1O234"] == ("review", "serial contains I or O")
    assert verdicts["沪B99999"] == ("deny", "blocked: unpaid fees since 2025")


def test_malformed_payloads_are_rejected_with_reasons_and_the_hub_keeps_going(replayed):
    rejected = of(replayed, "transport.rejected")
    assert [(r["transport"], r["source"]) for r in rejected] == [
        ("http", "/api/webhook/hikvision/north"),
        ("mqtt", "zigbee2mqtt/b3-1202-smoke"),
    ]
    assert "not well-formed XML" in rejected[0]["reason"]
    assert "'smoke'" in rejected[1]["reason"]
    types = [e["type"] for e in replayed]
    assert types.index("transport.rejected") < types.index("parking.fee_due")  # kept going


def test_retained_detector_state_at_start_is_not_an_alarm(replayed):
    assert of(replayed, "home.retained_alarm_state") == []
    assert [i["kind"] for i in of(replayed, "incident.raised")] == ["parking.review", "smoke"]


def test_smoke_escalates_household_desk_guard_until_acknowledged(replayed):
    smoke = [
        e for e in replayed if e["type"].startswith("incident.") and e["data"]["kind"] == "smoke"
    ]
    steps = [
        (e["at"][11:19], e["type"], e["data"].get("notify"), e["data"].get("instruction"))
        for e in smoke
    ]
    assert steps == [
        ("14:03:00", "incident.raised", ["household:h-wang"], ""),
        (
            "14:05:00",
            "incident.escalated",
            ["property_desk"],
            "phone the household; send the nearest staff with an extinguisher",
        ),
        (
            "14:08:00",
            "incident.escalated",
            ["guard", "property_manager"],
            "call 119 and meet the fire brigade at the north gate",
        ),
        ("14:09:20", "incident.acknowledged", None, None),
        ("18:00:00", "incident.resolved", None, None),
    ]
    for e in smoke:
        assert {"id", "kind", "severity", "location"} <= set(e["data"])
        assert (e["data"]["severity"], e["data"]["location"]) == ("safety", "b3-1-1202")
    assert of(replayed, "incident.acknowledged")[0]["by"] == "property-desk"


def test_demo_capture_is_generated_from_the_vendor_samples():
    done = subprocess.run(
        [sys.executable, "tools/make_demo_capture.py", "--check"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
