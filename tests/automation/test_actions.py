"""Each action, as an estate's automations use them."""

from __future__ import annotations

import asyncio

from estatehub.exceptions import ServiceValidationError


async def test_a_visitor_car_tells_the_host_household_through_a_service_call(estate_factory):
    async with estate_factory(
        """
        - id: visitor_car_arrives
          variables:
            flat: "{{ trigger.event.data.host_flat }}"
          triggers: {trigger: event, event_type: parking.visitor_arrived}
          actions:
            - action: intercom.announce
              target:
                entity_id: "media_player.{{ flat | replace('-', '_') }}_panel"
              data:
                text: "访客车辆 {{ trigger.event.data.plate }} 已到达"
                minutes_free: "{{ 30 * 2 }}"
                code: "007"
              response_variable: announced
            - service: test.after
              data_template:
                was_announced: "{{ announced.ok }}"
        """
    ) as estate:
        estate.record("intercom.announce", result={"ok": True})
        estate.record("test.after")
        await estate.fire(
            "parking.visitor_arrived", {"plate": "沪A·12345", "host_flat": "b3-1-1202"}
        )
        assert estate.data_of("intercom.announce") == [
            {
                "text": "访客车辆 沪A·12345 已到达",
                "minutes_free": 60,
                "code": "007",
                "entity_id": ["media_player.b3_1_1202_panel"],
            }
        ]
        assert estate.calls["intercom.announce"][0].user == "automation:visitor_car_arrives"
        assert estate.data_of("test.after") == [{"was_announced": True}]
        steps = estate.last_trace("visitor_car_arrives")["steps"]
        assert steps[0]["result"] == {
            "service": "intercom.announce",
            "data": {
                "text": "访客车辆 沪A·12345 已到达",
                "minutes_free": 60,
                "code": "007",
                "entity_id": ["media_player.b3_1_1202_panel"],
            },
            "response": {"ok": True},
        }


async def test_a_delay_waits_on_the_hub_clock_written_any_way(estate_factory):
    async with estate_factory(
        """
        - id: relock
          triggers: {trigger: event, event_type: access.released}
          actions:
            - delay: "00:00:30"
            - action: test.step
              data: {at: "{{ now().strftime('%H:%M:%S') }}"}
            - delay: {minutes: 1, seconds: 30}
            - action: test.step
              data: {at: "{{ now().strftime('%H:%M:%S') }}"}
            - delay: "{{ trigger.event.data.hold_s }}"
            - action: test.step
              data: {at: "{{ now().strftime('%H:%M:%S') }}"}
        """
    ) as estate:
        estate.record("test.step")
        await estate.fire("access.released", {"hold_s": 600})
        assert estate.calls["test.step"] == []
        await estate.advance(3600)
        assert estate.data_of("test.step") == [
            {"at": "08:00:30"},
            {"at": "08:02:00"},
            {"at": "08:12:00"},
        ]
        assert [
            s["result"] for s in estate.last_trace("relock")["steps"] if s["action"] == "delay"
        ] == [
            {"delay": 30.0, "done": True},
            {"delay": 90.0, "done": True},
            {"delay": 600.0, "done": True},
        ]


MISSED_CALL = """
- id: missed_intercom_call
  triggers: {trigger: event, event_type: intercom.ringing}
  actions:
    - wait_for_trigger:
        - trigger: event
          event_type: intercom.answered
          event_data: {flat: "{{ trigger.event.data.flat }}"}
        - trigger: state
          entity_id: lock.b3_u1_entrance
          to: unlocked
      timeout: "00:00:45"
      continue_on_timeout: CONTINUE
    - choose:
        - conditions: "{{ wait.trigger is none }}"
          sequence:
            - action: test.missed
              data: {remaining: "{{ wait.remaining }}"}
      default:
        - action: test.answered
          data:
            how: "{{ wait.trigger.platform }}"
            remaining: "{{ wait.remaining }}"
"""


async def test_an_unanswered_intercom_call_becomes_a_missed_call_after_45_seconds(
    estate_factory,
):
    async with estate_factory(MISSED_CALL.replace("CONTINUE", "true")) as estate:
        estate.record("test.missed")
        estate.record("test.answered")
        await estate.fire("intercom.ringing", {"flat": "b3-1-1202"})
        await estate.advance(44)
        assert estate.calls["test.missed"] == []
        await estate.advance(1)
        assert estate.data_of("test.missed") == [{"remaining": 0.0}]
        wait_step = estate.last_trace("missed_intercom_call")["steps"][0]
        assert wait_step["result"] == {
            "wait": {"trigger": None, "remaining": 0.0},
            "timed_out": True,
        }
        # The waiting triggers are gone with the wait.
        assert estate.engine.stats().watched_entities == 0


