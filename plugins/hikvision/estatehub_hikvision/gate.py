"""The Hikvision ANPR gate adapter: webhook in, ISAPI barrier control out.

Inbound, the camera pushes each recognition to ``/api/webhook/hikvision/<gate_id>`` on the
hub's HTTP server (the camera's "HTTP listening" host); :mod:`.anpr` turns the push into a
:class:`~estatehub.hookspecs.parking.PlateRead` for the parking subsystem's sink.
Outbound, :meth:`HikvisionGate.send` opens or closes the barrier with
``PUT /ISAPI/Parking/channels/<channel>/barrierGate`` under HTTP digest auth.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError

import aiohttp
import defusedxml.ElementTree as SafeElementTree
import voluptuous as vol
from aiohttp import DigestAuthMiddleware  # aiohttp >= 3.12, as the plugin requires
from defusedxml import DefusedXmlException
from yarl import URL

from estatehub.hookspecs.parking import (
    BarrierCommand,
    Direction,
    ParkingError,
    PlateReadSink,
)
from estatehub.transports.base import HttpReply, InboundHttp

from .anpr import DEFAULT_DEVICE_TIMEZONE, parse_anpr_push, resolve_timezone

if TYPE_CHECKING:
    from estatehub.hub import Hub

__all__ = [
    "BARRIER_ACTIONS",
    "GATE_OPTIONS_SCHEMA",
    "GateSettings",
    "HikvisionGate",
    "barrier_gate_body",
    "webhook_path",
]

_LOGGER = logging.getLogger(__name__)

BARRIER_ACTIONS = ("open", "close")
"""``BarrierCommand.action`` values this adapter carries out (ISAPI ``ctrlMode``)."""

_ISAPI_ERROR_BODY_LIMIT = 4096


def _host_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected the camera's host name or IP address")
    host = value.strip()
    if "://" in host or "/" in host or "@" in host:
        raise vol.Invalid(
            f"expected a bare host name or IP address (e.g. 192.0.2.10), got {host!r}; "
            "put the port under 'port' and leave out the scheme and path"
        )
    return host


def _time_zone_name(value: object) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected an IANA time zone name such as Asia/Shanghai")
    try:
        resolve_timezone(value)
    except ParkingError as exc:
        raise vol.Invalid(str(exc)) from None
    return value


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise vol.Invalid(
            f"{value!r} is not an IP address or network (like 192.0.2.10 or 10.1.0.0/16)"
        ) from None
    return value


GATE_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required("host"): _host_name,
        vol.Optional("port", default=80): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
        vol.Inclusive(
            "username", "credentials", msg="give both username and password, or neither"
        ): vol.All(str, vol.Length(min=1)),
        vol.Inclusive(
            "password", "credentials", msg="give both username and password, or neither"
        ): str,
        vol.Optional("channel", default=1): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("forward_is", default="in"): vol.All(
            str, vol.Lower, vol.In(["in", "out"], msg="expected 'in' or 'out'")
        ),
        vol.Optional("timeout", default=2.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=60.0)
        ),
        vol.Optional("device_timezone", default=DEFAULT_DEVICE_TIMEZONE): _time_zone_name,
        vol.Optional("accept_from"): vol.All(
            [vol.All(str, _network)],
            vol.Length(min=1, msg="list at least one address, or leave accept_from out"),
        ),
    }
)
"""Voluptuous schema of a Hikvision gate's ``options:`` mapping.

