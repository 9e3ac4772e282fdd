"""Each trigger kind, as an estate uses it."""

from __future__ import annotations

from datetime import date, timedelta

from estatehub.automation.sun import sun_event
from estatehub.incidents import EscalationPolicy, EscalationStep, Severity

from .conftest import SHANGHAI


async def test_a_denied_car_pages_the_guard_but_an_admitted_one_does_not(estate_factory):
    async with estate_factory(
        """
        - id: visitor_denied
          triggers:
            - trigger: event
              event_type: parking.decision
              event_data:
                verdict: deny
                reason: {code: blocked}
          actions:
            - action: guard.page
              data:
                plate: "{{ trigger.event.data.plate }}"
                gate: "{{ trigger.event.data.gate }}"
        """
    ) as estate:
        estate.record("guard.page")
        await estate.fire(
            "parking.decision", {"verdict": "open", "plate": "沪A12345", "gate": "north"}
        )
        await estate.fire(
            "parking.decision",
            {
                "verdict": "deny",
                "plate": "沪B54321",
                "gate": "south",
                "reason": {"code": "unknown"},
            },
        )
        await estate.fire(
            "parking.decision",
            {
                "verdict": "deny",
                "plate": "沪AD12345",
                "gate": "north",
                "reason": {"code": "blocked", "note": "block list"},
            },
        )
        assert estate.data_of("guard.page") == [{"plate": "沪AD12345", "gate": "north"}]
        trigger = estate.last_trace("visitor_denied")["trigger"]
        assert trigger["platform"] == "event"
        assert trigger["description"] == "event 'parking.decision'"
        assert trigger["event"]["event_type"] == "parking.decision"
        assert trigger["event"]["time_fired"] == "2026-03-02T08:00:00+08:00"


async def test_a_door_event_of_either_type_calls_the_guard(estate_factory):
    async with estate_factory(
        """
        - id: door_trouble
          mode: parallel
          triggers:
            - trigger: event
              event_type: [access.door_forced, access.door_held]
          actions:
            - action: guard.page
              data: {why: "{{ trigger.event.event_type }}"}
        """
    ) as estate:
        estate.record("guard.page")
        await estate.fire("access.door_held", {"door": "b3-u1"})
        await estate.fire("access.door_granted", {"door": "b3-u1"})
        await estate.fire("access.door_forced", {"door": "b3-u1"})
        assert estate.data_of("guard.page") == [
            {"why": "access.door_held"},
            {"why": "access.door_forced"},
        ]


async def test_smoke_from_off_to_on_releases_doors_once_per_alarm(estate_factory):
    async with estate_factory(
        """
        - id: smoke_releases_doors
          mode: queued
          triggers:
            - trigger: state
              entity_id: [binary_sensor.b3_smoke, binary_sensor.b5_smoke]
              from: "off"
              to: "on"
          actions:
            - action: access.release_doors
              data:
                sensor: "{{ trigger.entity_id }}"
                was: "{{ trigger.from_state.state }}"
        """
    ) as estate:
        estate.record("access.release_doors")
        await estate.set("binary_sensor.b3_smoke", "on")  # first report: no "from off"
        await estate.set("binary_sensor.b3_smoke", "off")
        await estate.set("binary_sensor.b3_smoke", "on")
        await estate.set("binary_sensor.b3_smoke", "on", battery=80)  # attributes only
        await estate.set("binary_sensor.b5_smoke", "off")
        await estate.set("binary_sensor.b5_smoke", "on")
        assert estate.data_of("access.release_doors") == [
            {"sensor": "binary_sensor.b3_smoke", "was": "off"},
            {"sensor": "binary_sensor.b5_smoke", "was": "off"},
        ]


async def test_a_door_held_open_for_two_minutes_calls_the_guard_and_closing_it_resets(
    estate_factory,
):
    async with estate_factory(
        """
        - id: door_held_open
          triggers:
            - trigger: state
              entity_id: binary_sensor.b3_u1_door
              to: "on"
              for: "00:02:00"
          actions:
            - event: guard.door_held
              event_data:
                door: "{{ trigger.entity_id }}"
                held_s: "{{ trigger.for.total_seconds() }}"
                at: "{{ now().strftime('%H:%M:%S') }}"
        """
    ) as estate:
        await estate.set("binary_sensor.b3_u1_door", "on")
        await estate.advance(119)
        await estate.set("binary_sensor.b3_u1_door", "off")  # closed just in time
        await estate.set("binary_sensor.b3_u1_door", "on")  # 08:01:59, opened again
        await estate.advance(60)
        await estate.set("binary_sensor.b3_u1_door", "on", rssi=-70)  # still open
        await estate.advance(59)
        assert estate.events_of("guard.door_held") == []
        await estate.advance(1)
        assert estate.events_of("guard.door_held") == [
            {"door": "binary_sensor.b3_u1_door", "held_s": 120.0, "at": "08:03:59"}
        ]


