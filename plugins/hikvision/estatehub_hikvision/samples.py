"""Build Hikvision ANPR pushes in the real wire format, for demos, captures and benchmarks.

:func:`anpr_push` returns ``(content_type, body)`` exactly as a barrier-gate capture camera
POSTs it to its HTTP listening host: ``multipart/form-data`` with an ``anpr.xml`` part
(``EventNotificationAlert``, eventType ``ANPR``) and two small JPEG parts named after
``pictureInfoList/pictureInfo/fileName``. The XML follows the element layout of captured
Chinese barrier-gate pushes, typos included (``palteTypeByGAT``, ``vehicelRect``,
``vehileSubLogoRecog``). All values besides the ones passed in are made up.

Output is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from xml.sax.saxutils import escape

__all__ = [
    "COLOUR_WORDS",
    "NAMESPACES",
    "anpr_push",
    "anpr_xml",
    "fake_jpeg",
    "heartbeat_push",
]

NAMESPACES = {
    "hikvision": "http://www.hikvision.com/ver20/XMLSchema",
    "isapi": "http://www.isapi.org/ver20/XMLSchema",
    "std-cgi": "http://www.std-cgi.com/ver20/XMLSchema",
}
"""The default namespaces seen on ``EventNotificationAlert``; ``None`` means no namespace."""

COLOUR_WORDS = {"蓝": "blue", "黄": "yellow", "绿": "green", "白": "white", "黑": "black"}
"""Chinese colour prefixes a camera may put before the plate, and its ``plateColor``."""

PICTURE_NAMES = ("licensePlatePicture.jpg", "detectionPicture.jpg")


def fake_jpeg(label: str) -> bytes:
    """A tiny JPEG-shaped blob (SOI, JFIF APP0, a comment, EOI) carrying ``label``.

    The payload holds CR, LF, dashes and NUL bytes on purpose, like real JPEG data, so
    multipart parsers are exercised on binary parts.
    """
    comment = label.encode() + b"\r\n--\x00\xff\x00\n-"
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xfe"
        + (len(comment) + 2).to_bytes(2, "big")
        + comment
        + b"\xff\xd9"
    )


def _xmlns(namespace: str | None) -> str:
    return f' xmlns="{escape(namespace)}"' if namespace else ""


def _timestamp(when: datetime) -> str:
    # A naive datetime is written without an offset, as firmwares that send device-local
    # time do.
    return when.isoformat(timespec="seconds")


def anpr_xml(
    plate: str,
    *,
    when: datetime,
    uuid: str,
    namespace: str | None = NAMESPACES["isapi"],
    colour_prefix: str | None = None,
    retransmission: bool = False,
    active_post_count: int = 1,
    direction: str = "forward",
    channel: int = 1,
    ip: str = "192.0.2.10",
    confidence: int = 96,
) -> bytes:
    """The ``anpr.xml`` document of :func:`anpr_push` (same arguments)."""
    plate_colour = COLOUR_WORDS.get(colour_prefix or "", "blue")
    shown_plate = f"{colour_prefix or ''}{plate}"
    char_believe = ",".join(["99"] * len(plate))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<EventNotificationAlert version="2.0"{_xmlns(namespace)}>',
        f"<ipAddress>{escape(ip)}</ipAddress>",
        "<ipv6Address>::</ipv6Address>",
        "<portNo>80</portNo>",
        "<protocol>HTTP</protocol>",
        "<macAddress>00:00:5e:00:53:0a</macAddress>",
        f"<channelID>{channel}</channelID>",
        f"<dateTime>{_timestamp(when)}</dateTime>",
        f"<activePostCount>{active_post_count}</activePostCount>",
        "<eventType>ANPR</eventType>",
        "<eventState>active</eventState>",
        "<eventDescription>ANPR</eventDescription>",
        "<channelName>IP CAPTURE CAMERA</channelName>",
        "<ANPR>",
        "<country>59</country>",
        f"<licensePlate>{escape(shown_plate)}</licensePlate>",
        "<line>1</line>",
        f"<direction>{escape(direction)}</direction>",
        f"<confidenceLevel>{confidence}</confidenceLevel>",
        "<plateType>92TypeCivil</plateType>",
        f"<plateColor>{plate_colour}</plateColor>",
        "<licenseBright>0</licenseBright>",
        f"<plateCharBelieve>{char_believe}</plateCharBelieve>",
        "<vehicleType>vehicle</vehicleType>",
        "<detectDir>2</detectDir>",
        "<detectType>3</detectType>",
        "<barrierGateCtrlType>0</barrierGateCtrlType>",
        "<alarmDataType>0</alarmDataType>",
        "<vehicleInfo>",
        "<index>1</index>",
        "<vehicleType>1</vehicleType>",
        "<color>unknown</color>",
        "<vehicleLogoRecog>0</vehicleLogoRecog>",
        "<vehileSubLogoRecog>0</vehileSubLogoRecog>",
        "<vehileModel>0</vehileModel>",
        "</vehicleInfo>",
        "<pictureInfoList>",
        "<pictureInfo>",
        f"<fileName>{PICTURE_NAMES[0]}</fileName>",
        "<type>licensePlatePicture</type>",
        "<dataType>0</dataType>",
        "</pictureInfo>",
        "<pictureInfo>",
        f"<fileName>{PICTURE_NAMES[1]}</fileName>",
        "<type>detectionPicture</type>",
        "<dataType>0</dataType>",
        "<plateRect><X>375</X><Y>645</Y><width>227</width><height>118</height></plateRect>",
        "<vehicelRect><X>241</X><Y>86</Y><width>547</width><height>765</height></vehicelRect>",
        "</pictureInfo>",
        "</pictureInfoList>",
        "<listType>temporary</listType>",
        "</ANPR>",
        f"<UUID>{escape(uuid)}</UUID>",
        f"<picNum>{len(PICTURE_NAMES)}</picNum>",
        f"<isDataRetransmission>{'true' if retransmission else 'false'}</isDataRetransmission>",
        "<VehicleGATInfo>",
        "<palteTypeByGAT>2</palteTypeByGAT>",
        "<plateColorByGAT>2</plateColorByGAT>",
        "<vehicleTypeByGAT>K33</vehicleTypeByGAT>",
        "<colorByGAT>K</colorByGAT>",
        "</VehicleGATInfo>",
        "</EventNotificationAlert>",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _multipart(boundary: str, parts: list[tuple[str, str, bytes]]) -> bytes:
    chunks: list[bytes] = []
    for name, content_type, data in parts:
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}";filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        chunks += [head.encode("ascii"), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def anpr_push(
    plate: str,
    *,
    when: datetime,
    uuid: str,
    namespace: str | None = NAMESPACES["isapi"],
    colour_prefix: str | None = None,
    retransmission: bool = False,
    active_post_count: int = 1,
    direction: str = "forward",
    channel: int = 1,
    ip: str = "192.0.2.10",
) -> tuple[str, bytes]:
    """One ANPR push as ``(content_type, body)``, in the camera's multipart format.

    :param plate: the plate as recognised (``沪A12345``); the colour prefix is separate.
    :param when: the device's ``dateTime``; a naive value is written without an offset.
    :param uuid: the event's ``UUID`` (the dedupe key).
    :param namespace: the root's default namespace (see :data:`NAMESPACES`), or ``None``.
    :param colour_prefix: a Chinese colour word put before the plate (``"蓝"``), as
        Chinese firmwares do; it also sets ``plateColor`` (default ``blue``).
    :param retransmission: sets ``isDataRetransmission``.
    :param active_post_count: sets ``activePostCount`` (repeated posts count up).
    :param direction: ``forward`` or ``reverse`` (relative to the camera).
    :param channel: ``channelID``.
    :param ip: the camera's ``ipAddress`` (use documentation addresses, 192.0.2.x).
    """
    document = anpr_xml(
        plate,
        when=when,
        uuid=uuid,
        namespace=namespace,
        colour_prefix=colour_prefix,
        retransmission=retransmission,
        active_post_count=active_post_count,
        direction=direction,
        channel=channel,
        ip=ip,
    )
    # IE-style boundary like the cameras', derived from the UUID so output is repeatable.
    boundary = "-" * 27 + hashlib.sha1(uuid.encode()).hexdigest()[:13]
    body = _multipart(
        boundary,
        [
            ("anpr.xml", 'application/xml; charset="UTF-8"', document),
            *((name, "image/jpeg", fake_jpeg(f"{uuid}/{name}")) for name in PICTURE_NAMES),
        ],
    )
    return f"multipart/form-data; boundary={boundary}", body


def heartbeat_push(
    *,
    when: datetime,
    ip: str = "192.0.2.10",
    channel: int = 1,
    namespace: str | None = NAMESPACES["isapi"],
) -> tuple[str, bytes]:
    """The keep-alive a camera sends between events (``videoloss``, ``inactive``).

    Returned as ``("application/xml", body)``; the adapter answers it with no reads.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<EventNotificationAlert version="2.0"{_xmlns(namespace)}>',
        f"<ipAddress>{escape(ip)}</ipAddress>",
        "<portNo>80</portNo>",
        "<protocol>HTTP</protocol>",
        "<macAddress>00:00:5e:00:53:0a</macAddress>",
        f"<channelID>{channel}</channelID>",
        f"<dateTime>{_timestamp(when)}</dateTime>",
        "<activePostCount>0</activePostCount>",
        "<eventType>videoloss</eventType>",
        "<eventState>inactive</eventState>",
        "<eventDescription>videoloss alarm</eventDescription>",
        "</EventNotificationAlert>",
    ]
    return "application/xml", ("\r\n".join(lines) + "\r\n").encode("utf-8")
