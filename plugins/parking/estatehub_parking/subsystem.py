"""The parking subsystem: plate reads in, barrier decisions, sessions and fees out.

For every plate read a gate adapter reports, in this order: normalise and classify the
plate; drop duplicates and retransmissions (counted once); flag a device clock that is far
off (the hub's receive time is what counts); fire ``parking.plate_read``; look the plate up
(block list, residents, visitor passes, open session); ask the ``estatehub_parking_verdict``
policy hook; fire ``parking.decision``; then open or close a session and, if the verdict is
``open``, send the barrier command through the gate's adapter. A fee due at an exit holds
the barrier until ``parking.pay`` is called.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.hookspecs.parking import (
    BarrierCommand,
    Direction,
    GateAdapter,
    GateDecisionContext,
    ParkingError,
    ParkingSession,
    Plate,
    PlateKind,
    PlateRead,
    Tariff,
    Verdict,
)
from estatehub.incidents import Severity

from .plates import PlateRules, mask_plate, normalise_plate
from .schema import _aware_datetime
from .tariff import parking_fee

if TYPE_CHECKING:
    from estatehub.hub import Hub

_LOGGER = logging.getLogger(__name__)

OPEN_SESSIONS = "parking.sessions"
CLOSED_SESSIONS = "parking.closed"
PASSES = "parking.passes"
SEEN_EVENTS = "parking.seen_events"
BLOCKS = "parking.blocked"
SEEN_KEYS_KEPT = 4096
REMEMBER_READS = timedelta(hours=1)  # how long a counted read is remembered for retransmissions
RETENTION_CHECK = timedelta(hours=24)
PAY_ROLES = frozenset({"admin", "operator", "guard"})


class ParkingModule:
    """Runs an estate's gates."""

    def __init__(self, hub: Hub, config: Mapping[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.tariff: Tariff = config["tariff"]
        rules = config["plate_rules"]
        self.rules = PlateRules(
            small_nev_letters=frozenset(rules["small_nev_letters"]),
            large_nev_letters=frozenset(rules["large_nev_letters"]),
        )
        self.gates: dict[str, Mapping[str, Any]] = dict(config["gates"])
        self.adapters: dict[str, GateAdapter] = {}
        self.residents: dict[str, str] = {}
        for household, plates in (config.get("residents") or {}).items():
            for raw in plates:
                self.residents[self._key(raw)] = household
        self.blocked: dict[str, str] = {
            self._key(b["plate"]): b["reason"] for b in config.get("blocked") or ()
        }
        self.passes: list[dict[str, Any]] = [
            {**p, "plate": self._key(p["plate"])} for p in config.get("visitor_passes") or ()
        ]
        self.sessions: dict[str, ParkingSession] = {}
        self.recently_closed: OrderedDict[str, tuple[datetime, str]] = OrderedDict()
        self._last_counted: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._seen_keys: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0
        self.skewed = 0
        self.policy_errors = 0
        self._unregister: list[Any] = []
        self._retention_timer: Any = None

    def _key(self, raw: str) -> str:
        plate = normalise_plate(raw, None, self.rules)
        return plate.plate or raw

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, hub: Hub) -> None:
        """Load sessions, passes and blocks from the store, start gate adapters, register services."""
        for _, row in hub.store.records(OPEN_SESSIONS):
            session = _session_from_row(row)
            self.sessions[session.plate] = session
        for _, row in hub.store.records(PASSES):
            self.passes.append(
                {
                    **row,
                    "valid_from": datetime.fromisoformat(row["valid_from"]),
                    "valid_until": datetime.fromisoformat(row["valid_until"]),
                }
            )
        for key, row in hub.store.records(BLOCKS):
            self.blocked[key] = row.get("reason", "")
        for key, _ in hub.store.records(SEEN_EVENTS):
            self._seen_keys[key] = None
        for gate_id, gate in self.gates.items():
            adapter = hub.build_adapter(
                "parking", gate["adapter"], gate_id, gate.get("options") or {}, self.on_plate_read
            )
            await adapter.start(hub)
            self.adapters[gate_id] = adapter
            hub.states.set(
                f"sensor.parking_gate_{gate_id.replace('-', '_')}",
                "idle",
                {"adapter": gate["adapter"], "direction": gate["direction"]},
            )
        self._publish_occupancy()
        services = hub.services
        self._unregister += [
            services.register(
                "parking",
                "pay",
                self._pay,
                schema=PAY_SCHEMA,
                roles=PAY_ROLES,
                description="Record a payment for a plate's fee due; opens the exit barrier",
            ),
            services.register(
                "parking",
                "open_barrier",
                self._open_barrier,
                schema=OVERRIDE_SCHEMA,
                roles=frozenset({"admin", "guard", "operator"}),
                description="Guard override: open a gate's barrier, with a reason",
            ),
            services.register(
                "parking",
                "add_visitor_pass",
                self._add_pass,
                schema=PASS_SCHEMA,
                description="Register a visitor's plate for a validity window",
            ),
            services.register(
                "parking",
                "block_plate",
                self._block,
                schema=BLOCK_SCHEMA,
                description="Put a plate on the block list",
            ),
            services.register(
                "parking",
                "unblock_plate",
                self._unblock,
                schema=UNBLOCK_SCHEMA,
                description="Take a plate off the block list",
            ),
        ]
        if self.sessions:
            _LOGGER.info("parking: %d open sessions restored", len(self.sessions))
        self.enforce_retention()

    def enforce_retention(self) -> int:
        """Delete closed sessions older than ``history_retention``; runs at start and daily.

        Plates are personal data: the history of who parked when is kept only as long as
        the estate configured, then it is gone (and the purge is audited, without plates).
        """
        now = self.hub.clock.now()
        removed = self.hub.store.purge(CLOSED_SESSIONS, now - self.config["history_retention"])
        self.hub.store.purge(SEEN_EVENTS, now - timedelta(days=2))
        expired = [p for p in self.passes if p["valid_until"] < now]
        for visitor_pass in expired:
            self.passes.remove(visitor_pass)
            self.hub.store.delete(PASSES, _pass_key(visitor_pass))
        if removed:
            self.hub.store.audit(
                now,
                "parking",
                "parking.retention",
                CLOSED_SESSIONS,
                {"removed": removed, "retention_days": self.config["history_retention"].days},
            )
        self._retention_timer = self.hub.clock.call_later(RETENTION_CHECK, self._retention_due)
        return removed

    def _retention_due(self) -> None:
        self.enforce_retention()

    async def stop(self) -> None:
        """Stop the adapters and remove the services."""
        if self._retention_timer is not None:
            self._retention_timer.cancel()
        for remove in self._unregister:
            remove()
        self._unregister.clear()
        for adapter in self.adapters.values():
            await adapter.stop()
        self.adapters.clear()

    # -- the plate read pipeline -------------------------------------------------------

    def on_plate_read(self, read: PlateRead) -> None:
        """Handle one plate read from an adapter (sync, on the loop)."""
        hub = self.hub
        gate = self.gates.get(read.gate)
        if gate is None:
            hub.reject("parking", read.gate, f"plate read for unknown gate {read.gate!r}")
            return
        plate = normalise_plate(read.raw_plate, read.plate_colour, self.rules)
        at = read.received_at
        if self._is_duplicate(read, plate, at):
            return
        issues = list(plate.issues)
        skew = None
        if read.device_time is not None:
            skew = (read.device_time - read.received_at).total_seconds()
            if abs(skew) > self.config["max_clock_skew"].total_seconds():
                self.skewed += 1
                issues.append(f"device clock off by {_describe_skew(skew)}; hub receive time used")
        direction = self._direction(gate, read)
        hub.bus.fire(
            "parking.plate_read",
            {
                "gate": read.gate,
                "raw": read.raw_plate,
                "plate": plate.plate,
                "kind": plate.kind.value,
                "valid": plate.valid,
                "issues": issues,
                "changes": list(plate.changes),
                "candidate": plate.candidate,
                "direction": direction.value,
                "device_time": read.device_time.isoformat() if read.device_time else None,
                "vendor": read.vendor,
            },
        )
        context = self._context(read.gate, direction, plate, at)
        verdict, reason = self._verdict(read, plate, context)
        hub.bus.fire(
            "parking.decision",
            {
                "gate": read.gate,
                "plate": plate.plate,
                "verdict": verdict.value,
                "reason": reason,
                "direction": direction.value,
                "category": context.category,
            },
        )
        _LOGGER.info(
            "%s gate %s: %s %s → %s (%s)",
            direction.value,
            read.gate,
            mask_plate(plate.plate) if plate.plate else "(no plate)",
            context.category,
            verdict.value,
            reason,
        )
        hub.states.set(
            f"sensor.parking_gate_{read.gate.replace('-', '_')}",
            verdict.value,
            {
                "plate": mask_plate(plate.plate) if plate.plate else "",
                "reason": reason,
                "direction": direction.value,
            },
        )
        if verdict is Verdict.REVIEW:
            self._raise_review(read.gate, plate, reason, issues)
        # A retransmission is an event the camera stored while the hub was unreachable: the
        # car has long passed. It is recorded (sessions open and close) but never moves a
        # barrier, which would now open for whoever is standing there.
        actuate = not read.retransmission
        if direction is Direction.IN:
            self._entry(read.gate, plate, context, verdict, reason, at, actuate)
        else:
            self._exit(read.gate, plate, context, verdict, reason, at, actuate)

    def _is_duplicate(self, read: PlateRead, plate: Plate, at: datetime) -> bool:
        if read.event_key:
            if read.event_key in self._seen_keys:
                return self._count_duplicate(read, plate, "same event seen before")
            self._seen_keys[read.event_key] = None
            # Kept on disk too: a camera re-posting after a hub restart is still one event.
            self.hub.store.put(SEEN_EVENTS, read.event_key, {"gate": read.gate}, at)
            if len(self._seen_keys) > SEEN_KEYS_KEPT:
                forgotten, _ = self._seen_keys.popitem(last=False)
                self.hub.store.delete(SEEN_EVENTS, forgotten)
        key = (read.gate, plate.plate or read.raw_plate)
        last = self._last_counted.get(key)
        if last is not None and timedelta(0) <= at - last <= self.config["dedupe_window"]:
            return self._count_duplicate(
                read, plate, "same plate at the same gate within the dedupe window"
            )
        if read.retransmission and last is not None:
            return self._count_duplicate(read, plate, "device retransmission")
        self._last_counted[key] = at
        self._last_counted.move_to_end(key)
        self._forget_before(at)
        return False

    def _forget_before(self, at: datetime) -> None:
        # Both maps are in time order (oldest first), so pruning stops at the first entry
        # still needed: O(1) per read, and memory bounded by an hour of traffic.
        horizon = at - max(self.config["dedupe_window"], REMEMBER_READS)
        while self._last_counted:
            key, when = next(iter(self._last_counted.items()))
            if when >= horizon:
                break
            del self._last_counted[key]
        grace = at - self.config["exit_grace"]
        while self.recently_closed:
            plate, (when, _) = next(iter(self.recently_closed.items()))
            if when >= grace:
                break
            del self.recently_closed[plate]

    def _count_duplicate(self, read: PlateRead, plate: Plate, why: str) -> bool:
        self.duplicates += 1
        self.hub.bus.fire(
            "parking.duplicate", {"gate": read.gate, "plate": plate.plate, "reason": why}
        )
        return True

    def _direction(self, gate: Mapping[str, Any], read: PlateRead) -> Direction:
        if gate["direction"] == "in":
            return Direction.IN
        if gate["direction"] == "out":
            return Direction.OUT
        return read.direction or Direction.IN

    def _context(
        self, gate: str, direction: Direction, plate: Plate, at: datetime
    ) -> GateDecisionContext:
        key = plate.plate
        household = self.residents.get(key)
        category = "unknown"
        extra: dict[str, Any] = {"unknown_vehicles": self.config["unknown_vehicles"]}
        if key in self.blocked:
            category = "blocked"
            extra["blocked_reason"] = self.blocked[key]
        elif household is not None:
            category = "resident"
        else:
            for visitor_pass in self.passes:
                if (
                    visitor_pass["plate"] == key
                    and visitor_pass["valid_from"] <= at <= visitor_pass["valid_until"]
                ):
                    category = "visitor_pass"
                    household = visitor_pass["host"]
                    break
        session = self.sessions.get(key)
        fee_due = 0
        if direction is Direction.OUT and session is not None:
            fee_due = max(0, self.fee_for(session, at) - session.paid_fen)
        closed = self.recently_closed.get(key)
        if closed is not None and at - closed[0] <= self.config["exit_grace"]:
            extra["recently_paid"] = True
        return GateDecisionContext(
            gate, direction, at, category, household, session, fee_due, extra
        )

    def _verdict(
        self, read: PlateRead, plate: Plate, context: GateDecisionContext
    ) -> tuple[Verdict, str]:
        # A policy plugin that raises must not cost the vehicle its decision: fall back to
        # the estate-neutral default, say so, and count it.
        try:
            answer = self.hub.plugins.parking_verdict(read, plate, context)
        except Exception:
            self.policy_errors += 1
            _LOGGER.exception("a parking verdict policy failed; using the default policy")
            answer = None
        if answer is None:
            return default_verdict(read, plate, context)
        return answer

    def fee_for(self, session: ParkingSession, exited_at: datetime) -> int:
        """What a session costs if it ends at ``exited_at`` (through the fee policy hook).

        A fee policy that raises or answers nonsense is logged and the tariff applies.
        """
        try:
            fee = self.hub.plugins.parking_fee(session, self.tariff, exited_at)
        except Exception:
            self.policy_errors += 1
            _LOGGER.exception(
                "a parking fee policy failed for session %s; using the tariff", session.session_id
            )
            fee = None
        if not isinstance(fee, int) or isinstance(fee, bool) or fee < 0:
            if fee is not None:
                self.policy_errors += 1
                _LOGGER.error(
                    "a parking fee policy answered %r for session %s; using the tariff",
                    fee,
                    session.session_id,
                )
            fee = default_fee(session, self.tariff, exited_at)
        return fee

    # -- entry and exit ----------------------------------------------------------------

    def _entry(
        self,
        gate: str,
        plate: Plate,
        context: GateDecisionContext,
        verdict: Verdict,
        reason: str,
        at: datetime,
        actuate: bool = True,
    ) -> None:
        if verdict is not Verdict.OPEN:
            return
        if plate.plate not in self.sessions:
            self._open_session(gate, plate.plate, context.category, at, plate.kind)
        if actuate:
            self.send_barrier(gate, "open", plate.plate, reason)

    def _open_session(
        self, gate: str, plate: str, category: str, at: datetime, kind: PlateKind | None = None
    ) -> ParkingSession:
        sequence = self.hub.store.next_sequence("parking.session")
        if kind is None:  # a guard override names a plate the pipeline has not classified
            kind = normalise_plate(plate, None, self.rules).kind
        session = ParkingSession(
            session_id=f"PS-{at:%Y%m%d}-{sequence:05d}",
            plate=plate,
            kind=kind,
            entry_gate=gate,
            entered_at=at,
            category=category,
        )
        self._save(session)
        self.hub.bus.fire(
            "parking.session_opened",
            {"plate": plate, "gate": gate, "session": session.session_id, "category": category},
        )
        self._publish_occupancy()
        return session

    def _exit(
        self,
        gate: str,
        plate: Plate,
        context: GateDecisionContext,
        verdict: Verdict,
        reason: str,
        at: datetime,
        actuate: bool = True,
    ) -> None:
        session = context.open_session
        if session is not None and context.fee_due_fen > 0 and verdict is not Verdict.OPEN:
            minutes = _minutes(session.entered_at, at)
            held = replace(
                session,
                state="awaiting_payment",
                exit_gate=gate,
                exited_at=at,
                fee_fen=context.fee_due_fen + session.paid_fen,
            )
            self._save(held)
            self.hub.bus.fire(
                "parking.fee_due",
                {
                    "plate": plate.plate,
                    "gate": gate,
                    "minutes": minutes,
                    "fee_fen": context.fee_due_fen,
                    "session": session.session_id,
                },
            )
            return
        if verdict is not Verdict.OPEN:
            return
        if session is not None:
            self._close(session, gate, at)
        if actuate:
            self.send_barrier(gate, "open", plate.plate, reason)

    def _close(self, session: ParkingSession, gate: str, at: datetime) -> None:
        exited_at = session.exited_at or at
        fee = (
            session.fee_fen
            if session.state == "awaiting_payment"
            else self.fee_for(session, exited_at)
        )
        closed = replace(
            session,
            state="closed",
            exit_gate=session.exit_gate or gate,
            exited_at=exited_at,
            fee_fen=fee,
        )
        self.sessions.pop(session.plate, None)
        store = self.hub.store
        store.delete(OPEN_SESSIONS, session.session_id)
        store.put(CLOSED_SESSIONS, session.session_id, _session_row(closed), at)
        self.recently_closed[session.plate] = (at, gate)
        self.recently_closed.move_to_end(session.plate)
        minutes = _minutes(closed.entered_at, exited_at)
        self.hub.bus.fire(
            "parking.session_closed",
            {
                "plate": session.plate,
                "minutes": minutes,
                "fee_fen": fee,
                "paid_fen": closed.paid_fen,
                "gate": closed.exit_gate,
                "session": session.session_id,
            },
        )
        self._publish_occupancy()

    def _save(self, session: ParkingSession) -> None:
        self.sessions[session.plate] = session
        self.hub.store.put(
            OPEN_SESSIONS, session.session_id, _session_row(session), self.hub.clock.now()
        )

    def _publish_occupancy(self) -> None:
        self.hub.states.set(
            "sensor.parking_open_sessions",
            str(len(self.sessions)),
            {"unit_of_measurement": "vehicles"},
        )

    def _raise_review(self, gate: str, plate: Plate, reason: str, issues: list[str]) -> None:
        shown = plate.plate or plate.raw
        self.hub.incidents.raise_incident(
            "parking.review",
            Severity.WARNING,
            f"gate:{gate}",
            f"gate {gate}: {mask_plate(shown) if plate.plate else shown!r} needs a guard ({reason})",
            source="parking",
            dedupe_key=f"parking.review:{gate}:{shown}",
            data={
                "gate": gate,
                "plate": plate.plate,
                "raw": plate.raw,
                "candidate": plate.candidate,
                "issues": issues,
            },
        )

    # -- barrier -----------------------------------------------------------------------

    def send_barrier(self, gate: str, action: str, plate: str, reason: str) -> BarrierCommand:
        """Send a barrier command to a gate's adapter (never while replaying)."""
        now = self.hub.clock.now()
        sequence = self.hub.store.next_sequence("parking.command")
        command = BarrierCommand(
            gate=gate,
            action=action,
            command_id=f"{gate}-{sequence}",
            issued_at=now,
            plate=plate,
            reason=reason,
        )
        self.hub.bus.fire(
            "parking.barrier",
            {
                "gate": gate,
                "action": action,
                "command_id": command.command_id,
                "plate": plate,
                "reason": reason,
            },
        )
        adapter = self.adapters.get(gate)
        if adapter is not None and not self.hub.replaying:
            self.hub.create_task(self._deliver(adapter, command), name=f"barrier {gate}")
        return command

    async def _deliver(self, adapter: GateAdapter, command: BarrierCommand) -> None:
        try:
            await adapter.send(command)
        except Exception as err:
            _LOGGER.error(
                "barrier command %s to gate %s failed: %s", command.command_id, command.gate, err
            )
            self.hub.bus.fire(
                "parking.barrier_failed",
                {"gate": command.gate, "command_id": command.command_id, "error": str(err)},
            )
            self.hub.incidents.raise_incident(
                "parking.barrier_failed",
                Severity.CRITICAL,
                f"gate:{command.gate}",
                f"gate {command.gate} did not take command {command.action}: {err}",
                source="parking",
                dedupe_key=f"parking.barrier_failed:{command.gate}",
            )

    # -- services ----------------------------------------------------------------------

    def _pay(self, call: Any) -> dict[str, Any]:
        key = self._key(call.data["plate"])
        session = self.sessions.get(key)
        if session is None:
            raise ParkingError(f"no open parking session for {mask_plate(key)}")
        now = self.hub.clock.now()
        exited_at = session.exited_at or now
        due = self.fee_for(session, exited_at) - session.paid_fen
        if due <= 0:
            raise ParkingError(
                f"nothing is due for {mask_plate(key)} (already paid {session.paid_fen} fen)"
            )
        amount = call.data.get("amount_fen", due)
        if amount <= 0:
            raise ParkingError(f"a payment must be more than 0 fen, got {amount}")
        if amount > due > 0:
            # The hub records what was owed and paid, not cash handed over: change is given
            # at the booth, and an overpayment recorded here would be money nobody can trace.
            raise ParkingError(
                f"{amount} fen is more than the {due} fen due for {mask_plate(key)}; record the fee due"
            )
        if amount < due:
            raise ParkingError(f"{amount} fen is less than the {due} fen due for {mask_plate(key)}")
        paid = replace(session, paid_fen=session.paid_fen + amount, fee_fen=due + session.paid_fen)
        self._save(paid)
        self.hub.store.audit(
            now,
            call.user or "hub",
            "parking.pay",
            paid.session_id,
            {"amount_fen": amount, "method": call.data["method"]},
        )
        self.hub.bus.fire(
            "parking.payment",
            {
                "plate": key,
                "amount_fen": amount,
                "method": call.data["method"],
                "session": paid.session_id,
                "by": call.user,
            },
        )
        result = {"session": paid.session_id, "paid_fen": amount}
        if paid.state == "awaiting_payment" and paid.exit_gate:
            gate = paid.exit_gate
            self._close(paid, gate, now)
            self.send_barrier(gate, "open", key, "paid")
            result["opened"] = gate
        return result

    def _open_barrier(self, call: Any) -> dict[str, Any]:
        gate = call.data["gate"]
        if gate not in self.gates:
            raise ParkingError(f"no gate {gate!r} (gates: {', '.join(self.gates)})")
        now = self.hub.clock.now()
        raw_plate = call.data.get("plate", "")
        self.hub.store.audit(
            now,
            call.user or "hub",
            "parking.open_barrier",
            gate,
            {"reason": call.data["reason"], "plate": raw_plate},
        )
        result: dict[str, Any] = {}
        plate = self._key(raw_plate) if raw_plate else ""
        if plate and self.gates[gate]["direction"] != "out" and plate not in self.sessions:
            # A guard let a reviewed car in: it gets a session like any other, so it is
            # priced (and recognised) when it leaves.
            session = self._open_session(gate, plate, "guard_override", now)
            result["session"] = session.session_id
        elif plate and plate in self.sessions and self.gates[gate]["direction"] == "out":
            self._close(self.sessions[plate], gate, now)
        command = self.send_barrier(gate, "open", plate, f"guard override: {call.data['reason']}")
        result["command_id"] = command.command_id
        return result

    def _add_pass(self, call: Any) -> dict[str, Any]:
        data = dict(call.data)
        if data["valid_until"] <= data["valid_from"]:
            raise ParkingError("valid_until must be after valid_from")
        data["plate"] = self._key(data["plate"])
        self.passes.append(data)
        key = _pass_key(data)
        self.hub.store.put(
            PASSES,
            key,
            {
                **data,
                "valid_from": data["valid_from"].isoformat(),
                "valid_until": data["valid_until"].isoformat(),
            },
            self.hub.clock.now(),
        )
        self.hub.store.audit(
            self.hub.clock.now(),
            call.user or "hub",
            "parking.add_visitor_pass",
            data["plate"],
            {"host": data["host"]},
        )
        return {"plate": data["plate"]}

    def _block(self, call: Any) -> dict[str, Any]:
        key = self._key(call.data["plate"])
        self.blocked[key] = call.data["reason"]
        self.hub.store.put(BLOCKS, key, {"reason": call.data["reason"]}, self.hub.clock.now())
        self.hub.store.audit(
            self.hub.clock.now(),
            call.user or "hub",
            "parking.block_plate",
            key,
            {"reason": call.data["reason"]},
        )
        return {"plate": key}

    def _unblock(self, call: Any) -> dict[str, Any]:
        key = self._key(call.data["plate"])
        if self.blocked.pop(key, None) is None:
            raise ParkingError(f"{mask_plate(key)} is not on the block list")
        self.hub.store.delete(BLOCKS, key)
        self.hub.store.audit(
            self.hub.clock.now(), call.user or "hub", "parking.unblock_plate", key, {}
        )
        return {"plate": key}


PAY_SCHEMA = vol.Schema(
    {
        vol.Required("plate"): cv.plate_string,
        vol.Optional("amount_fen"): cv.money_fen,
        vol.Optional("method", default="cash"): vol.In(
            ["cash", "wechat", "alipay", "card", "other"]
        ),
    }
)
OVERRIDE_SCHEMA = vol.Schema(
    {
        vol.Required("gate"): str,
        vol.Required("reason"): vol.All(str, vol.Length(min=3)),
        vol.Optional("plate", default=""): str,
    }
)
PASS_SCHEMA = vol.Schema(
    {
        vol.Required("plate"): cv.plate_string,
        vol.Required("host"): str,
        vol.Required("valid_from"): _aware_datetime,
        vol.Required("valid_until"): _aware_datetime,
    }
)
BLOCK_SCHEMA = vol.Schema(
    {vol.Required("plate"): cv.plate_string, vol.Optional("reason", default=""): str}
)
UNBLOCK_SCHEMA = vol.Schema({vol.Required("plate"): cv.plate_string})


def default_fee(session: ParkingSession, tariff: Tariff, exited_at: datetime) -> int:
    """The estate-neutral fee (see ``estatehub_parking_fee``): residents free, others the tariff."""
    if session.category == "resident":
        return 0
    return parking_fee(session.entered_at, exited_at, tariff).fee_fen


def default_verdict(
    read: PlateRead, plate: Plate, context: GateDecisionContext
) -> tuple[Verdict, str]:
    """The estate-neutral gate policy (see ``estatehub_parking_verdict``)."""
    if context.category == "blocked":
        return Verdict.DENY, "blocked" + (
            f": {context.extra.get('blocked_reason')}"
            if context.extra.get("blocked_reason")
            else ""
        )
    if not plate.valid or plate.kind is PlateKind.INVALID:
        first = plate.issues[0] if plate.issues else "plate not recognised"
        return Verdict.REVIEW, first
    if context.direction is Direction.IN:
        if context.category == "resident":
            return Verdict.OPEN, "resident"
        if context.category == "visitor_pass":
            return Verdict.OPEN, "visitor pass"
        policy = context.extra.get("unknown_vehicles", "admit")
        if policy == "admit":
            return Verdict.OPEN, "visitor"
        if policy == "review":
            return Verdict.REVIEW, "unregistered vehicle"
        return Verdict.DENY, "unregistered vehicle"
    if context.open_session is None:
        if context.category == "resident":
            return Verdict.OPEN, "resident"
        if context.extra.get("recently_paid"):
            return Verdict.OPEN, "paid, leaving"
        return Verdict.REVIEW, "no entry record"
    if context.fee_due_fen > 0:
        return Verdict.DENY, f"fee due {context.fee_due_fen / 100:.2f} CNY"
    return Verdict.OPEN, "nothing due" if context.category != "resident" else "resident"


def _pass_key(visitor_pass: Mapping[str, Any]) -> str:
    return f"{visitor_pass['plate']}@{visitor_pass['valid_from'].isoformat()}"


def _minutes(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def _describe_skew(seconds: float) -> str:
    ahead = "ahead" if seconds > 0 else "behind"
    value = abs(seconds)
    if value >= 86400:
        return f"{value / 86400:.0f} days {ahead}"
    if value >= 3600:
        return f"{value / 3600:.1f} h {ahead}"
    return f"{value / 60:.0f} min {ahead}"


def _session_row(session: ParkingSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "plate": session.plate,
        "kind": session.kind.value,
        "entry_gate": session.entry_gate,
        "entered_at": session.entered_at.isoformat(),
        "category": session.category,
        "exit_gate": session.exit_gate,
        "exited_at": session.exited_at.isoformat() if session.exited_at else None,
        "fee_fen": session.fee_fen,
        "paid_fen": session.paid_fen,
        "state": session.state,
    }


def _session_from_row(row: Mapping[str, Any]) -> ParkingSession:
    return ParkingSession(
        session_id=row["session_id"],
        plate=row["plate"],
        kind=PlateKind(row["kind"]),
        entry_gate=row["entry_gate"],
        entered_at=datetime.fromisoformat(row["entered_at"]),
        category=row.get("category", "visitor"),
        exit_gate=row.get("exit_gate"),
        exited_at=datetime.fromisoformat(row["exited_at"]) if row.get("exited_at") else None,
        fee_fen=row.get("fee_fen", 0),
        paid_fen=row.get("paid_fen", 0),
        state=row.get("state", "open"),
    )
