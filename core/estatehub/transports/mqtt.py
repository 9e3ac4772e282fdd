"""The hub's MQTT transport: the shared interface, and the real-broker implementation.

Adapters never talk to a broker themselves. They call ``hub.mqtt.subscribe(filter, callback)``
and ``hub.mqtt.publish(...)`` on one of two transports with the same interface:

* :class:`AiomqttTransport` (this module) when the estate config has an ``mqtt:`` section: a
  real broker through aiomqtt 2.x, with a background connection task, an explicit
  :class:`ConnectionState`, capped and jittered reconnect backoff, and every subscription
  restored after a reconnect.
* :class:`~estatehub.transports.embedded.EmbeddedMqtt` when it has none: an in-process broker.

What both share lives in :class:`MqttTransportBase`: the subscription index, dispatch into
synchronous callbacks (a callback raising :class:`~estatehub.exceptions.PayloadRejected` is
a counted rejection, and so is a :class:`RecursionError`, which deeply nested input causes;
anything else is a logged callback error; the transport keeps going), taps for capture, and
the command-topic rule: commands are QoS 1 and never retained, and a retained message found
on a command topic is cleared so that it cannot re-actuate a device every time someone
reconnects. Adapters declare their command topics with
:meth:`MqttTransportBase.guard_command_topic` when they start, so a retained command left
there is cleared at once, not only after the hub's first own command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

import aiomqtt
import paho.mqtt.client as paho

from ..exceptions import PayloadRejected, TransportError
from .base import MqttCallback, MqttMessage, Unsubscribe
from .topics import TopicIndex, validate_filter, validate_topic

_LOGGER = logging.getLogger(__name__)
_PAHO_LOGGER = logging.getLogger(__name__ + ".paho")

Tap = Callable[[MqttMessage], None]
"""Sees every inbound message before dispatch (capture records through a tap)."""

RejectedHandler = Callable[[MqttMessage, str], None]
"""Told about every payload a callback rejected, with the rejection reason."""

StateListener = Callable[["ConnectionState"], None]
"""``listener(new_state)``, called on the event loop after every change of
:attr:`MqttTransportBase.state` (never twice in a row with the same state). The reason for
a failed attempt or a lost connection is in :attr:`MqttTransportBase.last_error` by then."""


class ConnectionState(enum.StrEnum):
    """Where a transport's connection to its broker is."""

    DISCONNECTED = "disconnected"
    """Not started yet, or the connection was just lost."""
    CONNECTING = "connecting"
    """A connection attempt (TCP connect, CONNECT/CONNACK, restoring subscriptions) runs."""
    CONNECTED = "connected"
    """Connected, with every subscription in place at the broker."""
    BACKING_OFF = "backing_off"
    """Waiting out the reconnect delay after a failed or lost connection."""
    STOPPED = "stopped"
    """:meth:`MqttTransportBase.stop` ran; nothing is sent or received any more."""


@dataclasses.dataclass(slots=True)
class MqttStats:
    """Live counters of one transport; :meth:`snapshot` gives a copy that stays put."""

    received: int = 0
    """Inbound messages: from the broker, published in-process, or injected."""
    dispatched: int = 0
    """Callback calls that returned normally."""
    rejected: int = 0
    """Callback calls that raised PayloadRejected or RecursionError (passed to ``on_rejected``)."""
    callback_errors: int = 0
    """Callback calls that raised anything else (logged with topic and callback name)."""
    unmatched: int = 0
    """Inbound messages that matched no subscription."""
    reconnects: int = 0
    """Successful connections after the first one."""
    retained_commands_cleared: int = 0
    """Retained messages found on command topics and cleared."""

    def snapshot(self) -> MqttStats:
        """A copy of the counters as they are now."""
        return dataclasses.replace(self)


