"""Escalation policies from the estate config: matching, quiet hours, informational steps,
automatic resolution — on the virtual clock, with exact times."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from estatehub.bus import EventBus
from estatehub.clock import VirtualClock
from estatehub.config import ConfigError, load_estate_config
from estatehub.escalation import EscalationConfig
from estatehub.incidents import (
    EscalationPolicy,
    EscalationStep,
    IncidentManager,
    IncidentState,
    Severity,
)
from estatehub.store import Store

SHANGHAI = ZoneInfo("Asia/Shanghai")

ESTATE_YAML = """\
estate:
  name: 馨苑小区
escalation:
  policies:
    night_quiet:
      steps:
        - after: 0s
          notify: property_desk
        - after: 10m
          notify: [guard, manager]
          instruction: walk to the gate
      repeat_every: 30m
      quiet_hours: {from: "22:00", to: "07:00"}
    fyi_then_guard:
      steps:
        - after: 0s
          notify: log
          require_ack: false
        - after: 5m
          notify: guard
        - after: 20m
          notify: manager
          require_ack: false
    fire:
      steps:
        - after: 0s
          notify: [guard, role:fire_warden]
          instruction: call 119
      repeat_every: 2m
      quiet_hours: {from: "22:00", to: "07:00"}
  match:
    - {kind: "parking.*", policy: night_quiet}
    - {kind: detector.offline, policy: fyi_then_guard}
    - {severity: safety, policy: fire}
    - {kind: detector.offline, severity: critical, policy: night_quiet}
  auto_resolve:
    - kind: detector.offline
      when_event: home.detector_online
      location_field: flat
    - kind: parking.*
      after_acknowledged: 15m
    - kind: transport.mqtt_down
      when_event: transport.mqtt_state
      event_data: {state: connected}
