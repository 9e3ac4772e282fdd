"""Fixtures: a hub with the notify plugin, a local robot/webhook server and an SMTP server.

Everything listens on 127.0.0.1 only; no test reaches the internet.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

# Until estatehub-notify is in requirements.txt (installed editable like the other plugins),
# make its package importable from the source tree.
if importlib.util.find_spec("estatehub_notify") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import estatehub_notify.plugin
from estatehub.plugins import PluginManager
from estatehub.testing.harness import EstateHarness


def notify_plugins() -> PluginManager:
    """A plugin manager with only the notify plugin (no entry points needed)."""
    manager = PluginManager(environ={})
    manager.register(estatehub_notify.plugin, "notify")
    manager.check()
    return manager


def harness(folder: Path, text: str, **kwargs: Any) -> EstateHarness:
    """An estate harness for ``text`` with the notify plugin."""
    return EstateHarness.from_yaml(folder, text, plugins=notify_plugins(), **kwargs)


def module_of(estate: EstateHarness) -> Any:
    """The running NotifyModule."""
    return estate.hub.modules["notify"].module


@dataclass
class Received:
    """One request the fake robot server got."""

    path: str
    query: dict[str, str]
    body: Any


@dataclass
class RobotServer:
    """A local stand-in for the WeCom / DingTalk / webhook endpoints.

    ``script[path]`` is a list of HTTP statuses answered in turn (then 200); the path
    ``/hang`` never answers until the test ends.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies received on ``path``, in order."""
        return [r.body for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received.append(Received(request.path, dict(request.query), body))
        if request.path == "/hang":
            await self.release.wait()
        statuses = self.script.get(request.path, [])
        status = statuses.pop(0) if statuses else 200
        if status != 200:
            return web.Response(status=status, text="upstream busy")
        return web.json_response(self.answer)


@pytest.fixture
async def robot() -> AsyncIterator[RobotServer]:
    server = RobotServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    server.release.set()
    await runner.cleanup()


@dataclass
class SmtpServer:
    """A tiny SMTP server (asyncio streams) that keeps every message it accepts."""

    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(line: str) -> None:
            writer.write(line.encode("ascii") + b"\r\n")

        sender, recipients = "", []
        reply("220 localhost test SMTP")
        while line := await reader.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                data = await reader.readuntil(b"\r\n.\r\n")
                self.messages.append((sender, recipients, data[: -len(b"\r\n.\r\n")]))
                reply("250 OK queued")
            elif verb == "QUIT":
                reply("221 bye")
                await writer.drain()
                break
            else:
                reply("502 not implemented")
            await writer.drain()
        writer.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    listener = await asyncio.start_server(server.session, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    yield server
    listener.close()
    await listener.wait_closed()


def audit_entries(estate: EstateHarness, channel: str) -> list[tuple[str, dict[str, Any]]]:
    """(action, detail) of every audit entry about one channel, oldest first."""
    return [
        (entry.action, dict(entry.detail))
        for entry in estate.hub.store.audit_entries(subject=f"notify:{channel}")
    ]


@pytest.fixture
def make_estate(tmp_path: Path) -> Callable[..., EstateHarness]:
    """``make_estate(yaml_text, secrets=None)``: a harness with the notify plugin."""
    return lambda text, **kwargs: harness(tmp_path, text, **kwargs)


@pytest.fixture
def notify_module() -> Callable[[EstateHarness], Any]:
    """``notify_module(estate)``: the running NotifyModule."""
    return module_of


@pytest.fixture
def audit_of() -> Callable[[EstateHarness, str], list[tuple[str, dict[str, Any]]]]:
    """``audit_of(estate, channel)``: (action, detail) of that channel's audit entries."""
    return audit_entries
