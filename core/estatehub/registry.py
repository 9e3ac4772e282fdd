"""The estate registry: buildings, units, flats, households and which device is where.

Built from the ``registry:`` section of the estate config. Subsystems ask it "which flat is
this detector in, and who lives there?" instead of keeping their own copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import EstatehubError


class RegistryError(EstatehubError):
    """A lookup named something the registry does not hold."""


@dataclass(frozen=True, slots=True)
class Flat:
    """One flat. ``id`` is ``<building>-<unit>-<flat>`` (``b3-1-1202``)."""

    id: str
    building: str
    unit: str
    number: str
    area_m2: float | None
    household: str | None
    label: str


@dataclass(frozen=True, slots=True)
class Household:
    """The people living in one flat. Contact data stays out of logs and events."""

    id: str
    name: str
    members: int | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A device installed in a flat (or a common area, with ``flat`` None)."""

    id: str
    flat: str | None
    kind: str = ""


class EstateRegistry:
    """Read-only lookups over the estate's buildings, flats, households and devices."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.flats: dict[str, Flat] = {}
        self.households: dict[str, Household] = {}
        self.devices: dict[str, Device] = {}
        self.buildings: dict[str, str] = {}
        if config:
            self._load(config)

    def _load(self, config: Mapping[str, Any]) -> None:
        for building in config.get("buildings") or ():
            bid = str(building["id"])
            bname = str(building.get("name") or bid)
            self.buildings[bid] = bname
            for unit in building.get("units") or ():
                uid = str(unit["id"])
                for flat in unit.get("flats") or ():
                    number = str(flat["id"])
                    flat_id = f"{bid}-{uid}-{number}"
                    self.flats[flat_id] = Flat(
                        id=flat_id,
                        building=bid,
                        unit=uid,
                        number=number,
                        area_m2=flat.get("area_m2"),
                        household=flat.get("household"),
                        label=f"{bname} {uid}单元 {number}",
                    )
        for household in config.get("households") or ():
            hid = str(household["id"])
            self.households[hid] = Household(
                id=hid,
                name=str(household.get("name") or hid),
                members=household.get("members"),
                phone=household.get("phone"),
            )
        for device in config.get("devices") or ():
            did = str(device["id"])
            self.devices[did] = Device(
                id=did, flat=device.get("flat"), kind=str(device.get("kind") or "")
            )

    def flat(self, flat_id: str) -> Flat:
        """The flat; raises :class:`RegistryError` if unknown."""
        try:
            return self.flats[flat_id]
        except KeyError:
            raise RegistryError(f"no flat {flat_id!r} in the registry") from None

    def household(self, household_id: str) -> Household:
        """The household; raises :class:`RegistryError` if unknown."""
        try:
            return self.households[household_id]
        except KeyError:
            raise RegistryError(f"no household {household_id!r} in the registry") from None

    def flat_of_device(self, device_id: str) -> Flat | None:
        """The flat a device is installed in, if the registry knows it."""
        device = self.devices.get(device_id)
        if device is None or device.flat is None:
            return None
        return self.flats.get(device.flat)

    def household_of_flat(self, flat_id: str) -> Household | None:
        """Who lives in a flat, if known."""
        flat = self.flats.get(flat_id)
        if flat is None or flat.household is None:
            return None
        return self.households.get(flat.household)

    def flats_of_household(self, household_id: str) -> list[Flat]:
        """The flats a household lives in."""
        return [f for f in self.flats.values() if f.household == household_id]

    def location_label(self, flat_id: str) -> str:
        """Human-readable place (``3号楼 1单元 1202``), or the id if unknown."""
        flat = self.flats.get(flat_id)
        return flat.label if flat else flat_id
