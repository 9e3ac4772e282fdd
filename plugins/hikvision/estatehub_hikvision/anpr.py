"""Turn Hikvision ANPR traffic into :class:`~estatehub.hookspecs.parking.PlateRead` (pure, no I/O).

Two inputs are understood:

* the **push** a camera sends to its "HTTP listening" host: ``multipart/form-data`` with an
  ``anpr.xml`` part holding an ISAPI ``EventNotificationAlert`` plus one JPEG part per
  ``pictureInfoList/pictureInfo/fileName``; also a bare ``application/xml`` body and the
  JSON form some firmwares send (:func:`parse_anpr_push`);
* the older **Plates polling** answer (``<Plates><Plate><captureTime>…``), whose entries
  come back unordered (:func:`parse_plates_list`).

Everything that cannot be understood raises :class:`~estatehub.exceptions.PayloadRejected`
with a reason that names the part or field, so the hub can count it and keep going.
Network input is parsed with defusedxml only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.parking import Direction, ParkingError, PlateRead
from estatehub.transports.base import InboundHttp

__all__ = [
    "DEFAULT_DEVICE_TIMEZONE",
    "EVENT_PART_NAMES",
    "MAX_BODY_BYTES",
    "MAX_MULTIPART_PARTS",
    "MAX_PLATE_LENGTH",
    "RETRANSMISSION_TRUE",
    "VENDOR",
    "parse_anpr_push",
    "parse_plates_list",
    "resolve_timezone",
]

VENDOR = "hikvision"
"""The ``vendor`` every read from this module carries."""

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest push accepted. Two JPEGs of a 4 MP capture camera stay well below this."""

MAX_PLATE_LENGTH = 32
"""Longest ``licensePlate`` accepted, in characters. A Chinese plate with its colour prefix
is 9, a foreign one a dozen; anything near this is garbage, not a vehicle."""

MAX_MULTIPART_PARTS = 64
"""Most parts a multipart push may have. A camera sends the event part and a few JPEGs."""

RETRANSMISSION_TRUE = frozenset({"true", "1"})
"""``isDataRetransmission`` values (case-insensitive, trimmed) that mark a re-send."""

_PART_NAMES_LISTED = 10  # in a "no event part" rejection; the rest are counted
_PART_LABEL_LIMIT = 40  # characters of one part name shown in a rejection

DEFAULT_DEVICE_TIMEZONE = "Asia/Shanghai"
"""Zone assumed for device timestamps that carry no offset."""

EVENT_PART_NAMES = ("anpr.xml", "anpr.json")
"""Multipart part names (or file names) that hold the event document."""

_XML_TYPES = frozenset({"application/xml", "text/xml"})
_JSON_TYPES = frozenset({"application/json", "text/json"})
_MULTIPART_TYPES = frozenset({"multipart/form-data", "multipart/mixed"})
_UTF8_BOM = b"\xef\xbb\xbf"

# One parameter of a header such as Content-Type or Content-Disposition, quoted or not.
# Hikvision writes `form-data;name="x"` without a space, so whitespace is optional.
_HEADER_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")
_XML_DECLARATION = re.compile(
    rb"<\?xml[^>]*?encoding\s*=\s*[\"'](?P<encoding>[A-Za-z0-9._-]+)[\"'][^>]*\?>"
)
_PLATES_CAPTURE_TIME = re.compile(r"^(\d{8})T(\d{6})(\d*)(Z|[+-]\d{2}:?\d{2})?$")


# ---------------------------------------------------------------------------------------
# public API


