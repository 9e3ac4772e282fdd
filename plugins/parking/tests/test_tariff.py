"""Parking fees in integer fen, computed by hand next to each case.

Unless a test says otherwise the tariff is the model's default: 15 free minutes (not
deducted), 60-minute units, day 500 fen per unit from 08:00, night 300 fen from 20:00, no
cap. Times are Shanghai local (UTC+8, no DST) unless the test is about Europe/Berlin.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from estatehub.hookspecs.parking import ParkingError, Tariff
from estatehub_parking.tariff import FeeBreakdown, FeeLine, check_tariff, parking_fee

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT = Tariff()


def at(day: int, hour: int, minute: int = 0, second: int = 0, *, month: int = 3) -> datetime:
    """A Shanghai local time in 2026."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


def line(start: datetime, end: datetime, rate: int, units: int, fen: int) -> FeeLine:
    return FeeLine(start=start, end=end, rate_fen=rate, units=units, fen=fen)


# --- free minutes and the 59-second edge ------------------------------------------------


def test_fourteen_minute_drop_off_is_free() -> None:
    # 14 min ≤ 15 free minutes → 0
    assert parking_fee(at(2, 10), at(2, 10, 14), DEFAULT) == FeeBreakdown(14, 0, 0, 0, False, ())


def test_seconds_are_dropped_so_fifteen_minutes_59_seconds_is_still_free() -> None:
    # 15 min 59 s → floor → 15 min ≤ 15 → 0
    assert parking_fee(at(2, 10), at(2, 10, 15, 59), DEFAULT).fee_fen == 0
    # 16 min 0 s → 16 min > 15 → 1 unit at day rate = 500
    assert parking_fee(at(2, 10), at(2, 10, 16, 0), DEFAULT).fee_fen == 500


def test_a_59_second_stay_is_zero_minutes() -> None:
    result = parking_fee(at(2, 10), at(2, 10, 0, 59), replace(DEFAULT, free_minutes=0))
    # 59 s → 0 whole minutes → 0 ≤ 0 free minutes → nothing to bill
    assert (result.minutes, result.units, result.fee_fen) == (0, 0, 0)
    # 60 s → 1 minute > 0 → 1 started unit → 500
    assert parking_fee(at(2, 10), at(2, 10, 1), replace(DEFAULT, free_minutes=0)).fee_fen == 500


def test_sixteen_minutes_without_deduction_bills_the_whole_stay() -> None:
    # 16 > 15, nothing deducted: billable 16 min → ceil(16/60) = 1 unit from 10:00 (day) = 500
    assert parking_fee(at(2, 10), at(2, 10, 16), DEFAULT) == FeeBreakdown(
        minutes=16,
        billable_minutes=16,
        units=1,
        fee_fen=500,
        capped=False,
        lines=(line(at(2, 10), at(2, 10, 16), 500, 1, 500),),
    )


def test_sixteen_minutes_with_deduction_bills_one_minute_from_10_15() -> None:
    # deducted: billable 16 − 15 = 1 min → 1 unit starting 10:15 (day) = 500
    tariff = replace(DEFAULT, free_deducted=True)
    assert parking_fee(at(2, 10), at(2, 10, 16), tariff) == FeeBreakdown(
        minutes=16,
        billable_minutes=1,
        units=1,
        fee_fen=500,
        capped=False,
        lines=(line(at(2, 10, 15), at(2, 10, 16), 500, 1, 500),),
    )


def test_deducting_free_minutes_saves_a_unit_on_a_75_minute_stay() -> None:
    # not deducted: 75 min → ceil(75/60) = 2 units × 500 = 1000
    assert parking_fee(at(2, 10), at(2, 11, 15), DEFAULT).fee_fen == 1000
    # deducted: 75 − 15 = 60 min → 1 unit × 500 = 500
    assert (
        parking_fee(at(2, 10), at(2, 11, 15), replace(DEFAULT, free_deducted=True)).fee_fen == 500
    )


# --- day and night ----------------------------------------------------------------------


def test_evening_stay_crossing_20_00_pays_each_unit_at_its_starting_rate() -> None:
    # 18:30 → 21:10 = 160 min → ceil(160/60) = 3 units starting 18:30, 19:30, 20:30
    # 18:30 day 500 + 19:30 day 500 (runs past 20:00 but started by day) + 20:30 night 300 = 1300
    assert parking_fee(at(2, 18, 30), at(2, 21, 10), DEFAULT) == FeeBreakdown(
        minutes=160,
        billable_minutes=160,
        units=3,
        fee_fen=1300,
        capped=False,
        lines=(
            line(at(2, 18, 30), at(2, 20, 30), 500, 2, 1000),
            line(at(2, 20, 30), at(2, 21, 10), 300, 1, 300),
        ),
    )


