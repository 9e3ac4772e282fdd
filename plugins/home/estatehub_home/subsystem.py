"""The home subsystem (smoke part): detectors mapped to flats, alarms as safety incidents.

A detector's first alarm report raises a ``safety`` incident located at its flat, which
escalates (household → property desk → guard, with a "call 119" instruction) until someone
acknowledges it. Retained MQTT state seen at start-up is state, never a new alarm. Smoke
going away does not close the incident: a person must acknowledge it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.hookspecs.base import AdapterSlot
from estatehub.hookspecs.home import DetectorKind, DetectorReading, HomeError
from estatehub.incidents import EscalationPolicy, EscalationStep, Severity

if TYPE_CHECKING:
    from estatehub.hub import Hub
    from estatehub.registry import EstateRegistry

_LOGGER = logging.getLogger(__name__)

INCIDENT_KIND = {
    DetectorKind.SMOKE: "smoke",
    DetectorKind.GAS: "gas",
    DetectorKind.WATER_LEAK: "water_leak",
}

DEFAULT_ESCALATION: Mapping[str, Any] = {
    "steps": [
        {"after": timedelta(0), "notify": ["household"], "instruction": ""},
        {
            "after": timedelta(minutes=2),
            "notify": ["property_desk"],
            "instruction": "phone the household; send the nearest staff",
        },
        {
            "after": timedelta(minutes=5),
            "notify": ["guard"],
            "instruction": "call 119 and go to the flat",
        },
    ],
    "repeat_every": timedelta(minutes=5),
}


STEP_SCHEMA = vol.Schema(
    {
        vol.Required("after"): cv.duration,
        vol.Required("notify"): vol.All(cv.ensure_list, [str], vol.Length(min=1)),
        vol.Optional("instruction", default=""): str,
    }
)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise vol.Invalid(
            "repeat_every must be longer than 0s: a safety alarm repeats until acknowledged"
        )
    return value


def _steps_in_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    afters = [step["after"] for step in steps]
    if afters != sorted(afters):
        raise vol.Invalid("escalation steps must be in order of 'after' (earliest first)")
    return steps


ESCALATION_SCHEMA = vol.Schema(
    {
        vol.Required("steps"): vol.All(cv.list_of(STEP_SCHEMA), vol.Length(min=1), _steps_in_order),
        vol.Optional("repeat_every", default=timedelta(minutes=5)): vol.All(cv.duration, _positive),
    }
)
DETECTOR_SCHEMA = vol.Schema(
    {
        vol.Optional("flat"): str,
        vol.Optional("kind", default="smoke"): vol.In([k.value for k in DetectorKind]),
        vol.Optional("adapter"): cv.adapter_name,
        vol.Optional("name"): str,
        vol.Optional("options", default=dict): vol.Any(None, dict),
    }
)
HOME_SCHEMA = vol.Schema(
    {
        vol.Optional("adapter", default="zigbee2mqtt"): cv.adapter_name,
        vol.Required("detectors"): vol.All({cv.slug: DETECTOR_SCHEMA}, vol.Length(min=1)),
        vol.Optional("escalation", default=dict): {
            vol.In([k.value for k in DetectorKind]): ESCALATION_SCHEMA
        },
        vol.Optional("low_battery_percent", default=20): vol.All(
            vol.Coerce(float), vol.Range(min=0, max=100)
        ),
    }
)


def registry_check(
    config: Mapping[str, Any], registry: EstateRegistry
) -> list[tuple[tuple[str, ...], str]]:
    """Every detector's flat must exist, and agree with the registry's device entry."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for detector_id, detector in config["detectors"].items():
        flat = detector.get("flat")
        device = registry.devices.get(detector_id)
        if flat is not None and flat not in registry.flats:
            known = ", ".join(sorted(registry.flats)[:8]) or "none in the registry"
            problems.append(
                (
                    ("detectors", detector_id, "flat"),
                    f"no flat {flat!r} in the registry (flats: {known})",
                )
            )
        elif flat is not None and device is not None and device.flat not in (None, flat):
            problems.append(
                (
                    ("detectors", detector_id, "flat"),
                    f"registry → devices says {detector_id} is in {device.flat}, not {flat}",
                )
            )
    return problems