async def test_without_from_or_to_attribute_changes_count_but_with_to_null_they_do_not(
    estate_factory,
):
    async with estate_factory(
        """
        - id: any_change
          mode: parallel
          triggers: {trigger: state, entity_id: lock.b3_gate}
          actions: [{action: test.any}]
        - id: state_changes_only
          mode: parallel
          triggers: {trigger: state, entity_id: lock.b3_gate, to: ~}
          actions: [{action: test.state_only}]
        - id: battery_changes
          mode: parallel
          triggers: {trigger: state, entity_id: lock.b3_gate, attribute: battery}
          actions: [{action: test.battery, data: {now: "{{ trigger.to_state.attributes.battery }}"}}]
        - id: not_to_unavailable
          mode: parallel
          triggers: {trigger: state, entity_id: lock.b3_gate, not_to: unavailable}
          actions: [{action: test.not_unavailable, data: {to: "{{ trigger.to_state.state }}"}}]
        """
    ) as estate:
        for service in ("test.any", "test.state_only", "test.battery", "test.not_unavailable"):
            estate.record(service)
        await estate.set("lock.b3_gate", "locked", battery=90)
        await estate.set("lock.b3_gate", "locked", battery=85)
        await estate.set("lock.b3_gate", "unlocked", battery=85)
        await estate.set("lock.b3_gate", "unavailable")
        assert len(estate.calls["test.any"]) == 4
        assert len(estate.calls["test.state_only"]) == 3
        assert estate.data_of("test.battery") == [{"now": 90}, {"now": 85}, {"now": ""}]
        # not_to, like from/to, means state changes only: the battery report is not one.
        assert estate.data_of("test.not_unavailable") == [{"to": "locked"}, {"to": "unlocked"}]


async def test_gas_above_50_ppm_closes_the_valve_on_crossing_not_while_it_stays_high(
    estate_factory,
):
    async with estate_factory(
        """
        - id: gas_leak
          triggers:
            - trigger: numeric_state
              entity_id: sensor.b3_1202_gas_ppm
              above: 50
          actions:
            - action: home.close_valve
              data: {ppm: "{{ trigger.to_state.state }}", above: "{{ trigger.above }}"}
        """
    ) as estate:
        estate.record("home.close_valve")
        for reading in ("20", "60", "70", "30", "unavailable", "80"):
            await estate.set("sensor.b3_1202_gas_ppm", reading)
        assert estate.data_of("home.close_valve") == [
            {"ppm": 60, "above": 50.0},
            {"ppm": 80, "above": 50.0},
        ]


async def test_a_reading_already_high_at_start_must_fall_before_it_can_fire(estate_factory):
    def already_high(estate):
        estate.hub.states.set("sensor.b3_1202_gas_ppm", "70")

    async with estate_factory(
        """
        - id: gas_leak
          triggers: {trigger: numeric_state, entity_id: sensor.b3_1202_gas_ppm, above: 50}
          actions: [{action: home.close_valve}]
        """,
        before_start=already_high,
    ) as estate:
        estate.record("home.close_valve")
        await estate.set("sensor.b3_1202_gas_ppm", "75")
        assert estate.calls["home.close_valve"] == []
        await estate.set("sensor.b3_1202_gas_ppm", "10")
        await estate.set("sensor.b3_1202_gas_ppm", "55")
        assert len(estate.calls["home.close_valve"]) == 1


async def test_a_manhole_water_level_must_stay_high_for_five_minutes(estate_factory):
    async with estate_factory(
        """
        - id: manhole_flooding
          triggers:
            - trigger: numeric_state
              entity_id: sensor.manhole_7
              attribute: water_level_m
              above: 0.5
              below: 3
              for: {minutes: 5}
          actions:
            - action: governance.work_order
              data: {level: "{{ trigger.to_state.attributes.water_level_m }}"}
        """
    ) as estate:
        estate.record("governance.work_order")
        await estate.set("sensor.manhole_7", "ok", water_level_m=0.7)
        await estate.advance(240)
        await estate.set("sensor.manhole_7", "ok", water_level_m=0.3)  # it drained
        await estate.advance(600)
        assert estate.calls["governance.work_order"] == []
        await estate.set("sensor.manhole_7", "ok", water_level_m=0.9)
        await estate.advance(299)
        assert estate.calls["governance.work_order"] == []
        await estate.advance(1)
        assert estate.data_of("governance.work_order") == [{"level": 0.9}]


async def test_the_gates_lock_at_ten_at_night_and_open_at_half_past_six(estate_factory):
    async with estate_factory(
        """
        - id: night_lock
          mode: queued
          triggers: {trigger: time, at: ["22:00", "06:30:15"]}
          actions:
            - action: test.record
              data: {at: "{{ trigger.at }}", now: "{{ now().isoformat() }}"}
        """
    ) as estate:
        estate.record("test.record")
        await estate.advance(timedelta(days=2).total_seconds())
        assert estate.data_of("test.record") == [
            {"at": "22:00:00", "now": "2026-03-02T22:00:00+08:00"},
            {"at": "06:30:15", "now": "2026-03-03T06:30:15+08:00"},
            {"at": "22:00:00", "now": "2026-03-03T22:00:00+08:00"},
            {"at": "06:30:15", "now": "2026-03-04T06:30:15+08:00"},
        ]


