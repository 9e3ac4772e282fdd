"""Shared pieces for the hikvision plugin tests: fixture files, request builders, a camera."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from estatehub.transports.base import HttpReply, InboundHttp

FIXTURES = Path(__file__).parent / "fixtures"
RECEIVED_AT = datetime(2026, 3, 1, 0, 15, 9, tzinfo=UTC)
CAPTURE_BOUNDARY = "---------------------------7d9a2c31e0f44"
CAPTURE_CONTENT_TYPE = f"multipart/form-data; boundary={CAPTURE_BOUNDARY}"


def fixture_bytes(name: str) -> bytes:
    """The bytes of ``tests/fixtures/<name>``."""
    return (FIXTURES / name).read_bytes()


def inbound(
    content_type: str, body: bytes, path: str = "/api/webhook/hikvision/north"
) -> InboundHttp:
    """A webhook request as the hub's HTTP transport would hand it over."""
    return InboundHttp(
        method="POST",
        path=path,
        content_type=content_type,
        body=body,
        received_at=RECEIVED_AT,
        headers={"Content-Type": content_type},
        remote="192.0.2.64",
    )


def multipart(
    parts: list[tuple[str, str, bytes]],
    *,
    boundary: str = "MIME_boundary_test",
    line_break: bytes = b"\r\n",
    closing: bool = True,
    preamble: bytes = b"",
) -> bytes:
    """Assemble a multipart body from ``(name, content_type, data)`` parts."""
    out = [preamble]
    for name, content_type, data in parts:
        head = [
            f'Content-Disposition: form-data; name="{name}"; filename="{name}"',
            f"Content-Type: {content_type}",
        ]
        out.append(b"--" + boundary.encode() + line_break)
        out.append(line_break.join(line.encode() for line in head) + line_break + line_break)
        out.append(data + line_break)
    if closing:
        out.append(b"--" + boundary.encode() + b"--" + line_break)
    return b"".join(out)


FAKE_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\r\n--\x00\xff\xd9"
)


@dataclass
class WebhookTable:
    """Stands in for ``hub.http``: records webhooks the way the hub's transport will."""

    handlers: dict[str, Callable[[InboundHttp], HttpReply | None]] = field(default_factory=dict)
    sources: dict[str, object] = field(default_factory=dict)

    def register_webhook(
        self,
        path: str,
        handler: Callable[[InboundHttp], HttpReply | None],
        *,
        sources: object = None,
    ) -> Callable[[], None]:
        if path in self.handlers:
            raise AssertionError(f"webhook {path} registered twice")
        self.handlers[path] = handler
        self.sources[path] = sources

        def unregister() -> None:
            del self.handlers[path]

        return unregister


@dataclass
class HubStandIn:
    """The part of the hub a gate adapter touches."""

    http: WebhookTable = field(default_factory=WebhookTable)


@pytest.fixture
def load() -> Callable[[str], bytes]:
    """Read a fixture file: ``load("anpr_push.json")``."""
    return fixture_bytes


@pytest.fixture
def push() -> Callable[..., InboundHttp]:
    """Build a webhook request: ``push(content_type, body)`` (received at RECEIVED_AT)."""
    return inbound


@pytest.fixture
def build_multipart() -> Callable[..., bytes]:
    """Assemble a multipart body: ``build_multipart([(name, type, data), ...], ...)``."""
    return multipart


@pytest.fixture
def hub() -> HubStandIn:
    """A hub stand-in with an HTTP webhook table."""
    return HubStandIn()


@dataclass
class RecordedRequest:
    """What the camera stand-in received and accepted."""

    method: str
    path: str
    content_type: str
    body: bytes
    authorization: str


_AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@dataclass
class DigestCamera:
    """An ISAPI endpoint that enforces RFC 7616 digest auth (MD5, qop=auth) for real.

    ``delay`` makes it slow (for timeout tests); ``status`` is what it answers once the
    request is authenticated.
    """

    username: str | None = "admin"
    password: str = "Gate-Pass-7731"
    realm: str = "IP Camera(E0001)"
    status: int = 200
    answer: str = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
        "<requestURL>/ISAPI/Parking/channels/1/barrierGate</requestURL>\n"
        "<statusCode>1</statusCode>\n<statusString>OK</statusString>\n"
        "<subStatusCode>ok</subStatusCode>\n</ResponseStatus>\n"
    )
    delay: float = 0.0
    accepted: list[RecordedRequest] = field(default_factory=list)
    challenges: int = 0
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))

    def _challenge(self) -> web.Response:
        self.challenges += 1
        return web.Response(
            status=401,
            headers={
                "WWW-Authenticate": (
                    f'Digest qop="auth", realm="{self.realm}", nonce="{self.nonce}", stale="FALSE"'
                )
            },
        )

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        params = {key: quoted or bare for key, quoted, bare in _AUTH_PARAM.findall(header[7:])}

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"{request.method}:{params.get('uri', '')}")
        expected = md5(
            f"{ha1}:{self.nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
        )
        return (
            params.get("username") == self.username
            and params.get("realm") == self.realm
            and params.get("nonce") == self.nonce
            and params.get("uri") == request.path_qs
            and params.get("qop") == "auth"
            and params.get("response") == expected
        )

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.username is not None and not self._authorised(request):
            return self._challenge()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.accepted.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                content_type=request.headers.get("Content-Type", ""),
                body=body,
                authorization=request.headers.get("Authorization", ""),
            )
        )
        return web.Response(status=self.status, text=self.answer, content_type="application/xml")

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", self.handle)
        return application


@pytest.fixture
def serve_camera(aiohttp_server):
    """Start a :class:`DigestCamera` on 127.0.0.1: ``camera, port = await serve_camera(...)``."""

    async def serve(**settings) -> tuple[DigestCamera, int]:
        camera = DigestCamera(**settings)
        server = await aiohttp_server(camera.app(), host="127.0.0.1")
        return camera, server.port

    return serve
