"""The shared config validators, fed what property managers actually type into estate.yaml.

Each validator either converts the value or raises ``voluptuous.Invalid`` with the exact
message the loader will show after ``estate.yaml, line N: path:``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.config import YamlSecret


def invalid_message(validator, value) -> str:
    with pytest.raises(vol.Invalid) as caught:
        validator(value)
    return str(caught.value.error_message)


def a_secret(name: str, value: str) -> YamlSecret:
    secret = YamlSecret(value)
    secret.__estatehub_secret__ = name
    return secret


# --------------------------------------------------------------------------- describe_value


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ("abc", "'abc'"),
        ("", "an empty string"),
        (None, "an empty value"),
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (5.5, "5.5"),
        ({"a": 1}, "a mapping"),
        ([1, 2], "a list"),
        (dt.date(2026, 3, 1), "the date 2026-03-01"),
        ("x" * 80, "'" + "x" * 40 + "…'"),
        ("x" * 40, "'" + "x" * 40 + "'"),
        ("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1", "'root:x:0:0:root:/root:/bin/bash…'"),
        (10**50, "a number of about 51 digits"),
        (dt.datetime(2026, 3, 2, 8, 0), "the datetime 2026-03-02T08:00:00"),
    ],
)
def test_values_are_described_the_way_they_were_written(value, described):
    assert cv.describe_value(value) == described


def test_a_secret_is_described_by_its_name_only():
    assert cv.describe_value(a_secret("mqtt_password", "hunter2hunter2")) == (
        "a secret (!secret mqtt_password)"
    )


# --------------------------------------------------------------------------- duration


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("30s", dt.timedelta(seconds=30)),
        ("5m", dt.timedelta(minutes=5)),
        ("1h30m", dt.timedelta(hours=1, minutes=30)),
        ("1h 30m", dt.timedelta(hours=1, minutes=30)),
        ("2d", dt.timedelta(days=2)),
        ("500ms", dt.timedelta(milliseconds=500)),
        ("1m30s", dt.timedelta(seconds=90)),
        ("90", dt.timedelta(seconds=90)),
        (90, dt.timedelta(seconds=90)),
        (1.5, dt.timedelta(seconds=1.5)),
        ("00:05:00", dt.timedelta(minutes=5)),
        ("1:30:00", dt.timedelta(hours=1, minutes=30)),
        ("0s", dt.timedelta(0)),
        (dt.timedelta(minutes=15), dt.timedelta(minutes=15)),
    ],
)
def test_durations_are_read_in_every_written_form(written, expected):
    assert cv.duration(written) == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "soon",
            "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, got 'soon'",
        ),
        (
            "30m1h",
            "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, got '30m1h'",
        ),
        ("-5m", "a duration cannot be negative, got '-5m'"),
        (-5, "a duration cannot be negative, got -5"),
        (
            True,
            "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, got true",
        ),
        (float("inf"), "not a usable duration, got inf"),
        (
            "",
            "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, "
            "got an empty string",
        ),
    ],
)
def test_unreadable_or_negative_durations_are_rejected(written, message):
    assert invalid_message(cv.duration, written) == message


# --------------------------------------------------------------------------- time of day


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("07:00", dt.time(7, 0)),
        ("7:30", dt.time(7, 30)),
        ("23:59:59", dt.time(23, 59, 59)),
        ("00:00", dt.time(0, 0)),
        (dt.time(20, 0), dt.time(20, 0)),
    ],
)
def test_times_of_day_are_read(written, expected):
    assert cv.time_of_day(written) == expected


@pytest.mark.parametrize("written", ["24:00", "7:60", "7", "seven", 450, "07:00:60"])
def test_impossible_times_of_day_are_rejected(written):
    assert invalid_message(cv.time_of_day, written) == (
        f"expected a time of day such as 07:00 or 23:59:59, got {cv.describe_value(written)}"
    )


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("written", "fen"),
    [
        (500, 500),
        (0, 0),
        ("5元", 500),
        ("5.50 CNY", 550),
        ("5.50 cny", 550),
        ("¥5.5", 550),
        ("￥5.5", 550),
        ("30 RMB", 3000),
        ("0.01元", 1),
        ("50分", 50),
        ("1234567.89元", 123456789),
    ],
)
def test_money_is_read_exactly_into_fen(written, fen):
    assert cv.money_fen(written) == fen


def test_fractions_of_a_fen_are_rejected():
    assert invalid_message(cv.money_fen, "5.505元") == (
        "'5.505元' is not a whole number of fen (1 分 = 0.01 元)"
    )
    # 30 nines after the point: enough digits to round to 550 fen in Decimal's default precision
    assert invalid_message(cv.money_fen, "5.4" + "9" * 30 + "元") == (
        "'5.4999999999999999999999999999999元' is not a whole number of fen (1 分 = 0.01 元)"
    )
    assert invalid_message(cv.money_fen, a_secret("fee", "5.505元")) == (
        "the value of !secret fee is not a whole number of fen (1 分 = 0.01 元)"
    )


def test_money_stops_at_ten_million_yuan():
    assert cv.money_fen("10000000元") == cv.MAX_MONEY_FEN == 1_000_000_000
    assert cv.money_fen(1_000_000_000) == 1_000_000_000
    assert invalid_message(cv.money_fen, "999999999999999999999999999999元") == (
        "an amount of money can be at most 10000000元 (1000000000 fen), "
        "got '999999999999999999999999999999元'"
    )
    assert invalid_message(cv.money_fen, 1_000_000_001) == (
        "an amount of money can be at most 10000000元 (1000000000 fen), got 1000000001"
    )
    assert invalid_message(cv.money_fen, "1" * 41 + "元") == (
        "expected an amount of money: whole fen as a number (550) or yuan with a unit "
        "('5.50元', '5.50 CNY', '¥5.50'), got '1111111111111111111111111111111111111111…'"
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("-5元", "an amount of money must be 0 or more, got '-5元'"),
        (-1, "an amount of money must be 0 or more, got -1"),
        (
            5.5,
            "expected an amount of money: whole fen as a number (550) or yuan with a unit "
            "('5.50元', '5.50 CNY', '¥5.50'), got 5.5",
        ),
        (
            "500",
            "expected an amount of money: whole fen as a number (550) or yuan with a unit "
            "('5.50元', '5.50 CNY', '¥5.50'), got '500'",
        ),
        (
            "五元",
            "expected an amount of money: whole fen as a number (550) or yuan with a unit "
            "('5.50元', '5.50 CNY', '¥5.50'), got '五元'",
        ),
        (
            True,
            "expected an amount of money: whole fen as a number (550) or yuan with a unit "
            "('5.50元', '5.50 CNY', '¥5.50'), got true",
        ),
    ],
)
def test_ambiguous_or_negative_money_is_rejected(written, message):
    assert invalid_message(cv.money_fen, written) == message


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("written", ["b3", "gate-north", "1202", "b3-1-1202"])
def test_slugs_are_accepted(written):
    assert cv.slug(written) == written


@pytest.mark.parametrize("written", ["B3", "gate_north", "-b3", "b3-", "b3--1", "", "3号楼", 3])
def test_non_slugs_are_rejected(written):
    assert invalid_message(cv.slug, written) == (
        "expected a slug (lower-case letters a-z, digits 0-9 and '-' between them), "
        f"got {cv.describe_value(written)}"
    )


@pytest.mark.parametrize("written", ["binary_sensor.b3_1202_smoke", "light.street_7"])
def test_entity_ids_are_accepted(written):
    assert cv.entity_id(written) == written


@pytest.mark.parametrize(
    "written", ["Light.street", "light", "light.street-7", "light.street.7", ".x", 7]
)
def test_malformed_entity_ids_are_rejected(written):
    assert invalid_message(cv.entity_id, written) == (
        "expected an entity id such as 'binary_sensor.b3_1202_smoke' (domain.object_id in "
        f"lower-case letters, digits and '_'), got {cv.describe_value(written)}"
    )


# --------------------------------------------------------------------------- plates


def test_plate_strings_lose_their_spaces():
    assert cv.plate_string(" 沪A 12345 ") == "沪A12345"
    assert cv.plate_string("沪A\u300012345") == "沪A12345"  # a full-width space from an IME


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("   ", "a plate number cannot be empty"),
        ("沪A123456789012", "a plate number has at most 12 characters, this one has 14"),
        (12345, "expected a plate number as text, got a number"),
        (None, "expected a plate number as text, got an empty value"),
    ],
)
def test_bad_plate_strings_are_rejected_without_repeating_the_plate(written, message):
    assert invalid_message(cv.plate_string, written) == message


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("written", "expected"), [(35, 35.0), (0, 0.0), (100, 100.0), (12.5, 12.5), ("35%", 35.0)]
)
def test_percentages_are_read(written, expected):
    assert cv.percentage(written) == expected


@pytest.mark.parametrize("written", [101, -1, "120%", "lots", True])
def test_percentages_outside_0_to_100_are_rejected(written):
    assert invalid_message(cv.percentage, written) == (
        f"expected a percentage between 0 and 100, got {cv.describe_value(written)}"
    )


@pytest.mark.parametrize(("written", "expected"), [(1883, 1883), ("8883", 8883), (1, 1)])
def test_ports_are_read(written, expected):
    assert cv.port(written) == expected


@pytest.mark.parametrize("written", [0, 65536, "http", True, 80.5])
def test_impossible_ports_are_rejected(written):
    assert invalid_message(cv.port, written) == (
        f"expected a port number between 1 and 65535, got {cv.describe_value(written)}"
    )


@pytest.mark.parametrize(
    "written",
    ["127.0.0.1", "0.0.0.0", "::", "fd00::10", "broker.local", "mqtt_broker", "localhost"],
)
def test_host_names_and_addresses_are_accepted(written):
    assert cv.host(f" {written} ") == written


HOST_HELP = (
    "expected a host name or IP address without scheme, port or path, such as "
    "192.168.10.5, broker.local or fd00::10"
)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "mqtt://127.0.0.1:1883",
            f"{HOST_HELP}, got 'mqtt://127.0.0.1:1883'; write host: 127.0.0.1 and port: 1883",
        ),
        (
            "127.0.0.1:1883",
            f"{HOST_HELP}, got '127.0.0.1:1883'; write host: 127.0.0.1 and port: 1883",
        ),
        (
            "[fd00::10]:8883",
            f"{HOST_HELP}, got '[fd00::10]:8883'; write host: fd00::10 and port: 8883",
        ),
        ("broker.local/mqtt", f"{HOST_HELP}, got 'broker.local/mqtt'; write host: broker.local"),
        ("tcp://broker:port", f"{HOST_HELP}, got 'tcp://broker:port'"),
        ("256.1.1.1", f"{HOST_HELP}, got '256.1.1.1'"),
        ("broker .local", f"{HOST_HELP}, got 'broker .local'"),
        (
            "",
            "expected a host name or IP address such as 192.168.10.5, broker.local or fd00::10, got an empty string",
        ),
        (
            1883,
            "expected a host name or IP address such as 192.168.10.5, broker.local or fd00::10, got 1883",
        ),
    ],
)
def test_hosts_with_a_scheme_port_or_path_are_refused_with_the_fix(written, message):
    assert invalid_message(cv.host, written) == message


def test_a_host_from_a_secret_is_refused_without_showing_it():
    assert invalid_message(cv.host, a_secret("broker", "mqtt://10.0.0.5:1883")) == (
        f"{HOST_HELP}, got a secret (!secret broker)"
    )


def test_a_port_from_a_secret_is_read_and_a_bad_one_is_not_revealed():
    assert cv.port(a_secret("broker_port", "8883")) == 8883
    assert invalid_message(cv.port, a_secret("broker_port", "88830")) == (
        "expected a port number between 1 and 65535, got a secret (!secret broker_port)"
    )


@pytest.mark.parametrize(("written", "expected"), [(1, 1), (60, 60), ("3", 3)])
def test_positive_ints_are_read(written, expected):
    assert cv.positive_int(written) == expected


@pytest.mark.parametrize("written", [0, -3, 2.5, "three", False, "9" * 5000])
def test_zero_and_non_whole_numbers_are_not_positive_ints(written):
    assert invalid_message(cv.positive_int, written) == (
        f"expected a positive whole number (1 or more), got {cv.describe_value(written)}"
    )


# --------------------------------------------------------------------------- structure


def test_ensure_list_wraps_single_values_and_keeps_lists():
    roles = ["operator", "guard"]
    assert cv.ensure_list(roles) is roles
    assert cv.ensure_list("operator") == ["operator"]
    assert cv.ensure_list(None) == []
    assert cv.ensure_list(("a", "b")) == ["a", "b"]
    assert cv.ensure_list({"id": "b3"}) == [{"id": "b3"}]


def test_list_of_reports_every_bad_item_not_just_the_first():
    gates = cv.list_of({vol.Required("id"): cv.slug, vol.Optional("open_for"): cv.duration})
    with pytest.raises(vol.MultipleInvalid) as caught:
        gates([{"id": "Gate North"}, {"id": "south"}, {"id": "east", "open_for": "soon"}])
    reported = sorted((tuple(e.path), e.error_message) for e in caught.value.errors)
    assert reported == [
        (
            (0, "id"),
            "expected a slug (lower-case letters a-z, digits 0-9 and '-' between them), "
            "got 'Gate North'",
        ),
        (
            (2, "open_for"),
            "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, got 'soon'",
        ),
    ]


def test_list_of_returns_the_validated_items_and_rejects_a_non_list():
    durations = cv.list_of(cv.duration)
    assert durations(["5m", 30]) == [dt.timedelta(minutes=5), dt.timedelta(seconds=30)]
    assert invalid_message(durations, "5m") == "expected a list, got '5m'"


# --------------------------------------------------------------------------- time zones


def test_time_zones_are_read():
    assert cv.timezone("Asia/Shanghai") == ZoneInfo("Asia/Shanghai")
    assert cv.timezone(" Asia/Urumqi ") == ZoneInfo("Asia/Urumqi")


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("Asia/Shangai", "unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)"),
        ("asia/shanghai", "unknown time zone 'asia/shanghai' (did you mean 'Asia/Shanghai'?)"),
        ("../../etc/passwd", "unknown time zone '../../etc/passwd'"),
        ("localtime", "name the estate's time zone explicitly, such as Asia/Shanghai"),
        (8, "expected a time zone name such as Asia/Shanghai, got 8"),
    ],
)
def test_unknown_time_zones_are_rejected_with_a_suggestion(written, message):
    assert invalid_message(cv.timezone, written) == message


def test_a_time_zone_from_a_secret_is_refused_without_a_hint_about_it():
    assert invalid_message(cv.timezone, a_secret("desk_token", "Asia/Shangai")) == (
        "the value of !secret desk_token is not a known time zone such as Asia/Shanghai"
    )


# --------------------------------------------------------------------------- failures


def test_rejections_are_remembered_for_the_loader_to_explain_an_any():
    daily_cap = a_secret("cap", "-1元")
    schema = vol.Schema({"daily_cap": vol.Any(None, cv.money_fen)})
    with cv.remember_failures() as failures, pytest.raises(vol.MultipleInvalid) as caught:
        schema({"daily_cap": daily_cap})
    assert str(caught.value.errors[0].error_message) == "not a valid value"
    assert failures.message_for(daily_cap) == (
        "an amount of money must be 0 or more, got a secret (!secret cap)"
    )
    assert failures.message_for("-1元") is None  # an equal value, but not the one rejected


def test_nothing_is_remembered_outside_remember_failures():
    with cv.remember_failures() as failures:
        pass
    with pytest.raises(vol.Invalid):
        cv.duration("soon")
    assert failures.message_for("soon") is None


def test_adapter_names_are_lower_case_with_underscores():
    assert cv.adapter_name("mqtt_json") == "mqtt_json"
    with pytest.raises(
        vol.Invalid,
        match="expected an adapter name \\(lower-case letters, digits and _\\), got 'Hik-Vision'",
    ):
        cv.adapter_name("Hik-Vision")