class MqttSettingsLike(Protocol):
    """What :class:`AiomqttTransport` reads from the ``mqtt:`` section of the estate config.

    ``estatehub.config.MqttSettings`` satisfies it; so does any object with these attributes.
    ``tls`` may be falsy (plain TCP), True (TLS with the system's CA store), an
    :class:`ssl.SSLContext`, or an object with ``ca_certs``/``certfile``/``keyfile`` (and
    optionally ``insecure``) attributes.
    """

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def client_id(self) -> str | None: ...

    @property
    def keepalive(self) -> int: ...

    @property
    def reconnect_min(self) -> float: ...

    @property
    def reconnect_max(self) -> float: ...

    @property
    def tls(self) -> Any: ...


def reconnect_delay(
    attempt: int, minimum: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before reconnect attempt number ``attempt`` (0 for the first retry).

    Full jitter: a uniform draw between ``minimum`` and a cap that doubles with every failed
    attempt (``minimum``, ``2*minimum``, ``4*minimum`` …) up to ``maximum``. The jitter keeps
    a building's worth of hubs from hammering a broker in lock-step after it restarts.
    """
    draw = (rng or random).uniform
    minimum = max(0.0, minimum)
    maximum = max(minimum, maximum)
    cap = min(maximum, minimum * 2.0 ** min(attempt, 62))
    return draw(minimum, cap)


def _callback_name(callback: object) -> str:
    name = getattr(callback, "__qualname__", None)
    if name is None:
        name = getattr(type(callback), "__qualname__", repr(callback))
    module = getattr(callback, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _recursion_reason(topic: str, callback: object) -> str:
    # The transport cannot know the payload's format, but on MQTT it is JSON nearly always,
    # and a parser recursing past the interpreter's limit is what makes a RecursionError.
    return (
        f"{topic}: callback {_callback_name(callback)} hit RecursionError, most likely on "
        "JSON nested too deeply"
    )


def _as_bytes(payload: bytes | bytearray | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    raise TransportError(f"an MQTT payload must be bytes or str, got {type(payload).__name__}")


def _check_qos(qos: int, what: str) -> None:
    if qos not in (0, 1, 2):
        raise TransportError(f"{what}: QoS must be 0, 1 or 2, got {qos!r}")


class _Subscription:
    """One local subscription; ``active`` goes False the moment it is unsubscribed."""

    __slots__ = ("active", "callback", "qos", "topic_filter")

    def __init__(self, topic_filter: str, callback: MqttCallback, qos: int) -> None:
        self.topic_filter = topic_filter
        self.callback = callback
        self.qos = qos
        self.active = True


class MqttTransportBase(ABC):
    """The MQTT interface adapters code against; both transports implement it.

    Callbacks are synchronous and run on the event loop. ``subscribe`` may be called before
    :meth:`start`. ``taps`` see every inbound message before dispatch; ``on_rejected`` (set by
    the hub) hears about every payload a callback rejected; ``state_listeners`` are called
    with the new :class:`ConnectionState` on every change of :attr:`state`. Usable as
    ``async with``.
    """

    def __init__(self, *, now: Callable[[], datetime]) -> None:
        self._now = now
        self._index: TopicIndex[_Subscription] = TopicIndex()
        self._command_topics: set[str] = set()
        self.state = ConnectionState.DISCONNECTED
        self.last_error: str | None = None
        """Why the last connection attempt failed or the connection was lost; None while
        connected and before the first failure."""
        self.taps: list[Tap] = []
        self.on_rejected: RejectedHandler | None = None
        self.state_listeners: list[StateListener] = []
        self.stats = MqttStats()

    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Begin connecting/serving; returns without waiting for the broker."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect, cancel and await every background task; the state becomes STOPPED."""

    @abstractmethod
    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once the state is CONNECTED; TransportError after ``timeout`` seconds."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _set_state(self, state: ConnectionState) -> None:
        if state is self.state:
            return
        self.state = state
        for listener in list(self.state_listeners):
            try:
                listener(state)
            except Exception:
                _LOGGER.exception("MQTT state listener %s failed", _callback_name(listener))

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, topic_filter: str, callback: MqttCallback, qos: int = 1) -> Unsubscribe:
        """Call ``callback`` for every message whose topic matches ``topic_filter``.

        Wildcards ``+`` and ``#`` are allowed; a bad filter raises
        :class:`~estatehub.transports.topics.InvalidTopicError` (a TransportError). Returns
        a callable that undoes this subscription; calling it twice is harmless.
        """
        validate_filter(topic_filter)
        _check_qos(qos, f"subscription to {topic_filter!r}")
        subscription = _Subscription(topic_filter, callback, qos)
        is_new_filter = self._index.add(topic_filter, subscription)
        self._filter_added(subscription, is_new_filter)

        def unsubscribe() -> None:
            if not subscription.active:
                return
            subscription.active = False
            if self._index.discard(topic_filter, subscription):
                self._filter_removed(topic_filter)

        return unsubscribe

    def subscriptions(self) -> list[tuple[str, int]]:
        """(filter, QoS) of every active filter: the union asked of the broker."""
        return [(f, self._filter_qos(f)) for f in self._index.filters()]

    def _filter_qos(self, topic_filter: str) -> int:
        return max((s.qos for s in self._index.items_for(topic_filter)), default=0)

    @abstractmethod
    def _filter_added(self, subscription: _Subscription, is_new_filter: bool) -> None:
        """A local subscription was added (the filter may already have had others)."""

    @abstractmethod
    def _filter_removed(self, topic_filter: str) -> None:
        """The last local subscription on ``topic_filter`` went away."""

    # -- publishing ------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish one message; raises TransportError if it cannot be handed to the broker.

        A retained publish on a command topic (one used with :meth:`publish_command`) is
        refused: a retained command would re-actuate the device on every reconnect.
        """
        validate_topic(topic)
        _check_qos(qos, f"publish to {topic!r}")
        if retain and topic in self._command_topics:
            raise TransportError(
                f"refusing to publish a retained message on command topic {topic!r}: a "
                "retained command would be replayed to the device on every reconnect"
            )
        await self._send(topic, _as_bytes(payload), qos, retain, command=False)

    async def publish_command(self, topic: str, payload: bytes | str) -> None:
        """Publish a device command: always QoS 1, never retained, never queued.

        The topic becomes a command topic as with :meth:`guard_command_topic` (if it was
        not one already).
        """
        validate_topic(topic)
        data = _as_bytes(payload)
        self._watch_command_topic(topic)
        await self._send(topic, data, 1, False, command=True)

    def guard_command_topic(self, topic: str) -> None:
        """Declare ``topic`` as one this hub sends device commands on; call it at start.

        The transport subscribes to the topic at once (before :meth:`start` too; the
        subscription is restored on every reconnect). A retained message found there is a
        command some other client left behind, which the broker would hand to the device
        every time it reconnects: it is cleared right away, with a warning naming the topic,
        and counted in ``stats.retained_commands_cleared``. From now on a retained
        :meth:`publish` on the topic is refused. Calling it again for the same topic does
        nothing; a guard lasts as long as the transport.

        :raises InvalidTopicError: ``topic`` is not a valid topic name (no wildcards).
        """
        validate_topic(topic)
        self._watch_command_topic(topic)

    @abstractmethod
    async def _send(
        self, topic: str, payload: bytes, qos: int, retain: bool, *, command: bool
    ) -> None:
        """Hand one message to the broker (transport-specific)."""

    def _watch_command_topic(self, topic: str) -> None:
        if topic in self._command_topics:
            return
        self._command_topics.add(topic)
        # An internal subscription: the broker replays a retained command to it on every
        # (re)subscribe, which is exactly when a retained command would do its damage.
        self.subscribe(topic, self._clear_retained_command, qos=1)

    def _clear_retained_command(self, message: MqttMessage) -> None:
        if not message.retained or not message.payload:
            return
        self.stats.retained_commands_cleared += 1
        # The payload stays out of the log: a gate command carries the plate.
        _LOGGER.warning(
            "found a retained command on %s (%d bytes); clearing it so the device is not "
            "re-actuated on every reconnect. Whoever published it must send commands with "
            "retain=false.",
            message.topic,
            len(message.payload),
        )
        self._spawn_clear(message.topic)

    @abstractmethod
    def _spawn_clear(self, topic: str) -> None:
        """Publish an empty retained message on ``topic`` in the background."""

    # -- inbound ---------------------------------------------------------------------

    def inject(self, message: MqttMessage) -> None:
        """Dispatch ``message`` locally, synchronously, as if it had come in (for replay).

        Taps and statistics see it like any other inbound message; nothing goes to a broker
        and nothing is stored as retained.
        """
        self._dispatch(message)

    def _dispatch(self, message: MqttMessage) -> None:
        # The hot path: one cached index lookup, then the callbacks in subscription order.
        self._deliver(message, self._index.match(message.topic))

    def _deliver(self, message: MqttMessage, subscriptions: tuple[_Subscription, ...]) -> None:
        stats = self.stats
        stats.received += 1
        if self.taps:
            self._run_taps(message)
        if not subscriptions:
            stats.unmatched += 1
            return
        for subscription in subscriptions:
            if not subscription.active:  # unsubscribed by an earlier callback just now
                continue
            try:
                subscription.callback(message)
            except PayloadRejected as exc:
                self._rejected(message, exc.reason)
            except RecursionError:
                # Deeply nested input, not a crash: counted as a rejection (defence in
                # depth for adapters that do not catch it themselves).
                self._rejected(message, _recursion_reason(message.topic, subscription.callback))
            except Exception:
                stats.callback_errors += 1
                _LOGGER.exception(
                    "MQTT callback %s failed on a message on %s",
                    _callback_name(subscription.callback),
                    message.topic,
                )
            else:
                stats.dispatched += 1

    def _invoke(self, subscription: _Subscription, message: MqttMessage) -> None:
        # One callback call with the same accounting as _dispatch (which inlines this).
        try:
            subscription.callback(message)
        except PayloadRejected as exc:
            self._rejected(message, exc.reason)
        except RecursionError:
            self._rejected(message, _recursion_reason(message.topic, subscription.callback))
        except Exception:
            self.stats.callback_errors += 1
            _LOGGER.exception(
                "MQTT callback %s failed on a message on %s",
                _callback_name(subscription.callback),
                message.topic,
            )
        else:
            self.stats.dispatched += 1

    def _run_taps(self, message: MqttMessage) -> None:
        for tap in self.taps:
            try:
                tap(message)
            except Exception:
                _LOGGER.exception("MQTT tap %s failed on %s", _callback_name(tap), message.topic)

    def _rejected(self, message: MqttMessage, reason: str) -> None:
        self.stats.rejected += 1
        handler = self.on_rejected
        if handler is None:
            _LOGGER.warning("rejected MQTT payload on %s: %s", message.topic, reason)
            return
        try:
            handler(message, reason)
        except Exception:
            _LOGGER.exception("on_rejected handler failed for a message on %s", message.topic)


# --------------------------------------------------------------------------------------
# The real broker
# --------------------------------------------------------------------------------------

_READ_CHUNK = 256 * 1024
"""Bytes asked of the kernel per read: a few thousand small MQTT packets."""

_PACKETS_PER_READ_EVENT = 512
"""Packets handled per socket-readable event before yielding to the rest of the loop.