def test_overnight_stay_crossing_midnight_is_one_night_stretch() -> None:
    # 22:00 → 07:30 next day = 570 min → ceil(570/60) = 10 units, 22:00 … 07:00, all before
    # 08:00 so all night: 10 × 300 = 3000
    assert parking_fee(at(2, 22), at(3, 7, 30), DEFAULT) == FeeBreakdown(
        minutes=570,
        billable_minutes=570,
        units=10,
        fee_fen=3000,
        capped=False,
        lines=(line(at(2, 22), at(3, 7, 30), 300, 10, 3000),),
    )


def test_overnight_stay_with_calendar_cap_caps_only_the_second_day() -> None:
    # cap 2000 per calendar day.
    # 2 Mar: 22:00, 23:00 → 2 × 300 = 600 (under the cap)
    # 3 Mar: 00:00 … 07:00 → 8 × 300 = 2400 → capped at 2000
    # total 600 + 2000 = 2600
    tariff = replace(DEFAULT, daily_cap_fen=2000)
    assert parking_fee(at(2, 22), at(3, 7, 30), tariff) == FeeBreakdown(
        minutes=570,
        billable_minutes=570,
        units=10,
        fee_fen=2600,
        capped=True,
        lines=(
            line(at(2, 22), at(3, 0), 300, 2, 600),
            line(at(3, 0), at(3, 7, 30), 300, 8, 2000),
        ),
    )


def test_day_window_may_wrap_midnight() -> None:
    # an odd but legal tariff: "day" 22:00–06:00 at 100, the rest at 900, 60-min units.
    tariff = replace(
        DEFAULT, day_starts=time(22), night_starts=time(6), day_rate_fen=100, night_rate_fen=900
    )
    # 05:00 → 07:00 = 120 min → units at 05:00 (inside 22–06: 100) and 06:00 (outside: 900)
    assert parking_fee(at(2, 5), at(2, 7), tariff).fee_fen == 1000


# --- the 30-hour stay: calendar-day cap vs rolling 24 h cap -----------------------------

_THIRTY_HOURS = (at(2, 12), at(3, 18))  # Mon 2 Mar 12:00 → Tue 3 Mar 18:00, 30 units of 60 min
_CAP_60_CNY = 6000


def test_thirty_hour_stay_under_a_calendar_day_cap() -> None:
    # 2 Mar: 12:00–19:00 8 day × 500 = 4000, 20:00–23:00 4 night × 300 = 1200 → 5200 < 6000
    # 3 Mar: 00:00–07:00 8 night × 300 = 2400, 08:00–17:00 10 day × 500 = 5000 → 7400 → 6000
    #        (the day line pays the 6000 − 2400 = 3600 left under the cap)
    # total 5200 + 6000 = 11200
    tariff = replace(DEFAULT, daily_cap_fen=_CAP_60_CNY, cap_period="calendar_day")
    assert parking_fee(*_THIRTY_HOURS, tariff) == FeeBreakdown(
        minutes=1800,
        billable_minutes=1800,
        units=30,
        fee_fen=11200,
        capped=True,
        lines=(
            line(at(2, 12), at(2, 20), 500, 8, 4000),
            line(at(2, 20), at(3, 0), 300, 4, 1200),
            line(at(3, 0), at(3, 8), 300, 8, 2400),
            line(at(3, 8), at(3, 18), 500, 10, 3600),
        ),
    )


def test_thirty_hour_stay_under_a_rolling_24h_cap_costs_less() -> None:
    # window 1, 2 Mar 12:00 → 3 Mar 12:00: 8 day (4000) + 12 night (3600) + 4 day (2000)
    #   = 9600 → capped at 6000: 4000 + 2000 of the night line, the 4 morning units free
    # window 2, 3 Mar 12:00 → 18:00: 6 day × 500 = 3000 < 6000
    # total 6000 + 3000 = 9000. Why less than 11200: the calendar cap lets each of two
    # calendar days charge almost a full cap (5200 and 6000), while the rolling cap puts 24
    # of the 30 hours in one window and leaves only 6 hours to charge in the second.
    tariff = replace(DEFAULT, daily_cap_fen=_CAP_60_CNY, cap_period="rolling_24h")
    assert parking_fee(*_THIRTY_HOURS, tariff) == FeeBreakdown(
        minutes=1800,
        billable_minutes=1800,
        units=30,
        fee_fen=9000,
        capped=True,
        lines=(
            line(at(2, 12), at(2, 20), 500, 8, 4000),
            line(at(2, 20), at(3, 8), 300, 12, 2000),
            line(at(3, 8), at(3, 12), 500, 4, 0),
            line(at(3, 12), at(3, 18), 500, 6, 3000),
        ),
    )


