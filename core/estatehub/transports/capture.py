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
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
        """Open the file for appending; :class:`CaptureError` names the path if it cannot."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as err:
            raise CaptureError(
                f"cannot write the capture {self.path}: {err.strerror or err}"
            ) from None

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

    Raises :class:`CaptureError` naming the file and line for a line that is not UTF-8 or
    not JSON, has no timezone-aware ``at``, an unknown ``transport``, a missing field, or a
    field of the wrong type (``retain`` must be true/false, ``qos`` 0–2, payloads valid
    base64 when stored as ``*_b64``). Blank lines and lines starting with ``#`` are skipped.
    """
    try:
        handle = path.open("rb")
    except OSError as err:
        raise CaptureError(f"cannot read capture {path}: {err.strerror}") from None
    with handle:
        for number, raw_line in enumerate(handle, start=1):
            where = f"{path.name}, line {number}"
            try:
                text = raw_line.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise CaptureError(f"{where}: not UTF-8 (byte {err.start + 1})") from None
            if not text or text.startswith("#"):
                continue
            try:
                data = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as err:
                detail = (
                    f"{err.msg} at column {err.colno}"
                    if isinstance(err, json.JSONDecodeError)
                    else "nested too deeply"
                )
                raise CaptureError(f"{where}: not JSON ({detail})") from None
            if not isinstance(data, dict):
                raise CaptureError(f"{where}: expected a JSON object, got {type(data).__name__}")
            transport = data.pop("transport", None)
            if transport not in _REQUIRED:
                raise CaptureError(
                    f"{where}: transport must be one of mqtt, http, api; got {transport!r}"
                )
            at = _parse_at(data.pop("at", None), where)
            for key in _REQUIRED[transport]:
                if key not in data:
                    raise CaptureError(f"{where}: {transport} record without {key!r}")
            _check_types(transport, data, where)
            yield CaptureRecord(number, at, transport, data)


def _parse_at(raw: Any, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        if at is not None and at.tzinfo is not None:
            at.astimezone(UTC).timestamp()  # in range both ways
    except (ValueError, OverflowError):
        at = None
    if at is None or at.tzinfo is None:
        raise CaptureError(
            f"{where}: 'at' must be an ISO 8601 time with an offset, got {str(raw)[:40]!r}"
        )
    return at


def _check_types(transport: str, data: dict[str, Any], where: str) -> None:
    def need(key: str, kind: type | tuple[type, ...], what: str) -> None:
        if key in data and (
            not isinstance(data[key], kind) or (isinstance(data[key], bool) and kind is not bool)
        ):
            raise CaptureError(f"{where}: {key!r} must be {what}, got {json.dumps(data[key])[:40]}")

    for key in ("topic", "method", "path", "user", "content_type"):
        need(key, str, "text")
    if transport == "http":
        need("body", str, "text")
    # An MQTT payload may be written as JSON directly (hand-written captures): it is sent
    # as that JSON's text.
    need("payload", (str, dict, list, int, float), "text or JSON")
    need("retain", bool, "true or false")
    if "qos" in data and data["qos"] not in (0, 1, 2):
        raise CaptureError(f"{where}: 'qos' must be 0, 1 or 2, got {json.dumps(data['qos'])[:40]}")
    if transport == "api" and data.get("body") is not None and not isinstance(data["body"], dict):
        raise CaptureError(f"{where}: an api record's 'body' must be a JSON object")
    for key in ("payload_b64", "body_b64"):
        if key in data:
            try:
                base64.b64decode(data[key], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise CaptureError(f"{where}: {key!r} is not valid base64") from None
    if transport == "mqtt" and not data["topic"]:
        raise CaptureError(f"{where}: 'topic' is empty")
