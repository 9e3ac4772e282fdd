"""Sunrise and sunset from our NOAA equations agree with published tables to the minute.

Reference times (timeanddate.com, rounded to the minute) are those quoted in the test data
of the astral project and of the Elixir astro library; Beijing's is from a 2009 sunrise
calculator listing. The tables round, so we allow one minute either way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from estatehub.automation.sun import next_sun_event, sun_event

LONDON = (51.50853, -0.12574)
SYDNEY = (-33.8559799094, 151.20666584)
WELLINGTON = (-41.2865, 174.7762)
BEIJING = (39.9042, 116.4074)
SHANGHAI = (31.2304, 121.4737)
TROMSO_AREA = (69.6, 18.8)
SHANGHAI_TZ = ZoneInfo("Asia/Shanghai")


def _minutes_apart(a: datetime, b: datetime) -> float:
    return abs((a - b).total_seconds()) / 60


@pytest.mark.parametrize(
    ("day", "event", "expected"),
    [
        (date(2015, 1, 1), "sunrise", datetime(2015, 1, 1, 8, 6, tzinfo=UTC)),
        (date(2015, 1, 1), "sunset", datetime(2015, 1, 1, 16, 1, tzinfo=UTC)),
        (date(2015, 12, 1), "sunrise", datetime(2015, 12, 1, 7, 43, tzinfo=UTC)),
        (date(2015, 12, 1), "sunset", datetime(2015, 12, 1, 15, 55, tzinfo=UTC)),
        (date(2015, 12, 12), "sunrise", datetime(2015, 12, 12, 7, 56, tzinfo=UTC)),
        (date(2015, 12, 12), "sunset", datetime(2015, 12, 12, 15, 51, tzinfo=UTC)),
        (date(2015, 12, 25), "sunrise", datetime(2015, 12, 25, 8, 5, tzinfo=UTC)),
        (date(2015, 12, 25), "sunset", datetime(2015, 12, 25, 15, 55, tzinfo=UTC)),
    ],
)
def test_london_sunrise_and_sunset_match_the_published_table(day, event, expected):
    computed = sun_event(day, event, *LONDON, UTC)
    assert _minutes_apart(computed, expected) <= 1.0


@pytest.mark.parametrize(
    ("place", "zone", "day", "event", "expected_local"),
    [
        (SYDNEY, "Australia/Sydney", date(2019, 12, 4), "sunrise", (5, 37)),
        (SYDNEY, "Australia/Sydney", date(2019, 12, 4), "sunset", (19, 53)),
        (WELLINGTON, "Pacific/Auckland", date(2020, 2, 11), "sunrise", (6, 38)),
        (WELLINGTON, "Pacific/Auckland", date(2020, 2, 11), "sunset", (20, 31)),
        (BEIJING, "Asia/Shanghai", date(2009, 6, 14), "sunrise", (4, 45)),
    ],
)
def test_southern_and_chinese_cities_match_the_published_tables(
    place, zone, day, event, expected_local
):
    tz = ZoneInfo(zone)
    computed = sun_event(day, event, *place, tz)
    expected = datetime(day.year, day.month, day.day, *expected_local, tzinfo=tz)
    assert computed.tzinfo is tz
    assert computed.date() == day
    assert _minutes_apart(computed, expected) <= 1.0


def test_shanghai_local_sunrise_falls_on_the_asked_local_day_though_it_is_yesterday_in_utc():
    sunrise = sun_event(date(2026, 3, 2), "sunrise", *SHANGHAI, SHANGHAI_TZ)
    assert sunrise.date() == date(2026, 3, 2)
    assert sunrise.astimezone(UTC).date() == date(2026, 3, 1)
    assert (sunrise.hour, sunrise.minute) == (6, 20)


def test_midnight_sun_has_no_sunrise_or_sunset_and_both_return_in_late_july():
    june = date(2019, 6, 5)
    assert sun_event(june, "sunrise", *TROMSO_AREA, UTC) is None
    assert sun_event(june, "sunset", *TROMSO_AREA, UTC) is None
    after = datetime(2019, 6, 5, tzinfo=UTC)
    next_sunset = next_sun_event("sunset", after, *TROMSO_AREA)
    next_sunrise = next_sun_event("sunrise", after, *TROMSO_AREA)
    # The midnight sun ends around 25 July there; the equations place the first night
    # to within a day (see the module docstring), which matters nowhere in China.
    window = (datetime(2019, 7, 24, tzinfo=UTC), datetime(2019, 7, 28, tzinfo=UTC))
    assert window[0] < next_sunset < window[1]
    assert window[0] < next_sunrise < window[1]


def test_next_event_is_strictly_after_the_moment_and_applies_the_offset():
    sunset = sun_event(date(2026, 3, 2), "sunset", *SHANGHAI, SHANGHAI_TZ)
    offset = timedelta(minutes=-15)
    before = sunset + offset - timedelta(seconds=1)
    assert next_sun_event("sunset", before, *SHANGHAI, offset) == sunset + offset
    # Once the moment has passed, the next one is tomorrow's.
    tomorrow = sun_event(date(2026, 3, 3), "sunset", *SHANGHAI, SHANGHAI_TZ)
    assert next_sun_event("sunset", sunset + offset, *SHANGHAI, offset) == tomorrow + offset


def test_a_large_negative_offset_can_put_tomorrows_event_today():
    # Sunrise minus 8 hours is the evening before: asked at 21:00, the next one is the
    # one belonging to tomorrow's sunrise, still today.
    offset = timedelta(hours=-8)
    evening = datetime(2026, 3, 2, 21, 0, tzinfo=SHANGHAI_TZ)
    tomorrow_sunrise = sun_event(date(2026, 3, 3), "sunrise", *SHANGHAI, SHANGHAI_TZ)
    assert next_sun_event("sunrise", evening, *SHANGHAI, offset) == tomorrow_sunrise + offset
    assert (tomorrow_sunrise + offset).date() == date(2026, 3, 2)


def test_days_lengthen_towards_midsummer_in_shanghai():
    lengths = []
    for day in (date(2026, 3, 2), date(2026, 4, 2), date(2026, 5, 2), date(2026, 6, 2)):
        rise = sun_event(day, "sunrise", *SHANGHAI, SHANGHAI_TZ)
        set_ = sun_event(day, "sunset", *SHANGHAI, SHANGHAI_TZ)
        lengths.append(set_ - rise)
    assert lengths == sorted(lengths)
    assert lengths[0] > timedelta(hours=11, minutes=30)
    assert lengths[-1] < timedelta(hours=14, minutes=10)


def test_next_sun_event_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        next_sun_event("sunrise", datetime(2026, 3, 2, 8, 0), *SHANGHAI)
