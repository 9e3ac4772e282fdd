"""An in-process MQTT broker with the transport interface, for estates without ``mqtt:``.

The hub, the demo and most tests run on it: adapters subscribe and publish exactly as they
would through :class:`~estatehub.transports.mqtt.AiomqttTransport`, with no broker process.

Delivery guarantees:

* Messages are delivered in publish order. Every delivery is scheduled with
  ``loop.call_soon`` (FIFO), so a callback that publishes never re-enters itself or any
  other callback synchronously; its message is delivered after the current one finishes.
  Receivers are fixed when a message is published, as a broker routes it on arrival: a
  subscription made a moment later does not get it (unless it was retained), and one
  removed before delivery does not either.
* A retained publish is stored per topic (an empty retained payload deletes it) and is
  delivered, flagged ``retained=True``, to each new subscription whose filter matches it,
  and to every matching subscription when the broker starts. Live deliveries carry
  ``retained=False``, as MQTT 3.1.1 brokers send them.
* The delivered QoS is the publisher's; nothing is lost, so QoS only matters for symmetry.
* :meth:`EmbeddedMqtt.inject` dispatches synchronously, for replay.
* The command-topic rule is the shared one: a topic declared with
  :meth:`~estatehub.transports.mqtt.MqttTransportBase.guard_command_topic` gets its retained
  message (if any) delivered to the guard and deleted at once when the broker is started,
  or on :meth:`EmbeddedMqtt.start` otherwise; subscribers see the deletion as an empty
  live message, as on a real broker.
* A callback raising :class:`RecursionError` (deeply nested input) is a counted rejection,
  for live and retained deliveries alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from ..exceptions import TransportError
from .base import MqttMessage
from .mqtt import ConnectionState, MqttTransportBase, _Subscription
from .topics import topic_matches


class EmbeddedMqtt(MqttTransportBase):
    """An in-process MQTT broker and client in one, with the shared transport interface."""

    def __init__(self, *, now: Callable[[], datetime]) -> None:
        super().__init__(now=now)
        self._retained: dict[str, MqttMessage] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = asyncio.Event()
        # Bumped by every start() and stop(): deliveries scheduled before are dropped.
        self._generation = 0

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering; matching retained messages go to existing subscriptions."""
        if self.state is ConnectionState.CONNECTED:
            return
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        self._set_state(ConnectionState.CONNECTED)
        self._running.set()
        # Like a real client re-subscribing on connect: the broker replays what it keeps.
        for message in list(self._retained.values()):
            targets = self._index.match(message.topic)
            self._loop.call_soon(self._deliver_live, message, targets, self._generation)

    async def stop(self) -> None:
        """Stop delivering; messages still scheduled are dropped. Retained ones are kept."""
        self._running.clear()
        self._generation += 1
        self._set_state(ConnectionState.STOPPED)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once started; TransportError after ``timeout`` seconds otherwise."""
        try:
            await asyncio.wait_for(self._running.wait(), timeout)
        except TimeoutError:
            raise TransportError(
                f"the embedded MQTT broker was not started within {timeout} s"
            ) from None

    # -- broker side -----------------------------------------------------------------

    def retained(self, topic: str) -> MqttMessage | None:
        """The message retained on ``topic``, if any."""
        return self._retained.get(topic)

    def retained_topics(self) -> list[str]:
        """Every topic with a retained message, in the order first retained."""
        return list(self._retained)

    def _filter_added(self, subscription: _Subscription, is_new_filter: bool) -> None:
        if self._loop is None or self.state is not ConnectionState.CONNECTED:
            return  # start() replays retained messages to it
        for topic, message in list(self._retained.items()):
            if topic_matches(subscription.topic_filter, topic):
                self._loop.call_soon(
                    self._deliver_retained, subscription, message, self._generation
                )

    def _filter_removed(self, topic_filter: str) -> None:
        """Nothing to tell a broker: the index is the broker."""

    async def _send(
        self, topic: str, payload: bytes, qos: int, retain: bool, *, command: bool
    ) -> None:
        self._publish_now(topic, payload, qos, retain)

    def _publish_now(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        loop = self._loop
        if loop is None or self.state is not ConnectionState.CONNECTED:
            raise TransportError(
                f"cannot publish to {topic!r}: the embedded MQTT broker is {self.state}"
            )
        received_at = self._now()
        if retain:
            if payload:
                self._retained[topic] = MqttMessage(topic, payload, received_at, qos, True)
            else:
                self._retained.pop(topic, None)
        # The receivers are fixed now, as a broker routes a message when it arrives: a
        # subscription made a moment later does not get it (but does get it if retained).
        targets = self._index.match(topic)
        message = MqttMessage(topic, payload, received_at, qos)
        loop.call_soon(self._deliver_live, message, targets, self._generation)

    def _spawn_clear(self, topic: str) -> None:
        self._publish_now(topic, b"", 1, True)

    # -- delivery --------------------------------------------------------------------

    def _deliver_live(
        self, message: MqttMessage, targets: tuple[_Subscription, ...], generation: int
    ) -> None:
        if generation == self._generation:
            self._deliver(message, targets)

    def _deliver_retained(
        self, subscription: _Subscription, message: MqttMessage, generation: int
    ) -> None:
        # Only to the subscription that asked, as a broker answers one SUBSCRIBE; skip it
        # if the message was replaced or deleted since this delivery was scheduled.
        if not subscription.active or generation != self._generation:
            return
        if self._retained.get(message.topic) is not message:
            return
        self.stats.received += 1
        if self.taps:
            self._run_taps(message)
        self._invoke(subscription, message)
