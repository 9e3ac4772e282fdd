"""The hub: owns the bus, states, services, registry, incidents, store, clock and transports.

Start-up runs in stages (store → incidents → transports → modules → API → plugins told);
shut-down runs them backwards. Every module starts in its own task under a timeout: one
that raises or hangs is marked failed, with an incident and a log line naming its plugin,
and the others keep running.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .automation import AutomationEngine
from .bus import EventBus
from .clock import Clock, RealClock
from .exceptions import EstatehubError, PluginError
from .incidents import IncidentManager, Severity
from .registry import EstateRegistry
from .services import ServiceRegistry
from .states import StateMachine
from .store import Store
from .transports.base import InboundHttp, MqttMessage
from .transports.http import HttpTransport

if TYPE_CHECKING:
    from aiohttp import web

    from .config import EstateConfig
    from .discovery import HubAdvertiser
    from .hookspecs.base import Module
    from .plugins import PluginManager
    from .transports.capture import CaptureWriter
    from .transports.mqtt import MqttTransportBase

_LOGGER = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT = 10.0
DEFAULT_STOP_TIMEOUT = 5.0
REJECTED = "transport.rejected"
MQTT_DOWN = "transport.mqtt_down"
MQTT_DOWN_GRACE = 15.0  # seconds of broker outage before it is an incident (reconnects are normal)


class ModuleStatus(enum.StrEnum):
    """Where a module is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(slots=True)
class ModuleRecord:
    """A module the hub runs, the plugin it came from, and how it is doing."""

    name: str
    plugin: str
    module: Module | None = None
    status: ModuleStatus = ModuleStatus.PENDING
    error: str = ""


