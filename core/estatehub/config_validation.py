"""Shared voluptuous validators for estate configuration.

Every validator takes the value as written in YAML and either returns the converted value
or raises :class:`voluptuous.Invalid` with a message a property manager can act on
("expected a duration such as 30s, 5m, 1h30m …, got 'soon'"). The config loader adds the
file, line and path in front of that message, so messages here never repeat them.

Messages describe the offending value through :func:`describe_value`, which never reveals a
value that came from ``!secret`` and cuts long text short (an ``!include`` of the wrong file
must not print that file).

The validators remember their failures while :func:`remember_failures` is active, so the
loader can explain an error that voluptuous reduced to ``not a valid value`` (``vol.Any(None,
cv.money_fen)`` reports only its first alternative's complaint).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import difflib
import functools
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import voluptuous as vol

__all__ = [
    "MAX_MONEY_FEN",
    "ValidatorFailures",
    "describe_value",
    "duration",
    "ensure_list",
    "entity_id",
    "host",
    "list_of",
    "money_fen",
    "percentage",
    "plate_string",
    "port",
    "positive_int",
    "remember_failures",
    "slug",
    "time_of_day",
    "timezone",
]

# Attribute the YAML loader sets on values that came from `!secret`; read here by name so
# this module does not import the loader.
_SECRET_MARK = "__estatehub_secret__"
_LONGEST_SHOWN_TEXT = 40
_LONGEST_SHOWN_NUMBER = 40


def _cut_short(text: str, limit: int) -> str:
    """At most ``limit`` characters of the first line, with ``…`` when anything was cut."""
    first_line = text.split("\n", 1)[0].split("\r", 1)[0]
    if len(first_line) > limit:
        return first_line[:limit] + "…"
    if first_line != text:
        return first_line + "…"
    return text


def describe_value(value: Any) -> str:
    """Describe ``value`` for an error message: ``'abc'``, ``5``, ``true``, ``a mapping``.

    A value loaded through ``!secret`` is described by its secret's name only, so no
    message built with this function can leak it. Text is cut to its first 40 characters
    (and its first line) followed by ``…``: a value can be a whole file read by mistake.
    """
    secret_name = getattr(value, _SECRET_MARK, None)
    if secret_name is not None:
        return f"a secret (!secret {secret_name})"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        return repr(_cut_short(str(value), _LONGEST_SHOWN_TEXT))
    if isinstance(value, int | float | Decimal):
        if isinstance(value, int) and abs(value) >= 10**_LONGEST_SHOWN_NUMBER:
            # str() of a huge int is slow and can raise (sys.int_max_str_digits).
            return f"a number of about {value.bit_length() * 3 // 10 + 1} digits"
        text = repr(value) if not isinstance(value, Decimal) else str(value)
        return _cut_short(text, _LONGEST_SHOWN_NUMBER)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return f"the {type(value).__name__} {value.isoformat()}"
    return f"a value of type {type(value).__name__}"


def _named_value(value: Any) -> str:
    """``value`` as the subject of a sentence: ``'5.505元'`` or ``the value of !secret x``."""
    secret_name = getattr(value, _SECRET_MARK, None)
    if secret_name is not None:
        return f"the value of !secret {secret_name}"
    return describe_value(value)


# --------------------------------------------------------------------------- failures

_Validator = TypeVar("_Validator", bound=Callable[[Any], Any])


class ValidatorFailures:
    """What the validators of this module rejected during one validation run.

    Keyed by the rejected value's identity (values loaded from YAML are distinct objects),
    so an error voluptuous reported without detail can be matched to its real reason.
    """

    __slots__ = ("_by_value",)

    def __init__(self) -> None:
        # id(value) -> [(value, message)]; holding the value keeps its id from being reused
        self._by_value: dict[int, list[tuple[Any, str]]] = {}

    def record(self, value: Any, message: str) -> None:
        """Remember that ``value`` was rejected with ``message``."""
        self._by_value.setdefault(id(value), []).append((value, message))

    def message_for(self, value: Any) -> str | None:
        """The one message ``value`` was rejected with, or None if none or several."""
        messages = {message for seen, message in self._by_value.get(id(value), ()) if seen is value}
        return messages.pop() if len(messages) == 1 else None


_FAILURES: ContextVar[ValidatorFailures | None] = ContextVar(
    "estatehub_validator_failures", default=None
)


@contextlib.contextmanager
def remember_failures() -> Iterator[ValidatorFailures]:
    """Record every rejection by this module's validators until the block ends."""
    failures = ValidatorFailures()
    token = _FAILURES.set(failures)
    try:
        yield failures
    finally:
        _FAILURES.reset(token)


