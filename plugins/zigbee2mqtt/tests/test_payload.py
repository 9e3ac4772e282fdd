"""zigbee2mqtt payloads → DetectorReading: every real variant, exact values, rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.home import DetectorKind, DetectorReading
from estatehub.transports.base import MqttMessage
from estatehub_zigbee2mqtt import samples
from estatehub_zigbee2mqtt.payload import parse_availability, parse_state

RECEIVED = datetime(2026, 3, 1, 8, 15, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
DETECTOR = "b3-1202-smoke"
STATE_TOPIC = "zigbee2mqtt/b3/1202/smoke"
AVAILABILITY_TOPIC = f"{STATE_TOPIC}/availability"


def state(payload: bytes, *, retained: bool = False, topic: str = STATE_TOPIC) -> MqttMessage:
    """A message on the detector's state topic, as the transport delivers it."""
    return MqttMessage(topic=topic, payload=payload, received_at=RECEIVED, qos=1, retained=retained)


def availability(payload: bytes, *, retained: bool = False) -> MqttMessage:
    """A message on the detector's availability topic."""
    return MqttMessage(
        topic=AVAILABILITY_TOPIC, payload=payload, received_at=RECEIVED, qos=1, retained=retained
    )


def reading(**fields: object) -> DetectorReading:
    """The reading we expect: detector, time and vendor fixed, the rest as given."""
    return DetectorReading(detector=DETECTOR, received_at=RECEIVED, vendor="zigbee2mqtt", **fields)  # type: ignore[arg-type]


# --- state variants -----------------------------------------------------------------


