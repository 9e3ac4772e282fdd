"""Price a parking stay under an estate's :class:`~estatehub.hookspecs.parking.Tariff`.

This is the default behind the ``parking_fee`` policy hook: a pure function of entry time,
exit time and tariff, in integer fen, with an itemised breakdown a guard can print.

How a stay is priced:

1. **Minutes** are whole elapsed minutes, seconds dropped: ``(exit - entry) // 1 min``. A stay
   of 15 min 59 s counts as 15 minutes. Dropping (not rounding) the seconds errs in the
   driver's favour and matches the minutes a gate ticket shows. Elapsed time is measured in
   absolute time (UTC), so a night across a DST change lasts as long as it really did.
2. A stay of at most ``free_minutes`` costs nothing. Otherwise, if ``free_deducted`` the
   first ``free_minutes`` are not billed; if not, the whole stay is billed.
3. The billed minutes are cut into **units** of ``unit_minutes``; every started unit counts.
   Units are laid end to end from the start of billing (entry, or entry + free minutes).
4. Each unit costs the **rate in force when it starts**: the day rate if its local start
   time is in ``[day_starts, night_starts)`` (the window may wrap midnight), else the night
   rate. Local means the time zone of ``entered_at``, and boundaries are wall-clock, so
   "night starts at 20:00" holds on DST days too.
5. With a **daily cap**, units are grouped by cap period: the local calendar date on which
   the unit starts (``calendar_day``), or the 24 h window since entry it starts in
   (``rolling_24h``, elapsed time). Within a period units are charged in order until the
   cap is reached; the unit that reaches it pays the remainder, later ones pay nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from estatehub.hookspecs.parking import ParkingError, Tariff

__all__ = ["CAP_PERIODS", "FeeBreakdown", "FeeLine", "check_tariff", "parking_fee"]

CAP_PERIODS: tuple[str, ...] = ("calendar_day", "rolling_24h")
"""The values ``Tariff.cap_period`` may take."""

_MINUTE = timedelta(minutes=1)
_ROLLING_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One receipt line: a run of consecutive units at the same (day or night) rate.

    A new line starts when the rate period changes (day ↔ night) and, when the tariff has a
    cap, when the cap period changes. ``start`` is when the first unit starts, ``end`` when
    the last one ends or the stay ends, whichever is earlier; both are in the time zone of
    the entry time. ``fen`` is what these units cost after the cap, so it is at most
    ``rate_fen * units`` and the lines of a breakdown add up to its ``fee_fen``.
    """

    start: datetime
    end: datetime
    rate_fen: int
    units: int
    fen: int


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    """The price of one stay and how it came about.

    :param minutes: whole minutes of the stay (seconds dropped).
    :param billable_minutes: minutes that were billed (0 for a free stay; minutes minus the
        free minutes when they are deducted).
    :param units: billing units charged (every started unit counts).
    :param fee_fen: the fee in fen.
    :param capped: True if the daily cap lowered the fee.
    :param lines: the itemised receipt; ``sum(line.fen) == fee_fen``.
    """

    minutes: int
    billable_minutes: int
    units: int
    fee_fen: int
    capped: bool
    lines: tuple[FeeLine, ...]


def check_tariff(t: Tariff) -> list[str]:
    """Return every problem with a tariff, one readable sentence each; empty if it is sound.

    The config layer calls this to report all mistakes at once (with file and line);
    :func:`parking_fee` calls it to refuse a tariff it cannot price.
    """
    problems: list[str] = []
    if not _is_int(t.free_minutes) or t.free_minutes < 0:
        problems.append(f"free_minutes must be a whole number ≥ 0, got {t.free_minutes!r}")
    if not isinstance(t.free_deducted, bool):
        problems.append(f"free_deducted must be true or false, got {t.free_deducted!r}")
    if not _is_int(t.unit_minutes) or t.unit_minutes <= 0:
        problems.append(f"unit_minutes must be a whole number > 0, got {t.unit_minutes!r}")
    for name in ("day_rate_fen", "night_rate_fen"):
        value = getattr(t, name)
        if not _is_int(value) or value < 0:
            problems.append(f"{name} must be a whole number of fen ≥ 0, got {value!r}")
    if t.daily_cap_fen is not None and (not _is_int(t.daily_cap_fen) or t.daily_cap_fen < 0):
        problems.append(
            f"daily_cap_fen must be empty or a whole number of fen ≥ 0, got {t.daily_cap_fen!r}"
        )
    if t.cap_period not in CAP_PERIODS:
        problems.append(f"cap_period must be one of {', '.join(CAP_PERIODS)}, got {t.cap_period!r}")
    boundaries_ok = True
    for name in ("day_starts", "night_starts"):
        value = getattr(t, name)
        if not isinstance(value, time):
            problems.append(f"{name} must be a time of day, got {value!r}")
            boundaries_ok = False
        elif value.tzinfo is not None:
            problems.append(
                f"{name} must be a local wall-clock time without a time zone, got {value}"
            )
            boundaries_ok = False
    if boundaries_ok and t.day_starts == t.night_starts:
        problems.append(
            f"day_starts and night_starts must differ (both are {t.day_starts:%H:%M}); "
            "there would be no day or no night"
        )
    return problems