def _remembered(validator: _Validator) -> _Validator:
    """Make ``validator`` report its rejections to :func:`remember_failures`."""

    @functools.wraps(validator)
    def checked(value: Any) -> Any:
        try:
            return validator(value)
        except vol.Invalid as invalid:
            failures = _FAILURES.get()
            if failures is not None:
                failures.record(value, str(invalid.error_message))
            raise

    return checked  # type: ignore[return-value]


def _is_number(value: Any) -> bool:
    # YAML booleans are ints to Python; `timeout: yes` must not read as 1 second.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole_number(value: Any) -> int | None:
    """Return ``value`` as an int if it is a whole number or a string of digits, else None.

    Digit strings are accepted because values from ``!secret`` are always text.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # More than 30 digits is no port or count; int() of thousands of digits even raises.
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,30}\s*", value):
        return int(value)
    return None


# --------------------------------------------------------------------------- durations

_DURATION_EXAMPLES = "30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00"
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_DURATION_UNITS = re.compile(
    rf"(?:(?P<d>{_NUMBER})\s*d)?\s*"
    rf"(?:(?P<h>{_NUMBER})\s*h)?\s*"
    rf"(?:(?P<m>{_NUMBER})\s*m)?\s*"
    rf"(?:(?P<s>{_NUMBER})\s*s)?\s*"
    rf"(?:(?P<ms>{_NUMBER})\s*ms)?"
)
_DURATION_CLOCK = re.compile(r"(?P<h>[0-9]+):(?P<m>[0-5][0-9]):(?P<s>[0-5][0-9](?:\.[0-9]+)?)")
_SECONDS_ONLY = re.compile(_NUMBER)


@_remembered
def duration(value: Any) -> dt.timedelta:
    """Parse a non-negative duration into a :class:`datetime.timedelta`.

    Accepts unit strings (``30s``, ``5m``, ``1h30m``, ``2d``, ``500ms``; units in that
    order, each at most once), a number of seconds (``90`` or ``"90"``), a clock string
    ``HH:MM:SS`` (``00:05:00``) and a ``timedelta``.
    """
    try:
        if isinstance(value, dt.timedelta):
            result = value
        elif _is_number(value):
            result = dt.timedelta(seconds=value)
        elif isinstance(value, str):
            result = _parse_duration_text(value)
        else:
            raise vol.Invalid(
                f"expected a duration such as {_DURATION_EXAMPLES}, got {describe_value(value)}"
            )
    except (OverflowError, ValueError):
        # .inf, .nan and durations beyond timedelta's range of about 2.7 million years
        raise vol.Invalid(f"not a usable duration, got {describe_value(value)}") from None
    if result < dt.timedelta(0):
        raise vol.Invalid(f"a duration cannot be negative, got {describe_value(value)}")
    return result


def _parse_duration_text(value: str) -> dt.timedelta:
    text = value.strip().lower()
    if text.startswith("-"):
        raise vol.Invalid(f"a duration cannot be negative, got {describe_value(value)}")
    if _SECONDS_ONLY.fullmatch(text):
        return dt.timedelta(seconds=float(text))
    clock = _DURATION_CLOCK.fullmatch(text)
    if clock:
        return dt.timedelta(
            hours=int(clock["h"]), minutes=int(clock["m"]), seconds=float(clock["s"])
        )
    units = _DURATION_UNITS.fullmatch(text)
    if text and units and any(units.groupdict().values()):
        parts = {name: float(amount) for name, amount in units.groupdict().items() if amount}
        return dt.timedelta(
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
            milliseconds=parts.get("ms", 0),
        )
    raise vol.Invalid(
        f"expected a duration such as {_DURATION_EXAMPLES}, got {describe_value(value)}"
    )


# --------------------------------------------------------------------------- time of day

_TIME_OF_DAY = re.compile(r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?")


@_remembered
def time_of_day(value: Any) -> dt.time:
    """Parse ``"07:00"``, ``"7:30"`` or ``"23:59:59"`` into a naive :class:`datetime.time`.

    The time is local to the estate; the caller attaches the estate's time zone.
    """
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        match = _TIME_OF_DAY.fullmatch(value.strip())
        if match:
            hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
            if hour <= 23 and minute <= 59 and second <= 59:
                return dt.time(hour, minute, second)
    raise vol.Invalid(
        f"expected a time of day such as 07:00 or 23:59:59, got {describe_value(value)}"
    )


# --------------------------------------------------------------------------- money

# Written before or after the amount: ¥5.50, ￥5.50, 5.50元, 5.50 CNY, 5.50 RMB.
_YUAN_MARKS = ("¥", "￥", "元", "cny", "rmb")
_FEN_MARKS = ("分",)
_MONEY_EXAMPLES = "whole fen as a number (550) or yuan with a unit ('5.50元', '5.50 CNY', '¥5.50')"
MAX_MONEY_FEN = 1_000_000_000
"""The largest amount :func:`money_fen` accepts: 10 000 000 元. No fee, fine or cap in an
estate comes near it; anything larger is a typo (or an attempt to overflow a total)."""


@_remembered
def money_fen(value: Any) -> int:
    """Return an amount of money as integer fen (1 元 = 100 分), from 0 to :data:`MAX_MONEY_FEN`.

    A bare integer is already fen. A string needs a unit and is parsed exactly with
    :class:`~decimal.Decimal`: ``"5元"`` → 500, ``"5.50 CNY"`` → 550, ``"¥5.5"`` → 550,
    ``"50分"`` → 50. Negative amounts, amounts above 10 000 000 元 and fractions of a fen are
    rejected; floats are rejected because ``5.5`` could mean yuan or fen.
    """
    amount: int | Decimal
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    elif isinstance(value, str):
        amount = _parse_money_text(value)
    else:
        raise vol.Invalid(
            f"expected an amount of money: {_MONEY_EXAMPLES}, got {describe_value(value)}"
        )
    if amount < 0:
        raise vol.Invalid(f"an amount of money must be 0 or more, got {describe_value(value)}")
    if amount > MAX_MONEY_FEN:
        raise vol.Invalid(
            f"an amount of money can be at most {MAX_MONEY_FEN // 100}元 "
            f"({MAX_MONEY_FEN} fen), got {describe_value(value)}"
        )
    if isinstance(amount, Decimal) and amount != amount.to_integral_value():
        raise vol.Invalid(f"{_named_value(value)} is not a whole number of fen (1 分 = 0.01 元)")
    return int(amount)


def _parse_money_text(value: str) -> Decimal:
    """The amount in fen, possibly with a fraction of a fen (the caller rejects those)."""
    text = value.strip().lower()
    split = _split_money_unit(text)
    # The digit limit keeps Decimal and int() away from numbers thousands of digits long.
    if split is not None and re.fullmatch(r"[-+]?[0-9]{1,40}(?:\.[0-9]{1,40})?", split[0]):
        # Enough precision for every digit allowed: the default 28 would round
        # 5.4999…9元 (30 nines) up to a whole 550 fen.
        with decimal.localcontext(prec=100):
            return Decimal(split[0]) * split[1]
    raise vol.Invalid(
        f"expected an amount of money: {_MONEY_EXAMPLES}, got {describe_value(value)}"
    )


def _split_money_unit(text: str) -> tuple[str, Decimal] | None:
    """Split ``text`` into (number, fen per unit) if it carries a known unit mark."""
    for marks, fen_per_unit in ((_YUAN_MARKS, Decimal(100)), (_FEN_MARKS, Decimal(1))):
        for mark in marks:
            if text.startswith(mark):
                return text[len(mark) :].strip(), fen_per_unit
            if text.endswith(mark):
                return text[: -len(mark)].strip(), fen_per_unit
    return None


# --------------------------------------------------------------------------- names and ids

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ENTITY_ID = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")


@_remembered
def adapter_name(value: Any) -> str:
    """Accept a vendor adapter's name as estates write it (``hikvision``, ``mqtt_json``)."""
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise vol.Invalid(
            f"expected an adapter name (lower-case letters, digits and _), got {describe_value(value)}"
        )
    return value