def adapter_slots(config: Mapping[str, Any]) -> list[AdapterSlot]:
    """Where the home config names adapters: one slot per detector."""
    return [
        AdapterSlot(
            ("detectors", detector_id),
            detector.get("adapter") or config["adapter"],
            _with_kind(detector),
        )
        for detector_id, detector in (config.get("detectors") or {}).items()
    ]


def _with_kind(detector: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(detector.get("options") or {})
    options.setdefault("kind", detector.get("kind", "smoke"))
    return options


class HomeModule:
    """Runs an estate's household detectors."""

    def __init__(self, hub: Hub, config: Mapping[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.detectors: dict[str, Mapping[str, Any]] = dict(config["detectors"])
        self.adapters: dict[str, Any] = {}
        self.alarming: dict[str, bool] = {}
        self.policies: dict[str, EscalationPolicy] = {}
        for kind in DetectorKind:
            raw: Mapping[str, Any] = config["escalation"].get(kind.value) or DEFAULT_ESCALATION
            self.policies[kind.value] = EscalationPolicy(
                tuple(
                    EscalationStep(s["after"], tuple(s["notify"]), s.get("instruction", ""))
                    for s in raw["steps"]
                ),
                raw["repeat_every"],
            )

    def flat_of(self, detector_id: str) -> str | None:
        """The flat a detector is in: its own ``flat:`` or the registry's device entry."""
        flat = self.detectors[detector_id].get("flat")
        if flat:
            return flat
        found = self.hub.registry.flat_of_device(detector_id)
        return found.id if found else None

    async def start(self, hub: Hub) -> None:
        """Build and start one adapter per detector; restore alarm state from open incidents.

        A detector that cannot start is marked unavailable and raises a critical incident of
        its own; the other detectors are still watched (one bad entry must never leave a
        building's smoke detectors unwatched).
        """
        for detector_id, detector in self.detectors.items():
            try:
                await self._start_detector(hub, detector_id, detector)
            except Exception as err:
                _LOGGER.error("detector %s could not start: %s", detector_id, err)
                location = detector.get("flat") or f"device:{detector_id}"
                hub.states.set(self._entity(detector_id), "unavailable", {"error": str(err)})
                hub.incidents.raise_incident(
                    "detector.failed",
                    Severity.CRITICAL,
                    location,
                    f"detector {detector_id} is not watched: {err}",
                    source="home",
                    dedupe_key=f"failed:{detector_id}",
                    data={"detector": detector_id, "error": str(err)},
                )

    async def _start_detector(
        self, hub: Hub, detector_id: str, detector: Mapping[str, Any]
    ) -> None:
        flat = self.flat_of(detector_id)
        if flat is not None and flat not in hub.registry.flats:
            raise HomeError(f"flat {flat!r} is not in the registry")
        kind = detector.get("kind", "smoke")
        if (
            hub.incidents.find_open(f"{INCIDENT_KIND[DetectorKind(kind)]}:{detector_id}")
            is not None
        ):
            self.alarming[detector_id] = True
        adapter = hub.build_adapter(
            "home",
            detector.get("adapter") or self.config["adapter"],
            detector_id,
            _with_kind(detector),
            self.on_reading,
        )
        await adapter.start(hub)
        self.adapters[detector_id] = adapter
        hub.states.set(self._entity(detector_id), "unknown", {"flat": flat, "kind": kind})

    async def stop(self) -> None:
        """Stop every adapter."""
        for adapter in self.adapters.values():
            await adapter.stop()
        self.adapters.clear()

    def _entity(self, detector_id: str) -> str:
        return "binary_sensor." + detector_id.replace("-", "_")

    def on_reading(self, reading: DetectorReading) -> None:
        """Handle one detector report (sync, on the loop)."""
        detector = self.detectors.get(reading.detector)
        if detector is None:
            self.hub.reject(
                "home", reading.detector, f"reading for unknown detector {reading.detector!r}"
            )
            return
        kind = DetectorKind(detector.get("kind", "smoke"))
        flat = self.flat_of(reading.detector)
        entity = self._entity(reading.detector)
        current = self.hub.states.get(entity)
        attributes = dict(current.attributes) if current else {"flat": flat, "kind": kind.value}
        for name in ("battery_percent", "battery_low", "tamper", "link_quality"):
            value = getattr(reading, name)
            if value is not None:
                attributes[name] = value
        if reading.device_time is not None:
            attributes["last_seen"] = reading.device_time.isoformat()
        state = current.state if current else "unknown"
        if reading.available is False:
            state = "unavailable"
        elif reading.alarm is not None:
            state = "on" if reading.alarm else "off"
        elif reading.available is True and state == "unavailable":
            state = "unknown"
        self.hub.states.set(entity, state, attributes)

        if reading.alarm is True:
            self._alarm(reading, kind, flat)
        elif reading.alarm is False and self.alarming.get(reading.detector):
            self.alarming[reading.detector] = False
            self.hub.bus.fire(
                "home.alarm_cleared",
                {"detector": reading.detector, "kind": kind.value, "flat": flat},
            )
        self._maintenance(reading, kind, flat)

    def _alarm(self, reading: DetectorReading, kind: DetectorKind, flat: str | None) -> None:
        if self.alarming.get(reading.detector):
            return
        location = flat or f"device:{reading.detector}"
        if reading.retained:
            # The broker kept this from before we subscribed: it is the last known state,
            # not a new alarm. Say so loudly, but do not start an escalation for it.
            _LOGGER.warning(
                "detector %s: retained %s state at start-up is on; not raising an alarm",
                reading.detector,
                kind.value,
            )
            self.hub.bus.fire(
                "home.retained_alarm_state",
                {"detector": reading.detector, "kind": kind.value, "flat": flat},
            )
            return
        self.alarming[reading.detector] = True
        household = self.hub.registry.household_of_flat(flat) if flat else None
        label = self.hub.registry.location_label(flat) if flat else reading.detector
        policy = self.policies[kind.value]
        targets = {"household": f"household:{household.id}" if household else "household:unknown"}
        policy = EscalationPolicy(
            tuple(
                EscalationStep(s.after, tuple(targets.get(n, n) for n in s.notify), s.instruction)
                for s in policy.steps
            ),
            policy.repeat_every,
        )
        self.hub.bus.fire(
            "home.alarm",
            {
                "detector": reading.detector,
                "kind": kind.value,
                "flat": flat,
                "household": household.id if household else None,
            },
        )
        self.hub.incidents.raise_incident(
            INCIDENT_KIND[kind],
            Severity.SAFETY,
            location,
            f"{kind.value.replace('_', ' ')} alarm at {label} (detector {reading.detector})",
            source="home",
            policy=policy,
            dedupe_key=f"{INCIDENT_KIND[kind]}:{reading.detector}",
            data={
                "detector": reading.detector,
                "flat": flat,
                "household": household.id if household else None,
            },
        )

    def _maintenance(self, reading: DetectorReading, kind: DetectorKind, flat: str | None) -> None:
        if reading.retained:
            return
        location = flat or f"device:{reading.detector}"
        threshold = self.config["low_battery_percent"]
        low = reading.battery_low is True or (
            reading.battery_percent is not None and reading.battery_percent < threshold
        )
        if low:
            self.hub.incidents.raise_incident(
                "detector.battery_low",
                Severity.WARNING,
                location,
                f"{kind.value} detector {reading.detector} needs a new battery",
                source="home",
                dedupe_key=f"battery:{reading.detector}",
                data={"detector": reading.detector, "battery_percent": reading.battery_percent},
            )
        if reading.tamper is True:
            self.hub.incidents.raise_incident(
                "detector.tamper",
                Severity.WARNING,
                location,
                f"{kind.value} detector {reading.detector} reports tampering",
                source="home",
                dedupe_key=f"tamper:{reading.detector}",
                data={"detector": reading.detector},
            )
        if reading.available is False:
            self.hub.incidents.raise_incident(
                "detector.offline",
                Severity.WARNING,
                location,
                f"{kind.value} detector {reading.detector} is offline",
                source="home",
                dedupe_key=f"offline:{reading.detector}",
                data={"detector": reading.detector},
            )
