"""Notify: the models a notifier plugin sees, and the hook that registers notifier types.

A notifier delivers one :class:`Notification` on one channel (a WeCom robot, an e-mail
address …). The ``notify`` plugin owns queues, retries, rate limits, dedupe and the audit
trail; a notifier makes a single attempt and raises :class:`DeliveryError` when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import EstatehubError

if TYPE_CHECKING:
    import aiohttp


class NotifyError(EstatehubError):
    """Root of the notify subsystem's errors (bad channel options, unknown notifier type)."""


class DeliveryError(NotifyError):
    """One delivery attempt failed; ``retryable`` says whether trying again can help.

    :param reason: what went wrong, for the audit log (never the channel's secret).
    :param retryable: False for answers that will not change (a rejected key, HTTP 400).
    """

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one target, as every notifier receives it.

    :param id: ``N-20260302-00001``, also in the audit log.
    :param target: who it is for (``property_desk``, ``household:h-wang``).
    :param message: the text.
    :param title: a short headline, or ``""``.
    :param data: extra JSON-friendly fields (the incident id and severity for incidents).
    :param created_at: when it was queued, on the hub clock.
    """

    id: str
    target: str
    message: str
    title: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


class Notifier(Protocol):
    """Delivers notifications on one channel; raise :class:`DeliveryError` on failure."""

    async def send(self, message: Notification) -> None:
        """Deliver one notification (one attempt); the caller handles retries and timeouts."""


@dataclass(frozen=True, slots=True)
class NotifierContext:
    """What a notifier factory gets besides its options.

    :param channel: the channel's name in the config (``desk_wecom``).
    :param session: the module's shared aiohttp client session (HTTP notifiers use it).
    :param timestamp: seconds since the epoch on the hub clock (signatures, times in bodies).
    :param timeout: the per-attempt timeout in seconds (blocking clients such as SMTP use it).
    """

    channel: str
    session: aiohttp.ClientSession
    timestamp: Callable[[], float]
    timeout: float


@dataclass(frozen=True, slots=True)
class NotifierSpec:
    """A notifier type estates name as a channel's ``type:``.

    :param name: ``"wecom"``.
    :param factory: ``factory(context, options) -> Notifier``, with validated options.
    :param options_schema: voluptuous schema (or dict) for the channel's own options.
    :param description: one line for ``estatehub plugins`` and the docs.
    """

    name: str
    factory: Callable[[NotifierContext, Mapping[str, Any]], Notifier]
    options_schema: Any = None
    description: str = ""


# Imported late: ``plugins`` imports this module to add the specs.
from ..plugins import hookspec  # noqa: E402


@hookspec
def estatehub_register_notifiers(register: Callable[[NotifierSpec], None]) -> None:
    """Register the notifier types this plugin provides (the ``type:`` of a notify channel).

    Called once at plugin load, after :func:`estatehub_register_subsystems`. Call
    ``register(NotifierSpec(...))`` once per type; ``factory(context, options)`` must return
    an object with ``async send(message: Notification) -> None`` that makes one attempt and
    raises :class:`DeliveryError` on failure (the notify module retries, times out, rate
    limits and audits). A name registered twice is an error naming both plugins.

    :param register: validates and stores a :class:`NotifierSpec`.

    Call mode: every implementation is called; return value ignored.

    .. versionadded:: 0.1
    """