def parking_fee(entered_at: datetime, exited_at: datetime, tariff: Tariff) -> FeeBreakdown:
    """Price a stay from ``entered_at`` to ``exited_at`` under ``tariff``.

    :param entered_at: entry time, timezone-aware; its zone decides day/night and calendar
        days (the hub passes estate-local times).
    :param exited_at: exit time, timezone-aware, any zone.
    :param tariff: the estate's tariff.
    :returns: the :class:`FeeBreakdown`, all money in integer fen.
    :raises ParkingError: if a time is naive, the exit is before the entry, or the tariff
        fails :func:`check_tariff`.
    """
    for name, value in (("entered_at", entered_at), ("exited_at", exited_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ParkingError(f"{name} must be timezone-aware, got {value.isoformat()}")
    # Compare and subtract in UTC: aware datetimes sharing a tzinfo object are compared and
    # subtracted by wall clock in Python, which is wrong across a DST change.
    entry = entered_at.astimezone(UTC)
    leave = exited_at.astimezone(UTC)
    if leave < entry:
        raise ParkingError(
            f"exit time {exited_at.isoformat()} is before entry time {entered_at.isoformat()}"
        )
    problems = check_tariff(tariff)
    if problems:
        raise ParkingError(f"cannot price a stay under an invalid tariff: {'; '.join(problems)}")

    minutes = (leave - entry) // _MINUTE
    if minutes <= tariff.free_minutes:
        return FeeBreakdown(minutes, 0, 0, 0, False, ())
    billing_starts = entry
    billable = minutes
    if tariff.free_deducted:
        billing_starts = entry + tariff.free_minutes * _MINUTE
        billable = minutes - tariff.free_minutes
    units = -(-billable // tariff.unit_minutes)
    unit = tariff.unit_minutes * _MINUTE

    local_zone = entered_at.tzinfo
    assert local_zone is not None  # checked above; narrows the type
    cap = tariff.daily_cap_fen
    charged_in_period: dict[object, int] = {}
    capped = False
    lines: list[FeeLine] = []
    run: _Run | None = None
    for index in range(units):
        starts = billing_starts + index * unit
        local_start = starts.astimezone(local_zone)
        is_day = _in_day(local_start.time(), tariff.day_starts, tariff.night_starts)
        rate = tariff.day_rate_fen if is_day else tariff.night_rate_fen
        period = _cap_period(tariff, entry, starts, local_start)
        fen = rate
        if cap is not None:
            already = charged_in_period.get(period, 0)
            fen = min(rate, cap - already)
            charged_in_period[period] = already + fen
            capped = capped or fen < rate
        if run is None or run.is_day != is_day or run.period != period:
            if run is not None:
                lines.append(run.line(local_zone, starts))
            run = _Run(starts, rate, is_day, period)
        run.units += 1
        run.fen += fen
    assert run is not None  # units ≥ 1 because billable ≥ 1
    lines.append(run.line(local_zone, min(billing_starts + units * unit, leave)))
    return FeeBreakdown(
        minutes=minutes,
        billable_minutes=billable,
        units=units,
        fee_fen=sum(line.fen for line in lines),
        capped=capped,
        lines=tuple(lines),
    )


@dataclass(slots=True)
class _Run:
    """A receipt line being built (internal)."""

    starts: datetime
    rate_fen: int
    is_day: bool
    period: object
    units: int = 0
    fen: int = 0

    def line(self, zone: tzinfo, ends: datetime) -> FeeLine:
        return FeeLine(
            start=self.starts.astimezone(zone),
            end=ends.astimezone(zone),
            rate_fen=self.rate_fen,
            units=self.units,
            fen=self.fen,
        )


def _is_int(value: object) -> bool:
    # bool is an int subclass, and True fen is a config mistake, not one fen.
    return isinstance(value, int) and not isinstance(value, bool)


def _in_day(at: time, day_starts: time, night_starts: time) -> bool:
    if day_starts < night_starts:
        return day_starts <= at < night_starts
    return at >= day_starts or at < night_starts  # the day window wraps midnight


def _cap_period(
    tariff: Tariff, entry: datetime, starts: datetime, local_start: datetime
) -> date | int | None:
    """The cap period a unit starting at ``starts`` falls in (None without a cap)."""
    if tariff.daily_cap_fen is None:
        return None
    if tariff.cap_period == "calendar_day":
        return local_start.date()
    return (starts - entry) // _ROLLING_WINDOW
