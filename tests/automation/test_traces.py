"""Traces tell a property manager what an automation did, step by step, and why not."""

from __future__ import annotations

import json

import pytest

from estatehub.automation import UnknownAutomation

SMOKE = """
- id: smoke_releases_doors
  alias: Smoke in B3 releases its doors
  variables:
    building: "{{ trigger.entity_id.split('.')[1].split('_')[0] }}"
  triggers:
    - trigger: state
      id: smoke
      entity_id: binary_sensor.b3_smoke
      to: "on"
  conditions:
    - condition: state
      entity_id: input_boolean.fire_drill
      state: "off"
  actions:
    - alias: Release the doors
      action: access.release_doors
      data: {building: "{{ building }}"}
    - delay: 30
    - notify:
        target: role:guard
        message: "Doors of {{ building | upper }} released"
"""


async def test_a_smoke_alarm_trace_explains_every_step(estate_factory):
    async with estate_factory(SMOKE) as estate:
        estate.record("access.release_doors", result={"released": 4})
        await estate.set("input_boolean.fire_drill", "off")
        await estate.set("binary_sensor.b3_smoke", "off")
        await estate.advance(5)
        await estate.set("binary_sensor.b3_smoke", "on")
        await estate.advance(30)
        (trace,) = estate.traces("smoke_releases_doors")
        smoke_off = estate.hub.states.get("input_boolean.fire_drill")  # set at 08:00:00
        assert smoke_off.last_changed == estate.clock.timestamp() - 35
        assert trace == {
            "automation_id": "smoke_releases_doors",
            "run_id": "1",
            "state": "stopped",
            "script_execution": "finished",
            "started_at": "2026-03-02T08:00:05+08:00",
            "finished_at": "2026-03-02T08:00:35+08:00",
            "trigger": {
                "platform": "state",
                "id": "smoke",
                "idx": "0",
                "alias": None,
                "description": "state of binary_sensor.b3_smoke",
                "entity_id": "binary_sensor.b3_smoke",
                "from_state": {
                    "entity_id": "binary_sensor.b3_smoke",
                    "state": "off",
                    "attributes": {},
                    "last_changed": smoke_off.last_changed,
                    "last_updated": smoke_off.last_changed,
                },
                "to_state": {
                    "entity_id": "binary_sensor.b3_smoke",
                    "state": "on",
                    "attributes": {},
                    "last_changed": smoke_off.last_changed + 5,
                    "last_updated": smoke_off.last_changed + 5,
                },
                "attribute": None,
                "for": None,
            },
            "conditions": [
                {
                    "path": "condition/0",
                    "condition": "state",
                    "alias": None,
                    "result": True,
                    "reason": "input_boolean.fire_drill is 'off'",
                }
            ],
            "steps": [
                {
                    "path": "action/0",
                    "action": "call_service",
                    "alias": "Release the doors",
                    "started_at": "2026-03-02T08:00:05+08:00",
                    "finished_at": "2026-03-02T08:00:05+08:00",
                    "result": {
                        "service": "access.release_doors",
                        "data": {"building": "b3"},
                        "response": {"released": 4},
                    },
                    "error": None,
                },
                {
                    "path": "action/1",
                    "action": "delay",
                    "alias": None,
                    "started_at": "2026-03-02T08:00:05+08:00",
                    "finished_at": "2026-03-02T08:00:35+08:00",
                    "result": {"delay": 30.0, "done": True},
                    "error": None,
                },
                {
                    "path": "action/2",
                    "action": "notify",
                    "alias": None,
                    "started_at": "2026-03-02T08:00:35+08:00",
                    "finished_at": "2026-03-02T08:00:35+08:00",
                    "result": {
                        "via": "notify.requested",
                        "target": ["role:guard"],
                        "message": "Doors of B3 released",
                    },
                    "error": None,
                },
            ],
            "steps_left_out": 0,
            "variables": {"building": "b3"},
            "error": None,
            "stop_reason": None,
        }
        # The API serves it as JSON as it is.
        assert json.loads(json.dumps(trace)) == trace


async def test_a_running_automation_shows_a_running_trace(estate_factory):
    async with estate_factory(SMOKE) as estate:
        estate.record("access.release_doors")
        await estate.set("input_boolean.fire_drill", "off")
        await estate.set("binary_sensor.b3_smoke", "on")
        (trace,) = estate.traces("smoke_releases_doors")
        assert (trace["state"], trace["script_execution"], trace["finished_at"]) == (
            "running",
            "running",
            None,
        )
        assert [s["finished_at"] for s in trace["steps"]] == ["2026-03-02T08:00:00+08:00", None]


