"""The ``notify`` module: routes targets to channels, dedupes, and queues per channel.

``targets:`` maps a target name (``property_desk``, ``household:h-wang``) or a pattern
(``household:*``) to channels; ``channels:`` configures each channel's notifier type and
delivery policy. The module registers ``notify.send`` and tells each step's targets about
``incident.raised`` and ``incident.escalated``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.services import ServiceCall

from .delivery import Channel, DeliveryPolicy, WorkerState
from .models import Notification, NotifierContext, NotifierSpec, NotifyError
from .notifiers import BUILTIN_NOTIFIERS

if TYPE_CHECKING:
    from estatehub.bus import Event
    from estatehub.hub import Hub

_LOGGER = logging.getLogger(__name__)

DOMAIN = "notify"
UNROUTED = "notify.unrouted"
DEDUPED = "notify.deduplicated"
DEFAULT_DEDUPE_WINDOW = timedelta(seconds=60)
_DEDUPE_PRUNE_AT = 1000

_CHANNEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def channel_name(value: Any) -> str:
    """A channel name: lower-case letters, digits, ``_`` and ``-`` (``desk_wecom``)."""
    if not isinstance(value, str) or not _CHANNEL_NAME.fullmatch(value):
        raise vol.Invalid(
            f"expected a channel name (lower-case letters, digits, '_' and '-'), got {value!r}"
        )
    return value


_RATE_LIMIT = vol.Schema(
    {
        vol.Optional("count", default=20): cv.positive_int,
        vol.Optional("per", default=timedelta(minutes=1)): cv.duration,
    }
)
_RETRY = vol.Schema(
    {
        vol.Optional("attempts", default=5): cv.positive_int,
        vol.Optional("initial", default=timedelta(seconds=2)): cv.duration,
        vol.Optional("max", default=timedelta(minutes=1)): cv.duration,
    }
)
_POLICY_KEYS = ("type", "rate_limit", "retry", "timeout", "queue_size")
_CHANNEL = vol.Schema(
    {
        vol.Required("type"): vol.All(str, vol.Length(min=1)),
        vol.Optional("rate_limit", default=dict): _RATE_LIMIT,
        vol.Optional("retry", default=dict): _RETRY,
        vol.Optional("timeout", default=timedelta(seconds=10)): cv.duration,
        vol.Optional("queue_size", default=1000): cv.positive_int,
    },
    extra=vol.ALLOW_EXTRA,  # the rest are the notifier type's own options
)
NOTIFY_SCHEMA = vol.Schema(
    {
        vol.Optional("dedupe_window", default=DEFAULT_DEDUPE_WINDOW): cv.duration,
        vol.Required("channels"): vol.All({channel_name: _CHANNEL}, vol.Length(min=1)),
        vol.Optional("targets", default=dict): {
            vol.All(str, vol.Length(min=1)): vol.All(
                cv.ensure_list, [channel_name], vol.Length(min=1)
            )
        },
        vol.Optional("incidents", default=True): bool,
    }
)
SEND_SCHEMA = vol.Schema(
    {
        vol.Required("target"): vol.All(cv.ensure_list, [vol.Coerce(str)], vol.Length(min=1)),
        vol.Required("message"): vol.All(str, vol.Length(min=1)),
        vol.Optional("title", default=""): str,
        vol.Optional("data", default=dict): dict,
    }
)


def notifier_specs(hub: Hub) -> dict[str, NotifierSpec]:
    """The notifier types installed: from the core's registrar hook when it has one.

    Until the core has ``estatehub_register_notifiers``, the built-in types are used.
    """
    registered = getattr(hub.plugins.registrations(), "notifiers", None)
    if registered:
        return dict(registered)
    return {spec.name: spec for spec in BUILTIN_NOTIFIERS}


def _policy(channel: Mapping[str, Any]) -> DeliveryPolicy:
    return DeliveryPolicy(
        attempts=channel["retry"]["attempts"],
        backoff_initial=channel["retry"]["initial"],
        backoff_max=channel["retry"]["max"],
        timeout=channel["timeout"],
        rate_count=channel["rate_limit"]["count"],
        rate_period=channel["rate_limit"]["per"],
        queue_size=channel["queue_size"],
    )


class NotifyModule:
    """The notify subsystem as the hub runs it."""

    def __init__(self, hub: Hub, config: Mapping[str, Any]) -> None:
        self._hub = hub
        self._config = config
        self.dedupe_window = config["dedupe_window"].total_seconds()
        self.duplicates = 0
        self.unrouted = 0
        self._specs = notifier_specs(hub)
        self._options: dict[str, tuple[NotifierSpec, dict[str, Any]]] = {}
        for name, channel in config["channels"].items():
            self._options[name] = self._validate_channel(name, channel)
        self._exact: dict[str, tuple[str, ...]] = {}
        self._patterns: list[tuple[str, tuple[str, ...]]] = []
        for target, channels in config["targets"].items():
            for channel in channels:
                if channel not in self._options:
                    raise NotifyError(
                        f"notify target {target!r} names channel {channel!r}, which is not "
                        f"under channels: ({', '.join(sorted(self._options))})"
                    )
            if any(ch in target for ch in "*?["):
                self._patterns.append((target, tuple(channels)))
            else:
                self._exact[target] = tuple(channels)
        self.channels: dict[str, Channel] = {}
        self._recent: dict[tuple[str, str, str], float] = {}
        self._session: aiohttp.ClientSession | None = None
        self._undo: list[Callable[[], None]] = []

    def _validate_channel(
        self, name: str, channel: Mapping[str, Any]
    ) -> tuple[NotifierSpec, dict[str, Any]]:
        spec = self._specs.get(channel["type"])
        if spec is None:
            raise NotifyError(
                f"notify channel {name!r}: unknown type {channel['type']!r} "
                f"(installed: {', '.join(sorted(self._specs))})"
            )
        options = {k: v for k, v in channel.items() if k not in _POLICY_KEYS}
        if spec.options_schema is not None:
            schema = (
                spec.options_schema
                if isinstance(spec.options_schema, vol.Schema)
                else vol.Schema(spec.options_schema)
            )
            try:
                options = schema(options)
            except vol.Invalid as err:
                # The message names the option, never its (possibly secret) value.
                raise NotifyError(
                    f"notify channel {name!r} ({spec.name}): {err.msg} at "
                    f"{' → '.join(str(p) for p in err.path) or 'options'}"
                ) from None
        return spec, options

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, hub: Hub) -> None:
        """Build every channel's notifier, start its worker, register the service."""
        self._session = aiohttp.ClientSession()
        for name, (spec, options) in self._options.items():
            policy = _policy(self._config["channels"][name])
            context = NotifierContext(
                channel=name,
                session=self._session,
                timestamp=hub.clock.timestamp,
                timeout=policy.timeout.total_seconds(),
            )
            channel = Channel(
                name,
                spec.name,
                spec.factory(context, options),
                policy,
                clock=hub.clock,
                store=hub.store,
                bus=hub.bus,
            )
            self.channels[name] = channel
            channel.start()
        self._undo.append(
            hub.services.register(
                DOMAIN,
                "send",
                self._send_service,
                schema=SEND_SCHEMA,
                description="Queue a message for one or more targets; returns once queued",
            )
        )
        if self._config["incidents"]:
            self._undo.append(hub.bus.listen("incident.raised", self._on_incident))
            self._undo.append(hub.bus.listen("incident.escalated", self._on_incident))

    async def stop(self) -> None:
        """Stop the workers (queued notifications are abandoned) and close the session."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        await asyncio.gather(*(channel.stop() for channel in self.channels.values()))
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- routing ----------------------------------------------------------------------

    def channels_for(self, target: str) -> tuple[str, ...]:
        """The channels a target goes to: its own entry, else every pattern that matches."""
        exact = self._exact.get(target)
        if exact is not None:
            return exact
        found: list[str] = []
        for pattern, channels in self._patterns:
            if fnmatch.fnmatchcase(target, pattern):
                found.extend(c for c in channels if c not in found)
        return tuple(found)

    def send(
        self,
        targets: Iterable[str],
        message: str,
        *,
        title: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue ``message`` for each target on each of its channels; never waits.

        Returns ``{"queued": [{"id", "target", "channels"}], "duplicates": [target …],
        "unrouted": [target …]}``.
        """
        now = self._hub.clock.timestamp()
        result: dict[str, list[Any]] = {"queued": [], "duplicates": [], "unrouted": []}
        for target in targets:
            key = (target, title, message)
            seen = self._recent.get(key)
            if seen is not None and now - seen < self.dedupe_window:
                self.duplicates += 1
                result["duplicates"].append(target)
                self._hub.store.audit(
                    self._hub.clock.now(), "notify", DEDUPED, target, {"first_at": seen}
                )
                continue
            channels = self.channels_for(target)
            if not channels:
                self.unrouted += 1
                result["unrouted"].append(target)
                _LOGGER.warning("notify: no channel for target %r: %s", target, title or message)
                self._hub.store.audit(
                    self._hub.clock.now(), "notify", UNROUTED, target, {"title": title}
                )
                continue
            self._remember(key, now)
            notification = Notification(
                id=self._next_id(),
                target=target,
                message=message,
                title=title,
                data=dict(data or {}),
                created_at=self._hub.clock.now(),
            )
            queued = [name for name in channels if self.channels[name].enqueue(notification)]
            result["queued"].append({"id": notification.id, "target": target, "channels": queued})
        return result

    def _remember(self, key: tuple[str, str, str], now: float) -> None:
        if len(self._recent) >= _DEDUPE_PRUNE_AT:
            horizon = now - self.dedupe_window
            self._recent = {k: t for k, t in self._recent.items() if t > horizon}
        self._recent[key] = now

    def _next_id(self) -> str:
        now = self._hub.clock.now()
        return f"N-{now:%Y%m%d}-{self._hub.store.next_sequence(f'notify:{now:%Y%m%d}'):05d}"

    # -- inputs -----------------------------------------------------------------------

    def _send_service(self, call: ServiceCall) -> dict[str, Any]:
        data = call.data
        return self.send(data["target"], data["message"], title=data["title"], data=data["data"])

    def _on_incident(self, event: Event) -> None:
        data = event.data
        targets = data.get("notify") or []
        if not targets:
            return
        repeat = data.get("repeat", 0)
        title = f"[{data['severity']}] {data['kind']} · {data['location']}"
        lines = [data["summary"]]
        if data.get("instruction"):
            lines.append(data["instruction"])
        lines.append(f"{data['id']}" + (f" (repeat {repeat})" if repeat else ""))
        self.send(
            targets,
            "\n".join(lines),
            title=title,
            data={
                "incident": data["id"],
                "kind": data["kind"],
                "severity": data["severity"],
                "location": data["location"],
                "level": data.get("level", 0),
                "repeat": repeat,
            },
        )

    # -- for tests and the API --------------------------------------------------------

    async def idle(self, channels: Iterable[str] | None = None, timeout: float = 5.0) -> None:
        """Wait (real time) until the given channels have nothing to do right now.

        "Nothing to do" means not sending, and either empty or waiting on the hub clock.
        Raises ``TimeoutError`` naming the busy channels after ``timeout`` seconds.
        """
        names = list(channels) if channels is not None else list(self.channels)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            busy = [
                name
                for name in names
                if self.channels[name].state is WorkerState.SENDING
                or (self.channels[name].state is WorkerState.IDLE and self.channels[name].pending)
            ]
            if not busy:
                await asyncio.sleep(0)
                return
            if loop.time() > deadline:
                raise TimeoutError(f"notify channels still busy: {', '.join(busy)}")
            await asyncio.sleep(0.005)
