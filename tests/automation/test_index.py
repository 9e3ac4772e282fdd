"""Triggers are found through an index: an event nobody listens for costs no automation."""

from __future__ import annotations


def forty_automations() -> str:
    """20 on one entity each, 10 on e-bike events (by lift), 10 on incidents."""
    lines = []
    for n in range(20):
        lines.append(
            f"""
- id: door_{n}
  triggers: {{trigger: state, entity_id: binary_sensor.door_{n}, to: "on"}}
  actions: [{{action: test.door}}]"""
        )
    for n in range(10):
        lines.append(
            f"""
- id: ebike_lift_{n}
  triggers: {{trigger: event, event_type: ebike.detected, event_data: {{lift: "L{n}"}}}}
  actions: [{{action: test.ebike}}]"""
        )
    for n in range(10):
        lines.append(
            f"""
- id: incident_{n}
  triggers: {{trigger: incident, kind: "fence.zone_{n}"}}
  actions: [{{action: test.incident}}]"""
        )
    return "".join(lines)


async def test_forty_automations_listen_with_three_bus_listeners(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        stats = estate.engine.stats()
        assert stats.automations == 40
        assert stats.listened_event_types == ("ebike.detected", "incident.raised", "state_changed")
        assert stats.watched_entities == 20
        # One listener per event type on the bus, not one per automation.
        assert estate.hub.bus.listener_count("ebike.detected") == 1 + 1  # ours + the harness's "*"
        assert estate.hub.bus.listener_count("parking.decision") == 1  # the harness's "*" only


async def test_an_event_of_an_unrelated_type_evaluates_no_automation(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        before = estate.engine.stats().evaluations
        for _ in range(100):
            await estate.fire("parking.decision", {"verdict": "open"})
        assert estate.engine.stats().evaluations - before == 0


async def test_a_state_change_is_offered_only_to_the_triggers_on_that_entity(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        estate.record("test.door")
        engine = estate.engine
        before = engine.stats().evaluations
        await estate.set("sensor.unwatched_temperature", "21.5")
        assert engine.stats().evaluations - before == 0
        await estate.set("binary_sensor.door_7", "on")
        assert engine.stats().evaluations - before == 1
        assert len(estate.calls["test.door"]) == 1
        assert engine.stats().triggered == 1


async def test_an_ebike_event_is_offered_to_the_ten_ebike_triggers_and_runs_one(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        estate.record("test.ebike")
        before = estate.engine.stats().evaluations
        await estate.fire("ebike.detected", {"lift": "L3", "tag": "E200-3411"})
        assert estate.engine.stats().evaluations - before == 10
        assert len(estate.calls["test.ebike"]) == 1
        assert [t["script_execution"] for t in estate.traces("ebike_lift_3")] == ["finished"]
        assert estate.traces("ebike_lift_4") == []


async def test_stopping_the_engine_removes_its_bus_listeners(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        bus = estate.hub.bus
        assert bus.listener_count("state_changed") == 2
        await estate.engine.stop()
        assert bus.listener_count("state_changed") == 1
        assert bus.listener_count("ebike.detected") == 1
        assert estate.engine.stats().listened_event_types == ()


async def test_turning_an_automation_off_removes_it_from_the_index(estate_factory):
    async with estate_factory(forty_automations()) as estate:
        estate.record("test.door")
        await estate.hub.services.call("automation", "turn_off", {"id": "door_7"})
        assert estate.engine.stats().watched_entities == 19
        await estate.set("binary_sensor.door_7", "on")
        assert estate.calls["test.door"] == []
        await estate.hub.services.call("automation", "turn_on", {"id": "door_7"})
        await estate.set("binary_sensor.door_7", "off")
        await estate.set("binary_sensor.door_7", "on")
        assert len(estate.calls["test.door"]) == 1
