"""Parking: models, adapter protocol and policy hooks for vehicle gates and fees.

Everything here crosses a plugin boundary, so it is a frozen, slotted dataclass or a
``Protocol``. Vendor adapters (Hikvision, the generic MQTT JSON gate …) turn their vendor's
traffic into :class:`PlateRead` and carry out :class:`BarrierCommand`; the ``parking``
subsystem does everything in between.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Protocol

from ..exceptions import EstatehubError

if TYPE_CHECKING:
    from ..hub import Hub


class ParkingError(EstatehubError):
    """Root of all parking errors."""


class PlateKind(enum.StrEnum):
    """Plate classes of GA 36-2018 that a gate must tell apart."""

    ORDINARY = "ordinary"
    NEW_ENERGY_SMALL = "new_energy_small"
    NEW_ENERGY_LARGE = "new_energy_large"
    POLICE = "police"
    COACH = "coach"
    TRAILER = "trailer"
    CONSULATE = "consulate"
    EMBASSY = "embassy"
    HK = "hk"
    MACAU = "macau"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Plate:
    """A plate string as read, normalised and classified.

    ``raw`` is exactly what the camera sent; ``plate`` is the normalised form (empty when
    nothing usable was left); ``changes`` lists each normalisation step that altered the
    string (e.g. ``"stripped colour prefix 蓝"``); ``issues`` lists why the plate is not
    trustworthy (e.g. ``"serial contains I or O"``). ``valid`` is False whenever the plate
    must not open a barrier by itself. ``candidate`` is a suggested correction for a guard
    to confirm (never applied automatically). ``colour`` is the colour word the camera
    prefixed, if any.
    """

    raw: str
    plate: str
    kind: PlateKind
    valid: bool
    issues: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    candidate: str | None = None
    colour: str | None = None


class Direction(enum.StrEnum):
    """Which way a vehicle passes a gate."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One plate recognition reported by a gate camera, vendor-neutral.

    :param gate: the gate id from the estate config.
    :param raw_plate: the plate string exactly as the device sent it.
    :param received_at: when the hub received it (aware, hub clock).
    :param device_time: the device's own timestamp, if it sent one (may be far off).
    :param direction: the direction, if the device or gate config knows it.
    :param confidence: recognition confidence 0–100, if given.
    :param plate_colour: the colour field the device sent separately (``"blue"``…), if any.
    :param event_key: the vendor's unique id for this recognition (ISAPI ``UUID`` …), used
        with the plate and device time to count duplicates once.
    :param retransmission: the device marked this as a re-send of an earlier event.
    :param vendor: the adapter name that produced the read.
    :param pictures: names of pictures that came with the read.
    """

    gate: str
    raw_plate: str
    received_at: datetime
    device_time: datetime | None = None
    direction: Direction | None = None
    confidence: int | None = None
    plate_colour: str | None = None
    event_key: str | None = None
    retransmission: bool = False
    vendor: str = ""
    pictures: tuple[str, ...] = ()


class Verdict(enum.StrEnum):
    """What the hub decided to do with a vehicle at a gate."""

    OPEN = "open"
    DENY = "deny"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class BarrierCommand:
    """An instruction for a gate's barrier, carried out by the gate's adapter.

    ``action`` is ``"open"`` or ``"close"``; ``command_id`` is unique per command so an
    adapter (or a device) can drop a duplicate delivery.
    """

    gate: str
    action: str
    command_id: str
    issued_at: datetime
    plate: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Tariff:
    """How an estate charges for parking; all money in integer fen.

    :param free_minutes: stays of at most this many minutes are free.
    :param free_deducted: if True, the free minutes are also deducted from longer stays;
        if False they only make short stays free.
    :param unit_minutes: billing unit; every started unit is charged in full.
    :param day_rate_fen: price of one unit that starts during the day.
    :param night_rate_fen: price of one unit that starts at night.
    :param day_starts: local time the day rate begins.
    :param night_starts: local time the night rate begins.
    :param daily_cap_fen: most that one day costs (None: no cap).
    :param cap_period: ``"calendar_day"`` (cap per local calendar day) or ``"rolling_24h"``
        (cap per 24 h counted from entry).
    """

    free_minutes: int = 15
    free_deducted: bool = False
    unit_minutes: int = 60
    day_rate_fen: int = 500
    night_rate_fen: int = 300
    day_starts: time = time(8, 0)
    night_starts: time = time(20, 0)
    daily_cap_fen: int | None = None
    cap_period: str = "calendar_day"


@dataclass(frozen=True, slots=True)
class ParkingSession:
    """A vehicle's stay: opened at entry, closed at exit.

    ``fee_fen`` is what the stay cost when it was priced; ``paid_fen`` what was paid.
    ``state`` is ``"open"``, ``"awaiting_payment"`` or ``"closed"``.
    """

    session_id: str
    plate: str
    kind: PlateKind
    entry_gate: str
    entered_at: datetime
    category: str = "visitor"
    exit_gate: str | None = None
    exited_at: datetime | None = None
    fee_fen: int = 0
    paid_fen: int = 0
    state: str = "open"


@dataclass(frozen=True, slots=True)
class GateDecisionContext:
    """What the hub knows about a plate when deciding at a gate (for ``parking_verdict``).

    ``category`` is ``"resident"``, ``"visitor_pass"``, ``"blocked"`` or ``"unknown"``;
    ``open_session`` is the vehicle's open session, if any; ``fee_due_fen`` is what must be
    paid before an exit barrier opens.
    """

    gate: str
    direction: Direction
    at: datetime
    category: str
    household: str | None = None
    open_session: ParkingSession | None = None
    fee_due_fen: int = 0
    extra: Mapping[str, object] = field(default_factory=dict)


PlateReadSink = Callable[[PlateRead], None]
"""What a gate adapter calls, on the event loop, for every plate read it receives."""


class GateAdapter(Protocol):
    """A vendor's gate: turns its traffic into :class:`PlateRead` and opens its barrier.

    The adapter is built by its factory with the hub, the gate's config and a
    :data:`PlateReadSink`; it subscribes to its transport in :meth:`start`.
    """

    async def start(self, hub: Hub) -> None:
        """Subscribe to inbound traffic (MQTT topics, webhook paths)."""

    async def stop(self) -> None:
        """Unsubscribe and release whatever :meth:`start` took."""

    async def send(self, command: BarrierCommand) -> None:
        """Carry out a barrier command; raise :class:`ParkingError` if it cannot."""


# -- policy hooks ------------------------------------------------------------------------
# Imported late: ``plugins`` imports this module to add the specs.
from ..plugins import hookspec  # noqa: E402


@hookspec(firstresult=True)
def estatehub_parking_fee(
    session: ParkingSession, tariff: Tariff, exited_at: datetime
) -> int | None:
    """Price a parking stay, in integer fen.

    Called when a vehicle with an open session reaches an exit gate, and when the fee due is
    shown (``parking.fee_due``). The ``parking`` plugin ships the default, which applies the
    estate's :class:`Tariff` (free minutes, units, day/night rates, daily cap); it is a
    ``trylast`` implementation, so an integrator's plugin can override it (monthly passes,
    NEV discounts, a flat overnight fee) by returning a number. Return None to let the next
    implementation decide.

    :param session: the open session (entry time, plate, kind, category).
    :param tariff: the estate's tariff from config.
    :param exited_at: the exit time (aware, estate timezone).
    :return: the fee in fen (≥ 0), or None.

    Call mode: ``firstresult`` — stops at the first non-None result. Must be pure and fast:
    it runs on the event loop for every exit.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def estatehub_parking_verdict(
    read: PlateRead, plate: Plate, context: GateDecisionContext
) -> tuple[Verdict, str] | None:
    """Decide what a gate does with a vehicle: open, deny, or send it to guard review.

    Called once per counted plate read (duplicates are dropped before). The default
    (``trylast``, in the ``parking`` plugin): blocked → deny; invalid or doubtful plate →
    review (never open on a guessed plate); at entry, residents and visitor passes → open,
    others → open as visitors or deny, per config; at exit, open when nothing is due, else
    ``deny`` with reason ``fee due``.

    :param read: the plate read as the adapter reported it.
    :param plate: the normalised, classified plate.
    :param context: gate, direction, time, list category, open session, fee due.
    :return: ``(verdict, reason)``, or None to let the next implementation decide.

    Call mode: ``firstresult``. Pure and fast: it runs on the loop for every read.

    .. versionadded:: 0.1
    """