def test_thirty_hour_stay_without_cap() -> None:
    # 30 units by starting hour: day 12–19 (8), night 20–07 (12), day 08–17 (10)
    # → 18 day × 500 + 12 night × 300 = 9000 + 3600 = 12600
    result = parking_fee(*_THIRTY_HOURS, DEFAULT)
    assert (result.fee_fen, result.capped, len(result.lines)) == (12600, False, 3)


def test_cap_of_zero_makes_parking_free_but_reports_it_capped() -> None:
    # cap 0: every unit is charged min(rate, 0 − 0) = 0
    result = parking_fee(at(2, 10), at(2, 12), replace(DEFAULT, daily_cap_fen=0))
    assert (result.units, result.fee_fen, result.capped) == (2, 0, True)


# --- unit length and zero rates ---------------------------------------------------------


def test_fifteen_minute_units_are_cheaper_than_started_hours_for_80_minutes() -> None:
    # 60-min units at 500: ceil(80/60) = 2 → 1000
    assert parking_fee(at(2, 10), at(2, 11, 20), DEFAULT).fee_fen == 1000
    # 15-min units at 125 (same hourly price): ceil(80/15) = 6 → 6 × 125 = 750
    quarter = replace(DEFAULT, unit_minutes=15, day_rate_fen=125, night_rate_fen=75)
    assert parking_fee(at(2, 10), at(2, 11, 20), quarter) == FeeBreakdown(
        minutes=80,
        billable_minutes=80,
        units=6,
        fee_fen=750,
        capped=False,
        lines=(line(at(2, 10), at(2, 11, 20), 125, 6, 750),),
    )


def test_fifteen_minute_units_switch_rate_at_20_00() -> None:
    # 19:40 → 20:20 = 40 min → ceil(40/15) = 3 units at 19:40 (day 125), 19:55 (day 125),
    # 20:10 (night 75) → 325
    quarter = replace(DEFAULT, free_minutes=0, unit_minutes=15, day_rate_fen=125, night_rate_fen=75)
    assert parking_fee(at(2, 19, 40), at(2, 20, 20), quarter).lines == (
        line(at(2, 19, 40), at(2, 20, 10), 125, 2, 250),
        line(at(2, 20, 10), at(2, 20, 20), 75, 1, 75),
    )


def test_zero_rates_charge_nothing_but_still_count_units() -> None:
    # 10:00 → 13:00 = 180 min → 3 units × 0 = 0
    free = replace(DEFAULT, day_rate_fen=0, night_rate_fen=0)
    result = parking_fee(at(2, 10), at(2, 13), free)
    assert (result.units, result.fee_fen, result.capped) == (3, 0, False)
    assert result.lines == (line(at(2, 10), at(2, 13), 0, 3, 0),)


# --- time zones -------------------------------------------------------------------------


def test_berlin_spring_forward_night_is_one_hour_shorter() -> None:
    # 28 Mar 19:00 CET (18:00 UTC) → 29 Mar 09:00 CEST (07:00 UTC) = 13 h elapsed, not 14.
    # units start (local) 19:00 day; 20:00, 21, 22, 23, 00, 01, [02:00 does not exist] 03,
    # 04, 05, 06, 07 → 11 night; 08:00 CEST day.
    # 500 + 11 × 300 + 500 = 4300
    entered = datetime(2026, 3, 28, 19, tzinfo=BERLIN)
    exited = datetime(2026, 3, 29, 9, tzinfo=BERLIN)
    result = parking_fee(entered, exited, DEFAULT)
    assert (result.minutes, result.units, result.fee_fen) == (780, 13, 4300)
    assert [(ln.start.hour, ln.rate_fen, ln.units) for ln in result.lines] == [
        (19, 500, 1),
        (20, 300, 11),
        (8, 500, 1),
    ]


def test_berlin_spring_forward_with_calendar_cap_groups_by_local_date() -> None:
    # cap 2000 per calendar day.
    # 28 Mar: 19:00 day 500 + 20:00–23:00 4 × 300 = 1700 (under the cap)
    # 29 Mar: 00, 01, 03, 04, 05, 06, 07 → 7 × 300 = 2100 → 2000; 08:00 day unit → 0
    # total 1700 + 2000 = 3700
    entered = datetime(2026, 3, 28, 19, tzinfo=BERLIN)
    exited = datetime(2026, 3, 29, 9, tzinfo=BERLIN)
    result = parking_fee(entered, exited, replace(DEFAULT, daily_cap_fen=2000))
    assert (result.fee_fen, result.capped) == (3700, True)
    assert [(ln.units, ln.fen) for ln in result.lines] == [(1, 500), (4, 1200), (7, 2000), (1, 0)]


