"""LAN discovery: advertise the hub's API as ``_estatehub._tcp.local.`` over mDNS/DNS-SD.

Home Assistant households find the estate hub through zeroconf (the integration's manifest
lists ``"zeroconf": ["_estatehub._tcp.local."]``). :class:`HubAdvertiser` registers one
service instance per hub with :class:`zeroconf.asyncio.AsyncZeroconf`:

* the **instance name** is the estate name made into a valid DNS-SD instance label
  (:func:`instance_name_for`); when another responder already uses it, zeroconf picks a
  unique one (``陆家嘴花园-2``) and :attr:`HubAdvertiser.instance_name` says which;
* the **address** is the API's own when it listens on one address, and the machine's
  addresses on the chosen interfaces when it listens on all (:func:`plan_addresses`);
* the **TXT record** carries exactly ``version``, ``estate``, ``api``, ``id`` and
  ``modules``. Anyone on the LAN can read it, so no other key is accepted: a token or a
  resident's data cannot end up there by accident.

An advertiser that cannot start raises :class:`DiscoveryError` with the reason; the hub logs
it and runs on without discovery.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import re
import socket
import unicodedata
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self

import ifaddr
import zeroconf
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from . import __version__
from .exceptions import EstatehubError

__all__ = [
    "API_PATH",
    "SERVICE_TYPE",
    "TXT_KEYS",
    "AddressPlan",
    "DiscoveryError",
    "HubAdvertiser",
    "host_name_for",
    "instance_name_for",
    "plan_addresses",
]

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_estatehub._tcp.local."
"""The DNS-SD service type every estate hub registers."""

API_PATH = "/api"
"""The default ``api`` TXT value: where the REST API lives on the advertised port."""

TXT_KEYS = ("version", "estate", "api", "id", "modules")
"""Every key the TXT record carries, in the order it carries them; no other is allowed."""

_CALLER_KEYS = frozenset({"id", "modules", "api"})
"""The TXT keys a caller supplies; ``version`` and ``estate`` the advertiser fills in."""

START_TIMEOUT = 10.0
"""Seconds :meth:`HubAdvertiser.start` may take (it usually takes about one)."""

STOP_TIMEOUT = 3.0
"""Seconds :meth:`HubAdvertiser.stop` waits for its goodbye packets."""

_LABEL_MAX_BYTES = 63
# zeroconf renames a taken name by appending "-2", "-3" …, and rejects a label that then
# exceeds 63 bytes; keeping four bytes free leaves room up to "-999".
_RENAME_RESERVE_BYTES = 4
_TXT_ENTRY_MAX_BYTES = 255  # RFC 6763 §6.1: one length byte per "key=value" string
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_MODULE_ID = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MDNS_PORT = 5353


class DiscoveryError(EstatehubError):
    """The hub cannot be advertised on the LAN; :attr:`reason` says why.

    The hub logs it and goes on without discovery.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- names -------------------------------------------------------------------------------


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_bytes`` bytes of UTF-8."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def instance_name_for(estate_name: str) -> str:
    """The DNS-SD instance label for an estate name, e.g. ``陆家嘴花园``.

    Chinese and any other Unicode text is kept (NFC-normalised, as RFC 6763 §4.1.3 asks).
    Control characters and runs of white space become one space. ASCII dots become ``·``:
    zeroconf writes names label by label, split at every dot, so a dot would cut the
    instance name in two on the wire. The label is cut, on a character boundary, to 59
    bytes of UTF-8, leaving room within the 63-byte limit for the ``-2`` … ``-999`` that
    zeroconf appends when the name is taken. A name with nothing left becomes ``estatehub``.
    """
    text = unicodedata.normalize("NFC", estate_name)
    text = " ".join(_CONTROL_CHARS.sub(" ", text).split())
    # A leading underscore would make the instance look like a service or subtype label.
    text = text.replace(".", "·").lstrip("_ ")
    text = _cut_utf8(text, _LABEL_MAX_BYTES - _RENAME_RESERVE_BYTES).rstrip()
    return text or "estatehub"


def host_name_for(hub_id: str) -> str:
    """The mDNS host name the service points at: ``estatehub-<id>.local.``.

    A name of its own (rather than the machine's) cannot clash with the host record that
    avahi or another responder on the same machine already announces.
    """
    label = re.sub(r"[^a-z0-9-]+", "-", hub_id.lower()).strip("-")
    return f"estatehub-{label}"[:_LABEL_MAX_BYTES].rstrip("-") + ".local."