``host`` (required), ``port`` (80), ``username`` and ``password`` (both or neither; digest
auth), ``channel`` (1), ``forward_is`` (``in``: the camera's ``forward`` is an entry),
``timeout`` (seconds, 2), ``device_timezone`` (``Asia/Shanghai``).
"""


def _default_sources(host: str) -> tuple[str, ...] | None:
    # The camera is the one device that should push for its gate; if its host is a name,
    # not an address, we cannot tell, and accept any source (the docs say to set accept_from).
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return (host,)


def webhook_path(gate_id: str) -> str:
    """The hub path a camera for ``gate_id`` must push to."""
    return f"/api/webhook/hikvision/{gate_id}"


def barrier_gate_body(action: str) -> bytes:
    """The ISAPI ``BarrierGate`` document for ``action`` (``open`` or ``close``).

    :raises ParkingError: ``action`` is not one of :data:`BARRIER_ACTIONS`.
    """
    if action not in BARRIER_ACTIONS:
        raise ParkingError(
            f"barrier action {action!r} is not supported by the Hikvision adapter "
            f"(expected one of {', '.join(BARRIER_ACTIONS)})"
        )
    # No namespace: this is what the camera's own web UI sends; the namespaced form
    # (isapi.org, version="2.0") is also seen and accepted by devices.
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<BarrierGate><ctrlMode>{action}</ctrlMode></BarrierGate>"
    ).encode()


@dataclass(frozen=True, slots=True)
class GateSettings:
    """A Hikvision gate's validated options. ``password`` never shows in ``repr``."""

    host: str
    port: int = 80
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    channel: int = 1
    forward_is: Direction = Direction.IN
    timeout: float = 2.0
    device_timezone: str = DEFAULT_DEVICE_TIMEZONE
    accept_from: tuple[str, ...] | None = None

    @classmethod
    def from_options(cls, gate_id: str, options: Mapping[str, Any]) -> GateSettings:
        """Validate ``options`` with :data:`GATE_OPTIONS_SCHEMA`.

        :raises ParkingError: naming the gate and the offending option.
        """
        try:
            valid = GATE_OPTIONS_SCHEMA(dict(options))
        except vol.Invalid as exc:
            raise ParkingError(f"gate {gate_id!r}: invalid hikvision options: {exc}") from None
        return cls(
            host=valid["host"],
            port=valid["port"],
            username=valid.get("username"),
            password=valid.get("password"),
            channel=valid["channel"],
            forward_is=Direction(valid["forward_is"]),
            timeout=valid["timeout"],
            device_timezone=valid["device_timezone"],
            accept_from=tuple(valid["accept_from"])
            if "accept_from" in valid
            else _default_sources(valid["host"]),
        )

    @property
    def barrier_url(self) -> URL:
        """``http://host:port/ISAPI/Parking/channels/<channel>/barrierGate``."""
        return URL.build(
            scheme="http",
            host=self.host,
            port=self.port,
            path=f"/ISAPI/Parking/channels/{self.channel}/barrierGate",
        )


class HikvisionGate:
    """A gate watched by a Hikvision ANPR camera that also drives the barrier.

    Satisfies :class:`estatehub.hookspecs.parking.GateAdapter`. Built by the parking
    subsystem as ``HikvisionGate(hub, gate_id, options, sink)``.

    :param hub: the hub (its ``http`` transport is used in :meth:`start`).
    :param gate_id: the gate's id from the estate config; also the last part of the
        webhook path.
    :param options: the gate's ``options:`` (see :data:`GATE_OPTIONS_SCHEMA`).
    :param sink: called on the event loop with every plate read.
    :raises ParkingError: the options are invalid.
    """

    def __init__(
        self, hub: Hub, gate_id: str, options: Mapping[str, Any], sink: PlateReadSink
    ) -> None:
        self._hub = hub
        self.gate_id = gate_id
        self.settings = GateSettings.from_options(gate_id, options)
        self._zone = resolve_timezone(self.settings.device_timezone)
        self._sink = sink
        self._unregister: Callable[[], None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        settings = self.settings
        return (
            f"HikvisionGate(gate={self.gate_id!r}, host={settings.host!r}, "
            f"port={settings.port}, channel={settings.channel})"
        )

    @property
    def webhook_path(self) -> str:
        """Where the camera must push: ``/api/webhook/hikvision/<gate_id>``."""
        return webhook_path(self.gate_id)

    async def start(self, hub: Hub) -> None:
        """Register the gate's webhook on the hub's HTTP transport."""
        self._hub = hub
        if self._unregister is not None:
            self._unregister()
        self._unregister = hub.http.register_webhook(
            self.webhook_path, self._on_push, sources=self.settings.accept_from
        )
        if self.settings.accept_from is None:
            _LOGGER.warning(
                "gate %s: camera host %s is not an IP address, so pushes are accepted from any "
                "source; set accept_from",
                self.gate_id,
                self.settings.host,
            )
        _LOGGER.debug("gate %s: listening on %s", self.gate_id, self.webhook_path)

    async def stop(self) -> None:
        """Unregister the webhook and close the HTTP client."""
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _on_push(self, request: InboundHttp) -> HttpReply:
        # Sync and loop-safe: parsing is pure and bounded by the 8 MiB body limit. A
        # PayloadRejected goes up to the hub, which counts it and answers 400.
        reads = parse_anpr_push(
            request,
            self.gate_id,
            forward_is=self.settings.forward_is,
            device_tz=self._zone,
        )
        for read in reads:
            self._sink(read)
        return HttpReply(status=200)

    async def send(self, command: BarrierCommand) -> None:
        """Open or close the barrier through ISAPI.

        :raises ParkingError: the command is for another gate or an unsupported action,
            the camera did not answer within ``timeout``, could not be reached (or the
            digest handshake failed), or
            answered with a non-2xx status (401 means the credentials are wrong).
        """
        if command.gate != self.gate_id:
            raise ParkingError(
                f"gate {self.gate_id!r} was handed a barrier command for gate {command.gate!r}"
            )
        body = barrier_gate_body(command.action)
        settings = self.settings
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        target = f"{host}:{settings.port}"
        session = self._client()
        try:
            async with session.put(
                settings.barrier_url,
                data=body,
                headers={"Content-Type": "application/xml; charset=UTF-8"},
            ) as response:
                if 200 <= response.status < 300:
                    _LOGGER.info(
                        "gate %s: barrier %s accepted by %s (command %s)",
                        self.gate_id,
                        command.action,
                        target,
                        command.command_id,
                    )
                    return
                detail = _isapi_error_detail(await response.content.read(_ISAPI_ERROR_BODY_LIMIT))
                hint = (
                    "; check username/password in the gate's options"
                    if response.status == 401
                    else ""
                )
                raise ParkingError(
                    f"gate {self.gate_id!r}: barrier {command.action} refused by Hikvision "
                    f"device {target}: HTTP {response.status} {response.reason or ''}".rstrip()
                    + detail
                    + hint
                )
        except TimeoutError:
            raise ParkingError(
                f"gate {self.gate_id!r}: barrier {command.action} timed out after "
                f"{settings.timeout:g} s waiting for Hikvision device {target}"
            ) from None
        except aiohttp.ClientError as exc:
            raise ParkingError(
                f"gate {self.gate_id!r}: barrier {command.action} failed talking to Hikvision "
                f"device {target}: {type(exc).__name__}: {exc}"
            ) from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            middlewares: tuple[Any, ...] = ()
            settings = self.settings
            if settings.username is not None:
                # One middleware per gate: it keeps the device's nonce between commands,
                # so later commands authenticate in one round trip.
                middlewares = (DigestAuthMiddleware(settings.username, settings.password or ""),)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
                middlewares=middlewares,
            )
        return self._session


def _isapi_error_detail(body: bytes) -> str:
    """Summarise an ISAPI ``ResponseStatus`` error body, or return ""."""
    if not body.strip():
        return ""
    try:
        root = SafeElementTree.fromstring(body.lstrip(b"\xef\xbb\xbf \t\r\n"))
    except (ParseError, DefusedXmlException):
        return ""
    wanted = ("statusString", "subStatusCode", "errorMsg")
    found = []
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if name in wanted and element.text and element.text.strip():
            found.append(f"{name}={element.text.strip()}")
    return f" ({', '.join(found)})" if found else ""