def test_berlin_fall_back_night_is_one_hour_longer() -> None:
    # 24 Oct 22:00 CEST (20:00 UTC) → 25 Oct 08:30 CET (07:30 UTC) = 11 h 30 min = 690 min
    # → 12 units: 22, 23, 00, 01, 02 CEST, 02 CET, 03, 04, 05, 06, 07 → 11 night, 08:00 day
    # 11 × 300 + 500 = 3800
    entered = datetime(2026, 10, 24, 22, tzinfo=BERLIN)
    exited = datetime(2026, 10, 25, 8, 30, tzinfo=BERLIN)
    result = parking_fee(entered, exited, DEFAULT)
    assert (result.minutes, result.units, result.fee_fen) == (690, 12, 3800)


def test_isapi_offset_times_and_utc_exit_price_like_local_times() -> None:
    # the same 160-minute evening stay as above, entry with a fixed +08:00 offset (as ISAPI
    # sends it), exit in UTC: 13:10 UTC = 21:10 +08:00 → 1300, lines in +08:00
    plus8 = timezone(timedelta(hours=8))
    entered = datetime(2026, 3, 2, 18, 30, tzinfo=plus8)
    exited = datetime(2026, 3, 2, 13, 10, tzinfo=UTC)
    result = parking_fee(entered, exited, DEFAULT)
    assert result.fee_fen == 1300
    assert result.lines[-1].end == datetime(2026, 3, 2, 21, 10, tzinfo=plus8)
    assert result.lines[-1].end.utcoffset() == timedelta(hours=8)


# --- errors -----------------------------------------------------------------------------


def test_exit_before_entry_is_refused_with_both_times() -> None:
    with pytest.raises(ParkingError) as caught:
        parking_fee(at(2, 10), at(2, 9, 59), DEFAULT)
    assert str(caught.value) == (
        "exit time 2026-03-02T09:59:00+08:00 is before entry time 2026-03-02T10:00:00+08:00"
    )


def test_naive_time_is_refused() -> None:
    with pytest.raises(ParkingError) as caught:
        parking_fee(datetime(2026, 3, 2, 10), at(2, 11), DEFAULT)
    assert str(caught.value) == "entered_at must be timezone-aware, got 2026-03-02T10:00:00"


def test_pricing_under_a_broken_tariff_is_refused_with_the_problem() -> None:
    with pytest.raises(ParkingError) as caught:
        parking_fee(at(2, 10), at(2, 11), replace(DEFAULT, unit_minutes=0))
    assert str(caught.value) == (
        "cannot price a stay under an invalid tariff: "
        "unit_minutes must be a whole number > 0, got 0"
    )


# --- check_tariff -----------------------------------------------------------------------


def test_default_tariff_is_sound() -> None:
    assert check_tariff(DEFAULT) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"unit_minutes": 0}, "unit_minutes must be a whole number > 0, got 0"),
        ({"unit_minutes": 30.0}, "unit_minutes must be a whole number > 0, got 30.0"),
        ({"free_minutes": -5}, "free_minutes must be a whole number ≥ 0, got -5"),
        ({"free_deducted": "yes"}, "free_deducted must be true or false, got 'yes'"),
        ({"day_rate_fen": -1}, "day_rate_fen must be a whole number of fen ≥ 0, got -1"),
        ({"night_rate_fen": 2.5}, "night_rate_fen must be a whole number of fen ≥ 0, got 2.5"),
        ({"day_rate_fen": True}, "day_rate_fen must be a whole number of fen ≥ 0, got True"),
        (
            {"daily_cap_fen": -100},
            "daily_cap_fen must be empty or a whole number of fen ≥ 0, got -100",
        ),
        (
            {"cap_period": "weekly"},
            "cap_period must be one of calendar_day, rolling_24h, got 'weekly'",
        ),
        (
            {"night_starts": time(8)},
            "day_starts and night_starts must differ (both are 08:00); "
            "there would be no day or no night",
        ),
        ({"day_starts": "08:00"}, "day_starts must be a time of day, got '08:00'"),
        (
            {"night_starts": time(20, tzinfo=UTC)},
            "night_starts must be a local wall-clock time without a time zone, got 20:00:00+00:00",
        ),
    ],
)
def test_check_tariff_names_each_problem(changes: dict[str, object], problem: str) -> None:
    assert check_tariff(replace(DEFAULT, **changes)) == [problem]


