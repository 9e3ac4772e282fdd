"""Capture of inbound traffic to JSON Lines, and reading captures back for replay.

One JSON object per line, in the format of DESIGN.md:

    {"at": "…+08:00", "transport": "mqtt", "topic": "zigbee2mqtt/b3-1202-smoke", "payload": "{…}"}
    {"at": "…+08:00", "transport": "http", "method": "POST", "path": "/api/webhook/…",
     "content_type": "application/xml", "body": "<EventNotificationAlert …>"}

Payloads and bodies are stored as text when they are valid UTF-8, else base64 under
``payload_b64`` / ``body_b64`` (JPEG parts of a Hikvision push). Operator actions through the
API are captured as ``"transport": "api"`` with the token's *name* under ``user`` — never the
token — so a replay can re-enact an acknowledgement or a payment.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..exceptions import EstatehubError
from .base import InboundHttp, MqttMessage


class CaptureError(EstatehubError):
    """A capture file line could not be read; the message names file and line."""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One line of a capture file, decoded."""

    line: int
    at: datetime
    transport: str
    fields: dict[str, Any]

    def payload(self, key: str) -> bytes:
        """``payload`` / ``body`` as bytes, whichever way it was stored."""
        if f"{key}_b64" in self.fields:
            return base64.b64decode(self.fields[f"{key}_b64"])
        value = self.fields.get(key, "")
        return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode()


def _encode(key: str, data: bytes) -> dict[str, str]:
    try:
        return {key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{key}_b64": base64.b64encode(data).decode("ascii")}


class CaptureWriter:
    """Appends inbound traffic to a JSON Lines file, one flushed line per message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.written = 0

    def open(self) -> None:
        """Open the file for appending (creating folders as needed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.written += 1

    def record_mqtt(self, message: MqttMessage) -> None:
        """Capture one inbound MQTT message."""
        record: dict[str, Any] = {
            "at": message.received_at.isoformat(),
            "transport": "mqtt",
            "topic": message.topic,
            **_encode("payload", message.payload),
        }
        if message.retained:
            record["retain"] = True
        if message.qos:
            record["qos"] = message.qos
        self._write(record)

    def record_http(self, request: InboundHttp) -> None:
        """Capture one inbound webhook request."""
        record: dict[str, Any] = {
            "at": request.received_at.isoformat(),
            "transport": "http",
            "method": request.method,
            "path": request.path,
            "content_type": request.content_type,
            **_encode("body", request.body),
        }
        if request.query:
            record["query"] = dict(request.query)
        self._write(record)

    def record_api(self, at: datetime, method: str, path: str, user: str, body: Any) -> None:
        """Capture one operator write through the API (by token name, never the token)."""
        self._write(
            {
                "at": at.isoformat(),
                "transport": "api",
                "method": method,
                "path": path,
                "user": user,
                "body": body,
            }
        )


_REQUIRED = {
    "mqtt": ("topic",),
    "http": ("method", "path"),
    "api": ("method", "path", "user"),
}


def read_capture(path: Path) -> Iterator[CaptureRecord]:
    """Yield the records of a capture file, in file order.

    Raises :class:`CaptureError` naming the file and line for a line that is not JSON, has
    no timezone-aware ``at``, an unknown ``transport`` or a missing field. Blank lines and
    lines starting with ``#`` are skipped.
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise CaptureError(f"cannot read capture {path}: {err.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{path.name}, line {number}"
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise CaptureError(f"{where}: not JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(data, dict):
                raise CaptureError(f"{where}: expected a JSON object, got {type(data).__name__}")
            transport = data.pop("transport", None)
            if transport not in _REQUIRED:
                raise CaptureError(
                    f"{where}: transport must be one of mqtt, http, api; got {transport!r}"
                )
            raw_at = data.pop("at", None)
            try:
                at = datetime.fromisoformat(raw_at) if isinstance(raw_at, str) else None
            except ValueError:
                at = None
            if at is None or at.tzinfo is None:
                raise CaptureError(
                    f"{where}: 'at' must be an ISO 8601 time with an offset, got {raw_at!r}"
                )
            for key in _REQUIRED[transport]:
                if key not in data:
                    raise CaptureError(f"{where}: {transport} record without {key!r}")
            yield CaptureRecord(number, at, transport, data)
