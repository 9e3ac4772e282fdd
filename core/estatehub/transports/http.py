"""Webhooks on the hub's aiohttp application.

Vendor adapters register a path (``/api/webhook/hikvision/gate-north``) and a synchronous
handler. The transport reads the body in full (with a size limit), hands every request to
the capture taps, then to the handler. A handler raising :class:`PayloadRejected` becomes
a counted ``transport.rejected`` event and a ``400`` answer naming the reason.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from ..exceptions import PayloadRejected, TransportError
from .base import HttpReply, InboundHttp, Unsubscribe, WebhookHandler

if TYPE_CHECKING:
    from datetime import datetime

_LOGGER = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/api/webhook/"
MAX_BODY_BYTES = 8 * 1024 * 1024


class HttpTransport:
    """Routes webhook requests to the handlers adapters registered."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        on_rejected: Callable[[InboundHttp, str], None],
    ) -> None:
        self._now = now
        self._on_rejected = on_rejected
        self._handlers: dict[str, WebhookHandler] = {}
        self._sources: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] = {}
        self.taps: list[Callable[[InboundHttp], None]] = []
        self.received = 0

    def register_webhook(
        self, path: str, handler: WebhookHandler, *, sources: Iterable[str] | None = None
    ) -> Unsubscribe:
        """Serve ``path`` (must start with ``/api/webhook/``) with ``handler``.

        ``sources`` (addresses or networks, ``"192.0.2.10"``, ``"10.1.0.0/16"``) limits who
        may push: devices cannot send bearer tokens, so the source address is what keeps a
        webhook from being an anonymous write. A push from elsewhere is answered 403 and
        counted as rejected. None accepts any source.
        """
        if not path.startswith(WEBHOOK_PREFIX) or len(path) <= len(WEBHOOK_PREFIX):
            raise TransportError(f"webhook path {path!r} must start with {WEBHOOK_PREFIX}")
        if path in self._handlers:
            raise TransportError(f"webhook path {path} is already registered")
        if sources is not None:
            try:
                self._sources[path] = tuple(ipaddress.ip_network(s, strict=False) for s in sources)
            except ValueError as err:
                raise TransportError(f"webhook {path}: bad source address: {err}") from None
        self._handlers[path] = handler

        def unregister() -> None:
            if self._handlers.get(path) is handler:
                del self._handlers[path]
                self._sources.pop(path, None)

        return unregister

    def paths(self) -> list[str]:
        """Every registered webhook path."""
        return sorted(self._handlers)

    def dispatch(self, request: InboundHttp) -> HttpReply:
        """Hand one request to taps and its handler; used live and by replay."""
        self.received += 1
        for tap in self.taps:
            tap(request)
        handler = self._handlers.get(request.path)
        if handler is None:
            reason = f"no webhook registered at {request.path}"
            self._on_rejected(request, reason)
            return HttpReply(404, reason)
        try:
            reply = handler(request)
        except PayloadRejected as err:
            self._on_rejected(request, err.reason)
            return HttpReply(400, err.reason)
        except Exception as err:
            _LOGGER.exception("webhook handler for %s failed", request.path)
            reason = f"handler error: {type(err).__name__}: {err}"
            self._on_rejected(request, reason)
            return HttpReply(500, "internal error")
        return reply or HttpReply()

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp route for every webhook path."""
        if request.method not in ("POST", "PUT"):
            return web.Response(
                status=405, text=f"{request.method} not allowed: devices push with POST or PUT"
            )
        allowed = self._sources.get(request.path)
        if allowed is not None and not _source_allowed(request.remote, allowed):
            reason = f"push from {request.remote or 'an unknown address'} refused: not an allowed source for {request.path}"
            self._on_rejected(self._bodyless(request), reason)
            return web.Response(status=403, text=reason)
        try:
            body = await read_limited(request, MAX_BODY_BYTES)
        except BodyTooLarge as err:
            self._on_rejected(self._bodyless(request), str(err))
            return web.Response(status=413, text=str(err))
        except Exception as err:  # the client went away half-way
            return web.Response(status=400, text=f"could not read body: {err}")
        inbound = InboundHttp(
            method=request.method,
            path=request.path,
            content_type=request.headers.get("Content-Type", ""),
            body=body,
            received_at=self._now(),
            headers=dict(request.headers),
            query=dict(request.query),
            remote=request.remote or "",
        )
        reply = self.dispatch(inbound)
        return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)

    def _bodyless(self, request: web.Request) -> InboundHttp:
        return InboundHttp(
            request.method,
            request.path,
            request.headers.get("Content-Type", ""),
            b"",
            self._now(),
            remote=request.remote or "",
        )

    def add_routes(self, app: web.Application) -> None:
        """Mount the webhook route on the hub's application."""
        app.router.add_route("*", WEBHOOK_PREFIX + "{tail:.+}", self.handle)


class BodyTooLarge(TransportError):
    """A request body went over the size limit (whatever its Content-Length said)."""


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole request body, or :class:`BodyTooLarge` past ``limit`` bytes.

    ``request.content.read(n)`` returns what has arrived so far, not the whole body; a
    camera's 1 MB multipart push comes in many pieces, and chunked bodies carry no
    Content-Length to check up front. So: read to the end, counting.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body of {request.content_length} bytes is over the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _source_allowed(
    remote: str | None, allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowed)