def parse_anpr_push(
    request: InboundHttp,
    gate: str,
    *,
    forward_is: Direction = Direction.IN,
    device_tz: tzinfo | str = DEFAULT_DEVICE_TIMEZONE,
) -> list[PlateRead]:
    """Parse one request a Hikvision camera POSTed to the hub into plate reads.

    :param request: the webhook request, body read in full.
    :param gate: the gate id the webhook belongs to; copied into every read.
    :param forward_is: what the camera's ``direction`` value ``forward`` means at this gate
        (``reverse`` is the other way); other values give ``direction=None``.
    :param device_tz: zone for a ``dateTime`` without an offset (device-local time).
    :returns: one read for an ANPR event, ``[]`` for anything that is well-formed but not
        an ANPR event (heartbeats, ``videoloss`` keep-alives, other alarms). A re-send of
        an event the camera stored during an outage (``isDataRetransmission`` ``true`` or
        ``1``) is a read with ``retransmission=True``: the vehicle may be long gone.
    :raises PayloadRejected: the body is too big, of the wrong type, not XML/JSON, has more
        than :data:`MAX_MULTIPART_PARTS` parts or no event document, no ``<ANPR>`` element,
        no ``licensePlate`` or one longer than :data:`MAX_PLATE_LENGTH` characters.
    """
    zone = resolve_timezone(device_tz)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise PayloadRejected(
            f"body is {len(body)} bytes, more than the {MAX_BODY_BYTES // (1024 * 1024)} MiB "
            "an ANPR push may carry; lower the camera's picture quality or upload fewer pictures"
        )
    raw_type = request.content_type or request.header("Content-Type")
    media_type, params = _split_header(raw_type)
    if media_type in _MULTIPART_TYPES:
        boundary = params.get("boundary", "")
        if not boundary:
            raise PayloadRejected(f"Content-Type {raw_type!r} has no boundary parameter")
        fields = _fields_from_multipart(body, boundary.encode("latin-1", "replace"))
    elif media_type in _XML_TYPES:
        fields = _fields_from_xml(body, "body")
    elif media_type in _JSON_TYPES:
        fields = _fields_from_json(body, "body")
    elif not media_type:
        raise PayloadRejected(
            "request has no Content-Type; expected multipart/form-data with an 'anpr.xml' part, "
            "application/xml or application/json"
        )
    else:
        raise PayloadRejected(
            f"Content-Type {media_type!r} is not multipart/form-data, application/xml or "
            "application/json; is the camera's HTTP listening host pointed at the right URL?"
        )
    read = _read_from_fields(
        fields, gate=gate, received_at=request.received_at, forward_is=forward_is, zone=zone
    )
    return [] if read is None else [read]


def parse_plates_list(
    xml: bytes,
    gate: str,
    tz: tzinfo | str = DEFAULT_DEVICE_TIMEZONE,
    *,
    received_at: datetime | None = None,
    forward_is: Direction = Direction.IN,
) -> list[PlateRead]:
    """Parse an older ``<Plates>`` polling answer into reads, oldest capture first.

    The device answers in no particular order, so the reads are sorted by
    ``captureTime`` (then ``picName``). ``captureTime`` looks like
    ``20200424T1616270000``: date, ``T``, time, then digits taken as a fraction of a second;
    it has no zone, so ``tz`` (the device's zone) is applied.

    :param xml: the response body.
    :param gate: the gate id copied into every read.
    :param tz: the device's zone.
    :param received_at: when the hub received the answer (``hub.clock.now()``); defaults
        to the current UTC time, which makes the result depend on the wall clock.
    :param forward_is: what ``forward`` means at this gate.
    :raises PayloadRejected: not XML, root is not ``<Plates>``, or an entry has no
        ``plateNumber`` or a ``captureTime`` that cannot be read (named by its position).
    """
    zone = resolve_timezone(tz)
    received = received_at if received_at is not None else datetime.now(UTC)
    root = _parse_xml(xml, "Plates answer")
    if _local_name(root.tag) != "Plates":
        raise PayloadRejected(
            f"Plates answer: root element is <{_local_name(root.tag)}>, expected <Plates>"
        )
    keyed: list[tuple[datetime, str, int, PlateRead]] = []
    for position, entry in enumerate(_children(root, "Plate"), start=1):
        number = _child_text(entry, "plateNumber")
        if not number:
            raise PayloadRejected(f"Plates answer: <Plate> #{position} has no <plateNumber>")
        capture_text = _child_text(entry, "captureTime")
        captured = _parse_capture_time(capture_text, zone)
        if captured is None:
            raise PayloadRejected(
                f"Plates answer: <Plate> #{position} has captureTime {capture_text!r}, "
                "expected YYYYMMDDThhmmss followed by digits"
            )
        pic_name = _child_text(entry, "picName")
        read = PlateRead(
            gate=gate,
            raw_plate=number,
            received_at=received,
            device_time=captured,
            direction=_direction(_child_text(entry, "direction"), forward_is),
            event_key=pic_name or _stable_key("plates", capture_text, number),
            vendor=VENDOR,
            pictures=(pic_name,) if pic_name else (),
        )
        keyed.append((captured, pic_name, position, read))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