def test_minimal_smoke_message_reports_only_that_there_is_no_smoke() -> None:
    got = parse_state(state(samples.smoke_clear_minimal()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(alarm=False)


def test_old_release_battery_string_becomes_a_percentage() -> None:
    got = parse_state(
        state(samples.smoke_clear_battery_string_old_release()), DETECTOR, DetectorKind.SMOKE
    )
    assert got == reading(alarm=False, battery_percent=100.0, link_quality=60)


def test_smoke_alarm_with_utc_last_seen_keeps_the_device_time() -> None:
    got = parse_state(state(samples.smoke_alarm_with_last_seen()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=True,
        battery_low=False,
        link_quality=26,
        device_time=datetime(2019, 6, 24, 15, 30, 53, 312000, tzinfo=UTC),
    )


def test_local_last_seen_without_colon_in_the_offset_is_understood() -> None:
    got = parse_state(state(samples.smoke_alarm_last_seen_local()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=True,
        battery_percent=97.0,
        battery_low=False,
        tamper=False,
        link_quality=87,
        device_time=datetime(2026, 3, 1, 8, 15, 2, 120000, tzinfo=timezone(timedelta(hours=8))),
    )


def test_local_last_seen_with_colon_in_the_offset_is_understood() -> None:
    payload = b'{"last_seen":"2020-11-09T13:49:54+01:00","linkquality":7,"smoke":false}'
    got = parse_state(state(payload), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=False,
        link_quality=7,
        device_time=datetime(2020, 11, 9, 13, 49, 54, tzinfo=timezone(timedelta(hours=1))),
    )


def test_epoch_millisecond_last_seen_is_utc() -> None:
    got = parse_state(state(samples.smoke_clear_last_seen_epoch()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=False,
        battery_percent=100.0,
        link_quality=120,
        device_time=datetime(2026, 3, 1, 0, 15, 2, 120000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "last_seen",
    ['"5 minutes ago"', '"2019-06-24T15:30:53"', '"yesterday"'],
    ids=["relative", "iso-without-offset", "word"],
)
def test_last_seen_that_is_not_an_absolute_time_is_ignored(last_seen: str) -> None:
    payload = f'{{"smoke":true,"last_seen":{last_seen}}}'.encode()
    got = parse_state(state(payload), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(alarm=True, device_time=None)


def test_old_release_embedded_device_object_is_ignored() -> None:
    got = parse_state(state(samples.smoke_clear_with_device_object()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(alarm=False, battery_percent=100.0, link_quality=60)


def test_xiaomi_test_button_is_not_an_alarm() -> None:
    got = parse_state(state(samples.smoke_test_button_xiaomi()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(alarm=False, battery_percent=100.0, link_quality=63)


def test_detector_lifted_from_its_base_reports_tamper() -> None:
    got = parse_state(state(samples.smoke_tamper()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=False, battery_percent=88.0, battery_low=False, tamper=True, link_quality=54
    )


def test_low_battery_flag_and_percentage_both_come_through() -> None:
    got = parse_state(state(samples.smoke_battery_low()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=False, battery_percent=9.0, battery_low=True, tamper=False, link_quality=41
    )


def test_nulls_mean_not_reported_not_false() -> None:
    got = parse_state(state(samples.smoke_nulls_not_reported()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(
        alarm=None, battery_percent=None, battery_low=None, tamper=None, link_quality=72
    )


def test_on_off_strings_are_zigbee2mqtt_binary_values() -> None:
    got = parse_state(state(samples.smoke_alarm_on_off_strings()), DETECTOR, DetectorKind.SMOKE)
    assert got == reading(alarm=True, battery_low=False, tamper=False, link_quality=90)


def test_heiman_gas_detector_alarm_reads_the_gas_key() -> None:
    got = parse_state(state(samples.gas_alarm_heiman()), DETECTOR, DetectorKind.GAS)
    assert got == reading(alarm=True, battery_low=False, tamper=False, link_quality=78)


def test_xiaomi_gas_detector_clear() -> None:
    got = parse_state(state(samples.gas_clear_xiaomi()), DETECTOR, DetectorKind.GAS)
    assert got == reading(alarm=False, link_quality=99)


def test_aqara_water_leak_reads_the_water_leak_key() -> None:
    got = parse_state(state(samples.water_leak_aqara()), DETECTOR, DetectorKind.WATER_LEAK)
    assert got == reading(alarm=True, battery_percent=91.0, battery_low=False, link_quality=102)


def test_hazard_key_of_another_kind_is_not_this_detectors_alarm() -> None:
    # A gas detector configured as such must not take a "smoke" key for its own alarm.
    got = parse_state(state(b'{"smoke":true,"linkquality":10}'), DETECTOR, DetectorKind.GAS)
    assert got == reading(alarm=None, link_quality=10)


def test_message_without_any_known_key_gives_an_empty_reading() -> None:
    got = parse_state(state(b'{"voltage":3055,"temperature":24}'), DETECTOR, DetectorKind.SMOKE)
    assert got == reading()


def test_retained_state_at_start_is_marked_retained() -> None:
    got = parse_state(
        state(samples.smoke_alarm_with_last_seen(), retained=True), DETECTOR, DetectorKind.SMOKE
    )
    assert got.retained is True
    assert got.alarm is True


def test_live_state_is_not_marked_retained() -> None:
    got = parse_state(state(samples.smoke_clear_minimal()), DETECTOR, DetectorKind.SMOKE)
    assert got.retained is False


# --- availability -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "available"),
    [
        (samples.availability_online(), True),
        (samples.availability_offline(), False),
        (samples.availability_online_legacy(), True),
        (samples.availability_offline_legacy(), False),
        (b"online\n", True),
    ],
    ids=["json-online", "json-offline", "legacy-online", "legacy-offline", "trailing-newline"],
)
def test_availability_in_every_release_format(payload: bytes, available: bool) -> None:
    assert parse_availability(availability(payload), DETECTOR) == reading(available=available)


def test_retained_availability_is_marked_retained() -> None:
    got = parse_availability(availability(samples.availability_offline(), retained=True), DETECTOR)
    assert got == reading(available=False, retained=True)


# --- rejections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (samples.device_removed(), "empty payload (device removed?)"),
        (b"  \n", "empty payload (device removed?)"),
        (b"\xff\xfe{", "payload is not UTF-8 (invalid start byte)"),
        (b"smoke", "payload is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b'{"battery":NaN}', "payload is not JSON (NaN is not valid JSON)"),
        (b"[true]", "payload must be a JSON object, got list"),
        (b"true", "payload must be a JSON object, got bool"),
        (b'{"smoke":"maybe"}', "field 'smoke' must be true or false, got \"maybe\""),
        (b'{"smoke":"on"}', "field 'smoke' must be true or false, got \"on\""),
        (b'{"smoke":1}', "field 'smoke' must be true or false, got 1"),
        (b'{"smoke":false,"tamper":"yes"}', "field 'tamper' must be true or false, got \"yes\""),
        (b'{"battery_low":0}', "field 'battery_low' must be true or false, got 0"),
        (b'{"battery":"full"}', "field 'battery' must be a number of percent, got \"full\""),
        (b'{"battery":true}', "field 'battery' must be a number of percent, got true"),
        (b'{"battery":"nan"}', "field 'battery' must be a number of percent, got \"nan\""),
        (b'{"battery":150}', "field 'battery' must be 0–100, got 150"),
        (b'{"battery":"-1"}', "field 'battery' must be 0–100, got \"-1\""),
        (b'{"linkquality":"60"}', "field 'linkquality' must be an integer, got \"60\""),
        (b'{"linkquality":60.5}', "field 'linkquality' must be an integer, got 60.5"),
        (b'{"linkquality":300}', "field 'linkquality' must be 0–255, got 300"),
        (
            b'{"last_seen":true}',
            "field 'last_seen' must be a timestamp string or epoch ms, got true",
        ),
        (
            b'{"last_seen":{"t":1}}',
            "field 'last_seen' must be a timestamp string or epoch ms, got {\"t\": 1}",
        ),
        (
            b'{"last_seen":1e30}',
            "field 'last_seen' is not a valid epoch in ms, got 1e+30",
        ),
        (b'{"smoke":' + b"[" * 5000 + b"]" * 5000 + b"}", "payload is JSON nested too deeply"),
        (b"[" * 100_000, "payload is JSON nested too deeply"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_state_that_cannot_be_trusted_is_rejected_naming_topic_and_field(
    payload: bytes, reason: str
) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_state(state(payload), DETECTOR, DetectorKind.SMOKE)
    assert rejected.value.reason == f"{STATE_TOPIC}: {reason}"


def test_rejection_of_a_gas_detector_names_the_gas_field() -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_state(state(b'{"gas":"maybe"}'), DETECTOR, DetectorKind.GAS)
    assert (
        rejected.value.reason == f"{STATE_TOPIC}: field 'gas' must be true or false, got \"maybe\""
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty payload (device removed?)"),
        (b"maybe", "payload is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b'"online"', "payload must be a JSON object, got str"),
        (b'{"state":"gone"}', 'field \'state\' must be "online" or "offline", got "gone"'),
        (b'{"state":true}', 'field \'state\' must be "online" or "offline", got true'),
        (b"{}", 'field \'state\' must be "online" or "offline", got null'),
        (b"Online", "payload is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b'{"state":' + b"[" * 5000 + b"]" * 5000 + b"}", "payload is JSON nested too deeply"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_availability_in_no_known_format_is_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_availability(availability(payload), DETECTOR)
    assert rejected.value.reason == f"{AVAILABILITY_TOPIC}: {reason}"


def test_every_state_sample_but_device_removed_parses() -> None:
    kinds = {"gas": DetectorKind.GAS, "water": DetectorKind.WATER_LEAK}
    parsed = []
    for name, sample in samples.STATE_SAMPLES.items():
        if name == "device_removed":
            continue
        kind = next((k for prefix, k in kinds.items() if name.startswith(prefix)), None)
        got = parse_state(state(sample()), DETECTOR, kind or DetectorKind.SMOKE)
        parsed.append((name, got.alarm))
    assert parsed == [
        ("smoke_clear_minimal", False),
        ("smoke_clear_battery_string_old_release", False),
        ("smoke_alarm_with_last_seen", True),
        ("smoke_alarm_last_seen_local", True),
        ("smoke_clear_last_seen_epoch", False),
        ("smoke_clear_with_device_object", False),
        ("smoke_test_button_xiaomi", False),
        ("smoke_tamper", False),
        ("smoke_battery_low", False),
        ("smoke_nulls_not_reported", None),
        ("smoke_alarm_on_off_strings", True),
        ("gas_alarm_heiman", True),
        ("gas_clear_xiaomi", False),
        ("water_leak_aqara", True),
    ]
