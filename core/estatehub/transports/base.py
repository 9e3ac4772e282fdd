"""Messages that transports hand to adapters, and what adapters may answer.

These are the only shapes a vendor adapter sees of the network: it never opens a socket for
inbound traffic itself (see DESIGN.md, "Transports, capture and replay").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One MQTT message delivered to a subscriber.

    ``retained`` is True when the broker sent a stored message on subscribe: state from
    before the hub was listening, which must never actuate anything.
    """

    topic: str
    payload: bytes
    received_at: datetime
    qos: int = 0
    retained: bool = False

    def text(self) -> str:
        """The payload as UTF-8 text (a BOM is dropped); raises UnicodeDecodeError."""
        return self.payload.decode("utf-8-sig")


@dataclass(frozen=True, slots=True)
class InboundHttp:
    """One webhook request, read in full, as the adapter's handler sees it.

    ``path`` is the request path; ``headers`` keep their original case for display but
    lookups should go through :meth:`header`.
    """

    method: str
    path: str
    content_type: str
    body: bytes
    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    remote: str = ""

    def header(self, name: str, default: str = "") -> str:
        """Case-insensitive header lookup."""
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return default


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What a webhook handler answers; the default is ``200 OK`` with an empty body."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


MqttCallback = Callable[[MqttMessage], None]
"""A synchronous, loop-safe MQTT subscriber; it must not block or do I/O."""

WebhookHandler = Callable[[InboundHttp], "HttpReply | None"]
"""A synchronous, loop-safe webhook handler; long work goes to a task it creates."""

Unsubscribe = Callable[[], None]
"""Returned by every subscribe/register call; calling it undoes the registration."""
