"""A hub on a virtual clock, for plugin authors' tests and ours.

    async with EstateHarness.from_yaml(tmp_path, ESTATE_YAML) as estate:
        estate.post("/api/webhook/hikvision/north", content_type, body)
        await estate.settle()
        assert estate.events_of("parking.decision")[0]["verdict"] == "open"

The harness builds the hub through the same bootstrap as ``estatehub run`` (plugins from
entry points, the config validated), with the embedded broker, no API server unless asked,
and every event recorded. Time moves only through :meth:`advance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from ..bootstrap import load_config, plugins_for_config
from ..bus import Event
from ..clock import VirtualClock
from ..hub import Hub
from ..plugins import PluginManager
from ..replay import advance
from ..store import Store
from ..transports.base import HttpReply, InboundHttp, MqttMessage
from ..transports.embedded import EmbeddedMqtt

DEFAULT_START = datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class EstateHarness:
    """A started-on-demand hub for one test, with its recorded events."""

    def __init__(
        self,
        config_path: Path,
        *,
        start: datetime = DEFAULT_START,
        store_path: Path | str = ":memory:",
        plugins: PluginManager | None = None,
        serve_api: bool = False,
        replaying: bool = True,
    ) -> None:
        self.plugins = plugins or plugins_for_config(config_path)
        self.config = load_config(config_path, self.plugins)
        self.clock = VirtualClock(start, tz=self.config.timezone)
        self.hub = Hub(
            self.config,
            self.plugins,
            clock=self.clock,
            store=Store(store_path),
            mqtt=EmbeddedMqtt(now=self.clock.now),
            serve_api=serve_api,
            replaying=replaying,
        )
        self.events: list[Event] = []
        self.hub.bus.listen("*", self.events.append)

    @classmethod
    def from_yaml(
        cls, folder: Path, text: str, *, secrets: str | None = None, **kwargs: Any
    ) -> EstateHarness:
        """Write ``text`` as ``folder/estate.yaml`` (and ``secrets.yaml``) and build a harness."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "estate.yaml").write_text(text, encoding="utf-8")
        if secrets is not None:
            (folder / "secrets.yaml").write_text(secrets, encoding="utf-8")
        return cls(folder / "estate.yaml", **kwargs)

    async def __aenter__(self) -> EstateHarness:
        await self.hub.start()
        await self.hub.settle()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hub.stop()

    # -- input ------------------------------------------------------------------------

    def post(self, path: str, content_type: str, body: bytes | str) -> HttpReply:
        """Deliver a webhook request now (as the HTTP transport would)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.hub.http.dispatch(
            InboundHttp("POST", path, content_type, data, self.clock.now())
        )

    def mqtt(self, topic: str, payload: bytes | str, *, retained: bool = False) -> None:
        """Deliver an MQTT message now (as the broker would)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        self.hub.mqtt.inject(MqttMessage(topic, data, self.clock.now(), 0, retained))

    async def call(
        self, domain: str, service: str, data: Mapping[str, Any] | None = None, user: str = "test"
    ) -> Any:
        """Call a service as ``user``."""
        result = await self.hub.services.call(domain, service, data, user=user)
        await self.settle()
        return result

    async def settle(self) -> None:
        """Let background work finish (time stands still)."""
        await self.hub.settle()

    async def advance(self, delta: timedelta | float) -> None:
        """Move the virtual clock forward, running due timers in order."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        await advance(self.hub, self.clock, self.clock.timestamp() + seconds)

    # -- output -----------------------------------------------------------------------

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        """The data of every recorded event of one type, in order."""
        return [dict(e.data) for e in self.events if e.type == event_type]

    def types(self, prefix: str = "") -> list[str]:
        """Recorded event types (those starting with ``prefix``), state changes left out."""
        return [
            e.type for e in self.events if e.type.startswith(prefix) and e.type != "state_changed"
        ]

    def clear(self) -> None:
        """Forget the events recorded so far."""
        self.events.clear()