@lru_cache(maxsize=32)
def _zone_named(name: str) -> tzinfo:
    return ZoneInfo(name)


def resolve_timezone(zone: tzinfo | str) -> tzinfo:
    """Return ``zone`` as a tzinfo; a string is looked up as an IANA zone name.

    :raises ParkingError: the name is not a known zone (a configuration mistake).
    """
    if isinstance(zone, tzinfo):
        return zone
    try:
        return _zone_named(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParkingError(f"unknown device time zone {zone!r}: {exc}") from None


# ---------------------------------------------------------------------------------------
# the event, reduced to the strings we use, whichever syntax it came in


@dataclass(frozen=True, slots=True)
class _AlertFields:
    """What one ``EventNotificationAlert`` says, as raw strings ("" when absent)."""

    where: str
    plate_field: str
    event_type: str
    ip_address: str
    channel: str
    date_time: str
    uuid: str
    retransmission: str
    has_anpr: bool
    plate: str | None
    direction: str
    confidence: str
    colour: str
    pictures: tuple[str, ...]


def _read_from_fields(
    fields: _AlertFields,
    *,
    gate: str,
    received_at: datetime,
    forward_is: Direction,
    zone: tzinfo,
) -> PlateRead | None:
    event_type = fields.event_type
    if event_type and event_type.upper() != "ANPR":
        return None  # heartbeat, videoloss keep-alive or another alarm: not ours, not bad
    if not fields.has_anpr:
        if event_type:
            raise PayloadRejected(
                f"{fields.where}: eventType is {event_type!r} but there is no <ANPR> element"
            )
        raise PayloadRejected(
            f"{fields.where}: no eventType and no <ANPR> element, so this is not an ANPR event"
        )
    if fields.plate is None:
        raise PayloadRejected(f"{fields.where}: <ANPR> has no <licensePlate>")
    if not fields.plate:
        raise PayloadRejected(f"{fields.where}: {fields.plate_field} is empty")
    if len(fields.plate) > MAX_PLATE_LENGTH:
        # The plate goes on to logs, the store and the guard's console: a 5000-character
        # "plate" is an attack or a broken firmware, never a vehicle.
        raise PayloadRejected(
            f"{fields.where}: {fields.plate_field} is {len(fields.plate)} characters long, "
            f"more than the {MAX_PLATE_LENGTH} a plate can have"
        )
    return PlateRead(
        gate=gate,
        raw_plate=fields.plate,
        received_at=received_at,
        device_time=_parse_device_time(fields.date_time, zone),
        direction=_direction(fields.direction, forward_is),
        confidence=_confidence(fields.confidence),
        plate_colour=_colour(fields.colour),
        event_key=fields.uuid
        or _stable_key(fields.ip_address, fields.channel, fields.date_time, fields.plate),
        retransmission=fields.retransmission.strip().lower() in RETRANSMISSION_TRUE,
        vendor=VENDOR,
        pictures=fields.pictures,
    )


def _direction(raw: str, forward_is: Direction) -> Direction | None:
    value = raw.strip().lower()
    if value == "forward":
        return forward_is
    if value == "reverse":
        return Direction.OUT if forward_is is Direction.IN else Direction.IN
    return None


def _confidence(raw: str) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


def _colour(raw: str) -> str | None:
    value = raw.strip()
    # "unknown" is what cameras send when they could not tell; the parking subsystem
    # cross-checks the colour against the plate, so "no colour" must look like None.
    return None if not value or value.lower() == "unknown" else value


def _parse_device_time(raw: str, zone: tzinfo) -> datetime | None:
    # The device clock is only advisory (it can be years off), so an unreadable timestamp
    # costs the read its device_time, not the read itself: the vehicle is still at the gate.
    text = raw.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _parse_capture_time(raw: str, zone: tzinfo) -> datetime | None:
    match = _PLATES_CAPTURE_TIME.match(raw.strip())
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    try:
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    if offset is None:
        return moment.replace(tzinfo=zone)
    suffix = "+00:00" if offset == "Z" else offset
    try:
        return datetime.fromisoformat(moment.isoformat() + suffix)
    except ValueError:
        return None


def _stable_key(*parts: str) -> str:
    # Used when a firmware sends no UUID. Hashed so the key (which ends up in logs and the
    # store) does not carry the plate in clear; activePostCount is left out on purpose so
    # repeated posts of one recognition get the same key.
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"hikvision-{digest[:24]}"


# ---------------------------------------------------------------------------------------
# XML


def _parse_xml(data: bytes, where: str) -> Element:
    # Firmwares put a UTF-8 BOM or a blank line before the declaration; expat refuses a
    # declaration that is not at the very start, so both go.
    text = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    text = text.lstrip(b" \t\r\n")
    if not text:
        raise PayloadRejected(f"{where}: empty, expected an XML document")
    try:
        try:
            return SafeElementTree.fromstring(text)
        except ValueError as exc:
            # expat refuses multi-byte encodings such as GB2312/GBK, which a Chinese
            # firmware may declare: decode those with Python's codec and parse as UTF-8.
            if isinstance(exc, DefusedXmlException) or "multi-byte" not in str(exc):
                raise
            return SafeElementTree.fromstring(_as_utf8(text, where))
    except DefusedXmlException as exc:
        raise PayloadRejected(
            f"{where}: XML with a DTD or entity declarations refused ({type(exc).__name__})"
        ) from None
    except ParseError as exc:
        raise PayloadRejected(f"{where}: not well-formed XML ({exc})") from None
    except LookupError as exc:
        raise PayloadRejected(f"{where}: XML declares an encoding Python lacks ({exc})") from None
    except ValueError as exc:
        raise PayloadRejected(f"{where}: XML could not be parsed ({exc})") from None


def _as_utf8(text: bytes, where: str) -> bytes:
    declaration = _XML_DECLARATION.match(text)
    if declaration is None:
        raise PayloadRejected(f"{where}: XML in a multi-byte encoding without a declaration")
    encoding = declaration.group("encoding").decode("ascii")
    try:
        decoded = text[declaration.end() :].decode(encoding)
    except UnicodeDecodeError as exc:
        raise PayloadRejected(
            f"{where}: XML declares encoding {encoding!r} but is not ({exc.reason} at byte "
            f"{declaration.end() + exc.start})"
        ) from None
    return decoded.encode("utf-8")


def _local_name(tag: object) -> str:
    # Namespaces vary by firmware (hikvision.com, isapi.org, std-cgi.com or none), so
    # every lookup goes by local name.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(parent: Element, name: str) -> Iterable[Element]:
    return (child for child in parent if _local_name(child.tag) == name)


def _child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    return next(iter(_children(parent, name)), None)


def _child_text(parent: Element | None, name: str) -> str:
    element = _child(parent, name)
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _first_children(parent: Element | None) -> dict[str, Element]:
    """Each child's local name mapped to its first occurrence (one pass per element)."""
    index: dict[str, Element] = {}
    if parent is not None:
        for child in parent:
            index.setdefault(_local_name(child.tag), child)
    return index


def _text_of(index: Mapping[str, Element], name: str) -> str:
    element = index.get(name)
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _fields_from_xml(data: bytes, where: str) -> _AlertFields:
    root = _parse_xml(data, where)
    root_name = _local_name(root.tag)
    if root_name != "EventNotificationAlert":
        raise PayloadRejected(
            f"{where}: root element is <{root_name}>, expected <EventNotificationAlert>"
        )
    header = _first_children(root)
    anpr_element = header.get("ANPR")
    anpr = _first_children(anpr_element)
    plate_element = anpr.get("licensePlate")
    # pictureInfoList sits inside <ANPR> in every capture seen; look at the root as well
    # in case a firmware hoists it.
    picture_list = anpr.get("pictureInfoList", header.get("pictureInfoList"))
    pictures: tuple[str, ...] = ()
    if picture_list is not None:
        pictures = _unique(
            _child_text(info, "fileName") for info in _children(picture_list, "pictureInfo")
        )
    return _AlertFields(
        where=where,
        plate_field="<ANPR><licensePlate>",
        event_type=_text_of(header, "eventType"),
        ip_address=_text_of(header, "ipAddress"),
        channel=_text_of(header, "channelID") or _text_of(header, "dynChannelID"),
        date_time=_text_of(header, "dateTime"),
        uuid=_text_of(header, "UUID"),
        retransmission=_text_of(header, "isDataRetransmission"),
        has_anpr=anpr_element is not None,
        plate=None if plate_element is None else (plate_element.text or "").strip(),
        direction=_text_of(anpr, "direction"),
        confidence=_text_of(anpr, "confidenceLevel"),
        colour=_text_of(anpr, "plateColor"),
        pictures=pictures,
    )


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in names if name))


