"""A real Mosquitto and a stand-in for ``hub.mqtt`` built on a real ``aiomqtt.Client``.

The broker test runs the adapter over this stand-in, which offers the same ``subscribe`` /
``publish`` / ``publish_command`` interface on a plain client talking to a real broker (no
mocks), so it checks the adapter against the broker independently of the hub's transport.
The adapter on the hub's own transport is tested in ``test_adapter.py`` (embedded) and the
transport itself in ``tests/test_mqtt_transport.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from estatehub.exceptions import PayloadRejected
from estatehub.transports.base import MqttCallback, MqttMessage, Unsubscribe

MOSQUITTO = "/usr/sbin/mosquitto"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HUB_NOW = datetime(2026, 3, 1, 8, 15, 2, tzinfo=SHANGHAI)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def mosquitto_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Start a private Mosquitto on a free loopback port; stop it by PID afterwards."""
    directory: Path = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "persistence false\n"
    )
    log_path = directory / "mosquitto.log"
    with log_path.open("wb") as log:
        broker = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if broker.poll() is not None:
                raise RuntimeError(f"mosquitto exited early: {log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {port}: {log_path.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(timeout=5)


class FrozenClock:
    """The hub clock, frozen so ``received_at`` can be asserted exactly."""

    def now(self) -> datetime:
        """Always 2026-03-01 08:15:02 in Shanghai."""
        return HUB_NOW


class AiomqttStandIn:
    """``hub.mqtt`` as adapters see it, on a real ``aiomqtt.Client``.

    ``subscribe`` is synchronous like the hub's: it registers the callback at once and
    sends the SUBSCRIBE in a task; :meth:`settle` waits for those tasks. A callback that
    raises :class:`PayloadRejected` is counted in :attr:`rejections`, as the hub does.
    """

    def __init__(self, client: aiomqtt.Client, clock: FrozenClock) -> None:
        self._client = client
        self._clock = clock
        self._callbacks: dict[object, tuple[str, MqttCallback]] = {}
        self._pending: set[asyncio.Task[object]] = set()
        self.rejections: list[str] = []

    def subscribe(self, topic_filter: str, callback: MqttCallback, qos: int = 1) -> Unsubscribe:
        """Register ``callback`` for ``topic_filter`` and subscribe at the broker."""
        token = object()
        self._callbacks[token] = (topic_filter, callback)
        self._track(self._client.subscribe(topic_filter, qos=qos))

        def unsubscribe() -> None:
            if self._callbacks.pop(token, None) is None:
                return
            if all(existing != topic_filter for existing, _ in self._callbacks.values()):
                self._track(self._client.unsubscribe(topic_filter))

        return unsubscribe

    def _track(self, operation: object) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(operation)  # type: ignore[arg-type]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait until every SUBSCRIBE/UNSUBSCRIBE sent so far has been acknowledged."""
        while self._pending:
            await asyncio.gather(*self._pending)

    async def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish as the hub would."""
        await self._client.publish(topic, payload, qos=qos, retain=retain)

    async def publish_command(self, topic: str, payload: bytes | str) -> None:
        """Publish a command: always QoS 1, never retained."""
        await self.publish(topic, payload, qos=1, retain=False)

    async def dispatch_forever(self) -> None:
        """Hand every incoming message to the callbacks whose filter matches."""
        async for incoming in self._client.messages:
            payload = incoming.payload
            message = MqttMessage(
                topic=incoming.topic.value,
                payload=payload if isinstance(payload, bytes) else str(payload or "").encode(),
                received_at=self._clock.now(),
                qos=incoming.qos,
                retained=incoming.retain,
            )
            for topic_filter, callback in list(self._callbacks.values()):
                if incoming.topic.matches(topic_filter):
                    try:
                        callback(message)
                    except PayloadRejected as rejected:
                        self.rejections.append(rejected.reason)


@dataclass
class StandInHub:
    """The two parts of the hub an MQTT adapter touches."""

    mqtt: AiomqttStandIn
    clock: FrozenClock


@pytest.fixture
async def hub(mosquitto_port: int) -> AsyncIterator[StandInHub]:
    """A stand-in hub connected to the private broker, dispatching until the test ends."""
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_port, identifier=f"hub-{uuid.uuid4().hex[:8]}"
    ) as client:
        transport = AiomqttStandIn(client, FrozenClock())
        dispatcher = asyncio.create_task(transport.dispatch_forever(), name="stand-in dispatch")
        try:
            yield StandInHub(mqtt=transport, clock=FrozenClock())
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher


@pytest.fixture
async def device(mosquitto_port: int) -> AsyncIterator[aiomqtt.Client]:
    """A second, independent client playing zigbee2mqtt."""
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_port, identifier=f"z2m-{uuid.uuid4().hex[:8]}"
    ) as client:
        yield client


@pytest.fixture
def unique_base_topic() -> str:
    """A base topic no other test uses, so retained messages never leak between tests."""
    return f"zigbee2mqtt-{uuid.uuid4().hex[:8]}"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the loop until it holds (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
def until() -> Callable[..., object]:
    """:func:`wait_until`, as a fixture (test modules cannot import conftest)."""
    return wait_until