async def test_only_the_last_five_runs_are_kept_unless_configured(estate_factory):
    async with estate_factory(
        """
        - id: default_five
          mode: parallel
          triggers: {trigger: event, event_type: test.go}
          actions: [{event: test.done}]
        - id: keep_two
          mode: parallel
          trace: {stored_traces: 2}
          triggers: {trigger: event, event_type: test.go}
          actions: [{event: test.done}]
        """
    ) as estate:
        for _ in range(7):
            await estate.fire("test.go")
        assert [t["run_id"] for t in estate.traces("default_five")] == ["3", "4", "5", "6", "7"]
        assert [t["run_id"] for t in estate.traces("keep_two")] == ["6", "7"]


async def test_asking_for_an_unknown_automation_names_the_known_ones(estate_factory):
    async with estate_factory(SMOKE) as estate:
        with pytest.raises(UnknownAutomation) as caught:
            estate.traces("smoke")
        assert str(caught.value) == "no automation 'smoke' (known: smoke_releases_doors)"


async def test_the_trigger_service_runs_an_automation_by_hand_skipping_its_conditions(
    estate_factory,
):
    async with estate_factory(SMOKE) as estate:
        estate.record("access.release_doors")
        trace = await estate.hub.services.call(
            "automation",
            "trigger",
            {"id": "smoke_releases_doors", "variables": {"building": "b7"}},
            user="operator-li",
        )
        await estate.settle()
        assert trace["trigger"] == {
            "platform": None,
            "id": "manual",
            "idx": None,
            "alias": None,
            "description": "triggered by operator-li",
            "by": "operator-li",
        }
        assert trace["conditions"] == []
        assert estate.data_of("access.release_doors") == [{"building": "b7"}]
        info = estate.engine.automations()[0].as_dict()
        assert info == {
            "id": "smoke_releases_doors",
            "alias": "Smoke in B3 releases its doors",
            "description": None,
            "mode": "single",
            "max": 10,
            "enabled": True,
            "running": 1,
            "queued": 0,
            "last_triggered": "2026-03-02T08:00:00+08:00",
            "triggers": ["state"],
        }


async def test_a_variables_template_that_fails_is_traced_as_an_error(estate_factory):
    async with estate_factory(
        """
        - id: bad_variables
          variables: {flat: "{{ trigger.event.data.flat.upper() }}"}
          triggers: {trigger: event, event_type: test.go}
          actions: [{event: test.never}]
        """
    ) as estate:
        await estate.fire("test.go", {})
        trace = estate.last_trace("bad_variables")
        assert trace["script_execution"] == "error"
        assert trace["error"] == (
            "variables: template '{{ trigger.event.data.flat.upper() }}': 'dict object' has "
            "no attribute 'flat'"
        )
        assert estate.events_of("test.never") == []


async def test_a_stopped_engine_refuses_to_run_an_automation_by_hand(estate_factory):
    from estatehub.automation import AutomationError

    async with estate_factory(SMOKE) as estate:
        await estate.engine.stop()
        with pytest.raises(AutomationError, match="the automation engine is not running"):
            estate.engine.trigger("smoke_releases_doors")
        assert not estate.hub.services.has("automation", "trigger")


async def test_a_trace_reads_as_plain_lines_for_the_command_line(estate_factory):
    from estatehub.automation import describe_trace

    async with estate_factory(SMOKE) as estate:
        estate.record("access.release_doors", result={"released": 4})
        await estate.set("input_boolean.fire_drill", "on")
        await estate.set("binary_sensor.b3_smoke", "on")
        await estate.set("input_boolean.fire_drill", "off")
        await estate.set("binary_sensor.b3_smoke", "off")
        await estate.set("binary_sensor.b3_smoke", "on")
        await estate.advance(30)
        failed, finished = estate.traces("smoke_releases_doors")
        assert describe_trace(failed).splitlines() == [
            "run 1 of smoke_releases_doors: failed_conditions, 08:00:00 → 08:00:00",
            "  stopped  condition/0: input_boolean.fire_drill is 'on', wanted 'off'",
            "  trigger  state of binary_sensor.b3_smoke (id smoke)",
            "  condition/0  state: FAILED: input_boolean.fire_drill is 'on', wanted 'off'",
        ]
        assert describe_trace(finished).splitlines() == [
            "run 2 of smoke_releases_doors: finished, 08:00:00 → 08:00:30",
            "  trigger  state of binary_sensor.b3_smoke (id smoke)",
            "  condition/0  state: passed: input_boolean.fire_drill is 'off'",
            '  action/0  call_service "Release the doors" 08:00:00 → 08:00:00: ok '
            '{"service": "access.release_doors", "data": {"building": "b3"}, "response": '
            '{"released": 4}}',
            '  action/1  delay 08:00:00 → 08:00:30: ok {"delay": 30.0, "done": true}',
            '  action/2  notify 08:00:30 → 08:00:30: ok {"via": "notify.requested", "target": '
            '["role:guard"], "message": "Doors of B3 released"}',
        ]