# ---------------------------------------------------------------------------------------
# JSON (same field names as the XML; see docs/adapters/hikvision.md for the assumptions)


def _json_text(mapping: Mapping[str, Any] | None, key: str) -> str:
    if not isinstance(mapping, Mapping):
        return ""
    value = mapping.get(key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value.strip()
    return ""


def _fields_from_json(data: bytes, where: str) -> _AlertFields:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PayloadRejected(f"{where}: JSON is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadRejected(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise PayloadRejected(f"{where}: JSON nested too deeply to be an ANPR event") from None
    if not isinstance(document, dict):
        raise PayloadRejected(
            f"{where}: JSON top level is of type {type(document).__name__}, expected an object"
        )
    wrapped = document.get("EventNotificationAlert")
    alert: Mapping[str, Any] = wrapped if isinstance(wrapped, dict) else document
    anpr = alert.get("ANPR")
    anpr = anpr if isinstance(anpr, dict) else None
    plate: str | None = None
    if anpr is not None and "licensePlate" in anpr:
        if not isinstance(anpr["licensePlate"], str):
            raise PayloadRejected(
                f"{where}: ANPR.licensePlate is of type "
                f"{type(anpr['licensePlate']).__name__}, expected a string"
            )
        plate = anpr["licensePlate"].strip()
    picture_list = (anpr or {}).get("pictureInfoList", alert.get("pictureInfoList"))
    return _AlertFields(
        where=where,
        plate_field="ANPR.licensePlate",
        event_type=_json_text(alert, "eventType"),
        ip_address=_json_text(alert, "ipAddress"),
        channel=_json_text(alert, "channelID") or _json_text(alert, "dynChannelID"),
        date_time=_json_text(alert, "dateTime"),
        uuid=_json_text(alert, "UUID"),
        retransmission=_json_text(alert, "isDataRetransmission"),
        has_anpr=anpr is not None,
        plate=plate,
        direction=_json_text(anpr, "direction"),
        confidence=_json_text(anpr, "confidenceLevel"),
        colour=_json_text(anpr, "plateColor"),
        pictures=_json_pictures(picture_list),
    )


def _json_pictures(picture_list: object) -> tuple[str, ...]:
    # Accept {"pictureInfo": [...]}, {"pictureInfo": {...}} and a bare list: XML-to-JSON
    # converters disagree on how a repeated element looks.
    entries: object = picture_list
    if isinstance(picture_list, dict):
        entries = picture_list.get("pictureInfo", [])
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        return ()
    return _unique(_json_text(entry, "fileName") for entry in entries)


# ---------------------------------------------------------------------------------------
# multipart/form-data, split from bytes


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    filename: str
    content_type: str
    data: bytes

    def label(self) -> str:
        return self.name or self.filename or "(unnamed)"

    def short_label(self) -> str:
        label = self.label()
        return label if len(label) <= _PART_LABEL_LIMIT else label[: _PART_LABEL_LIMIT - 1] + "…"


def _split_header(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/sub; a=b; c="d"`` into the lower-cased main value and its parameters."""
    main, semicolon, rest = value.partition(";")
    params: dict[str, str] = {}
    if not semicolon:
        return main.strip().lower(), params
    for key, raw in _HEADER_PARAM.findall(semicolon + rest):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
            if "\\" in raw:
                raw = _QUOTED_PAIR.sub(r"\1", raw)
        params.setdefault(key.lower(), raw)
    return main.strip().lower(), params


def _split_multipart(body: bytes, boundary: bytes) -> list[_Part]:
    # A delimiter is "--boundary" at the start of a line; "--boundary--" closes the body.
    # The line break before a delimiter belongs to it, so it is cut from the part before.
    # A missing closing delimiter (seen in captures cut short) just ends the last part at
    # the end of the body. bytes.find keeps this linear and fast on large JPEG parts.
    # Past MAX_MULTIPART_PARTS it stops: 200 000 empty parts fit in 8 MiB, and parsing
    # each would cost the event loop seconds for a push that cannot be a camera's.
    parts: list[_Part] = []

    def add(chunk: bytes) -> None:
        if len(parts) == MAX_MULTIPART_PARTS:
            raise PayloadRejected(
                f"multipart body has more than {MAX_MULTIPART_PARTS} parts; an ANPR push "
                "carries one event part and a few pictures"
            )
        parts.append(_parse_part(_strip_line_break(chunk)))

    marker = b"--" + boundary
    content_start: int | None = None
    position = body.find(marker)
    while position >= 0:
        after = position + len(marker)
        closing = body.startswith(b"--", after)
        line_end = body.find(b"\n", after)
        rest_of_line = body[after + 2 if closing else after : line_end if line_end >= 0 else None]
        at_line_start = position == 0 or body[position - 1 : position] == b"\n"
        if at_line_start and not rest_of_line.strip(b" \t\r"):
            if content_start is not None:
                add(body[content_start:position])
            if closing:
                return parts
            content_start = line_end + 1 if line_end >= 0 else len(body)
        position = body.find(marker, after)
    if content_start is not None:
        add(body[content_start:])
    return parts


def _strip_line_break(chunk: bytes) -> bytes:
    if chunk.endswith(b"\r\n"):
        return chunk[:-2]
    if chunk.endswith(b"\n"):
        return chunk[:-1]
    return chunk


def _parse_part(chunk: bytes) -> _Part:
    if chunk.startswith((b"\r\n", b"\n")):
        head, data = b"", chunk.split(b"\n", 1)[1]
    else:
        separators = [
            (index, len(mark))
            for mark in (b"\r\n\r\n", b"\n\n")
            if (index := chunk.find(mark)) >= 0
        ]
        if separators:
            index, length = min(separators)
            head, data = chunk[:index], chunk[index + length :]
        else:
            head, data = chunk, b""
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            headers.setdefault(key.strip().lower(), value.strip())
    _, disposition = _split_header(headers.get("content-disposition", ""))
    media_type, _ = _split_header(headers.get("content-type", ""))
    return _Part(
        name=disposition.get("name", ""),
        filename=disposition.get("filename", ""),
        content_type=media_type,
        data=data,
    )


def _fields_from_multipart(body: bytes, boundary: bytes) -> _AlertFields:
    parts = _split_multipart(body, boundary)
    if not parts:
        raise PayloadRejected(
            f"multipart body has no part delimited by boundary {boundary.decode('latin-1')!r}"
        )
    event_part = _find_event_part(parts)
    if event_part is None:
        names = ", ".join(repr(part.short_label()) for part in parts[:_PART_NAMES_LISTED])
        if len(parts) > _PART_NAMES_LISTED:
            names += f" … and {len(parts) - _PART_NAMES_LISTED} more"
        raise PayloadRejected(
            f"multipart body has no 'anpr.xml' part (nor any XML or JSON part); parts: {names}"
        )
    where = f"part {event_part.label()!r}"
    if _looks_like_json(event_part):
        return _fields_from_json(event_part.data, where)
    return _fields_from_xml(event_part.data, where)


def _find_event_part(parts: list[_Part]) -> _Part | None:
    for part in parts:
        if part.name.lower() in EVENT_PART_NAMES or part.filename.lower() in EVENT_PART_NAMES:
            return part
    # Other event types name the part after themselves ("linedetection"…); taking the
    # first XML/JSON part lets those come back as "not ANPR" instead of a rejection.
    for part in parts:
        if part.content_type in _XML_TYPES | _JSON_TYPES:
            return part
    return None


def _looks_like_json(part: _Part) -> bool:
    if part.content_type in _JSON_TYPES:
        return True
    if part.content_type in _XML_TYPES:
        return False
    start = part.data.removeprefix(_UTF8_BOM).lstrip()
    return start.startswith(b"{")