At roughly 10-20 µs per packet this bounds one read burst to a few milliseconds, so a
flood of sensor traffic cannot starve timers and the API.
"""


def _no_delay(sock: Any) -> None:
    # Commands must not wait for Nagle: the hub's PUBACK for a plate read and the barrier
    # command that follows go out on the same socket, and without TCP_NODELAY the command
    # sits until the broker's delayed ACK (~40 ms) — measured in bench/gate_latency.py.
    raw = getattr(sock, "_sock", sock)
    # Not a TCP socket (e.g. websockets over a proxy): nothing to tune.
    with contextlib.suppress(OSError, AttributeError):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ReadBufferedSocket:
    """A TCP socket whose ``recv`` is served from one large read.

    paho reads a packet with three tiny ``recv`` calls (type byte, length bytes, body), one
    system call each. Wrapping the socket lets one kernel read feed thousands of packets.
    ``drained`` turns True when the kernel had nothing more, which is how the reader knows
    it may go back to the selector without leaving bytes behind.
    """

    __slots__ = ("_buffer", "_position", "_sock", "drained")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0
        self.drained = False

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; raises BlockingIOError when nothing is available."""
        buffer = self._buffer
        position = self._position
        if position >= len(buffer):
            try:
                buffer = self._sock.recv(_READ_CHUNK)
            except BlockingIOError:
                self.drained = True
                raise
            if not buffer:  # end of stream: paho treats b"" as connection lost
                return buffer
            self._buffer = buffer
            position = 0
        end = position + bufsize
        self._position = end
        return buffer[position:end]

    def buffered(self) -> int:
        """Bytes read from the kernel and not yet handed to paho."""
        return max(0, len(self._buffer) - self._position)

    def send(self, data: bytes | bytearray) -> int:
        """Write through to the socket."""
        return self._sock.send(data)

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket and drop anything buffered."""
        self._buffer = b""
        self._position = 0
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


PahoMessageHandler = Callable[[paho.MQTTMessage, datetime], None]


class _IngestClient(aiomqtt.Client):
    """aiomqtt's client with a fast inbound path. THE ONLY PLACE THAT TOUCHES INTERNALS.

    aiomqtt 2.x delivers each message through an asyncio.Queue that ``async for`` drains
    with a new task and ``asyncio.wait`` per message, and its socket reader lets paho read
    one packet per selector wake-up. Measured on this project's benchmark that path manages
    about a fifth of what ``mosquitto_sub`` drains. So, and only here, we:

    1. set paho's ``on_message`` on ``self._client`` (aiomqtt's private paho client) to call
       the transport directly, on the loop thread, with one ``now()`` per read burst;
    2. override aiomqtt's private ``_on_socket_open`` to put a :class:`_ReadBufferedSocket`
       into paho's private ``_sock`` and replace the selector callback with one that
       handles up to ``_PACKETS_PER_READ_EVENT`` packets per wake-up. On error it sets
       aiomqtt's private ``_disconnected`` future exactly as aiomqtt's own reader does.

    TLS and websocket connections keep aiomqtt's reader (only plain TCP sockets are
    wrapped) but still use the direct ``on_message``. Everything else (connect, CONNACK,
    subscribe/publish acknowledgements, keepalive, disconnect) is aiomqtt's public API.
    ``tests/test_mqtt_transport.py::test_aiomqtt_internals_the_fast_path_relies_on_exist``
    fails if any of these internals move.
    """

    def __init__(
        self,
        *args: Any,
        on_message: PahoMessageHandler,
        now: Callable[[], datetime],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._estatehub_deliver = on_message
        self._estatehub_now = now
        self._estatehub_burst_received_at: datetime | None = None
        self._client.on_message = self._estatehub_on_message

    def _estatehub_on_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        received_at = self._estatehub_burst_received_at
        if received_at is None:  # TLS/websocket path: aiomqtt's reader, no burst clock
            received_at = self._estatehub_now()
        self._estatehub_deliver(message, received_at)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # aiomqtt registers its reader and the keepalive task (thread-safely: paho calls
        # this from the executor thread that runs connect()). Our add_reader is queued
        # after its one, so it replaces it.
        super()._on_socket_open(client, userdata, sock)
        _no_delay(sock)
        if type(sock) is not socket.socket:
            return
        buffered = _ReadBufferedSocket(sock)
        client._sock = buffered
        self._loop.call_soon_threadsafe(
            self._loop.add_reader, sock.fileno(), self._estatehub_read_burst, client, buffered
        )

    def _estatehub_read_burst(self, client: paho.Client, buffered: _ReadBufferedSocket) -> None:
        self._estatehub_burst_received_at = self._estatehub_now()
        try:
            for _ in range(_PACKETS_PER_READ_EVENT):
                buffered.drained = False
                if client.loop_read() != paho.MQTT_ERR_SUCCESS or buffered.drained:
                    return
            # Out of budget. Bytes already in our buffer are invisible to the selector, so
            # come back for them on the next loop iteration instead.
            if buffered.buffered():
                self._loop.call_soon(self._estatehub_read_burst, client, buffered)
        except Exception as exc:  # as aiomqtt's reader: a broken socket ends the connection
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)
        finally:
            self._estatehub_burst_received_at = None

    async def wait_disconnected(self) -> None:
        """Return (by raising aiomqtt.MqttError) once the connection is gone.

        Uses the public message iterator: it ends with MqttError on disconnection, and since
        our ``on_message`` bypasses aiomqtt's queue it never yields anything before that.
        """
        async for _ in self.messages:  # pragma: no cover - nothing is ever queued
            pass


def _tls_context(tls: Any) -> ssl.SSLContext | None:
    if not tls:
        return None
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls is True:
        return ssl.create_default_context()
    context = ssl.create_default_context(cafile=getattr(tls, "ca_certs", None))
    certfile = getattr(tls, "certfile", None)
    if certfile:
        context.load_cert_chain(certfile, getattr(tls, "keyfile", None))
    if getattr(tls, "insecure", False):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class AiomqttTransport(MqttTransportBase):
    """MQTT through a real broker (Mosquitto in tests and production), on aiomqtt 2.x.

    :meth:`start` launches a background connection task and returns at once; watch
    :attr:`state` (``state_listeners``) or await :meth:`wait_connected`. The task reconnects
    with :func:`reconnect_delay` backoff and re-subscribes the union of all local filters,
    one broker subscription per distinct filter, before the state becomes CONNECTED.

    The states a listener sees: ``start()`` gives CONNECTING. An attempt that succeeds gives
    CONNECTED; one that fails (refused, unreachable, CONNACK refused) gives DISCONNECTED
    then BACKING_OFF, then CONNECTING for the next attempt, so every failed attempt is
    reported, the very first one included. A lost connection gives DISCONNECTED,
    BACKING_OFF, CONNECTING … the same way. ``stop()`` ends with STOPPED.

    Publishing while not connected: a normal :meth:`publish` waits up to ``publish_wait``
    seconds (default 2) for the connection, to ride out a broker restart, then raises
    TransportError; :meth:`publish_command` never waits and never queues: a command sent
    late can be worse than none, so the caller decides whether to retry.
    """

    def __init__(
        self,
        settings: MqttSettingsLike,
        *,
        now: Callable[[], datetime],
        rng: random.Random | None = None,
        publish_wait: float = 2.0,
        operation_timeout: float = 10.0,
    ) -> None:
        super().__init__(now=now)
        self.settings = settings
        self._rng = rng or random.Random()
        self._publish_wait = publish_wait
        self._operation_timeout = operation_timeout
        self._client: _IngestClient | None = None  # set while connected and restoring
        self._broker_qos: dict[str, int] = {}  # what the broker was asked for, per filter
        self._connected = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._connection_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._connected_once = False

    @property
    def broker(self) -> str:
        """``host:port`` of the broker, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background connection task (a no-op if it already runs)."""
        if self._connection_task is not None and not self._connection_task.done():
            return
        self._stop_requested.clear()
        self._set_state(ConnectionState.CONNECTING)
        self._connection_task = asyncio.get_running_loop().create_task(
            self._run_connection(), name=f"estatehub-mqtt-connection-{self.broker}"
        )

    async def stop(self) -> None:
        """Disconnect cleanly and await the connection task and every background task."""
        self._stop_requested.set()
        task = self._connection_task
        if task is not None:
            try:
                # The task notices the stop request itself: it sends DISCONNECT if connected
                # and never abandons a connect() running in aiomqtt's executor thread (which
                # would leak the socket it opens). Cancel only if that somehow hangs.
                await asyncio.wait_for(asyncio.shield(task), self._operation_timeout + 5)
            except TimeoutError:
                _LOGGER.warning("MQTT connection task to %s did not stop; cancelling", self.broker)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._connection_task = None
        for background in list(self._background):
            background.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._set_state(ConnectionState.STOPPED)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once CONNECTED (subscriptions restored); TransportError on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise TransportError(
                f"not connected to the MQTT broker at {self.broker} after {timeout} s "
                f"(state {self.state})"
            ) from None

    def _make_client(self) -> _IngestClient:
        settings = self.settings
        return _IngestClient(
            settings.host,
            settings.port,
            username=settings.username or None,
            password=settings.password or None,
            identifier=settings.client_id or None,
            keepalive=int(settings.keepalive),
            timeout=self._operation_timeout,
            tls_context=_tls_context(settings.tls),
            logger=_PAHO_LOGGER,
            on_message=self._on_broker_message,
            now=self._now,
        )

    async def _run_connection(self) -> None:
        attempt = 0
        while not self._stop_requested.is_set():
            self._set_state(ConnectionState.CONNECTING)
            client = self._make_client()
            lost_reason: str | None = None
            try:
                async with client:
                    if self._connected_once:
                        self.stats.reconnects += 1
                    self._connected_once = True
                    attempt = 0
                    await self._restore_subscriptions(client)
                    if not self._stop_requested.is_set():
                        self.last_error = None
                        self._set_state(ConnectionState.CONNECTED)
                        self._connected.set()
                        _LOGGER.info("connected to the MQTT broker at %s", self.broker)
                        lost_reason = await self._wait_until_lost_or_stopped(client)
            except aiomqtt.MqttError as exc:
                lost_reason = str(exc)
            except Exception as exc:  # a bug must not end reconnecting for good
                _LOGGER.exception("MQTT connection to %s failed unexpectedly", self.broker)
                lost_reason = repr(exc)
            finally:
                self._client = None
                self._broker_qos.clear()
                self._connected.clear()
            if self._stop_requested.is_set():
                break
            self.last_error = lost_reason or "connection closed"
            self._set_state(ConnectionState.DISCONNECTED)
            delay = reconnect_delay(
                attempt, self.settings.reconnect_min, self.settings.reconnect_max, self._rng
            )
            attempt += 1
            _LOGGER.warning(
                "MQTT broker at %s unavailable (%s); retrying in %.1f s",
                self.broker,
                self.last_error,
                delay,
            )
            self._set_state(ConnectionState.BACKING_OFF)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)

    async def _wait_until_lost_or_stopped(self, client: _IngestClient) -> str | None:
        lost = asyncio.ensure_future(client.wait_disconnected())
        stop = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait((lost, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (lost, stop):
                waiter.cancel()
            await asyncio.gather(lost, stop, return_exceptions=True)
        if lost.done() and not lost.cancelled() and lost.exception() is not None:
            exc = lost.exception()
            cause = exc.__cause__ if exc is not None else None
            return f"connection lost: {cause or exc}"
        return None

    async def _restore_subscriptions(self, client: _IngestClient) -> None:
        # Snapshot and hand-over happen in one synchronous step: filters added from now on
        # see self._client and subscribe themselves, so none is missed or sent twice.
        wanted = self.subscriptions()
        self._client = client
        self._broker_qos = dict(wanted)
        if wanted:
            codes = await client.subscribe(wanted, timeout=self._operation_timeout)
            self._check_suback(wanted, codes)

    def _check_suback(self, wanted: list[tuple[str, int]], codes: Any) -> None:
        for (topic_filter, _), code in zip(wanted, codes, strict=False):
            failed = code.is_failure if hasattr(code, "is_failure") else code >= 0x80
            if failed:
                _LOGGER.error(
                    "MQTT broker at %s refused the subscription to %s (%s)",
                    self.broker,
                    topic_filter,
                    code,
                )

    def _filter_added(self, subscription: _Subscription, is_new_filter: bool) -> None:
        client = self._client
        topic_filter = subscription.topic_filter
        if client is None:
            return  # restored with the rest on the next connect
        current = self._broker_qos.get(topic_filter)
        if current is not None and current >= subscription.qos:
            return
        self._broker_qos[topic_filter] = subscription.qos
        wanted = [(topic_filter, subscription.qos)]
        self._spawn(
            self._broker_call(client.subscribe(wanted), wanted), f"subscribe {topic_filter}"
        )

    def _filter_removed(self, topic_filter: str) -> None:
        client = self._client
        if client is None or self._broker_qos.pop(topic_filter, None) is None:
            return
        self._spawn(
            self._broker_call(client.unsubscribe(topic_filter), None), f"unsubscribe {topic_filter}"
        )

    async def _broker_call(self, call: Coroutine[Any, Any, Any], wanted: Any) -> None:
        # aiomqtt hands the packet to paho in the coroutine's first step, and tasks take
        # their first step in creation order, so SUBSCRIBE/UNSUBSCRIBE keep their order.
        try:
            codes = await call
        except aiomqtt.MqttError as exc:
            # Lost connection: the next connect restores the full set anyway.
            _LOGGER.warning("MQTT subscription change on %s failed: %s", self.broker, exc)
            return
        if wanted is not None:
            self._check_suback(wanted, codes)

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"estatehub-mqtt {what}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- publishing ------------------------------------------------------------------

    async def _send(
        self, topic: str, payload: bytes, qos: int, retain: bool, *, command: bool
    ) -> None:
        client = self._client if self.state is ConnectionState.CONNECTED else None
        if client is None:
            if self.state is ConnectionState.STOPPED:
                raise TransportError(f"cannot publish to {topic!r}: the MQTT transport is stopped")
            if command:
                raise TransportError(
                    f"command to {topic!r} not sent: not connected to the MQTT broker at "
                    f"{self.broker} (state {self.state}). Commands are never queued for "
                    "later delivery; retry once the broker is reachable again."
                )
            try:
                await self.wait_connected(self._publish_wait)
            except TransportError as exc:
                raise TransportError(f"cannot publish to {topic!r}: {exc}") from None
            client = self._client
            if client is None:
                raise TransportError(f"cannot publish to {topic!r}: connection lost again")
        try:
            await client.publish(
                topic, payload, qos=qos, retain=retain, timeout=self._operation_timeout
            )
        except aiomqtt.MqttError as exc:
            raise TransportError(
                f"could not publish to {topic!r} on the MQTT broker at {self.broker}: {exc}"
            ) from exc

    def _spawn_clear(self, topic: str) -> None:
        async def clear() -> None:
            try:
                await self._send(topic, b"", 1, True, command=False)
            except TransportError as exc:
                _LOGGER.warning("could not clear the retained command on %s: %s", topic, exc)

        self._spawn(clear(), f"clear retained {topic}")

    # -- inbound ---------------------------------------------------------------------

    def _on_broker_message(self, message: paho.MQTTMessage, received_at: datetime) -> None:
        # Runs inside paho's loop_read on the event loop; it must never raise, or paho
        # would re-raise it out of the reader and the connection would be dropped.
        try:
            topic = message.topic
        except UnicodeDecodeError:
            raw_topic: bytes = getattr(message, "_topic", b"")  # paho keeps no public bytes form
            bad = MqttMessage(
                raw_topic.decode("utf-8", "replace"),
                bytes(message.payload),
                received_at,
                message.qos,
                message.retain,
            )
            self.stats.received += 1
            self._rejected(bad, "the topic is not valid UTF-8")
            return
        try:
            self._dispatch(
                MqttMessage(topic, bytes(message.payload), received_at, message.qos, message.retain)
            )
        except Exception:  # a bug in dispatch itself; keep the connection alive
            _LOGGER.exception("dispatching an MQTT message on %s failed", topic)
