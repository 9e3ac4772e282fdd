"""What happens when an automation is triggered again while it runs: its mode decides."""

from __future__ import annotations

import logging

ANNOUNCE = """
- id: announce
  mode: MODE
  EXTRA
  triggers: {trigger: event, event_type: intercom.ringing}
  actions:
    - delay: 60
    - action: test.announce
      data:
        call: "{{ trigger.event.data.call }}"
        at: "{{ now().strftime('%H:%M:%S') }}"
"""


def announce(mode: str, max_runs: int | None = None, extra: str = "") -> str:
    return ANNOUNCE.replace("MODE", mode).replace(
        "EXTRA", f"max: {max_runs}" if max_runs else extra
    )


async def ring(estate, *calls: int) -> None:
    for call in calls:
        await estate.fire("intercom.ringing", {"call": call})


async def test_single_drops_a_second_ring_while_the_first_is_announced(estate_factory, caplog):
    async with estate_factory(announce("single")) as estate:
        estate.record("test.announce")
        caplog.set_level(logging.WARNING)
        await ring(estate, 1, 2)
        await estate.advance(120)
        assert estate.data_of("test.announce") == [{"call": 1, "at": "08:01:00"}]
        traces = estate.traces("announce")
        assert [(t["script_execution"], t["stop_reason"]) for t in traces] == [
            ("finished", None),
            ("failed_single", "already running"),
        ]
        assert estate.engine.stats().runs_dropped == 1
        assert (
            "automation announce (no alias): already running (mode: single); trigger dropped"
            in caplog.text
        )


async def test_restart_cancels_the_running_announcement_for_the_newer_ring(estate_factory):
    async with estate_factory(announce("restart")) as estate:
        estate.record("test.announce")
        await ring(estate, 1)
        await estate.advance(30)
        await ring(estate, 2)
        await estate.advance(120)
        assert estate.data_of("test.announce") == [{"call": 2, "at": "08:01:30"}]
        first, second = estate.traces("announce")
        assert (first["script_execution"], first["stop_reason"]) == (
            "cancelled",
            "restarted by run 2",
        )
        assert first["steps"][0]["error"] == "cancelled"
        assert first["finished_at"] == "2026-03-02T08:00:30+08:00"
        assert second["script_execution"] == "finished"


async def test_queued_runs_one_after_another_up_to_max(estate_factory):
    async with estate_factory(announce("queued", 2)) as estate:
        estate.record("test.announce")
        await ring(estate, 1, 2, 3)
        assert [t["script_execution"] for t in estate.traces("announce")] == [
            "running",
            "queued",
            "failed_max_runs",
        ]
        await estate.advance(300)
        assert estate.data_of("test.announce") == [
            {"call": 1, "at": "08:01:00"},
            {"call": 2, "at": "08:02:00"},
        ]
        assert estate.traces("announce")[2]["stop_reason"] == "2 runs already running or queued"


async def test_parallel_runs_side_by_side_up_to_max(estate_factory):
    async with estate_factory(announce("parallel", 2)) as estate:
        estate.record("test.announce")
        await ring(estate, 1, 2, 3)
        info = {a.id: a for a in estate.engine.automations()}["announce"]
        assert (info.mode, info.max, info.running, info.queued) == ("parallel", 2, 2, 0)
        await estate.advance(300)
        assert estate.data_of("test.announce") == [
            {"call": 1, "at": "08:01:00"},
            {"call": 2, "at": "08:01:00"},
        ]
        assert [t["script_execution"] for t in estate.traces("announce")] == [
            "finished",
            "finished",
            "failed_max_runs",
        ]


async def test_max_exceeded_silent_drops_without_a_log_line(estate_factory, caplog):
    async with estate_factory(announce("single", extra="max_exceeded: silent")) as estate:
        caplog.set_level(logging.DEBUG)
        await ring(estate, 1, 2)
        assert estate.traces("announce")[1]["script_execution"] == "failed_single"
        assert "trigger dropped" not in caplog.text


async def test_stopping_the_engine_cancels_running_and_queued_runs(estate_factory):
    async with estate_factory(announce("queued", 3)) as estate:
        estate.record("test.announce")
        await ring(estate, 1, 2)
        await estate.engine.stop()
        assert [(t["script_execution"], t["stop_reason"]) for t in estate.traces("announce")] == [
            ("cancelled", "the engine stopped"),
            ("cancelled", "the engine stopped"),
        ]
        await estate.advance(300)
        assert estate.calls["test.announce"] == []
        # Nothing of the engine is left on the clock.
        assert estate.clock.next_timer() is None
