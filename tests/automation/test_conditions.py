"""Conditions decide whether a run goes ahead, and the trace says why it did not."""

from __future__ import annotations

from datetime import datetime

from .conftest import SHANGHAI


def entry(path, condition, result, reason, alias=None):
    return {
        "path": path,
        "condition": condition,
        "alias": alias,
        "result": result,
        "reason": reason,
    }


async def test_the_smoke_alarm_is_muted_during_a_fire_drill_and_the_trace_says_why(
    estate_factory,
):
    async with estate_factory(
        """
        - id: smoke_alarm
          mode: parallel
          triggers: {trigger: event, event_type: home.smoke}
          conditions:
            - condition: state
              alias: not a drill
              entity_id: input_boolean.fire_drill
              state: "off"
          actions: [{action: test.alarm}]
        """
    ) as estate:
        estate.record("test.alarm")
        await estate.fire("home.smoke")
        await estate.set("input_boolean.fire_drill", "on")
        await estate.fire("home.smoke")
        await estate.set("input_boolean.fire_drill", "off")
        await estate.fire("home.smoke")
        assert len(estate.calls["test.alarm"]) == 1
        traces = estate.traces("smoke_alarm")
        assert [t["script_execution"] for t in traces] == [
            "failed_conditions",
            "failed_conditions",
            "finished",
        ]
        assert [t["conditions"] for t in traces] == [
            [
                entry(
                    "condition/0",
                    "state",
                    False,
                    "input_boolean.fire_drill has no state",
                    "not a drill",
                )
            ],
            [
                entry(
                    "condition/0",
                    "state",
                    False,
                    "input_boolean.fire_drill is 'on', wanted 'off'",
                    "not a drill",
                )
            ],
            [
                entry(
                    "condition/0", "state", True, "input_boolean.fire_drill is 'off'", "not a drill"
                )
            ],
        ]
        assert (
            traces[1]["stop_reason"]
            == "condition/0: input_boolean.fire_drill is 'on', wanted 'off'"
        )
        assert traces[1]["steps"] == []
        assert estate.engine.stats().condition_failures == 2


async def test_a_window_counts_as_left_open_only_after_ten_minutes(estate_factory):
    async with estate_factory(
        """
        - id: window_left_open
          triggers: {trigger: event, event_type: patrol.check}
          conditions:
            - condition: state
              entity_id: binary_sensor.b3_window
              state: ["on", "open"]
              for: "00:10:00"
          actions: [{action: test.remind}]
        """
    ) as estate:
        estate.record("test.remind")
        await estate.set("binary_sensor.b3_window", "open")
        await estate.advance(300)
        await estate.fire("patrol.check")
        assert estate.last_trace("window_left_open")["conditions"] == [
            entry(
                "condition/0",
                "state",
                False,
                "binary_sensor.b3_window has been 'open' for 300s, wanted at least 600s",
            )
        ]
        await estate.advance(300)
        await estate.fire("patrol.check")
        assert len(estate.calls["test.remind"]) == 1


async def test_an_overheating_check_names_each_sensor_and_its_value(estate_factory):
    async with estate_factory(
        """
        - id: overheating
          triggers: {trigger: event, event_type: patrol.check}
          conditions:
            - condition: numeric_state
              entity_id: [sensor.b3_temp, sensor.b5_temp]
              above: 55
              below: 120
          actions: [{action: test.alarm}]
        """
    ) as estate:
        estate.record("test.alarm")
        await estate.set("sensor.b3_temp", "60")
        await estate.set("sensor.b5_temp", "40.5")
        await estate.fire("patrol.check")
        assert estate.last_trace("overheating")["conditions"] == [
            entry(
                "condition/0",
                "numeric_state",
                False,
                "sensor.b3_temp is 60, above 55 and below 120; "
                "sensor.b5_temp is 40.5, not above 55",
            )
        ]
        await estate.set("sensor.b5_temp", "unavailable")
        await estate.fire("patrol.check")
        assert estate.last_trace("overheating")["conditions"][0]["reason"] == (
            "sensor.b3_temp is 60, above 55 and below 120; sensor.b5_temp is 'unavailable', not a number"
        )
        await estate.set("sensor.b5_temp", "56")
        await estate.fire("patrol.check")
        assert len(estate.calls["test.alarm"]) == 1