async def test_a_call_answered_in_time_is_not_a_missed_call(estate_factory):
    async with estate_factory(MISSED_CALL.replace("CONTINUE", "true")) as estate:
        estate.record("test.missed")
        estate.record("test.answered")
        await estate.fire("intercom.ringing", {"flat": "b3-1-1202"})
        await estate.advance(10)
        await estate.set("lock.b3_u1_entrance", "unlocked")
        assert estate.data_of("test.answered") == [{"how": "state", "remaining": 35.0}]
        assert estate.calls["test.missed"] == []
        choose = estate.last_trace("missed_intercom_call")["steps"][1]
        assert choose["result"]["choice"] == "default"


async def test_a_wait_that_must_not_time_out_ends_the_run_as_a_timeout(estate_factory):
    async with estate_factory(MISSED_CALL.replace("CONTINUE", "false")) as estate:
        estate.record("test.missed")
        await estate.fire("intercom.ringing", {"flat": "b3-1-1202"})
        await estate.advance(45)
        trace = estate.last_trace("missed_intercom_call")
        assert trace["script_execution"] == "timeout"
        assert trace["stop_reason"] == "wait_for_trigger timed out"
        assert [s["path"] for s in trace["steps"]] == ["action/0"]
        assert estate.calls["test.missed"] == []


async def test_choose_runs_the_first_matching_option_and_if_then_else_branches(estate_factory):
    async with estate_factory(
        """
        - id: wristband
          mode: queued
          triggers: {trigger: event, event_type: home.wristband}
          actions:
            - choose:
                - alias: SOS
                  conditions: "{{ trigger.event.data.kind == 'sos' }}"
                  sequence: [{action: test.family, data: {why: sos}}]
                - condition:
                    - "{{ trigger.event.data.kind == 'fall' }}"
                  sequence:
                    - action: test.family
                      data: {why: fall}
                    - action: test.worker
              default:
                - action: test.log
            - if: "{{ trigger.event.data.flat.startswith('b3') }}"
              then: [{action: test.building, data: {b: 3}}]
              else: [{action: test.building, data: {b: 0}}]
        """
    ) as estate:
        for service in ("test.family", "test.worker", "test.log", "test.building"):
            estate.record(service)
        await estate.fire("home.wristband", {"kind": "fall", "flat": "b3-1-1202"})
        await estate.fire("home.wristband", {"kind": "battery", "flat": "b5-2-0301"})
        assert estate.data_of("test.family") == [{"why": "fall"}]
        assert len(estate.calls["test.worker"]) == 1
        assert len(estate.calls["test.log"]) == 1
        assert estate.data_of("test.building") == [{"b": 3}, {"b": 0}]
        fall, battery = estate.traces("wristband")
        assert [(s["path"], s["action"]) for s in fall["steps"]] == [
            ("action/0", "choose"),
            ("action/0/choose/1/sequence/0", "call_service"),
            ("action/0/choose/1/sequence/1", "call_service"),
            ("action/1", "if"),
            ("action/1/then/0", "call_service"),
        ]
        assert fall["steps"][0]["result"] == {
            "choice": 1,
            "conditions": [
                {
                    "path": "action/0/choose/0/conditions/0",
                    "condition": "template",
                    "alias": None,
                    "result": False,
                    "reason": "template rendered False",
                },
                {
                    "path": "action/0/choose/1/conditions/0",
                    "condition": "template",
                    "alias": None,
                    "result": True,
                    "reason": "template rendered True",
                },
            ],
        }
        assert battery["steps"][0]["result"]["choice"] == "default"
        assert battery["steps"][2]["result"]["if"] is False
        assert battery["steps"][3]["path"] == "action/1/else/0"


