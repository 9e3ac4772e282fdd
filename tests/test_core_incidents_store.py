"""Incidents escalate on the clock, are audited, and survive a restart of the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from estatehub.bus import EventBus
from estatehub.clock import VirtualClock
from estatehub.exceptions import IncidentError
from estatehub.incidents import (
    EscalationPolicy,
    EscalationStep,
    IncidentManager,
    IncidentState,
    Severity,
)
from estatehub.store import Store, StoreError

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 14, 3, tzinfo=SHANGHAI)
SMOKE_POLICY = EscalationPolicy(
    (
        EscalationStep(timedelta(0), ("household:h-wang",)),
        EscalationStep(timedelta(minutes=2), ("property_desk",), "phone the household"),
        EscalationStep(timedelta(minutes=5), ("guard",), "call 119"),
    ),
    repeat_every=timedelta(minutes=3),
)


def make(store: Store | None = None, start: datetime = START):
    clock = VirtualClock(start, tz=SHANGHAI)
    bus = EventBus(clock)
    store = store or Store(":memory:")
    store.open()
    manager = IncidentManager(bus, clock, store)
    events: list[tuple[str, dict]] = []
    bus.listen("*", lambda e: events.append((e.type, dict(e.data))))
    return manager, clock, store, events


def test_smoke_incident_escalates_through_every_step_and_repeats_until_acknowledged():
    incidents, clock, store, events = make()
    incident = incidents.raise_incident(
        "smoke", Severity.SAFETY, "b3-1-1202", "smoke alarm", source="home", policy=SMOKE_POLICY
    )
    assert incident.id == "INC-20260302-0001"
    assert events[0] == (
        "incident.raised",
        {
            "id": incident.id,
            "kind": "smoke",
            "severity": "safety",
            "location": "b3-1-1202",
            "summary": "smoke alarm",
            "notify": ["household:h-wang"],
            "instruction": "",
        },
    )
    clock.advance(timedelta(minutes=11))  # steps at 2 and 5 min, repeats at 8 and 11 min
    escalations = [
        (d["level"], d["repeat"], d["notify"], d["instruction"])
        for t, d in events
        if t == "incident.escalated"
    ]
    assert escalations == [
        (1, 0, ["property_desk"], "phone the household"),
        (2, 0, ["guard"], "call 119"),
        (2, 1, ["guard"], "call 119"),
        (2, 2, ["guard"], "call 119"),
    ]
    incidents.acknowledge(incident.id, by="property-desk", note="on the way")
    clock.advance(timedelta(hours=1))
    assert [t for t, _ in events].count("incident.escalated") == 4
    actions = [(e.actor, e.action) for e in store.audit_entries(incident.id)]
    assert actions == [("home", "incident.raised")] + [("hub", "incident.escalated")] * 4 + [
        ("property-desk", "incident.acknowledged")
    ]
    acknowledged = incidents.get(incident.id)
    assert acknowledged.acknowledged_by == "property-desk"
    assert acknowledged.acknowledged_at == START + timedelta(minutes=11)


def test_safety_incident_without_repeat_gets_one():
    incidents, clock, _, events = make()
    policy = EscalationPolicy((EscalationStep(timedelta(0), ("guard",)),))
    incidents.raise_incident(
        "gas", Severity.SAFETY, "b3-1-1203", "gas", source="home", policy=policy
    )
    clock.advance(timedelta(minutes=10))
    assert [d["repeat"] for t, d in events if t == "incident.escalated"] == [1, 2]


def test_same_condition_reported_again_is_counted_on_the_open_incident():
    incidents, _, _, events = make()
    first = incidents.raise_incident(
        "smoke", Severity.SAFETY, "f", "s", source="home", dedupe_key="smoke:d1"
    )
    again = incidents.raise_incident(
        "smoke", Severity.SAFETY, "f", "s", source="home", dedupe_key="smoke:d1"
    )
    assert again.id == first.id and again.occurrences == 2
    assert [t for t, _ in events] == ["incident.raised", "incident.repeated"]


def test_acknowledging_twice_or_an_unknown_id_is_a_clear_error():
    incidents, _, _, _ = make()
    incident = incidents.raise_incident("x", Severity.WARNING, "hub", "x", source="t")
    incidents.acknowledge(incident.id, by="desk")
    with pytest.raises(IncidentError, match="already acknowledged"):
        incidents.acknowledge(incident.id, by="desk")
    with pytest.raises(IncidentError, match="no incident 'INC-nope'"):
        incidents.acknowledge("INC-nope", by="desk")


def test_open_incident_and_its_escalation_survive_a_restart(tmp_path):
    path = tmp_path / "estatehub.db"
    incidents, clock, store, _ = make(Store(path))
    incident = incidents.raise_incident(
        "smoke", Severity.SAFETY, "b3-1-1202", "smoke", source="home", policy=SMOKE_POLICY
    )
    clock.advance(timedelta(minutes=3))  # the property desk step has run
    store.close()

    # The hub was down for ten minutes: the guard step (due at 5 min) runs at start-up.
    later, clock2, _, events = make(Store(path), start=START + timedelta(minutes=13))
    assert later.restore() == 1
    restored = later.get(incident.id)
    assert restored.state is IncidentState.RAISED and restored.level == 1
    clock2.advance(0)
    assert [(d["level"], d["notify"]) for t, d in events if t == "incident.escalated"] == [
        (2, ["guard"])
    ]
    resolved = later.resolve(incident.id, by="guard-room", note="false alarm")
    assert resolved.acknowledged_by == "guard-room"
    assert not later.open_incidents()
    # A new incident the same day continues the numbering.
    assert (
        later.raise_incident("x", Severity.INFO, "hub", "x", source="t").id == "INC-20260302-0002"
    )


def test_store_records_and_sequences_survive_reopening(tmp_path):
    path = tmp_path / "db" / "estatehub.db"
    store = Store(path)
    store.open()
    store.put("parking.sessions", "PS-1", {"plate": "沪A8K352"}, START)
    assert [store.next_sequence("s") for _ in range(3)] == [1, 2, 3]
    store.close()
    again = Store(path)
    again.open()
    assert list(again.records("parking.sessions")) == [("PS-1", {"plate": "沪A8K352"})]
    assert again.next_sequence("s") == 4
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_on_an_unwritable_path_names_the_file(tmp_path):
    bad = tmp_path / "file"
    bad.write_text("x")
    with pytest.raises(StoreError, match=str(bad / "estatehub.db")):
        Store(bad / "estatehub.db").open()


def test_a_second_hub_on_the_same_store_is_refused(tmp_path):
    first = Store(tmp_path / "estatehub.db")
    first.open()
    with pytest.raises(StoreError, match="another estatehub is already using the store"):
        Store(tmp_path / "estatehub.db").open()
    first.close()
    again = Store(tmp_path / "estatehub.db")
    again.open()  # free again once the first one closed
    again.close()