async def test_time_patterns_fire_on_the_matching_seconds_only(estate_factory):
    async with estate_factory(
        """
        - id: every_quarter_hour
          triggers: {trigger: time_pattern, minutes: "/15"}
          actions: [{action: test.quarter, data: {at: "{{ now().strftime('%H:%M:%S') }}"}}]
        - id: every_six_hours
          triggers: {trigger: time_pattern, hours: "/6"}
          actions: [{action: test.six, data: {at: "{{ now().strftime('%d %H:%M:%S') }}"}}]
        - id: every_twenty_seconds
          triggers: {platform: time_pattern, seconds: "/20"}
          actions: [{action: test.twenty, data: {at: "{{ now().strftime('%H:%M:%S') }}"}}]
        """
    ) as estate:
        for service in ("test.quarter", "test.six", "test.twenty"):
            estate.record(service)
        await estate.advance(60)
        assert estate.data_of("test.twenty") == [
            {"at": "08:00:20"},
            {"at": "08:00:40"},
            {"at": "08:01:00"},
        ]
        estate.engine.set_enabled("every_twenty_seconds", False)
        await estate.advance(3600 - 60)
        assert estate.data_of("test.quarter") == [
            {"at": "08:15:00"},
            {"at": "08:30:00"},
            {"at": "08:45:00"},
            {"at": "09:00:00"},
        ]
        await estate.advance(timedelta(hours=23).total_seconds())
        assert estate.data_of("test.six") == [
            {"at": "02 12:00:00"},
            {"at": "02 18:00:00"},
            {"at": "03 00:00:00"},
            {"at": "03 06:00:00"},
        ]
        assert len(estate.calls["test.twenty"]) == 3  # turned off after the first minute


async def test_street_lights_go_on_before_sunset_and_off_after_sunrise(estate_factory):
    async with estate_factory(
        """
        - id: street_lights_on
          triggers: {trigger: sun, event: sunset, offset: "-00:15:00"}
          actions: [{action: light.turn_on, data: {at: "{{ now().isoformat() }}", event: "{{ trigger.event }}"}}]
        - id: street_lights_off
          triggers: {trigger: sun, event: sunrise, offset: "+00:10:00"}
          actions: [{action: light.turn_off, data: {at: "{{ now().isoformat() }}"}}]
        """
    ) as estate:
        estate.record("light.turn_on")
        estate.record("light.turn_off")
        await estate.advance(timedelta(days=1).total_seconds())
        sunset = sun_event(date(2026, 3, 2), "sunset", 31.2304, 121.4737, SHANGHAI)
        sunrise = sun_event(date(2026, 3, 3), "sunrise", 31.2304, 121.4737, SHANGHAI)
        on = estate.data_of("light.turn_on")
        off = estate.data_of("light.turn_off")
        assert on == [{"at": (sunset - timedelta(minutes=15)).isoformat(), "event": "sunset"}]
        assert off == [{"at": (sunrise + timedelta(minutes=10)).isoformat()}]
        assert on[0]["at"].startswith("2026-03-02T17:37:46")
        assert off[0]["at"].startswith("2026-03-03T06:29:05")


async def test_a_safety_incident_in_building_3_is_followed_through_raise_and_escalation(
    estate_factory,
):
    async with estate_factory(
        """
        - id: smoke_followed
          mode: queued
          triggers:
            - trigger: incident
              event: [raised, escalated]
              kind: "home.*"
              severity: safety
              location: "b3-*"
          actions:
            - action: test.record
              data:
                incident: "{{ trigger.incident_id }}"
                event: "{{ trigger.event }}"
                summary: "{{ trigger.incident.summary }}"
        - id: acknowledged
          triggers: {trigger: incident, event: acknowledged}
          actions: [{action: test.acked, data: {by: "{{ trigger.incident.by }}"}}]
        """
    ) as estate:
        estate.record("test.record")
        estate.record("test.acked")
        incidents = estate.hub.incidents
        policy = EscalationPolicy(
            steps=(
                EscalationStep(timedelta(0), ("family",)),
                EscalationStep(timedelta(minutes=2), ("guard",)),
            )
        )
        smoke = incidents.raise_incident(
            "home.smoke",
            Severity.SAFETY,
            "b3-1-1202",
            "Smoke in B3-1202",
            source="test",
            policy=policy,
        )
        incidents.raise_incident(
            "home.smoke", Severity.SAFETY, "b5-2-0301", "Smoke in B5", source="test"
        )
        incidents.raise_incident(
            "home.gas", Severity.WARNING, "b3-1-0802", "Gas B3-0802", source="test"
        )
        await estate.settle()
        await estate.advance(120)
        incidents.acknowledge(smoke.id, "guard-wang")
        await estate.settle()
        assert smoke.id == "INC-20260302-0001"
        assert estate.data_of("test.record") == [
            {"incident": "INC-20260302-0001", "event": "raised", "summary": "Smoke in B3-1202"},
            {"incident": "INC-20260302-0001", "event": "escalated", "summary": "Smoke in B3-1202"},
        ]
        # Every acknowledgement, whatever the incident.
        assert estate.data_of("test.acked") == [{"by": "guard-wang"}]