def slug(value: Any) -> str:
    """Accept an identifier of lower-case letters, digits and single inner hyphens (``b3-1``)."""
    if isinstance(value, str) and _SLUG.fullmatch(value):
        return str(value)
    raise vol.Invalid(
        "expected a slug (lower-case letters a-z, digits 0-9 and '-' between them), "
        f"got {describe_value(value)}"
    )


@_remembered
def entity_id(value: Any) -> str:
    """Accept an entity id ``domain.object_id`` in lower-case letters, digits and ``_``."""
    if isinstance(value, str) and _ENTITY_ID.fullmatch(value):
        return str(value)
    raise vol.Invalid(
        "expected an entity id such as 'binary_sensor.b3_1202_smoke' (domain.object_id in "
        f"lower-case letters, digits and '_'), got {describe_value(value)}"
    )


_PLATE_MAX_CHARS = 12


@_remembered
def plate_string(value: Any) -> str:
    """Accept a plate number as text, with spaces removed, at most 12 characters.

    This is only a shape check for config files; the parking plugin owns the real
    normalisation (GA 36 formats). Messages never repeat the plate, which is personal data.
    """
    if not isinstance(value, str):
        kind = "a number" if _is_number(value) else describe_value(value)
        raise vol.Invalid(f"expected a plate number as text, got {kind}")
    compact = re.sub(r"\s+", "", value)  # \s covers the full-width space U+3000 too
    if not compact:
        raise vol.Invalid("a plate number cannot be empty")
    if len(compact) > _PLATE_MAX_CHARS:
        raise vol.Invalid(
            f"a plate number has at most {_PLATE_MAX_CHARS} characters, this one has {len(compact)}"
        )
    return compact