def test_check_tariff_reports_all_problems_at_once() -> None:
    broken = replace(DEFAULT, unit_minutes=-1, day_rate_fen=-1, cap_period="")
    assert check_tariff(broken) == [
        "unit_minutes must be a whole number > 0, got -1",
        "day_rate_fen must be a whole number of fen ≥ 0, got -1",
        "cap_period must be one of calendar_day, rolling_24h, got ''",
    ]


# --- properties -------------------------------------------------------------------------

_whole_minutes = st.integers(min_value=0, max_value=24 * 60 - 1).map(
    lambda m: time(m // 60, m % 60)
)


@st.composite
def tariffs(draw: st.DrawFn, *, capped: bool | None = None) -> Tariff:
    day_starts = draw(_whole_minutes)
    night_starts = draw(_whole_minutes.filter(lambda t: t != day_starts))
    if capped is None:
        cap = draw(st.one_of(st.none(), st.integers(0, 20_000)))
    elif capped:
        cap = draw(st.integers(0, 20_000))
    else:
        cap = None
    return Tariff(
        free_minutes=draw(st.integers(0, 60)),
        free_deducted=draw(st.booleans()),
        unit_minutes=draw(st.sampled_from([1, 5, 15, 30, 60, 120, 1440])),
        day_rate_fen=draw(st.integers(0, 2000)),
        night_rate_fen=draw(st.integers(0, 2000)),
        day_starts=day_starts,
        night_starts=night_starts,
        daily_cap_fen=cap,
        cap_period=draw(st.sampled_from(["calendar_day", "rolling_24h"])),
    )


entries = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([SHANGHAI, BERLIN, UTC]),
    allow_imaginary=False,
)
stays = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))


@given(entries, stays, stays, tariffs())
def test_fee_never_falls_when_the_car_stays_longer(
    entered: datetime, stay: timedelta, longer_by: timedelta, tariff: Tariff
) -> None:
    exit_utc = entered.astimezone(UTC) + stay
    shorter = parking_fee(entered, exit_utc, tariff)
    longer = parking_fee(entered, exit_utc + longer_by, tariff)
    assert 0 <= shorter.fee_fen <= longer.fee_fen


@given(entries, stays, tariffs(capped=True))
def test_fee_is_at_most_the_cap_times_the_periods_touched(
    entered: datetime, stay: timedelta, tariff: Tariff
) -> None:
    exited = (entered.astimezone(UTC) + stay).astimezone(entered.tzinfo)
    assert tariff.daily_cap_fen is not None
    if tariff.cap_period == "calendar_day":
        periods = (exited.date() - entered.date()).days + 1
    else:
        periods = stay // timedelta(hours=24) + 1
    assert parking_fee(entered, exited, tariff).fee_fen <= tariff.daily_cap_fen * periods


@given(entries, stays, tariffs())
def test_receipt_lines_add_up_and_cover_the_billed_time(
    entered: datetime, stay: timedelta, tariff: Tariff
) -> None:
    exited = entered.astimezone(UTC) + stay
    result = parking_fee(entered, exited, tariff)
    assert result.fee_fen >= 0
    assert sum(ln.fen for ln in result.lines) == result.fee_fen
    assert sum(ln.units for ln in result.lines) == result.units
    assert all(0 <= ln.fen <= ln.rate_fen * ln.units for ln in result.lines)
    assert all(a.end == b.start for a, b in zip(result.lines, result.lines[1:], strict=False))
    if result.lines:
        # the last line ends with the stay, or with its last unit when the seconds dropped
        # from the stay leave that unit ending a few seconds before the exit
        assert exited - timedelta(minutes=1) < result.lines[-1].end <= exited
    if tariff.daily_cap_fen is None:
        assert not result.capped
        assert all(ln.fen == ln.rate_fen * ln.units for ln in result.lines)


@given(entries, stays, tariffs(capped=False))
def test_without_a_cap_the_fee_lies_between_cheapest_and_dearest_rate(
    entered: datetime, stay: timedelta, tariff: Tariff
) -> None:
    result = parking_fee(entered, entered.astimezone(UTC) + stay, tariff)
    low, high = sorted((tariff.day_rate_fen, tariff.night_rate_fen))
    assert low * result.units <= result.fee_fen <= high * result.units


@given(entries, st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3)))
def test_exit_before_entry_always_raises(entered: datetime, gap: timedelta) -> None:
    with pytest.raises(ParkingError):
        parking_fee(entered, entered.astimezone(UTC) - gap, DEFAULT)