# -- addresses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """Which addresses the service record carries, and where zeroconf listens and answers.

    :param addresses: the A/AAAA addresses households connect to.
    :param interfaces: the addresses zeroconf binds to, or ``None`` for every interface of
        the API's address family.
    :param ipv6: the API listens on IPv6 (``::``), so zeroconf uses IPv6 when it binds to
        every interface.
    """

    addresses: tuple[str, ...]
    interfaces: tuple[str, ...] | None
    ipv6: bool = False


def _plain(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address without its IPv6 scope (``fe80::1%eth0``), so that it compares by value."""
    return ipaddress.ip_address(address.partition("%")[0])


def _is_address(text: str) -> bool:
    try:
        _plain(text)
    except ValueError:
        return False
    return True


def _adapter_addresses(adapter: ifaddr.Adapter) -> list[str]:
    # ifaddr gives IPv4 addresses as strings and IPv6 ones as (ip, flowinfo, scope_id).
    return [ip.ip if isinstance(ip.ip, str) else ip.ip[0] for ip in adapter.ips]


def _machine_addresses(adapters: Sequence[ifaddr.Adapter]) -> list[str]:
    return list(dict.fromkeys(a for adapter in adapters for a in _adapter_addresses(adapter)))


def _check_on_machine(address: str, adapters: Sequence[ifaddr.Adapter], what: str) -> None:
    machine = _machine_addresses(adapters)
    if _plain(address) not in {_plain(a) for a in machine}:
        raise DiscoveryError(
            f"{what} {address} is not an address of this machine "
            f"(its addresses: {', '.join(machine) or 'none'})"
        )


def _expand_interfaces(
    interfaces: Sequence[str], versions: set[int], adapters: Sequence[ifaddr.Adapter]
) -> tuple[str, ...]:
    """Addresses for ``interfaces``: IP addresses as given, names (``eth0``) as the
    interface's addresses of the API's IP versions."""
    if not interfaces:
        raise DiscoveryError(
            "the interface list is empty: name at least one address or interface, "
            "or leave it out to use every interface"
        )
    expanded: list[str] = []
    for entry in interfaces:
        if _is_address(entry):
            _check_on_machine(entry, adapters, "interface")
            expanded.append(entry)
            continue
        named = [a for a in adapters if entry in (a.name, a.nice_name)]
        if not named:
            known = sorted({a.name for a in adapters})
            raise DiscoveryError(
                f"no network interface named {entry!r} "
                f"(this machine has: {', '.join(known) or 'none'})"
            )
        found = [
            a
            for adapter in named
            for a in _adapter_addresses(adapter)
            if _plain(a).version in versions
        ]
        if not found:
            wanted = " or ".join(f"IPv{v}" for v in sorted(versions))
            raise DiscoveryError(f"network interface {entry!r} has no {wanted} address")
        expanded.extend(found)
    return tuple(dict.fromkeys(expanded))


def plan_addresses(
    host_addresses: Sequence[str],
    interfaces: Sequence[str] | None,
    adapters: Sequence[ifaddr.Adapter],
) -> AddressPlan:
    """Decide what to advertise for an API listening on ``host_addresses``.

    * The API listens on specific addresses (``127.0.0.1``, ``192.168.10.5``): those are
      advertised, and zeroconf binds to ``interfaces`` or, when none are given, to those
      same addresses, so the announcement goes only where the API can be reached (a hub
      on loopback stays on the machine).
    * The API listens on every address (``0.0.0.0``, or ``::`` for IPv6): the machine's
      addresses of that family on ``interfaces`` are advertised, or, when none are given,
      all of them but loopback, with zeroconf on every interface.

    ``interfaces`` holds IP addresses or interface names (``eth0``); a name stands for its
    addresses of the API's IP version. ``adapters`` is ``ifaddr.get_adapters()``.

    :raises DiscoveryError: an address or interface that is not on this machine, or no
        address to advertise at all.
    """
    wildcard = next((a for a in host_addresses if _plain(a).is_unspecified), None)
    if wildcard is not None:
        version = _plain(wildcard).version
        if interfaces is not None:
            bound = _expand_interfaces(interfaces, {version}, adapters)
            advertised = tuple(a for a in bound if _plain(a).version == version)
            bind: tuple[str, ...] | None = bound
        else:
            advertised = tuple(
                a
                for a in _machine_addresses(adapters)
                if _plain(a).version == version and not _plain(a).is_loopback
            )
            bind = None
        if not advertised:
            which = (
                f"none of the interfaces {', '.join(interfaces)} has"
                if interfaces is not None
                else "no network interface other than loopback has"
            )
            raise DiscoveryError(
                f"{which} an IPv{version} address to advertise (the API listens on {wildcard})"
            )
        return AddressPlan(advertised, bind, ipv6=version == 6)
    for address in host_addresses:
        _check_on_machine(address, adapters, "the API address")
    versions: set[int] = {_plain(a).version for a in host_addresses}
    bind = (
        _expand_interfaces(interfaces, versions, adapters)
        if interfaces is not None
        else tuple(host_addresses)
    )
    return AddressPlan(tuple(host_addresses), bind, ipv6=versions == {6})