async def test_an_unacknowledged_alarm_is_repeated_every_five_minutes_until_acknowledged(
    estate_factory,
):
    async with estate_factory(
        """
        - id: keep_calling
          triggers: {trigger: event, event_type: home.sos}
          actions:
            - repeat:
                sequence:
                  - action: test.call
                    data: {round: "{{ repeat.index }}", first: "{{ repeat.first }}"}
                  - delay: "00:05:00"
                until:
                  - condition: state
                    entity_id: input_boolean.sos_acknowledged
                    state: "on"
        """
    ) as estate:
        estate.record("test.call")
        await estate.set("input_boolean.sos_acknowledged", "off")
        await estate.fire("home.sos")
        await estate.advance(12 * 60)
        await estate.set("input_boolean.sos_acknowledged", "on")
        await estate.advance(10 * 60)
        assert estate.data_of("test.call") == [
            {"round": 1, "first": True},
            {"round": 2, "first": False},
            {"round": 3, "first": False},
        ]
        trace = estate.last_trace("keep_calling")
        assert trace["script_execution"] == "finished"
        assert trace["steps"][0]["result"] == {
            "iterations": 3,
            "stopped": "until: input_boolean.sos_acknowledged is 'on'",
        }
        assert [(s["path"], s.get("iteration")) for s in trace["steps"][1:3]] == [
            ("action/0/repeat/sequence/0", 1),
            ("action/0/repeat/sequence/1", 1),
        ]


async def test_repeat_by_count_while_and_for_each(estate_factory):
    async with estate_factory(
        """
        - id: loops
          triggers: {trigger: event, event_type: test.go}
          actions:
            - repeat:
                count: "{{ trigger.event.data.n }}"
                sequence: [{action: test.count, data: {i: "{{ repeat.index }}", last: "{{ repeat.last }}"}}]
            - variables: {left: 2}
            - repeat:
                while: "{{ left > 0 }}"
                sequence:
                  - action: test.while
                    data: {left: "{{ left }}"}
                  - variables: {left: "{{ left - 1 }}"}
            - repeat:
                for_each: [b3-1-1202, b3-1-1203]
                sequence: [{action: test.each, data: {flat: "{{ repeat.item }}"}}]
        """
    ) as estate:
        for service in ("test.count", "test.while", "test.each"):
            estate.record(service)
        await estate.fire("test.go", {"n": 3})
        assert estate.data_of("test.count") == [
            {"i": 1, "last": False},
            {"i": 2, "last": False},
            {"i": 3, "last": True},
        ]
        assert estate.data_of("test.while") == [{"left": 2}, {"left": 1}]
        assert estate.data_of("test.each") == [{"flat": "b3-1-1202"}, {"flat": "b3-1-1203"}]
        trace = estate.last_trace("loops")
        repeats = [s["result"] for s in trace["steps"] if s["action"] == "repeat"]
        assert repeats == [
            {"iterations": 3, "stopped": "done"},
            {"iterations": 2, "stopped": "while: template rendered False"},
            {"iterations": 2, "stopped": "done"},
        ]
        assert trace["variables"] == {"left": 0}


async def test_a_repeat_without_a_wait_does_not_starve_the_hub(estate_factory):
    async with estate_factory(
        """
        - id: busy_loop
          triggers: {trigger: event, event_type: test.go}
          actions:
            - repeat:
                while: "{{ true }}"
                sequence: [{variables: {x: 1}}]
        """
    ) as estate:
        await estate.fire("test.go")
        for _ in range(1000):  # the loop yields once per iteration: other work gets turns
            await asyncio.sleep(0)
        estate.hub.states.set("sensor.alive", "yes")
        assert estate.hub.states.get("sensor.alive").state == "yes"
        trace = estate.last_trace("busy_loop")
        assert trace["state"] == "running"
        # Its trace stops growing at 500 steps, and counts what it left out.
        assert len(trace["steps"]) == 500
        assert trace["steps_left_out"] > 500
        await estate.engine.stop()
        assert estate.last_trace("busy_loop")["script_execution"] == "cancelled"


async def test_event_and_notify_actions(estate_factory):
    async with estate_factory(
        """
        - id: ebike_in_lift
          triggers: {trigger: event, event_type: ebike.detected}
          actions:
            - event: ebike.in_lift
              event_data: {lift: "{{ trigger.event.data.lift }}", tag: "{{ trigger.event.data.tag }}"}
            - notify:
                target: [role:guard, "household:{{ trigger.event.data.owner }}"]
                title: 电梯内发现电动车
                message: "Lift {{ trigger.event.data.lift }}: e-bike {{ trigger.event.data.tag }}"
        """
    ) as estate:
        await estate.fire(
            "ebike.detected", {"lift": "B3-L1", "tag": "E200-3411", "owner": "h-1202"}
        )
        assert estate.events_of("ebike.in_lift") == [{"lift": "B3-L1", "tag": "E200-3411"}]
        # No notifier is registered yet: the request goes on the bus.
        assert estate.events_of("notify.requested") == [
            {
                "target": ["role:guard", "household:h-1202"],
                "message": "Lift B3-L1: e-bike E200-3411",
                "title": "电梯内发现电动车",
                "automation_id": "ebike_in_lift",
            }
        ]
        sent = estate.record("notify.send", result={"delivered": 2})
        await estate.fire(
            "ebike.detected", {"lift": "B5-L2", "tag": "E200-0001", "owner": "h-0301"}
        )
        assert [dict(call.data) for call in sent] == [
            {
                "target": ["role:guard", "household:h-0301"],
                "message": "Lift B5-L2: e-bike E200-0001",
                "title": "电梯内发现电动车",
            }
        ]
        assert len(estate.events_of("notify.requested")) == 1
        assert estate.last_trace("ebike_in_lift")["steps"][1]["result"]["via"] == "notify.send"


