"""The parking subsystem end to end on a virtual clock: plate reads in, decisions and fees out.

The gates here speak the generic MQTT JSON protocol (the parking plugin's own adapter), so
these tests need no other plugin; the Hikvision path is covered in tests/test_demo_replay.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from estatehub.exceptions import ServiceValidationError
from estatehub.hookspecs.parking import ParkingError
from estatehub.testing.harness import DEFAULT_START, EstateHarness

ESTATE = """
estate:
  name: test estate
plugins:
  allow: [parking]
modules:
  parking:
    gates:
      north: {adapter: mqtt_json, direction: in}
      south: {adapter: mqtt_json, direction: out}
    tariff:
      free_minutes: 15
      unit_minutes: 60
      day_rate: 500
      night_rate: 300
      daily_cap: 3000
    residents:
      h-wang: [沪A8K352]
    visitor_passes:
      - plate: 沪B23456
        host: h-wang
        valid_from: 2026-03-02T00:00:00+08:00
        valid_until: 2026-03-02T23:59:59+08:00
    blocked:
      - plate: 沪B99999
        reason: unpaid fees
    {extra}
"""


def estate(tmp_path, extra: str = "", **kwargs) -> EstateHarness:
    return EstateHarness.from_yaml(tmp_path, ESTATE.replace("{extra}", extra), **kwargs)


def plate(harness: EstateHarness, gate: str, text: str, **fields) -> None:
    harness.mqtt(
        f"estatehub/gate/{gate}/plate", json.dumps({"plate": text, **fields}, ensure_ascii=False)
    )


async def test_resident_is_admitted_and_leaves_free(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪A8K352")
        await e.settle()
        assert e.events_of("parking.decision") == [
            {
                "gate": "north",
                "plate": "沪A8K352",
                "verdict": "open",
                "reason": "resident",
                "direction": "in",
                "category": "resident",
            }
        ]
        assert [b["action"] for b in e.events_of("parking.barrier")] == ["open"]
        await e.advance(timedelta(hours=9))
        plate(e, "south", "沪A8K352")
        await e.settle()
        assert e.events_of("parking.session_closed")[0] | {"session": "-"} == {
            "plate": "沪A8K352",
            "minutes": 540,
            "fee_fen": 0,
            "paid_fen": 0,
            "gate": "south",
            "session": "-",
        }
        assert e.hub.states.get("sensor.parking_open_sessions").state == "0"


async def test_visitor_pays_the_fee_due_before_the_exit_barrier_opens(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728")  # 08:00, no pass: admitted as a visitor
        await e.settle()
        await e.advance(timedelta(minutes=165))  # 10:45: 3 started day hours = 1500 fen
        e.clear()
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.decision")[0]["verdict"] == "deny"
        assert e.events_of("parking.decision")[0]["reason"] == "fee due 15.00 CNY"
        assert e.events_of("parking.fee_due")[0]["fee_fen"] == 1500
        assert e.events_of("parking.barrier") == []
        with pytest.raises(ParkingError, match="less than the 1500 fen due"):
            await e.call("parking", "pay", {"plate": "沪C5N728", "amount_fen": 1000})
        result = await e.call(
            "parking", "pay", {"plate": "沪C5N728", "method": "wechat"}, user="guard-room"
        )
        assert result["opened"] == "south"
        closed = e.events_of("parking.session_closed")[0]
        assert (closed["minutes"], closed["fee_fen"], closed["paid_fen"]) == (165, 1500, 1500)
        assert [(b["gate"], b["action"]) for b in e.events_of("parking.barrier")] == [
            ("south", "open")
        ]
        audit = [a.action for a in e.hub.store.audit_entries(closed["session"])]
        assert audit == ["parking.pay"]
        # The camera reads the car again as it drives off: it has paid, the barrier opens.
        await e.advance(30)
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.decision")[-1]["reason"] == "paid, leaving"


async def test_short_stay_inside_the_free_minutes_costs_nothing(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        await e.advance(timedelta(minutes=14))
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.session_closed")[0]["fee_fen"] == 0
        assert e.events_of("parking.decision")[-1]["verdict"] == "open"


async def test_visitor_pass_opens_only_inside_its_window(tmp_path):
    async with estate(
        tmp_path, start=datetime(2026, 3, 1, 23, 0, tzinfo=DEFAULT_START.tzinfo)
    ) as e:
        plate(e, "north", "沪B23456")  # the day before the pass
        await e.settle()
        assert e.events_of("parking.decision")[0]["category"] == "unknown"
        await e.advance(timedelta(hours=2))
        plate(e, "north", "沪B23456")
        await e.settle()
        assert e.events_of("parking.decision")[-1]["reason"] in ("visitor pass",)


async def test_blocked_plate_is_denied_and_no_barrier_command_is_sent(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪B·99999")  # the separator dot is stripped first
        await e.settle()
        decision = e.events_of("parking.decision")[0]
        assert (decision["verdict"], decision["reason"]) == ("deny", "blocked: unpaid fees")
        assert e.events_of("parking.barrier") == []


async def test_plate_with_o_in_the_serial_goes_to_guard_review_never_opens(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪A1O234")
        await e.settle()
        assert e.events_of("parking.decision")[0]["verdict"] == "review"
        assert e.events_of("parking.plate_read")[0]["candidate"] == "沪A10234"
        raised = e.events_of("incident.raised")[0]
        assert (raised["kind"], raised["location"]) == ("parking.review", "gate:north")
        assert e.events_of("parking.barrier") == []
        # The guard checks the camera picture and opens by hand: audited with the reason.
        await e.call(
            "parking",
            "open_barrier",
            {"gate": "north", "reason": "checked: 沪A10234, resident's guest"},
            user="guard-room",
        )
        assert e.events_of("parking.barrier")[0]["action"] == "open"
        entry = e.hub.store.audit_entries("north")[0]
        assert (entry.actor, entry.action, entry.detail["reason"]) == (
            "guard-room",
            "parking.open_barrier",
            "checked: 沪A10234, resident's guest",
        )


async def test_duplicate_and_retransmitted_reads_are_counted_once(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728", event_id="ev-1")
        plate(e, "north", "沪C5N728", event_id="ev-1")  # the same event posted twice
        await e.settle()
        await e.advance(5)
        plate(e, "north", "沪C5N728", event_id="ev-2")  # a second read 5 s later
        await e.settle()
        await e.advance(60)
        plate(e, "north", "沪C5N728", event_id="ev-1", retransmission=True)
        await e.settle()
        assert len(e.events_of("parking.decision")) == 1
        assert [d["reason"] for d in e.events_of("parking.duplicate")] == [
            "same event seen before",
            "same plate at the same gate within the dedupe window",
            "same event seen before",
        ]
        assert e.hub.states.get("sensor.parking_open_sessions").state == "1"


async def test_device_clock_far_off_is_flagged_and_the_receive_time_used(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728", time="2034-01-04T08:00:00+08:00")
        await e.settle()
        issues = e.events_of("parking.plate_read")[0]["issues"]
        assert issues == ["device clock off by 2865 days ahead; hub receive time used"]
        await e.advance(timedelta(minutes=75))
        plate(e, "south", "沪C5N728")
        await e.settle()
        # Priced from the hub's receive time at entry (08:00), not the camera's 2034.
        assert e.events_of("parking.fee_due")[0] == {
            "plate": "沪C5N728",
            "gate": "south",
            "minutes": 75,
            "fee_fen": 1000,
            "session": e.events_of("parking.session_opened")[0]["session"],
        }


async def test_unknown_vehicles_can_be_denied_by_config(tmp_path):
    async with estate(tmp_path, extra="unknown_vehicles: deny") as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.decision")[0]["verdict"] == "deny"


async def test_exit_without_entry_record_goes_to_review(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.decision")[0]["reason"] == "no entry record"


async def test_malformed_gate_message_is_rejected_and_the_next_one_still_counts(tmp_path):
    async with estate(tmp_path) as e:
        e.mqtt("estatehub/gate/north/plate", b'{"plate": 12}')
        e.mqtt("estatehub/gate/north/plate", b"not json")
        plate(e, "north", "沪A8K352")
        await e.settle()
        reasons = [r["reason"] for r in e.events_of("transport.rejected")]
        assert len(reasons) == 2 and "plate" in reasons[0]
        assert e.events_of("parking.decision")[0]["verdict"] == "open"
        assert e.hub.rejected == 2


async def test_visitor_pass_and_block_list_services_persist(tmp_path):
    db = tmp_path / "estatehub.db"
    async with estate(tmp_path, store_path=db) as e:
        await e.call(
            "parking",
            "add_visitor_pass",
            {
                "plate": "沪D11223",
                "host": "h-wang",
                "valid_from": "2026-03-02T07:00:00+08:00",
                "valid_until": "2026-03-02T12:00:00+08:00",
            },
        )
        await e.call("parking", "block_plate", {"plate": "沪E44556", "reason": "abandoned"})
        with pytest.raises(ServiceValidationError, match="valid_from"):
            await e.call(
                "parking",
                "add_visitor_pass",
                {
                    "plate": "沪D1",
                    "host": "h",
                    "valid_from": "tomorrow",
                    "valid_until": "2026-03-02T12:00:00+08:00",
                },
            )
    async with estate(tmp_path, store_path=db) as e:
        plate(e, "north", "沪D11223")
        plate(e, "north", "沪E44556")
        await e.settle()
        assert [
            (d["plate"], d["verdict"], d["category"]) for d in e.events_of("parking.decision")
        ] == [("沪D11223", "open", "visitor_pass"), ("沪E44556", "deny", "blocked")]


async def test_open_session_survives_a_restart_and_is_priced_after_it(tmp_path):
    db = tmp_path / "estatehub.db"
    async with estate(tmp_path, store_path=db) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
    later = DEFAULT_START + timedelta(hours=2, minutes=30)
    async with estate(tmp_path, store_path=db, start=later) as e:
        assert e.hub.states.get("sensor.parking_open_sessions").state == "1"
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.fee_due")[0]["fee_fen"] == 1500


async def test_closed_sessions_are_kept_only_for_the_configured_retention(tmp_path):
    async with estate(tmp_path, extra="history_retention: 30d") as e:
        plate(e, "north", "沪A8K352")
        await e.settle()
        await e.advance(timedelta(hours=1))
        plate(e, "south", "沪A8K352")
        await e.settle()
        assert len(list(e.hub.store.records("parking.closed"))) == 1
        await e.advance(timedelta(days=29))
        assert len(list(e.hub.store.records("parking.closed"))) == 1
        await e.advance(timedelta(days=2))  # the daily check after day 30 removes it
        assert list(e.hub.store.records("parking.closed")) == []
        purge = [
            a
            for a in e.hub.store.audit_entries("parking.closed")
            if a.action == "parking.retention"
        ]
        assert [(a.detail["removed"], a.detail["retention_days"]) for a in purge] == [(1, 30)]


async def test_dedupe_memory_is_bounded_by_time_not_by_a_scan(tmp_path):
    async with estate(tmp_path) as e:
        module = e.hub.modules["parking"].module
        for number in range(50):
            plate(e, "north", f"沪C{number:05d}")
            await e.settle()
            await e.advance(timedelta(minutes=5))
        # Only the last hour of reads is remembered (12 reads at 5-minute spacing, plus the edge).
        assert len(module._last_counted) <= 13


async def test_guard_override_at_the_entry_opens_a_session_priced_at_the_exit(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪A1O234")  # review: the guard reads 沪A10234 on the camera picture
        await e.settle()
        result = await e.call(
            "parking",
            "open_barrier",
            {"gate": "north", "plate": "沪A10234", "reason": "checked the picture"},
            user="guard",
        )
        assert result["session"].startswith("PS-")
        await e.advance(timedelta(minutes=70))
        plate(e, "south", "沪A10234")
        await e.settle()
        assert e.events_of("parking.fee_due")[0]["fee_fen"] == 1000


async def test_paying_when_nothing_is_due_is_refused_never_a_negative_payment(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        await e.advance(timedelta(minutes=90))
        await e.call("parking", "pay", {"plate": "沪C5N728"})  # pays 1000 fen before leaving
        with pytest.raises(
            ParkingError, match="nothing is due for 沪C·\\*\\*\\*28 \\(already paid 1000 fen\\)"
        ):
            await e.call("parking", "pay", {"plate": "沪C5N728"})
        with pytest.raises(ParkingError, match="nothing is due"):
            await e.call("parking", "pay", {"plate": "沪C5N728", "amount_fen": 500})
        assert [p["amount_fen"] for p in e.events_of("parking.payment")] == [1000]


async def test_a_policy_plugin_that_raises_falls_back_to_the_default_and_is_counted(tmp_path):
    from estatehub import hookimpl
    from estatehub.plugins import PluginManager

    class Broken:
        @hookimpl
        def estatehub_parking_verdict(self, read, plate, context):
            raise RuntimeError("policy bug")

        @hookimpl
        def estatehub_parking_fee(self, session, tariff, exited_at):
            return -5  # nonsense

    plugins = PluginManager(allow=["parking"], environ={})
    plugins.load_entry_points()
    plugins.register(Broken(), "broken-policy")
    async with estate(tmp_path, plugins=plugins) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.decision")[0]["verdict"] == "open"
        await e.advance(timedelta(minutes=90))
        plate(e, "south", "沪C5N728")
        await e.settle()
        assert e.events_of("parking.fee_due")[0]["fee_fen"] == 1000
        assert e.hub.modules["parking"].module.policy_errors >= 3


async def test_expired_visitor_passes_are_removed_from_the_store(tmp_path):
    db = tmp_path / "estatehub.db"
    async with estate(tmp_path, store_path=db) as e:
        await e.call(
            "parking",
            "add_visitor_pass",
            {
                "plate": "沪D11223",
                "host": "h-wang",
                "valid_from": "2026-03-02T07:00:00+08:00",
                "valid_until": "2026-03-02T12:00:00+08:00",
            },
        )
        assert len(list(e.hub.store.records("parking.passes"))) == 1
        await e.advance(timedelta(days=1, hours=1))
        assert list(e.hub.store.records("parking.passes")) == []


def test_a_visitor_pass_that_ends_before_it_starts_is_a_config_error(tmp_path):
    from estatehub.config import ConfigError

    bad = ESTATE.replace(
        "valid_until: 2026-03-02T23:59:59+08:00", "valid_until: 2026-03-01T23:59:59+08:00"
    )
    with pytest.raises(
        ConfigError,
        match=r"visitor_passes\[0\] → valid_until: valid_until must be after valid_from",
    ):
        EstateHarness.from_yaml(tmp_path, bad.replace("{extra}", ""))


async def test_a_retransmitted_read_is_recorded_but_never_moves_the_barrier(tmp_path):
    async with estate(tmp_path) as e:
        plate(
            e,
            "north",
            "沪M12333",
            event_id="old-1",
            retransmission=True,
            time="2026-03-02T05:00:00+08:00",
        )
        await e.settle()
        assert e.events_of("parking.decision")[0]["verdict"] == "open"
        assert len(e.events_of("parking.session_opened")) == 1  # the passage is recorded
        assert e.events_of("parking.barrier") == []  # the car passed hours ago


async def test_a_camera_reposting_after_a_hub_restart_is_still_one_event(tmp_path):
    db = tmp_path / "estatehub.db"
    async with estate(tmp_path, store_path=db) as e:
        plate(e, "north", "沪G77777", event_id="uuid-42")
        await e.settle()
    async with estate(tmp_path, store_path=db, start=DEFAULT_START + timedelta(minutes=5)) as e:
        plate(e, "north", "沪G77777", event_id="uuid-42")
        await e.settle()
        assert e.events_of("parking.decision") == []
        assert e.events_of("parking.duplicate")[0]["reason"] == "same event seen before"


async def test_an_overpayment_is_refused(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        await e.advance(timedelta(minutes=90))
        with pytest.raises(ParkingError, match="100000000 fen is more than the 1000 fen due"):
            await e.call("parking", "pay", {"plate": "沪C5N728", "amount_fen": "1000000元"})


async def test_a_zero_payment_is_refused(tmp_path):
    async with estate(tmp_path) as e:
        plate(e, "north", "沪C5N728")
        await e.settle()
        await e.advance(timedelta(minutes=90))
        with pytest.raises(ParkingError, match="more than 0 fen"):
            await e.call("parking", "pay", {"plate": "沪C5N728", "amount_fen": 0})