async def _resolve_host(host: str) -> list[str]:
    """The addresses the API listens on: ``host`` itself if it is an address, else what
    the name resolves to (as aiohttp binds every one of them)."""
    if not host:
        return ["0.0.0.0"]  # aiohttp's "no host": every IPv4 address
    if _is_address(host):
        return [host]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise DiscoveryError(f"cannot resolve the API host {host!r}: {err.strerror}") from err
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


# -- TXT ---------------------------------------------------------------------------------


def _txt_record(estate_name: str, given: Mapping[str, str]) -> dict[str, str]:
    """The full TXT record for ``given`` (the caller's ``id``, ``modules`` and ``api``)."""
    unknown = sorted(set(given) - _CALLER_KEYS)
    if unknown:
        raise DiscoveryError(
            f"TXT key {', '.join(map(repr, unknown))} is not allowed: anyone on the LAN reads "
            f"the TXT record, so it carries only {', '.join(TXT_KEYS)} "
            f"(the caller gives {', '.join(sorted(_CALLER_KEYS))})"
        )
    for key, value in given.items():
        if not isinstance(value, str):
            raise DiscoveryError(
                f"TXT value of {key!r} must be text, got {type(value).__name__} {value!r}"
            )
    hub_id = given.get("id", "")
    if not _HUB_ID.fullmatch(hub_id):
        raise DiscoveryError(
            f"TXT id {hub_id!r} must be 1 to 63 ASCII letters, digits, '-' or '_', "
            "starting with a letter or digit (a stable id of this hub, never a secret)"
        )
    modules = given.get("modules", "")
    for module in modules.split(",") if modules else ():
        if not _MODULE_ID.fullmatch(module):
            raise DiscoveryError(
                f"TXT modules {modules!r} must be module ids separated by commas, "
                f"e.g. 'parking,home'; {module!r} is not one"
            )
    api = given.get("api", API_PATH)
    if not api.startswith("/") or _CONTROL_CHARS.search(api) or " " in api:
        raise DiscoveryError(f"TXT api {api!r} must be a URL path such as {API_PATH!r}")
    estate = " ".join(_CONTROL_CHARS.sub(" ", unicodedata.normalize("NFC", estate_name)).split())
    # A very long estate name is cut rather than refused: it is only shown to people.
    estate = _cut_utf8(estate, _TXT_ENTRY_MAX_BYTES - len("estate="))
    record = {
        "version": __version__,
        "estate": estate,
        "api": api,
        "id": hub_id,
        "modules": modules,
    }
    for key, value in record.items():
        size = len(f"{key}={value}".encode())
        if size > _TXT_ENTRY_MAX_BYTES:
            raise DiscoveryError(
                f"TXT entry {key!r} is {size} bytes; one entry holds at most "
                f"{_TXT_ENTRY_MAX_BYTES} bytes (key=value)"
            )
    return record


# -- the advertiser ----------------------------------------------------------------------


def _socket_reason(err: OSError, plan: AddressPlan) -> str:
    where = ", ".join(plan.interfaces) if plan.interfaces is not None else "every interface"
    detail = err.strerror or str(err)
    if err.errno == errno.EADDRINUSE:
        return (
            f"the mDNS port {_MDNS_PORT} is taken by a program that does not share it "
            f"({detail}); with avahi-daemon, set disallow-other-stacks=no"
        )
    if err.errno in (errno.ENODEV, errno.EADDRNOTAVAIL):
        return f"cannot join the mDNS multicast group on {where} ({detail})"
    return f"cannot open the mDNS sockets on {where} ({detail})"


