"""The service registry: named actions (``parking.pay``) that users and automations call."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from .exceptions import ServiceNotFound, ServiceValidationError


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """One call of a service, as its handler receives it.

    :param domain: ``"parking"``.
    :param service: ``"pay"``.
    :param data: the validated call data.
    :param user: who called (token name), or None for the hub itself.
    """

    domain: str
    service: str
    data: Mapping[str, Any]
    user: str | None = None


ServiceHandler = Callable[[ServiceCall], "Any | Awaitable[Any]"]


@dataclass(frozen=True, slots=True)
class Service:
    """A registered service: handler, optional schema, roles allowed to call it over the API."""

    domain: str
    name: str
    handler: ServiceHandler
    schema: vol.Schema | None
    roles: frozenset[str]
    description: str


class ServiceRegistry:
    """Registers services and calls them with validated data."""

    def __init__(self) -> None:
        self._services: dict[tuple[str, str], Service] = {}

    def register(
        self,
        domain: str,
        name: str,
        handler: ServiceHandler,
        *,
        schema: vol.Schema | Mapping[Any, Any] | None = None,
        roles: frozenset[str] = frozenset({"admin", "operator"}),
        description: str = "",
    ) -> Callable[[], None]:
        """Register ``domain.name``; returns a callable that removes it again."""
        key = (domain, name)
        if key in self._services:
            raise ServiceValidationError(f"service {domain}.{name} is already registered")
        if schema is not None and not isinstance(schema, vol.Schema):
            schema = vol.Schema(schema)
        self._services[key] = Service(domain, name, handler, schema, roles, description)

        def remove() -> None:
            self._services.pop(key, None)

        return remove

    def get(self, domain: str, name: str) -> Service:
        """The registered service; raises :class:`ServiceNotFound`."""
        try:
            return self._services[(domain, name)]
        except KeyError:
            raise ServiceNotFound(f"no service {domain}.{name}") from None

    def has(self, domain: str, name: str) -> bool:
        """True if ``domain.name`` is registered."""
        return (domain, name) in self._services

    def all(self) -> list[Service]:
        """Every registered service, sorted by name."""
        return sorted(self._services.values(), key=lambda s: (s.domain, s.name))

    async def call(
        self,
        domain: str,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
    ) -> Any:
        """Validate ``data`` with the service's schema and run its handler; returns its result."""
        service = self.get(domain, name)
        payload: Mapping[str, Any] = data or {}
        if service.schema is not None:
            try:
                payload = service.schema(dict(payload))
            except vol.Invalid as err:
                raise ServiceValidationError(f"{domain}.{name}: {_describe(err)}") from None
        result = service.handler(ServiceCall(domain, name, payload, user))
        if inspect.isawaitable(result):
            result = await result
        return result


def _describe(err: vol.Invalid) -> str:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    parts = []
    for error in errors:
        where = " → ".join(str(p) for p in error.path)
        parts.append(f"{where}: {error.msg}" if where else error.msg)
    return "; ".join(parts)