class Hub:
    """One estate's hub."""

    def __init__(
        self,
        config: EstateConfig,
        plugins: PluginManager,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        mqtt: MqttTransportBase | None = None,
        serve_api: bool = True,
        advertise: bool = False,
        replaying: bool = False,
        capture: CaptureWriter | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.clock = clock or RealClock(config.timezone)
        self.bus = EventBus(self.clock)
        self.states = StateMachine(self.bus)
        self.services = ServiceRegistry()
        self.registry = EstateRegistry(config.registry)
        self.store = store or Store(config.store_path)
        self.incidents = IncidentManager(self.bus, self.clock, self.store, config.escalation)
        #: The estate's automations (``automations:``); started after the modules, so the
        #: services they call exist, and stopped before them.
        self.automations = AutomationEngine(self, config.automations)
        self.mqtt = mqtt if mqtt is not None else self._default_mqtt()
        self.mqtt.on_rejected = self._mqtt_rejected
        self.mqtt.state_listeners.append(self._mqtt_state_changed)
        self._mqtt_down_timer: Any = None
        self._mqtt_outage = False
        self.http = HttpTransport(now=self.clock.now, on_rejected=self._http_rejected)
        self.capture = capture
        self.serve_api = serve_api
        #: Announce the API on the LAN with zeroconf (``estatehub run`` turns it on).
        self.advertise = advertise
        self.advertiser: HubAdvertiser | None = None
        #: True while replaying a capture: adapters must not actuate real devices.
        self.replaying = replaying
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.modules: dict[str, ModuleRecord] = {}
        self.rejected = 0
        self.api_url: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._started = False
        self._stopped = asyncio.Event()

    def _default_mqtt(self) -> MqttTransportBase:
        if self.config.mqtt is None:
            from .transports.embedded import EmbeddedMqtt

            return EmbeddedMqtt(now=self.clock.now)
        from .transports.mqtt import AiomqttTransport

        return AiomqttTransport(self.config.mqtt, now=self.clock.now)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start every stage; a failing module does not stop the others."""
        if self._started:
            raise EstatehubError("the hub is already started")
        self._started = True
        self.store.open()
        restored = self.incidents.restore()
        if restored:
            _LOGGER.info("restored %d open incidents from %s", restored, self.store.path)
        if self.capture is not None:
            self.capture.open()
            self.mqtt.taps.append(self.capture.record_mqtt)
            self.http.taps.append(self.capture.record_http)
        self._build_modules()
        await self.mqtt.start()
        await self._start_modules()
        await self.automations.start()
        if self.serve_api:
            await self._start_api()
        self.plugins.hub_started(self)
        self.bus.fire(
            "hub.started",
            {
                "estate": self.config.name,
                "modules": {n: r.status.value for n, r in self.modules.items()},
            },
        )

    async def stop(self) -> None:
        """Stop in reverse order; each module gets ``stop_timeout`` seconds."""
        if not self._started:
            return
        self.bus.fire("hub.stopping", {"estate": self.config.name})
        await self.automations.stop()
        if self.advertiser is not None:
            # Households see the hub go before its API does.
            await self.advertiser.stop()
            self.advertiser = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for record in reversed(list(self.modules.values())):
            if record.status is ModuleStatus.RUNNING and record.module is not None:
                try:
                    await asyncio.wait_for(record.module.stop(), self.stop_timeout)
                except Exception as err:  # stopping must go on for the rest
                    _LOGGER.error(
                        "module %s (plugin %s) failed to stop: %r", record.name, record.plugin, err
                    )
                record.status = ModuleStatus.STOPPED
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._mqtt_down_timer is not None:
            self._mqtt_down_timer.cancel()
            self._mqtt_down_timer = None
        self._started = False  # transports going down now is no outage
        await self.mqtt.stop()
        await self.bus.drain()
        self.incidents.shutdown()
        if self.capture is not None:
            self.capture.close()
        self.store.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`stop` has finished."""
        await self._stopped.wait()

    def _build_modules(self) -> None:
        subsystems = self.plugins.registrations().subsystems
        for name, module_config in self.config.modules.items():
            spec = subsystems.get(name)
            plugin = self.plugins.owner_of("subsystem", name)
            record = ModuleRecord(name, plugin)
            self.modules[name] = record
            if spec is None:
                self._module_failed(record, "no plugin provides this module")
                continue
            try:
                record.module = spec.factory(self, module_config)
            except Exception as err:
                self._module_failed(record, f"{type(err).__name__}: {err}")

    async def _start_modules(self) -> None:
        async def start_one(record: ModuleRecord) -> None:
            assert record.module is not None
            try:
                await asyncio.wait_for(record.module.start(self), self.start_timeout)
            except TimeoutError:
                self._module_failed(record, f"did not start within {self.start_timeout:g} s")
                await self._release(record)
            except Exception as err:
                _LOGGER.debug("module %s start failure", record.name, exc_info=True)
                self._module_failed(record, f"{type(err).__name__}: {err}")
                await self._release(record)
            else:
                record.status = ModuleStatus.RUNNING
                _LOGGER.info("module %s (plugin %s) started", record.name, record.plugin)

        async with asyncio.TaskGroup() as group:
            for record in self.modules.values():
                if record.status is ModuleStatus.PENDING and record.module is not None:
                    group.create_task(start_one(record), name=f"start {record.name}")

    async def _release(self, record: ModuleRecord) -> None:
        # A module that failed half-way may hold subscriptions or webhooks from the part
        # that worked: give it the chance to release them, but never wait long for it.
        if record.module is None:
            return
        try:
            await asyncio.wait_for(record.module.stop(), self.stop_timeout)
        except Exception as err:
            _LOGGER.error(
                "module %s (plugin %s) failed to stop after failing to start: %r",
                record.name,
                record.plugin,
                err,
            )

    def _module_failed(self, record: ModuleRecord, error: str) -> None:
        record.status = ModuleStatus.FAILED
        record.error = error
        _LOGGER.error("module %s (plugin %s) failed: %s", record.name, record.plugin, error)
        self.plugins.mark_failed(record.plugin, f"module {record.name}: {error}")
        self.incidents.raise_incident(
            "plugin.failed",
            Severity.WARNING,
            "hub",
            f"module {record.name} (plugin {record.plugin}) failed: {error}",
            source="hub",
            dedupe_key=f"plugin.failed:{record.name}",
            data={"module": record.name, "plugin": record.plugin, "error": error},
        )

    async def _start_api(self) -> None:
        from aiohttp import web

        from .api.server import build_app

        app = build_app(self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.api.host, self.config.api.port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise EstatehubError(
                f"cannot serve the API on {self.config.api.host}:{self.config.api.port}: {err.strerror}"
            ) from None
        # The bound port, which differs from the configured one when that is 0 ("any").
        port = self._runner.addresses[0][1] if self._runner.addresses else self.config.api.port
        self.api_url = f"http://{self.config.api.host}:{port}"
        if self.advertise:
            await self._advertise(port)

    async def _advertise(self, port: int) -> None:
        from .discovery import DiscoveryError, HubAdvertiser

        running = ",".join(n for n, r in self.modules.items() if r.status is ModuleStatus.RUNNING)
        try:
            advertiser = HubAdvertiser(
                name=self.config.name,
                host=self.config.api.host,
                port=port,
                properties={"id": self.hub_id(), "modules": running},
                interfaces=self.config.api.advertise_interfaces,
            )
            await advertiser.start()
        except DiscoveryError as err:
            _LOGGER.warning("LAN discovery is off: %s", err.reason)
            return
        self.advertiser = advertiser

    def hub_id(self) -> str:
        """A stable id for this hub (kept in the store), e.g. for Home Assistant's unique id."""
        return self.store.hub_id()

    # -- helpers for modules and adapters ----------------------------------------------

    def create_task(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run a coroutine in the background; the hub keeps a reference and cancels it at stop."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def settle(self, rounds: int = 50) -> None:
        """Let background work triggered so far finish (replay and tests; time stands still)."""
        for _ in range(rounds):
            await asyncio.sleep(0)
            # Automation runs go until they finish or wait for the clock or a trigger.
            await self.automations.settle()
            pending = [t for t in self._tasks if not t.done()]
            if not pending and not self.bus._tasks:
                await asyncio.sleep(0)
                if not self._tasks and not self.bus._tasks:
                    return
            if pending:
                await asyncio.wait(pending, timeout=5)
            await self.bus.drain()

    def build_adapter(
        self,
        subsystem: str,
        name: str,
        device_id: str,
        options: Mapping[str, Any],
        sink: Callable[..., None],
    ) -> Any:
        """Build a vendor adapter registered for ``subsystem`` under ``name``.

        Raises :class:`PluginError` naming what is known when no plugin provides it.
        """
        adapters = self.plugins.registrations().adapters
        spec = adapters.get((subsystem, name))
        if spec is None:
            known = sorted(n for (s, n) in adapters if s == subsystem)
            raise PluginError(
                f"no {subsystem} adapter {name!r} (installed: {', '.join(known) or 'none'})"
            )
        if spec.options_schema is not None:
            import voluptuous as vol

            schema = (
                spec.options_schema
                if isinstance(spec.options_schema, vol.Schema)
                else vol.Schema(spec.options_schema)
            )
            try:
                options = schema(dict(options))
            except vol.Invalid as err:
                raise PluginError(
                    f"{subsystem} adapter {name!r} for {device_id}: invalid options: {err}"
                ) from None
        return spec.factory(self, device_id, options, sink)

    # -- rejected input ----------------------------------------------------------------

    def reject(self, transport: str, source: str, reason: str, payload: bytes = b"") -> None:
        """Count and report input that could not be understood; the hub keeps going."""
        self.rejected += 1
        preview = payload[:200].decode("utf-8", "replace")
        _LOGGER.warning("rejected %s input from %s: %s", transport, source, reason)
        self.store.audit(
            self.clock.now(), "hub", REJECTED, source, {"transport": transport, "reason": reason}
        )
        self.bus.fire(
            REJECTED,
            {"transport": transport, "source": source, "reason": reason, "preview": preview},
        )

    def _mqtt_state_changed(self, state: Any) -> None:
        # Losing the broker means not hearing smoke detectors or gates: never silent. An
        # error line at once, a critical incident if it lasts, resolved when it comes back.
        from .transports.mqtt import ConnectionState

        if not self._started:
            return
        where = (
            f"{self.config.mqtt.host}:{self.config.mqtt.port}" if self.config.mqtt else "embedded"
        )
        if state in (ConnectionState.BACKING_OFF, ConnectionState.DISCONNECTED):
            if not self._mqtt_outage:
                self._mqtt_outage = True
                _LOGGER.error("MQTT broker %s is unreachable; reconnecting", where)
                self.bus.fire("transport.mqtt_state", {"state": state.value, "broker": where})
                self._mqtt_down_timer = self.clock.call_later(
                    MQTT_DOWN_GRACE, lambda: self._mqtt_down(where)
                )
        elif state is ConnectionState.CONNECTED and self._mqtt_outage:
            self._mqtt_outage = False
            if self._mqtt_down_timer is not None:
                self._mqtt_down_timer.cancel()
                self._mqtt_down_timer = None
            incident = self.incidents.find_open(MQTT_DOWN)
            if incident is not None:
                _LOGGER.error("MQTT broker %s is back", where)
                self.incidents.resolve(incident.id, by="hub", note="broker reachable again")
            self.bus.fire("transport.mqtt_state", {"state": state.value, "broker": where})

    def _mqtt_down(self, where: str) -> None:
        self._mqtt_down_timer = None
        self.incidents.raise_incident(
            "transport.mqtt_down",
            Severity.CRITICAL,
            "hub",
            f"MQTT broker {where} unreachable for {MQTT_DOWN_GRACE:g} s: detectors and gates on MQTT are not heard",
            source="hub",
            dedupe_key=MQTT_DOWN,
            data={"broker": where},
        )

    def _mqtt_rejected(self, message: MqttMessage, reason: str) -> None:
        self.reject("mqtt", message.topic, reason, message.payload)

    def _http_rejected(self, request: InboundHttp, reason: str) -> None:
        self.reject("http", request.path, reason, request.body)