async def test_quiet_hours_wrap_midnight_and_weekends_are_by_weekday(estate_factory):
    async with estate_factory(
        """
        - id: quiet_hours
          mode: parallel
          triggers: {trigger: event, event_type: intercom.missed}
          conditions: [{condition: time, after: "22:00", before: "06:00"}]
          actions: [{action: test.quiet}]
        - id: weekend
          mode: parallel
          triggers: {trigger: event, event_type: intercom.missed}
          conditions: [{condition: time, weekday: [sat, sun], after: "09:00"}]
          actions: [{action: test.weekend}]
        """
    ) as estate:
        estate.record("test.quiet")
        estate.record("test.weekend")
        reasons = []
        for moment in (
            datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI),
            datetime(2026, 3, 2, 23, 30, tzinfo=SHANGHAI),
            datetime(2026, 3, 3, 5, 59, 59, tzinfo=SHANGHAI),
            datetime(2026, 3, 3, 6, 0, tzinfo=SHANGHAI),
            datetime(2026, 3, 7, 8, 0, tzinfo=SHANGHAI),
            datetime(2026, 3, 7, 10, 0, tzinfo=SHANGHAI),
        ):
            await estate.advance_to(moment)
            await estate.fire("intercom.missed")
            reasons.append(
                (
                    estate.last_trace("quiet_hours")["conditions"][0]["reason"],
                    estate.last_trace("weekend")["conditions"][0]["reason"],
                )
            )
        assert reasons == [
            ("08:00:00 is not between 22:00:00 and 06:00:00", "today is mon, wanted sat, sun"),
            ("23:30:00 is between 22:00:00 and 06:00:00", "today is mon, wanted sat, sun"),
            ("05:59:59 is between 22:00:00 and 06:00:00", "today is tue, wanted sat, sun"),
            ("06:00:00 is not between 22:00:00 and 06:00:00", "today is tue, wanted sat, sun"),
            ("08:00:00 is not between 22:00:00 and 06:00:00", "08:00:00 is before 09:00:00"),
            ("10:00:00 is not between 22:00:00 and 06:00:00", "10:00:00 on sat is in the window"),
        ]
        assert len(estate.calls["test.quiet"]) == 2
        assert len(estate.calls["test.weekend"]) == 1


FENCE = """
- id: fence_intrusion
  mode: parallel
  triggers: {trigger: event, event_type: fence.intrusion}
  conditions:
    - or:
        - condition: state
          entity_id: alarm_control_panel.fence
          state: armed_night
        - and:
            - condition: state
              entity_id: alarm_control_panel.fence
              state: armed_away
            - not:
                - "{{ trigger.event.data.zone == 'z0' }}"
  actions: [{action: test.guard}]
"""


async def test_nested_and_or_not_conditions_explain_every_branch(estate_factory):
    async with estate_factory(FENCE) as estate:
        estate.record("test.guard")
        await estate.set("alarm_control_panel.fence", "armed_away")
        await estate.fire("fence.intrusion", {"zone": "z0"})  # z0 is the gatehouse: ignored
        assert estate.last_trace("fence_intrusion")["conditions"] == [
            entry("condition/0", "or", False, "none of 2 conditions passed"),
            entry(
                "condition/0/conditions/0",
                "state",
                False,
                "alarm_control_panel.fence is 'armed_away', wanted 'armed_night'",
            ),
            entry(
                "condition/0/conditions/1",
                "and",
                False,
                "conditions/1 failed: conditions/0 passed: template rendered True",
            ),
            entry(
                "condition/0/conditions/1/conditions/0",
                "state",
                True,
                "alarm_control_panel.fence is 'armed_away'",
            ),
            entry(
                "condition/0/conditions/1/conditions/1",
                "not",
                False,
                "conditions/0 passed: template rendered True",
            ),
            entry(
                "condition/0/conditions/1/conditions/1/conditions/0",
                "template",
                True,
                "template rendered True",
            ),
        ]
        await estate.fire("fence.intrusion", {"zone": "z4"})
        assert estate.last_trace("fence_intrusion")["conditions"][0] == entry(
            "condition/0", "or", True, "conditions/1 passed"
        )
        await estate.set("alarm_control_panel.fence", "armed_night")
        await estate.fire("fence.intrusion", {"zone": "z0"})
        assert len(estate.calls["test.guard"]) == 2


async def test_template_and_trigger_id_conditions(estate_factory):
    async with estate_factory(
        """
        - id: repeated_tamper
          mode: parallel
          triggers:
            - {trigger: event, event_type: fence.tamper, id: tamper}
            - {trigger: event, event_type: fence.line_cut, id: cut}
          conditions:
            - condition: trigger
              id: [tamper]
            - "{{ trigger.event.data.count | int > 3 }}"
          actions: [{action: test.guard}]
        """
    ) as estate:
        estate.record("test.guard")
        await estate.fire("fence.line_cut", {"count": 9})
        assert estate.last_trace("repeated_tamper")["conditions"] == [
            entry("condition/0", "trigger", False, "trigger 'cut' fired, wanted 'tamper'")
        ]
        await estate.fire("fence.tamper", {"count": "2"})
        assert estate.last_trace("repeated_tamper")["conditions"] == [
            entry("condition/0", "trigger", True, "trigger 'tamper' fired"),
            entry("condition/1", "template", False, "template rendered False"),
        ]
        await estate.fire("fence.tamper", {"count": 4})
        assert len(estate.calls["test.guard"]) == 1


async def test_a_template_that_fails_makes_its_condition_false_with_the_error(estate_factory):
    async with estate_factory(
        """
        - id: broken_template
          triggers: {trigger: event, event_type: patrol.check}
          conditions: ["{{ trigger.event.data.missing.deeper }}"]
          actions: [{action: test.never}]
        """
    ) as estate:
        estate.record("test.never")
        await estate.fire("patrol.check", {"present": 1})
        trace = estate.last_trace("broken_template")
        assert trace["script_execution"] == "failed_conditions"
        assert trace["conditions"] == [
            entry(
                "condition/0",
                "template",
                False,
                "template failed: 'dict object' has no attribute 'missing'",
            )
        ]
        assert estate.calls["test.never"] == []