# --------------------------------------------------------------------------- numbers


@_remembered
def percentage(value: Any) -> float:
    """Accept a percentage 0–100 as a number or a string like ``"35%"``; returns a float."""
    number: float | None = None
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*", value)
        number = float(match[1]) if match else None
    if number is None or not 0 <= number <= 100:
        raise vol.Invalid(f"expected a percentage between 0 and 100, got {describe_value(value)}")
    return number


@_remembered
def port(value: Any) -> int:
    """Accept a TCP/UDP port number 1–65535 (a digit string from ``!secret`` is fine)."""
    number = _whole_number(value)
    if number is None or not 1 <= number <= 65535:
        raise vol.Invalid(
            f"expected a port number between 1 and 65535, got {describe_value(value)}"
        )
    return number


_HOST_EXAMPLES = "192.168.10.5, broker.local or fd00::10"
# RFC 1123 labels; `_` too, because Docker and some LAN DNS servers hand such names out.
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
_LONGEST_HOST_NAME = 253


def _is_host_name(text: str) -> bool:
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return False
    name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    labels = name.split(".")
    if not name or len(name) > _LONGEST_HOST_NAME:
        return False
    if all(label.isdigit() for label in labels):
        return False  # 256.1.1.1 or 1883: a broken IP address or a port, not a name
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def _host_rewrite(text: str) -> str:
    """``"; write host: 127.0.0.1 and port: 1883"`` for ``mqtt://127.0.0.1:1883``, if it can tell."""
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        name, port_number = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or a broken [IPv6] address
        return ""
    if not name or not (_is_host_name(name) or _is_ip_address(name)):
        return ""
    return f"; write host: {name}" + (f" and port: {port_number}" if port_number else "")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@_remembered
