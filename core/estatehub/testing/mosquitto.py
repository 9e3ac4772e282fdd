"""A throw-away Mosquitto broker for tests and benchmarks.

:class:`Mosquitto` starts ``/usr/sbin/mosquitto`` on a free loopback port with a temporary
config, waits until the port accepts connections, and can be stopped (SIGTERM, then
SIGKILL), killed outright, or restarted on the same port to test reconnects. Tests never
touch a system broker on 1883.

In a ``conftest.py``::

    from estatehub.testing.mosquitto import mosquitto_broker  # noqa: F401

and then take ``mosquitto_broker`` as a test argument.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest

from ..exceptions import EstatehubError

MOSQUITTO = "/usr/sbin/mosquitto"
DEFAULT_LOG_TYPES = ("error", "warning", "notice", "information")


class MosquittoError(EstatehubError):
    """The test broker could not be started or stopped; the message quotes its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One Mosquitto process on ``127.0.0.1:<port>``, usable as a context manager.

    ``log_types`` are Mosquitto ``log_type`` values; the log goes to :attr:`log_path`
    (``subscribe`` there is how the benchmark sees a subscriber become ready).
    ``extra_config`` lines are appended to the generated config.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int | None = None,
        executable: str = MOSQUITTO,
        log_types: Iterable[str] = DEFAULT_LOG_TYPES,
        extra_config: Iterable[str] = (),
        start_timeout: float = 10.0,
    ) -> None:
        self.port = port or free_port()
        self.executable = executable
        self.log_types = tuple(log_types)
        self.extra_config = tuple(extra_config)
        self.start_timeout = start_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="estatehub-mosquitto-"))
        self.config_path = self._dir / "mosquitto.conf"
        self.log_path = self._dir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def write_config(self) -> Path:
        """Write the config file and return its path."""
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            # 0 = no limit: a slow test subscriber must not lose QoS 0 messages either.
            "max_queued_messages 0",
            # Production brokers should set it too (docs/mqtt.md): without it Mosquitto
            # holds small packets such as barrier commands for the peer's delayed ACK.
            "set_tcp_nodelay true",
            "persistence false",
            "log_dest stderr",
            *(f"log_type {kind}" for kind in self.log_types),
            "log_timestamp true",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def start(self) -> Self:
        """Start the broker and wait until its port accepts connections."""
        if self.running:
            return self
        if not os.access(self.executable, os.X_OK):
            raise MosquittoError(
                f"{self.executable} not found or not executable; install the Debian package "
                "'mosquitto' (apt-get install mosquitto)"
            )
        self.write_config()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.executable, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        self._wait_until_accepting()
        return self

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise MosquittoError(
                    f"mosquitto exited with code {self._process.returncode} while starting on "
                    f"port {self.port}; its log:\n{self.log_text()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.5),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise MosquittoError(
            f"mosquitto did not accept connections on {self.host}:{self.port} within "
            f"{self.start_timeout} s; its log:\n{self.log_text()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would: no clean disconnects."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.stop()

    def restart(self, *, kill: bool = True) -> None:
        """Stop (by default: kill) the broker and start it again on the same port."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def log_text(self) -> str:
        """The broker's log so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Stop the broker and remove its temporary directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture
def mosquitto_broker() -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free loopback port for one test, removed afterwards."""
    with Mosquitto() as broker:
        yield broker