async def test_stop_ends_the_run_with_its_reason_and_error_marks_it_aborted(estate_factory):
    async with estate_factory(
        """
        - id: stopper
          mode: queued
          triggers: {trigger: event, event_type: test.go}
          actions:
            - if: "{{ trigger.event.data.fail }}"
              then: [{stop: "no valve in {{ trigger.event.data.flat }}", error: true}]
            - stop: nothing more to do
            - action: test.never
        """
    ) as estate:
        estate.record("test.never")
        await estate.fire("test.go", {"fail": False, "flat": "b3-1-1202"})
        await estate.fire("test.go", {"fail": True, "flat": "b3-1-1203"})
        finished, aborted = estate.traces("stopper")
        assert (finished["script_execution"], finished["stop_reason"], finished["error"]) == (
            "finished",
            "nothing more to do",
            None,
        )
        assert (aborted["script_execution"], aborted["stop_reason"], aborted["error"]) == (
            "aborted",
            "no valve in b3-1-1203",
            "no valve in b3-1-1203",
        )
        assert estate.calls["test.never"] == []


async def test_a_false_condition_among_the_actions_skips_the_rest(estate_factory):
    async with estate_factory(
        """
        - id: close_valve_if_fitted
          triggers: {trigger: event, event_type: home.gas}
          actions:
            - action: test.notify
            - condition: state
              entity_id: switch.b3_1202_valve
              state: "on"
            - action: test.close_valve
        """
    ) as estate:
        estate.record("test.notify")
        estate.record("test.close_valve")
        await estate.fire("home.gas")
        trace = estate.last_trace("close_valve_if_fitted")
        assert trace["script_execution"] == "aborted"
        assert trace["stop_reason"] == "switch.b3_1202_valve has no state"
        assert len(estate.calls["test.notify"]) == 1
        assert estate.calls["test.close_valve"] == []


async def test_a_failing_action_is_contained_recorded_and_others_keep_running(
    estate_factory, caplog
):
    async with estate_factory(
        """
        - id: fire_release
          triggers: {trigger: event, event_type: home.smoke}
          actions:
            - action: access.release_doors
              continue_on_error: true
            - action: access.validated
              data: {door: 12}
            - action: test.never
        - id: also_on_smoke
          triggers: {trigger: event, event_type: home.smoke}
          actions: [{action: test.other}]
        """
    ) as estate:
        estate.record("test.never")
        estate.record("test.other")

        def refuse(call):
            raise ServiceValidationError("access.validated: door: expected text")

        estate.hub.services.register("access", "validated", refuse)
        await estate.fire("home.smoke")
        trace = estate.last_trace("fire_release")
        assert trace["script_execution"] == "error"
        assert [(s["path"], s["error"]) for s in trace["steps"]] == [
            ("action/0", "ServiceNotFound: no service access.release_doors"),
            ("action/1", "ServiceValidationError: access.validated: door: expected text"),
        ]
        assert trace["error"] == (
            "action/1 (call_service) failed: ServiceValidationError: access.validated: door: "
            "expected text"
        )
        assert estate.calls["test.never"] == []
        assert len(estate.calls["test.other"]) == 1
        assert estate.engine.stats().runs_failed == 1
        assert "automation fire_release (no alias): action/1 (call_service) failed" in caplog.text
        # The engine goes on: the next alarm runs again.
        await estate.fire("home.smoke")
        assert len(estate.calls["test.other"]) == 2


async def test_a_disabled_action_is_skipped_and_shown_as_such(estate_factory):
    async with estate_factory(
        """
        - id: partly_disabled
          triggers: {trigger: event, event_type: test.go}
          actions:
            - action: test.off
              enabled: false
            - action: test.on
        """
    ) as estate:
        estate.record("test.off")
        estate.record("test.on")
        await estate.fire("test.go")
        assert estate.calls["test.off"] == []
        assert len(estate.calls["test.on"]) == 1
        assert estate.last_trace("partly_disabled")["steps"][0]["result"] == {"enabled": False}