"""


def load_escalation(tmp_path: Path, text: str = ESTATE_YAML) -> EscalationConfig:
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return load_estate_config(path, {}).escalation


def make(escalation: EscalationConfig, start: datetime):
    clock = VirtualClock(start, tz=SHANGHAI)
    bus = EventBus(clock)
    store = Store(":memory:")
    store.open()
    manager = IncidentManager(bus, clock, store, escalation)
    events: list[tuple[str, str, dict[str, Any]]] = []
    bus.listen("*", lambda e: events.append((clock.now().strftime("%H:%M"), e.type, dict(e.data))))
    return manager, clock, bus, store, events


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def escalations(events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, int, list[str]]]:
    return [
        (when, data["level"], data["notify"])
        for when, kind, data in events
        if kind == "incident.escalated"
    ]


def test_the_first_matching_rule_picks_the_policy_by_kind_prefix_then_severity(
    tmp_path: Path,
) -> None:
    escalation = load_escalation(tmp_path)
    night = escalation.policies["night_quiet"]
    assert escalation.policy_for("parking.review", Severity.WARNING) is night
    assert escalation.policy_for("parking", Severity.WARNING) is None
    # detector.offline matches its own rule before the critical one further down.
    assert (
        escalation.policy_for("detector.offline", Severity.CRITICAL)
        is (escalation.policies["fyi_then_guard"])
    )
    assert escalation.policy_for("smoke", Severity.SAFETY) is escalation.policies["fire"]
    assert escalation.policy_for("plugin.failed", Severity.WARNING) is None
    assert night.steps[1] == EscalationStep(
        timedelta(minutes=10), ("guard", "manager"), "walk to the gate", True
    )
    assert night.repeat_every == timedelta(minutes=30)


def test_a_caller_that_brings_its_own_policy_keeps_it(tmp_path: Path) -> None:
    incidents, clock, _, _, events = make(load_escalation(tmp_path), at(14))
    own = EscalationPolicy((EscalationStep(timedelta(minutes=1), ("household:h-wang",)),))
    incidents.raise_incident(
        "parking.review",
        Severity.WARNING,
        "gate:north",
        "plate unclear",
        source="parking",
        policy=own,
    )
    clock.advance(timedelta(hours=2))
    assert escalations(events) == [("14:01", 0, ["household:h-wang"])]


def test_a_parking_review_raised_at_night_waits_for_the_end_of_quiet_hours(
    tmp_path: Path,
) -> None:
    incidents, clock, _, store, events = make(load_escalation(tmp_path), at(23, 30))
    incident = incidents.raise_incident(
        "parking.review", Severity.WARNING, "gate:north", "plate unclear", source="parking"
    )
    assert incident.next_step_at == at(7, 0, day=3)
    raised = [d for _, kind, d in events if kind == "incident.raised"]
    assert (raised[0]["notify"], raised[0]["instruction"]) == ([], "")
    postponed = [(when, d) for when, kind, d in events if kind == "incident.postponed"]
    assert postponed == [
        (
            "23:30",
            {
                "id": incident.id,
                "kind": "parking.review",
                "severity": "warning",
                "location": "gate:north",
                "summary": "plate unclear",
                "level": 0,
                "due_at": "2026-03-02T23:30:00+08:00",
                "until": "2026-03-03T07:00:00+08:00",
            },
        )
    ]
    clock.advance_to(at(8, 0, day=3))
    # Step 0 at 07:00; step 1 was due at 23:40 and runs straight after; repeats every 30 min.
    assert escalations(events) == [
        ("07:00", 0, ["property_desk"]),
        ("07:00", 1, ["guard", "manager"]),
        ("07:30", 1, ["guard", "manager"]),
        ("08:00", 1, ["guard", "manager"]),
    ]
    actions = [e.action for e in store.audit_entries(incident.id)]
    assert actions[:3] == ["incident.raised", "incident.postponed", "incident.escalated"]


def test_a_repeat_falling_into_quiet_hours_is_postponed_to_seven(tmp_path: Path) -> None:
    incidents, clock, _, _, events = make(load_escalation(tmp_path), at(21, 0))
    incidents.raise_incident(
        "parking.review", Severity.WARNING, "gate:north", "plate unclear", source="parking"
    )
    clock.advance_to(at(7, 30, day=3))
    assert escalations(events) == [
        ("21:10", 1, ["guard", "manager"]),
        ("21:40", 1, ["guard", "manager"]),
        ("07:00", 1, ["guard", "manager"]),
        ("07:30", 1, ["guard", "manager"]),
    ]
    assert [(w, d["due_at"], d["until"]) for w, k, d in events if k == "incident.postponed"] == [
        ("21:40", "2026-03-02T22:10:00+08:00", "2026-03-03T07:00:00+08:00")
    ]


def test_quiet_hours_never_hold_back_a_safety_incident(tmp_path: Path) -> None:
    incidents, clock, _, _, events = make(load_escalation(tmp_path), at(23, 30))
    incident = incidents.raise_incident(
        "smoke", Severity.SAFETY, "b3-1-1202", "smoke alarm", source="home"
    )
    raised = [d for _, kind, d in events if kind == "incident.raised"]
    assert raised[0]["notify"] == ["guard", "role:fire_warden"]
    assert raised[0]["instruction"] == "call 119"
    assert incident.next_step_at == at(23, 32)
    clock.advance_to(at(23, 36))
    assert escalations(events) == [
        ("23:32", 0, ["guard", "role:fire_warden"]),
        ("23:34", 0, ["guard", "role:fire_warden"]),
        ("23:36", 0, ["guard", "role:fire_warden"]),
    ]
    assert [kind for _, kind, _ in events if kind == "incident.postponed"] == []
    incidents.acknowledge(incident.id, by="guard-room")
    clock.advance(timedelta(hours=1))
    assert len(escalations(events)) == 3


def test_informational_steps_run_after_acknowledgement_and_never_repeat(
    tmp_path: Path,
) -> None:
    incidents, clock, _, store, events = make(load_escalation(tmp_path), at(14))
    incident = incidents.raise_incident(
        "detector.offline", Severity.WARNING, "b3-1-1202", "detector offline", source="home"
    )
    incidents.acknowledge(incident.id, by="property-desk", note="battery swap today")
    clock.advance_to(at(15))
    # The guard step (needs an acknowledgement) is skipped; the manager still hears at 20 min.
    assert escalations(events) == [("14:20", 2, ["manager"])]
    acknowledged = incidents.get(incident.id)
    assert (acknowledged.acknowledged_by, acknowledged.acknowledged_at) == (
        "property-desk",
        at(14),
    )
    assert acknowledged.state is IncidentState.ACKNOWLEDGED
    assert [e.action for e in store.audit_entries(incident.id)] == [
        "incident.raised",
        "incident.acknowledged",
        "incident.escalated",
    ]


def test_an_unacknowledged_incident_repeats_its_last_step_that_needs_acknowledgement(
    tmp_path: Path,
) -> None:
    policy = load_escalation(tmp_path).policies["fyi_then_guard"]
    incidents, clock, _, _, events = make(EscalationConfig(), at(14))
    incidents.raise_incident(
        "detector.offline",
        Severity.WARNING,
        "b3-1-1202",
        "offline",
        source="home",
        policy=EscalationPolicy(policy.steps, repeat_every=timedelta(minutes=10)),
    )
    clock.advance_to(at(14, 40))
    assert escalations(events) == [
        ("14:05", 1, ["guard"]),
        ("14:20", 2, ["manager"]),
        ("14:30", 1, ["guard"]),
        ("14:40", 1, ["guard"]),
    ]


def test_a_bus_event_resolves_the_offline_detector_in_the_same_flat_only(
    tmp_path: Path,
) -> None:
    incidents, clock, bus, store, events = make(load_escalation(tmp_path), at(14))
    upstairs = incidents.raise_incident(
        "detector.offline", Severity.WARNING, "b3-1-1202", "offline", source="home"
    )
    downstairs = incidents.raise_incident(
        "detector.offline", Severity.WARNING, "b3-1-1102", "offline", source="home"
    )
    clock.advance_to(at(14, 3))
    bus.fire("home.detector_online", {"flat": "b3-1-1202", "detector": "b3-1202-smoke"})
    assert incidents.get(upstairs.id).state is IncidentState.RESOLVED
    assert incidents.get(upstairs.id).resolved_at == at(14, 3)
    assert incidents.get(downstairs.id).state is IncidentState.RAISED
    resolved = [d for _, kind, d in events if kind == "incident.resolved"]
    assert [(d["id"], d["by"]) for d in resolved] == [(upstairs.id, "auto_resolve")]
    (entry,) = [e for e in store.audit_entries(upstairs.id) if e.action == "incident.resolved"]
    assert (entry.actor, entry.detail) == (
        "auto_resolve",
        {"note": "auto_resolve: detector.offline on home.detector_online"},
    )
    clock.advance_to(at(15))
    # The resolved one escalates no more; the other still does.
    assert {d["id"] for _, k, d in events if k == "incident.escalated" and d["level"] == 1} == {
        downstairs.id
    }


def test_the_event_must_carry_the_rule_s_event_data(tmp_path: Path) -> None:
    incidents, _, bus, _, _ = make(load_escalation(tmp_path), at(14))
    down = incidents.raise_incident(
        "transport.mqtt_down", Severity.CRITICAL, "hub", "broker unreachable", source="hub"
    )
    bus.fire("transport.mqtt_state", {"state": "backing_off", "broker": "192.168.10.5:1883"})
    assert incidents.get(down.id).state is IncidentState.RAISED
    bus.fire("transport.mqtt_state", {"state": "connected", "broker": "192.168.10.5:1883"})
    assert incidents.get(down.id).resolved_by == "auto_resolve"


def test_an_acknowledged_parking_review_resolves_itself_fifteen_minutes_later(
    tmp_path: Path,
) -> None:
    incidents, clock, _, store, events = make(load_escalation(tmp_path), at(9))
    incident = incidents.raise_incident(
        "parking.review", Severity.WARNING, "gate:north", "plate unclear", source="parking"
    )
    clock.advance_to(at(9, 4))
    incidents.acknowledge(incident.id, by="guard-room")
    clock.advance_to(at(9, 18))
    assert incidents.get(incident.id).state is IncidentState.ACKNOWLEDGED
    clock.advance_to(at(9, 19))
    closed = incidents.get(incident.id)
    assert (closed.state, closed.resolved_by, closed.resolved_at) == (
        IncidentState.RESOLVED,
        "auto_resolve",
        at(9, 19),
    )
    assert closed.acknowledged_by == "guard-room"
    assert [w for w, k, _ in events if k == "incident.resolved"] == ["09:19"]
    assert store.audit_entries(incident.id)[-1].detail == {
        "note": "auto_resolve: parking.* 0:15:00 after acknowledgement"
    }


def test_an_unacknowledged_safety_incident_is_never_closed_by_a_rule(tmp_path: Path) -> None:
    text = ESTATE_YAML + "    - {kind: smoke, when_event: home.alarm_cleared}\n"
    incidents, _, bus, _, _ = make(load_escalation(tmp_path, text), at(14))
    smoke = incidents.raise_incident(
        "smoke", Severity.SAFETY, "b3-1-1202", "smoke alarm", source="home"
    )
    bus.fire("home.alarm_cleared", {"detector": "b3-1202-smoke"})
    assert incidents.get(smoke.id).state is IncidentState.RAISED
    incidents.acknowledge(smoke.id, by="guard-room")
    bus.fire("home.alarm_cleared", {"detector": "b3-1202-smoke"})
    assert incidents.get(smoke.id).state is IncidentState.RESOLVED


def test_a_restored_acknowledged_incident_still_resolves_itself(tmp_path: Path) -> None:
    escalation = load_escalation(tmp_path)
    store_path = tmp_path / "hub.db"
    store = Store(store_path)
    store.open()
    clock = VirtualClock(at(9), tz=SHANGHAI)
    first = IncidentManager(EventBus(clock), clock, store, escalation)
    incident = first.raise_incident(
        "parking.review", Severity.WARNING, "gate:north", "plate unclear", source="parking"
    )
    first.acknowledge(incident.id, by="guard-room")
    first.shutdown()
    store.close()

    store = Store(store_path)
    store.open()
    later = VirtualClock(at(9, 10), tz=SHANGHAI)
    second = IncidentManager(EventBus(later), later, store, escalation)
    assert second.restore() == 1
    later.advance_to(at(9, 15))
    assert second.get(incident.id).resolved_at == at(9, 15)
    store.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  match:\n    - {kind: smoke, policy: nope}\n",
            "estate.yaml, line 5: escalation → match[0] → policy: no policy 'nope' under "
            "escalation → policies (policies: none are defined)",
        ),
        (
            "  policies:\n    p:\n      steps: [{after: 5m, notify: a}, {after: 1m, notify: b}]\n",
            "estate.yaml, line 6: escalation → policies → p → steps: steps must be in order "
            "of 'after' (earliest first)",
        ),
        (
            "  policies:\n    p:\n      steps: [{after: 0s, notify: a}]\n"
            "      quiet_hours: {from: '22:00', to: '22:00'}\n",
            "estate.yaml, line 7: escalation → policies → p → quiet_hours: quiet hours need "
            "'from' and 'to' to differ",
        ),
        (
            "  auto_resolve:\n    - {kind: smoke, location_field: flat}\n",
            "estate.yaml, line 5: escalation → auto_resolve[0]: an auto_resolve rule needs "
            "'after_acknowledged', 'when_event' or both",
        ),
        (
            "  match:\n    - {kind: 'park*', severity: warning, policy: p}\n",
            "estate.yaml, line 5: escalation → match[0] → kind: a kind is exact "
            "(detector.offline) or a prefix ending in .* (parking.*), got 'park*'",
        ),
    ],
    ids=[
        "unknown-policy",
        "steps-out-of-order",
        "empty-quiet-hours",
        "rule-without-trigger",
        "bad-kind-pattern",
    ],
)
def test_a_wrong_escalation_section_is_reported_with_file_and_line(
    tmp_path: Path, section: str, message: str
) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text("estate:\n  name: 馨苑小区\nescalation:\n" + section, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_estate_config(path, {})
    assert [str(issue) for issue in raised.value.issues] == [message]


def test_no_escalation_section_means_no_configured_policies(tmp_path: Path) -> None:
    escalation = load_escalation(tmp_path, "estate:\n  name: 馨苑小区\n")
    assert escalation == EscalationConfig()
    assert escalation.policy_for("smoke", Severity.SAFETY) is None


async def test_a_running_hub_applies_the_estate_policy_and_auto_resolves(tmp_path):
    from datetime import timedelta

    from estatehub.testing.harness import EstateHarness

    yaml = """