class HubAdvertiser:
    """Advertises one hub's API on the LAN as a ``_estatehub._tcp.local.`` service.

    :param name: the estate name; the instance label comes from it
        (:func:`instance_name_for`) and the ``estate`` TXT entry carries it.
    :param host: the address the API listens on (``api.host``): a specific address, a
        host name, or ``0.0.0.0`` / ``::`` for every address (see :func:`plan_addresses`).
    :param port: the port the API is bound to (the bound one when the config says 0).
    :param properties: the caller's TXT entries: ``id`` (required: a stable id of this
        hub), ``modules`` (comma-separated module ids) and ``api`` (default ``/api``).
        ``version`` and ``estate`` are filled in; any other key raises
        :class:`DiscoveryError`, because everyone on the LAN can read the record.
    :param interfaces: IP addresses or interface names zeroconf works on; ``None`` for the
        API's own address, or every interface when the API listens on all.
    :raises DiscoveryError: the properties are not allowed or malformed.
    """

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        properties: Mapping[str, str],
        interfaces: Sequence[str] | None = None,
    ) -> None:
        if not 0 < port < 65536:
            raise DiscoveryError(f"cannot advertise port {port}: give the port the API is bound to")
        self._estate_name = name
        self._host = host
        self._port = port
        self._interfaces = tuple(interfaces) if interfaces is not None else None
        self._given = dict(properties)
        self._txt = _txt_record(name, self._given)
        self._wanted_name = instance_name_for(name)
        self._instance_name = self._wanted_name
        self._server = host_name_for(self._txt["id"])
        self._addresses: tuple[str, ...] = ()
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._announcing: set[asyncio.Future[Any]] = set()
        self._starting = False

    # -- what is advertised ------------------------------------------------------------

    @property
    def instance_name(self) -> str:
        """The instance label: the one wanted until :meth:`start`, then the one zeroconf
        settled on (``陆家嘴花园-2`` when ``陆家嘴花园`` was taken)."""
        return self._instance_name

    @property
    def service_name(self) -> str:
        """The full service name, ``<instance>._estatehub._tcp.local.``."""
        return f"{self._instance_name}.{SERVICE_TYPE}"

    @property
    def server(self) -> str:
        """The mDNS host name the service points at (:func:`host_name_for`)."""
        return self._server

    @property
    def port(self) -> int:
        """The advertised API port."""
        return self._port

    @property
    def addresses(self) -> tuple[str, ...]:
        """The advertised addresses; empty until :meth:`start`."""
        return self._addresses

    @property
    def properties(self) -> Mapping[str, str]:
        """The TXT record as advertised (or as it will be once started)."""
        return MappingProxyType(dict(self._txt))

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._zeroconf is not None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register the service and return once its name is final (about one second).

        The announcements continue in the background.

        :raises DiscoveryError: with the reason, when no address can be advertised, an
            interface is not on this machine, the mDNS port is not shared, or zeroconf
            did not finish within :data:`START_TIMEOUT`; nothing is left running then.
        """
        if self._zeroconf is not None or self._starting:
            raise DiscoveryError(f"{self.service_name} is already advertised")
        self._starting = True
        try:
            await self._start()
        finally:
            self._starting = False

    async def _start(self) -> None:
        try:
            async with asyncio.timeout(START_TIMEOUT):
                host_addresses = await _resolve_host(self._host)
        except TimeoutError:
            raise DiscoveryError(
                f"resolving the API host {self._host!r} took longer than {START_TIMEOUT:g} s"
            ) from None
        plan = plan_addresses(host_addresses, self._interfaces, list(ifaddr.get_adapters()))
        txt = self._txt
        info = self._service_info(f"{self._wanted_name}.{SERVICE_TYPE}", plan.addresses)
        zc: AsyncZeroconf | None = None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                if plan.interfaces is None:
                    version = zeroconf.IPVersion.V6Only if plan.ipv6 else zeroconf.IPVersion.V4Only
                    zc = AsyncZeroconf(interfaces=zeroconf.InterfaceChoice.All, ip_version=version)
                else:
                    zc = AsyncZeroconf(interfaces=list(plan.interfaces))
                await zc.zeroconf.async_wait_for_start()
                # zeroconf skips an interface it cannot bind with only a log line; with
                # none left it would "register" the service and send it nowhere.
                if not getattr(zc.zeroconf.engine, "senders", True):
                    where = ", ".join(plan.interfaces or ()) or "any interface"
                    raise DiscoveryError(f"zeroconf could not open a socket on {where}")
                announcing = await zc.async_register_service(info, allow_name_change=True)
        except BaseException as err:
            if zc is not None:
                await self._close_quietly(zc)
            if isinstance(err, DiscoveryError):
                raise
            if isinstance(err, TimeoutError):
                raise DiscoveryError(
                    f"registering {info.name} did not finish within {START_TIMEOUT:g} s"
                ) from err
            if isinstance(err, OSError):
                raise DiscoveryError(_socket_reason(err, plan)) from err
            if isinstance(err, zeroconf.Error | RuntimeError):
                raise DiscoveryError(
                    f"zeroconf refused {info.name}: {type(err).__name__} {err}".rstrip()
                ) from err
            raise
        self._zeroconf = zc
        self._info = info
        self._addresses = plan.addresses
        self._instance_name = info.name.removesuffix(f".{SERVICE_TYPE}")
        self._keep_announcing(announcing)
        if self._txt != txt:  # update() ran while zeroconf was probing
            info = self._service_info(info.name, plan.addresses)
            self._keep_announcing(await zc.async_update_service(info))
            self._info = info
        if self._instance_name != self._wanted_name:
            _LOGGER.info(
                "the name %r is taken on the network; advertising as %r",
                self._wanted_name,
                self._instance_name,
            )
        _LOGGER.info(
            "advertising %s at %s port %d",
            self.service_name,
            ", ".join(self._addresses),
            self._port,
        )

    async def update(self, properties: Mapping[str, str]) -> None:
        """Change TXT entries (``modules``, ``api``, ``id``); the others stay as they are.

        Before :meth:`start` (or after :meth:`stop`) this only changes what the next start
        advertises. While running, the new record goes out at once and browsers see the
        service updated.

        :raises DiscoveryError: a key that is not allowed or a malformed value; the
            advertised record is then left unchanged.
        """
        given = {**self._given, **properties}
        txt = _txt_record(self._estate_name, given)
        self._given, self._txt = given, txt
        self._server = host_name_for(txt["id"])
        if self._zeroconf is None or self._info is None:
            return
        info = self._service_info(self._info.name, self._addresses)
        self._keep_announcing(await self._zeroconf.async_update_service(info))
        self._info = info

    async def stop(self) -> None:
        """Withdraw the service (browsers see it removed) and close zeroconf.

        Safe to call when not started, and twice. Problems are logged, never raised: the
        hub is shutting down.
        """
        zc, info = self._zeroconf, self._info
        self._zeroconf = self._info = None
        if zc is None:
            return
        for pending in self._announcing:
            pending.cancel()
        await asyncio.gather(*self._announcing, return_exceptions=True)
        self._announcing.clear()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                if info is not None:
                    await (await zc.async_unregister_service(info))
        except (TimeoutError, OSError, zeroconf.Error) as err:
            _LOGGER.warning("could not withdraw %s cleanly: %r", self.service_name, err)
        await self._close_quietly(zc)
        _LOGGER.info("stopped advertising %s", self.service_name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- helpers -----------------------------------------------------------------------

    def _service_info(self, service_name: str, addresses: Sequence[str]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            service_name,
            port=self._port,
            properties=dict(self._txt),
            server=self._server,
            parsed_addresses=[a.partition("%")[0] for a in addresses],
        )

    def _keep_announcing(self, announcing: Awaitable[Any]) -> None:
        """Hold on to zeroconf's announcement task so that :meth:`stop` can cancel it.

        Announcements still running for an older record are cancelled: each repeats the
        record it was started with, and a late repeat would put the old TXT back into the
        households' caches.
        """
        for older in self._announcing:
            older.cancel()
        future = asyncio.ensure_future(announcing)
        self._announcing.add(future)
        future.add_done_callback(self._announcing.discard)

    async def _close_quietly(self, zc: AsyncZeroconf) -> None:
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await zc.async_close()
        except (TimeoutError, OSError, zeroconf.Error) as err:
            _LOGGER.warning("closing zeroconf failed: %r", err)
