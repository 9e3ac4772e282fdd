"""The root of every error estatehub raises on purpose.

Each subsystem derives one root of its own from :class:`EstatehubError` (for example
``ParkingError``), so callers can catch a whole subsystem's failures at once and nothing
else.
"""

from __future__ import annotations


class EstatehubError(Exception):
    """Root of all estatehub errors."""


class PluginError(EstatehubError):
    """A plugin broke a rule of the plugin API; the message names the plugin."""


class ServiceNotFound(EstatehubError):
    """A service call named a ``domain.service`` that nobody registered."""


class ServiceValidationError(EstatehubError):
    """The data passed to a service call failed the service's schema."""


class IncidentError(EstatehubError):
    """An incident operation was impossible (unknown id, already resolved …)."""


class TransportError(EstatehubError):
    """A transport could not deliver or accept a message."""


class PayloadRejected(TransportError):
    """An inbound payload could not be understood.

    Adapters raise this from their parse functions; the transport turns it into a counted
    ``transport.rejected`` event carrying :attr:`reason`, and the hub keeps going.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
