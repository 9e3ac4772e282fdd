"""Real-format zigbee2mqtt payloads, one function per variant (for demo captures and tests).

Each function returns the payload bytes exactly as zigbee2mqtt puts them on the wire
(compact JSON, keys in zigbee2mqtt's order). Where a variant's values come straight from a
public source (listed in docs/adapters/zigbee2mqtt.md) the docstring says "seen"; the others
keep the seen shape and field names with made-up values, and say which option or release
produces them. :data:`STATE_SAMPLES` and :data:`AVAILABILITY_SAMPLES` list them all by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def smoke_clear_minimal() -> bytes:
    """Smoke detector, only the hazard key (seen)."""
    return b'{"smoke":false}'


def smoke_clear_battery_string_old_release() -> bytes:
    """Xiaomi smoke detector on an old release: ``battery`` as a string (seen)."""
    return b'{"battery":"100.00","voltage":3055,"linkquality":60,"smoke":false}'


def smoke_alarm_with_last_seen() -> bytes:
    """Smoke alarm with ``last_seen`` in ``ISO_8601`` (UTC, ``Z``) form (seen)."""
    return (
        b'{"smoke":true,"battery_low":false,"linkquality":26,'
        b'"last_seen":"2019-06-24T15:30:53.312Z"}'
    )


def smoke_alarm_last_seen_local() -> bytes:
    """Smoke alarm, ``last_seen: ISO_8601_local`` (zigbee2mqtt writes ``+0800``, no colon)."""
    return (
        b'{"battery":97,"battery_low":false,"last_seen":"2026-03-01T08:15:02.120+0800",'
        b'"linkquality":87,"smoke":true,"tamper":false,"voltage":3015}'
    )


def smoke_clear_last_seen_epoch() -> bytes:
    """Smoke detector, ``last_seen: epoch`` (JavaScript milliseconds since 1970 UTC)."""
    return b'{"battery":100,"last_seen":1772324102120,"linkquality":120,"smoke":false}'


def smoke_clear_with_device_object() -> bytes:
    """Old release with ``include_device_information``: an embedded ``device{…}`` object."""
    return (
        b'{"battery":100,"device":{"applicationVersion":2,"friendlyName":"b3-1202-smoke",'
        b'"ieeeAddr":"0x00158d0001a2b3c4","manufacturerID":4151,"manufacturerName":"LUMI",'
        b'"model":"JTYJ-GD-01LM/BW","networkAddress":15462,"powerSource":"Battery",'
        b'"type":"EndDevice"},"linkquality":60,"smoke":false,"voltage":3055}'
    )


def smoke_test_button_xiaomi() -> bytes:
    """Xiaomi self-test button: reports ``smoke:false`` (zoneStatus 2; the behaviour is seen)."""
    return b'{"battery":100,"linkquality":63,"smoke":false,"voltage":3055}'


def smoke_tamper() -> bytes:
    """Smoke detector opened from its base: ``tamper:true`` without smoke."""
    return b'{"battery":88,"battery_low":false,"linkquality":54,"smoke":false,"tamper":true}'


def smoke_battery_low() -> bytes:
    """Smoke detector with its own low-battery flag set."""
    return b'{"battery":9,"battery_low":true,"linkquality":41,"smoke":false,"tamper":false}'


def smoke_nulls_not_reported() -> bytes:
    """Cached state with values the device has not reported yet (``null``)."""
    return b'{"battery":null,"battery_low":null,"linkquality":72,"smoke":null,"tamper":null}'


def smoke_alarm_on_off_strings() -> bytes:
    """A converter that spells binary values as zigbee2mqtt's ``"ON"``/``"OFF"`` strings."""
    return b'{"battery_low":"OFF","linkquality":90,"smoke":"ON","tamper":"OFF"}'


def gas_alarm_heiman() -> bytes:
    """Heiman HS1CG-M gas detector exposes ``gas, battery_low, tamper, linkquality``."""
    return b'{"battery_low":false,"gas":true,"linkquality":78,"tamper":false}'


def gas_clear_xiaomi() -> bytes:
    """Xiaomi JTQJ-BF-01LM/BW gas detector: ``gas`` and ``gas_density``."""
    return b'{"gas":false,"gas_density":0,"linkquality":99}'


def water_leak_aqara() -> bytes:
    """Aqara SJCGQ11LM: ``battery, water_leak, battery_low, voltage, temperature, linkquality``."""
    return (
        b'{"battery":91,"battery_low":false,"linkquality":102,"temperature":24,'
        b'"voltage":3005,"water_leak":true}'
    )


def device_removed() -> bytes:
    """zigbee2mqtt clears a removed device's retained state with an empty payload."""
    return b""


def availability_online() -> bytes:
    """Availability in current releases (seen)."""
    return b'{"state":"online"}'


def availability_offline() -> bytes:
    """Availability in current releases, device gone (seen)."""
    return b'{"state":"offline"}'


def availability_online_legacy() -> bytes:
    """Availability in old releases / ``legacy_availability_payload`` (seen)."""
    return b"online"


def availability_offline_legacy() -> bytes:
    """Availability in old releases / ``legacy_availability_payload`` (seen)."""
    return b"offline"


STATE_SAMPLES: Mapping[str, Callable[[], bytes]] = {
    function.__name__: function
    for function in (
        smoke_clear_minimal,
        smoke_clear_battery_string_old_release,
        smoke_alarm_with_last_seen,
        smoke_alarm_last_seen_local,
        smoke_clear_last_seen_epoch,
        smoke_clear_with_device_object,
        smoke_test_button_xiaomi,
        smoke_tamper,
        smoke_battery_low,
        smoke_nulls_not_reported,
        smoke_alarm_on_off_strings,
        gas_alarm_heiman,
        gas_clear_xiaomi,
        water_leak_aqara,
        device_removed,
    )
}
"""Every state-topic sample by function name (``device_removed`` is rejected on purpose)."""

AVAILABILITY_SAMPLES: Mapping[str, Callable[[], bytes]] = {
    function.__name__: function
    for function in (
        availability_online,
        availability_offline,
        availability_online_legacy,
        availability_offline_legacy,
    )
}
"""Every availability-topic sample by function name."""
