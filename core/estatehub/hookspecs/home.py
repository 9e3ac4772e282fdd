"""Home: smart-home retrofit detectors (smoke first; gas, water and wristbands later).

Vendor adapters (zigbee2mqtt …) turn device traffic into :class:`DetectorReading`; the
``home`` subsystem maps detectors to flats and raises safety incidents.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..exceptions import EstatehubError

if TYPE_CHECKING:
    from ..hub import Hub


class HomeError(EstatehubError):
    """Root of all home-subsystem errors."""


class DetectorKind(enum.StrEnum):
    """What a detector senses."""

    SMOKE = "smoke"
    GAS = "gas"
    WATER_LEAK = "water_leak"


@dataclass(frozen=True, slots=True)
class DetectorReading:
    """One state report from a detector, vendor-neutral.

    Every field but ``detector`` and ``received_at`` is optional because real devices send
    partial updates: ``alarm`` None means "this message did not say". ``retained`` is True
    for a message the broker kept from before the hub subscribed: it is the last known
    state, never a new alarm. ``available`` is set by availability messages only.

    :param detector: detector id from the estate config.
    :param received_at: when the hub received it.
    :param alarm: the sensed hazard is present (smoke / gas / water), if reported.
    :param battery_percent: 0–100, if reported.
    :param battery_low: the device's own low-battery flag, if reported.
    :param tamper: the device's tamper flag, if reported.
    :param available: online/offline from an availability message.
    :param device_time: the device's ``last_seen`` or similar, if any.
    :param link_quality: radio link quality, if reported.
    :param retained: the message was a retained one (state, not an event).
    :param vendor: the adapter name.
    """

    detector: str
    received_at: datetime
    alarm: bool | None = None
    battery_percent: float | None = None
    battery_low: bool | None = None
    tamper: bool | None = None
    available: bool | None = None
    device_time: datetime | None = None
    link_quality: int | None = None
    retained: bool = False
    vendor: str = ""


DetectorReadingSink = Callable[[DetectorReading], None]
"""What a detector adapter calls, on the event loop, for every reading."""


class DetectorAdapter(Protocol):
    """A vendor's detector: subscribes to its traffic and reports readings."""

    async def start(self, hub: Hub) -> None:
        """Subscribe to the device's topics."""

    async def stop(self) -> None:
        """Unsubscribe."""
