"""Sunrise and sunset for the estate's coordinates (the NOAA solar equations).

The design calls for the ``astral`` library, but it is not installed in the hub's
environment, so this module computes the two events the ``sun`` trigger needs from the
equations of the NOAA Solar Calculator (after Meeus, *Astronomical Algorithms*). It agrees
with published tables to about a minute between the polar circles, which is as good as
the minute-rounded tables themselves. Sunrise and sunset are when the top of the sun's
disc touches a flat horizon: 90.833° from the zenith, 0.833° being refraction plus the
disc's radius.

Each solar day is computed on its own, so beyond the polar circles the first night after a
midnight sun (or the last before a polar night) can come out a day off; every Chinese
estate is far south of that (Mohe, the northernmost county, is at 53.5°N).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

SunEvent = Literal["sunrise", "sunset"]

_ZENITH_DEGREES = 90.833
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
_J2000 = 2451545.0
_REFINEMENTS = 2
# A polar night or midnight sun lasts at most about six months.
_DAYS_SEARCHED = 370


def _julian_day(moment: datetime) -> float:
    return moment.timestamp() / 86400.0 + _UNIX_EPOCH_JULIAN_DAY


def _declination_and_equation_of_time(julian_day: float) -> tuple[float, float]:
    """The sun's declination (radians) and the equation of time (minutes) at a moment."""
    t = (julian_day - _J2000) / 36525.0  # Julian centuries since J2000.0
    mean_longitude = math.radians((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360.0)
    mean_anomaly = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (
        math.sin(mean_anomaly) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * mean_anomaly) * (0.019993 - 0.000101 * t)
        + math.sin(3 * mean_anomaly) * 0.000289
    )
    true_longitude = math.degrees(mean_longitude) + centre
    omega = math.radians(125.04 - 1934.136 * t)
    apparent_longitude = math.radians(true_longitude - 0.00569 - 0.00478 * math.sin(omega))
    mean_obliquity = (
        23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    )
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_longitude))
    y = math.tan(obliquity / 2) ** 2
    equation_of_time = 4 * math.degrees(
        y * math.sin(2 * mean_longitude)
        - 2 * eccentricity * math.sin(mean_anomaly)
        + 4 * eccentricity * y * math.sin(mean_anomaly) * math.cos(2 * mean_longitude)
        - 0.5 * y * y * math.sin(4 * mean_longitude)
        - 1.25 * eccentricity * eccentricity * math.sin(2 * mean_anomaly)
    )
    return declination, equation_of_time


def _event_on_utc_day(
    utc_day: date, latitude: float, longitude: float, event: SunEvent
) -> datetime | None:
    """The event in the solar day whose noon falls on ``utc_day`` (UTC), or None (polar)."""
    midnight = datetime(utc_day.year, utc_day.month, utc_day.day, tzinfo=UTC)
    latitude_rad = math.radians(latitude)
    minutes = 720.0 - 4.0 * longitude  # first guess: solar noon, no equation of time
    for _ in range(_REFINEMENTS + 1):
        declination, equation_of_time = _declination_and_equation_of_time(
            _julian_day(midnight + timedelta(minutes=minutes))
        )
        cos_hour_angle = math.cos(math.radians(_ZENITH_DEGREES)) / (
            math.cos(latitude_rad) * math.cos(declination)
        ) - math.tan(latitude_rad) * math.tan(declination)
        if not -1.0 <= cos_hour_angle <= 1.0:
            return None  # the sun stays below (polar night) or above (midnight sun)
        hour_angle = math.degrees(math.acos(cos_hour_angle))
        noon = 720.0 - 4.0 * longitude - equation_of_time
        minutes = noon - 4.0 * hour_angle if event == "sunrise" else noon + 4.0 * hour_angle
    return midnight + timedelta(minutes=minutes)


def sun_event(
    day: date, event: SunEvent, latitude: float, longitude: float, tz: tzinfo
) -> datetime | None:
    """Sunrise or sunset on the local calendar ``day`` in ``tz``, or None if there is none.

    :param latitude: degrees north (negative south).
    :param longitude: degrees east (negative west).
    :returns: an aware datetime in ``tz``; None during a polar night or midnight sun.
    """
    # The solar day computed for a UTC date can fall on the local day before or after,
    # depending on the zone: try the neighbours and keep the one on the local day asked.
    for shift in (0, -1, 1):
        moment = _event_on_utc_day(day + timedelta(days=shift), latitude, longitude, event)
        if moment is not None:
            local = moment.astimezone(tz)
            if local.date() == day:
                return local
    return None


def next_sun_event(
    event: SunEvent,
    after: datetime,
    latitude: float,
    longitude: float,
    offset: timedelta = timedelta(0),
) -> datetime | None:
    """The first ``event`` + ``offset`` strictly after ``after`` (aware; its zone is used).

    Returns None if the sun neither rises nor sets for over a year (at a pole).
    """
    tz = after.tzinfo
    if tz is None:
        raise ValueError("next_sun_event needs an aware datetime")
    # Start a day early: a large negative offset can put yesterday's event after `after`.
    first_day = after.date() - timedelta(days=1) - timedelta(days=abs(offset.days))
    for days in range(_DAYS_SEARCHED + abs(offset.days) * 2):
        moment = sun_event(first_day + timedelta(days=days), event, latitude, longitude, tz)
        if moment is not None and moment + offset > after:
            return moment + offset
    return None