estate: {name: policies}
plugins: {allow: [parking]}
escalation:
  policies:
    gate_review:
      steps:
        - {after: 0s, notify: guard, instruction: check the plate}
        - {after: 10m, notify: property_desk}
      repeat_every: 30m
  match:
    - {kind: "parking.*", policy: gate_review}
  auto_resolve:
    - {kind: parking.review, after_acknowledged: 15m}
modules:
  parking:
    gates:
      north: {adapter: mqtt_json, direction: in}
"""
    async with EstateHarness.from_yaml(tmp_path, yaml) as e:
        e.mqtt("estatehub/gate/north/plate", '{"plate": "沪A1O234"}')
        await e.settle()
        raised = e.events_of("incident.raised")[0]
        assert (raised["kind"], raised["notify"], raised["instruction"]) == (
            "parking.review",
            ["guard"],
            "check the plate",
        )
        await e.advance(timedelta(minutes=10))
        assert [d["notify"] for d in e.events_of("incident.escalated")] == [["property_desk"]]
        e.hub.incidents.acknowledge(raised["id"], by="guard-room")
        await e.advance(timedelta(minutes=15))
        resolved = e.events_of("incident.resolved")
        assert [(d["id"], d["by"]) for d in resolved] == [(raised["id"], "auto_resolve")]
