"""The ``modules: parking:`` config schema (every option is in docs/config/parking.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.hookspecs.base import AdapterSlot
from estatehub.hookspecs.parking import Tariff

from .tariff import check_tariff

GATE_DIRECTIONS = ("in", "out", "both")


def _aware_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise vol.Invalid(
                f"expected an ISO 8601 time like 2026-03-01T08:00:00+08:00, got {value!r}"
            ) from None
    else:
        raise vol.Invalid(f"expected an ISO 8601 time, got {cv.describe_value(value)}")
    if parsed.tzinfo is None:
        raise vol.Invalid(f"{value!r} has no UTC offset; write it like 2026-03-01T08:00:00+08:00")
    return parsed


def _tariff(value: Any) -> Tariff:
    data = TARIFF_FIELDS(value if value is not None else {})
    tariff = Tariff(
        free_minutes=data["free_minutes"],
        free_deducted=data["free_deducted"],
        unit_minutes=data["unit_minutes"],
        day_rate_fen=data["day_rate"],
        night_rate_fen=data["night_rate"],
        day_starts=data["day_starts"],
        night_starts=data["night_starts"],
        daily_cap_fen=data["daily_cap"],
        cap_period=data["cap_period"],
    )
    problems = check_tariff(tariff)
    if problems:
        raise vol.Invalid("; ".join(problems))
    return tariff


TARIFF_FIELDS = vol.Schema(
    {
        vol.Optional("free_minutes", default=15): vol.All(int, vol.Range(min=0)),
        vol.Optional("free_deducted", default=False): bool,
        vol.Optional("unit_minutes", default=60): vol.All(int, vol.Range(min=1)),
        vol.Optional("day_rate", default=500): cv.money_fen,
        vol.Optional("night_rate", default=300): cv.money_fen,
        vol.Optional("day_starts", default=time(8, 0)): cv.time_of_day,
        vol.Optional("night_starts", default=time(20, 0)): cv.time_of_day,
        vol.Optional("daily_cap", default=None): vol.Any(None, cv.money_fen),
        vol.Optional("cap_period", default="calendar_day"): vol.In(["calendar_day", "rolling_24h"]),
    }
)

GATE_SCHEMA = vol.Schema(
    {
        vol.Required("adapter"): cv.adapter_name,
        vol.Optional("direction", default="both"): vol.In(GATE_DIRECTIONS),
        vol.Optional("name"): str,
        vol.Optional("options", default=dict): vol.Any(None, dict),
    }
)


def _window_in_order(visitor_pass: dict[str, Any]) -> dict[str, Any]:
    if visitor_pass["valid_until"] <= visitor_pass["valid_from"]:
        raise vol.Invalid("valid_until must be after valid_from", path=["valid_until"])
    return visitor_pass


VISITOR_PASS_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Required("plate"): cv.plate_string,
            vol.Required("host"): str,
            vol.Required("valid_from"): _aware_datetime,
            vol.Required("valid_until"): _aware_datetime,
            vol.Optional("note", default=""): str,
        }
    ),
    _window_in_order,
)

BLOCKED_SCHEMA = vol.Schema(
    {vol.Required("plate"): cv.plate_string, vol.Optional("reason", default=""): str}
)

PLATE_RULES_SCHEMA = vol.Schema(
    {
        vol.Optional("small_nev_letters", default="DF"): vol.All(str, vol.Match(r"^[A-HJ-NP-Z]+$")),
        vol.Optional("large_nev_letters", default="DF"): vol.All(str, vol.Match(r"^[A-HJ-NP-Z]+$")),
    }
)

PARKING_SCHEMA = vol.Schema(
    {
        vol.Required("gates"): vol.All({cv.slug: GATE_SCHEMA}, vol.Length(min=1)),
        vol.Optional("tariff", default=dict): _tariff,
        vol.Optional("residents", default=dict): vol.Any(None, {str: [cv.plate_string]}),
        vol.Optional("visitor_passes", default=list): vol.Any(
            None, cv.list_of(VISITOR_PASS_SCHEMA)
        ),
        vol.Optional("blocked", default=list): vol.Any(None, [BLOCKED_SCHEMA]),
        vol.Optional("unknown_vehicles", default="admit"): vol.In(["admit", "deny", "review"]),
        vol.Optional("dedupe_window", default=timedelta(seconds=10)): cv.duration,
        vol.Optional("exit_grace", default=timedelta(minutes=15)): cv.duration,
        vol.Optional("max_clock_skew", default=timedelta(minutes=5)): cv.duration,
        vol.Optional("plate_rules", default=dict): PLATE_RULES_SCHEMA,
        vol.Optional("history_retention", default=timedelta(days=180)): cv.duration,
    }
)


def registry_check(
    config: Mapping[str, Any], registry: Any
) -> list[tuple[tuple[str | int, ...], str]]:
    """Resident households and visitor hosts must be households the registry knows.

    Only checked when the registry lists households at all (an estate may run parking
    before it has entered its registry).
    """
    if not registry.households:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for household in config.get("residents") or {}:
        if household not in registry.households:
            problems.append(
                (("residents", household), f"no household {household!r} in the registry")
            )
    for index, visitor_pass in enumerate(config.get("visitor_passes") or ()):
        if visitor_pass["host"] not in registry.households:
            problems.append(
                (
                    ("visitor_passes", index, "host"),
                    f"no household {visitor_pass['host']!r} in the registry",
                )
            )
    return problems


def adapter_slots(config: Mapping[str, Any]) -> Iterable[AdapterSlot]:
    """Where the parking config names adapters: one slot per gate."""
    for gate_id, gate in (config.get("gates") or {}).items():
        if isinstance(gate, Mapping) and isinstance(gate.get("adapter"), str):
            yield AdapterSlot(("gates", gate_id), gate["adapter"], gate.get("options") or {})
