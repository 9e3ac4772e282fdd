"""Smoke detectors mapped to flats: alarms escalate as safety incidents until acknowledged.

Traffic is real zigbee2mqtt state JSON (FORMATS.md §7a) through the embedded broker.
"""

from __future__ import annotations

from datetime import timedelta

from estatehub.testing.harness import EstateHarness

ESTATE = """
estate:
  name: test estate
plugins:
  allow: [home, zigbee2mqtt]
registry:
  buildings:
    - id: b3
      name: 3号楼
      units:
        - id: "1"
          flats:
            - {id: "1202", household: h-wang}
  households:
    - {id: h-wang, name: 王家}
  devices:
    - {id: b3-1202-smoke, flat: b3-1-1202, kind: smoke}
modules:
  home:
    detectors:
      b3-1202-smoke:
        options: {friendly_name: b3-1202-smoke}
      stairwell-smoke:
        options: {friendly_name: b3/stairs/smoke}
"""
TOPIC = "zigbee2mqtt/b3-1202-smoke"


def estate(tmp_path, **kwargs) -> EstateHarness:
    return EstateHarness.from_yaml(tmp_path, ESTATE, **kwargs)


async def test_smoke_raises_a_safety_incident_that_escalates_until_acknowledged(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(
            TOPIC,
            b'{"smoke":true,"battery_low":false,"linkquality":26,"last_seen":"2019-06-24T15:30:53.312Z"}',
        )
        await e.settle()
        raised = e.events_of("incident.raised")[0]
        assert raised["kind"] == "smoke" and raised["severity"] == "safety"
        assert raised["location"] == "b3-1-1202"
        assert raised["notify"] == ["household:h-wang"]
        assert e.hub.states.get("binary_sensor.b3_1202_smoke").state == "on"
        await e.advance(timedelta(minutes=15))  # 2 min desk, 5 min guard, then every 5 min
        steps = [(d["notify"], d["repeat"]) for d in e.events_of("incident.escalated")]
        assert steps == [(["property_desk"], 0), (["guard"], 0), (["guard"], 1), (["guard"], 2)]
        assert "call 119" in e.events_of("incident.escalated")[1]["instruction"]
        e.hub.incidents.acknowledge(raised["id"], by="property-desk")
        await e.advance(timedelta(hours=1))
        assert len(e.events_of("incident.escalated")) == 4


async def test_further_smoke_reports_do_not_raise_a_second_incident(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(TOPIC, b'{"smoke":true}')
        e.mqtt(TOPIC, b'{"smoke":true,"linkquality":30}')
        await e.settle()
        assert len(e.events_of("incident.raised")) == 1


async def test_smoke_clearing_keeps_the_incident_open_for_a_person(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(TOPIC, b'{"smoke":true}')
        await e.settle()
        e.mqtt(TOPIC, b'{"smoke":false}')
        await e.settle()
        assert e.events_of("home.alarm_cleared") == [
            {"detector": "b3-1202-smoke", "kind": "smoke", "flat": "b3-1-1202"}
        ]
        assert [i.kind for i in e.hub.incidents.open_incidents()] == ["smoke"]
        await e.advance(timedelta(minutes=3))
        assert len(e.events_of("incident.escalated")) == 1


async def test_retained_alarm_state_at_start_up_is_state_not_a_new_alarm(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(
            TOPIC,
            b'{"battery":"100.00","voltage":3055,"linkquality":60,"smoke":true}',
            retained=True,
        )
        await e.settle()
        assert e.events_of("incident.raised") == []
        assert e.events_of("home.retained_alarm_state")[0]["detector"] == "b3-1202-smoke"
        assert e.hub.states.get("binary_sensor.b3_1202_smoke").state == "on"
        assert (
            e.hub.states.get("binary_sensor.b3_1202_smoke").attributes["battery_percent"] == 100.0
        )


async def test_detector_without_a_flat_is_located_by_its_id(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt("zigbee2mqtt/b3/stairs/smoke", b'{"smoke":true}')
        await e.settle()
        assert e.events_of("incident.raised")[0]["location"] == "device:stairwell-smoke"


async def test_low_battery_tamper_and_offline_become_maintenance_incidents(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(TOPIC, b'{"battery":9,"smoke":false}')
        e.mqtt(TOPIC, b'{"smoke":false,"tamper":true}')
        e.mqtt(TOPIC + "/availability", b'{"state":"offline"}')
        await e.settle()
        kinds = [(d["kind"], d["severity"]) for d in e.events_of("incident.raised")]
        assert kinds == [
            ("detector.battery_low", "warning"),
            ("detector.tamper", "warning"),
            ("detector.offline", "warning"),
        ]
        assert e.hub.states.get("binary_sensor.b3_1202_smoke").state == "unavailable"


async def test_unacknowledged_smoke_incident_survives_a_restart_and_keeps_escalating(tmp_path):
    db = tmp_path / "estatehub.db"
    async with estate(tmp_path, store_path=db) as e:
        e.mqtt(TOPIC, b'{"smoke":true}')
        await e.settle()
        incident_id = e.events_of("incident.raised")[0]["id"]
    from estatehub.testing.harness import DEFAULT_START

    async with estate(tmp_path, store_path=db, start=DEFAULT_START + timedelta(minutes=1)) as e:
        assert [i.id for i in e.hub.incidents.open_incidents()] == [incident_id]
        e.mqtt(TOPIC, b'{"smoke":true}')  # still smoking: no second incident
        await e.advance(timedelta(minutes=2))
        assert e.events_of("incident.raised") == []
        assert e.events_of("incident.escalated")[0]["notify"] == ["property_desk"]


async def test_smoke_alarm_with_a_garbage_battery_field_still_alarms_and_the_field_is_rejected(
    tmp_path,
):
    async with estate(tmp_path) as e:
        e.mqtt(TOPIC, b'{"smoke":true,"battery":"lots","linkquality":26}')
        await e.settle()
        assert [d["kind"] for d in e.events_of("incident.raised")] == ["smoke"]
        rejected = e.events_of("transport.rejected")
        assert len(rejected) == 1
        assert (
            "battery" in rejected[0]["reason"]
            and "smoke state was still used" in rejected[0]["reason"]
        )
        attributes = e.hub.states.get("binary_sensor.b3_1202_smoke").attributes
        assert attributes["link_quality"] == 26 and "battery_percent" not in attributes


async def test_bad_smoke_value_itself_is_rejected_without_an_alarm(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt(TOPIC, b'{"smoke":"maybe"}')
        await e.settle()
        assert e.events_of("incident.raised") == []
        assert "'smoke'" in e.events_of("transport.rejected")[0]["reason"]


def test_check_config_catches_a_detector_in_a_flat_that_does_not_exist(tmp_path):
    import pytest

    from estatehub.config import ConfigError

    bad = ESTATE.replace(
        "options: {friendly_name: b3/stairs/smoke}",
        "flat: b3-1-1302\n        options: {friendly_name: b3/stairs/smoke}",
    )
    with pytest.raises(ConfigError) as caught:
        EstateHarness.from_yaml(tmp_path, bad)
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "flat: b3-1-1302" in text)
    assert str(caught.value) == (
        f"estate.yaml, line {line}: modules → home → detectors → stairwell-smoke → flat: "
        "no flat 'b3-1-1302' in the registry (flats: b3-1-1202)"
    )


def test_escalation_steps_out_of_order_are_a_config_error(tmp_path):
    import pytest

    from estatehub.config import ConfigError

    bad = ESTATE + (
        "    escalation:\n      smoke:\n        steps:\n"
        "          - {after: 5m, notify: guard}\n          - {after: 1m, notify: household}\n"
    )
    with pytest.raises(ConfigError, match="escalation steps must be in order of 'after'"):
        EstateHarness.from_yaml(tmp_path, bad)


async def test_one_detector_that_cannot_start_does_not_leave_the_others_unwatched(tmp_path):
    harness = estate(tmp_path)
    module_config = dict(harness.config.modules["home"])
    detectors = dict(module_config["detectors"])
    detectors["stairwell-smoke"] = {**detectors["stairwell-smoke"], "adapter": "no_such_adapter"}
    import dataclasses

    harness.hub.config = dataclasses.replace(
        harness.config, modules={"home": {**module_config, "detectors": detectors}}
    )
    async with harness as e:
        assert e.hub.modules["home"].status.value == "running"
        failed = e.events_of("incident.raised")[0]
        assert (failed["kind"], failed["severity"]) == ("detector.failed", "critical")
        assert "stairwell-smoke is not watched" in failed["summary"]
        e.mqtt(TOPIC, b'{"smoke":true}')
        await e.settle()
        assert [d["kind"] for d in e.events_of("incident.raised")] == ["detector.failed", "smoke"]