def host(value: Any) -> str:
    """Accept a host name or an IP address (v4 or v6), without scheme, port or path.

    ``mqtt://127.0.0.1:1883`` is refused with the way to write it: ``host: 127.0.0.1`` and
    ``port: 1883``. Surrounding spaces are dropped.
    """
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if _is_ip_address(text) or _is_host_name(text):
            return text
        # A secret's parts must not appear in the hint either.
        hint = "" if getattr(value, _SECRET_MARK, None) is not None else _host_rewrite(text)
        raise vol.Invalid(
            "expected a host name or IP address without scheme, port or path, such as "
            f"{_HOST_EXAMPLES}, got {describe_value(value)}{hint}"
        )
    raise vol.Invalid(
        f"expected a host name or IP address such as {_HOST_EXAMPLES}, got {describe_value(value)}"
    )


@_remembered
def positive_int(value: Any) -> int:
    """Accept a whole number of 1 or more (a digit string from ``!secret`` is fine)."""
    number = _whole_number(value)
    if number is None or number < 1:
        raise vol.Invalid(
            f"expected a positive whole number (1 or more), got {describe_value(value)}"
        )
    return number


# --------------------------------------------------------------------------- structure


def ensure_list(value: Any) -> list[Any]:
    """Wrap a single value in a list; an empty value becomes ``[]``; a list is returned as is.

    Returning the same list object keeps the YAML positions of its items, so errors in
    later validators still point at the right lines.
    """
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    return [value]


def list_of(item_schema: Any) -> Callable[[Any], list[Any]]:
    """Validate every item of a list against ``item_schema`` and report every bad item.

    voluptuous's own list schema (``[schema]``) stops at the first item whose error is
    nested inside it; a long registry list needs all of them reported at once.
    """
    compiled = item_schema if isinstance(item_schema, vol.Schema) else vol.Schema(item_schema)

    def validate_items(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise vol.Invalid(f"expected a list, got {describe_value(value)}")
        validated: list[Any] = []
        errors: list[vol.Invalid] = []
        for index, item in enumerate(value):
            try:
                validated.append(compiled(item))
            except vol.MultipleInvalid as invalid:
                for error in invalid.errors:
                    error.prepend([index])
                    errors.append(error)
            except vol.Invalid as invalid:
                invalid.prepend([index])
                errors.append(invalid)
        if errors:
            raise vol.MultipleInvalid(errors)
        return validated

    return validate_items


# --------------------------------------------------------------------------- time zones


@_remembered
def timezone(value: Any) -> zoneinfo.ZoneInfo:
    """Return the :class:`zoneinfo.ZoneInfo` for an IANA key such as ``Asia/Shanghai``."""
    if isinstance(value, zoneinfo.ZoneInfo):
        return value
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid(
            f"expected a time zone name such as Asia/Shanghai, got {describe_value(value)}"
        )
    key = value.strip()
    if key == "localtime":
        # The host's zone can differ from the estate's (containers often run in UTC).
        raise vol.Invalid("name the estate's time zone explicitly, such as Asia/Shanghai")
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: keys such as "../x" that zoneinfo refuses to treat as a path.
        pass
    if getattr(value, _SECRET_MARK, None) is not None:
        # No suggestion: a close match would tell something about the secret.
        raise vol.Invalid(f"{_named_value(value)} is not a known time zone such as Asia/Shanghai")
    suggestion = difflib.get_close_matches(key, zoneinfo.available_timezones(), n=1)
    hint = f" (did you mean '{suggestion[0]}'?)" if suggestion else ""
    raise vol.Invalid(f"unknown time zone {describe_value(value)}{hint}")
