"""The gate adapter: options, the webhook, and ISAPI barrier control over real HTTP."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.parking import BarrierCommand, Direction, ParkingError, PlateRead
from estatehub.transports.base import HttpReply
from estatehub_hikvision.gate import (
    GATE_OPTIONS_SCHEMA,
    GateSettings,
    HikvisionGate,
    barrier_gate_body,
)

PASSWORD = "Gate-Pass-7731"
ISSUED_AT = datetime(2026, 3, 1, 8, 15, 10, tzinfo=timezone(timedelta(hours=8)))
CAPTURE_CONTENT_TYPE = "multipart/form-data; boundary=---------------------------7d9a2c31e0f44"


def command(action: str = "open", gate: str = "north") -> BarrierCommand:
    return BarrierCommand(
        gate=gate, action=action, command_id="cmd-0001", issued_at=ISSUED_AT, plate="苏A7KM35"
    )


def gate_for(port: int, reads: list[PlateRead] | None = None, **options) -> HikvisionGate:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "username": "admin",
        "password": PASSWORD,
        **options,
    }
    sink = reads.append if reads is not None else (lambda read: None)
    return HikvisionGate(None, "north", settings, sink)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- options ---------------------------------------------------------------------------


def test_options_defaults():
    assert GATE_OPTIONS_SCHEMA({"host": "192.0.2.10"}) == {
        "host": "192.0.2.10",
        "port": 80,
        "channel": 1,
        "forward_is": "in",
        "timeout": 2.0,
        "device_timezone": "Asia/Shanghai",
    }


def test_settings_from_full_options():
    settings = GateSettings.from_options(
        "north",
        {
            "host": "192.0.2.10",
            "port": "8080",
            "username": "admin",
            "password": PASSWORD,
            "channel": 2,
            "forward_is": "OUT",
            "timeout": 0.5,
            "device_timezone": "Asia/Urumqi",
        },
    )

    assert settings == GateSettings(
        host="192.0.2.10",
        port=8080,
        username="admin",
        password=PASSWORD,
        channel=2,
        forward_is=Direction.OUT,
        timeout=0.5,
        device_timezone="Asia/Urumqi",
        accept_from=("192.0.2.10",),  # by default only the camera itself may push
    )
    assert (
        str(settings.barrier_url) == "http://192.0.2.10:8080/ISAPI/Parking/channels/2/barrierGate"
    )


def test_ipv6_camera_address_is_bracketed_in_the_url():
    settings = GateSettings.from_options("north", {"host": "fd00::64"})

    assert str(settings.barrier_url) == "http://[fd00::64]/ISAPI/Parking/channels/1/barrierGate"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "gate 'north': invalid hikvision options: required key not provided @ data['host']"),
        (
            {"host": "http://192.0.2.10/ISAPI"},
            "gate 'north': invalid hikvision options: expected a bare host name or IP address "
            "(e.g. 192.0.2.10), got 'http://192.0.2.10/ISAPI'; put the port under 'port' and "
            "leave out the scheme and path for dictionary value @ data['host']",
        ),
        (
            {"host": "192.0.2.10", "username": "admin"},
            "gate 'north': invalid hikvision options: give both username and password, or "
            "neither @ data[<credentials>]",
        ),
        (
            {"host": "192.0.2.10", "forward_is": "sideways"},
            "gate 'north': invalid hikvision options: expected 'in' or 'out' for dictionary "
            "value @ data['forward_is']",
        ),
        (
            {"host": "192.0.2.10", "timeout": 0},
            "gate 'north': invalid hikvision options: value must be at least 0.1 for "
            "dictionary value @ data['timeout']",
        ),
        (
            {"host": "192.0.2.10", "chanel": 2},
            "gate 'north': invalid hikvision options: extra keys not allowed @ data['chanel']",
        ),
    ],
    ids=["no-host", "url-as-host", "username-only", "bad-forward-is", "zero-timeout", "typo"],
)
def test_invalid_options_name_the_gate_and_the_option(options, message):
    with pytest.raises(ParkingError) as caught:
        HikvisionGate(None, "north", options, lambda read: None)

    assert str(caught.value) == message


def test_unknown_device_timezone_is_refused():
    with pytest.raises(ParkingError) as caught:
        GateSettings.from_options("north", {"host": "192.0.2.10", "device_timezone": "Mars/Base"})

    assert str(caught.value).startswith(
        "gate 'north': invalid hikvision options: unknown device time zone 'Mars/Base'"
    )


def test_password_never_shows_in_reprs():
    gate = gate_for(80)

    assert repr(gate) == "HikvisionGate(gate='north', host='127.0.0.1', port=80, channel=1)"
    assert PASSWORD not in repr(gate.settings)
    assert "password" not in repr(gate.settings)


# --- the webhook -----------------------------------------------------------------------


async def test_gate_listens_on_its_webhook_and_feeds_reads_to_the_sink(hub, load, push):
    reads: list[PlateRead] = []
    gate = gate_for(80, reads)

    await gate.start(hub)
    handler = hub.http.handlers["/api/webhook/hikvision/north"]
    reply = handler(push(CAPTURE_CONTENT_TYPE, load("anpr_push_barrier_gate_cn.multipart")))

    assert reply == HttpReply(status=200)
    assert [(read.gate, read.raw_plate, read.direction, read.vendor) for read in reads] == [
        ("north", "蓝苏A7KM35", Direction.OUT, "hikvision")
    ]
    await gate.stop()
    assert hub.http.handlers == {}


async def test_gate_option_forward_is_out_turns_reverse_into_in(hub, load, push):
    reads: list[PlateRead] = []
    gate = gate_for(80, reads, forward_is="out")
    await gate.start(hub)

    hub.http.handlers[gate.webhook_path](push("application/xml", load("anpr_barrier_gate_cn.xml")))

    assert [read.direction for read in reads] == [Direction.IN]
    await gate.stop()


async def test_gate_device_timezone_applies_to_offsetless_times(hub, load, push):
    reads: list[PlateRead] = []
    gate = gate_for(80, reads, device_timezone="Asia/Tokyo")
    await gate.start(hub)
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"2034-01-04T15:57:03+08:00", b"2026-03-01T09:15:02"
    )

    hub.http.handlers[gate.webhook_path](push("application/xml", document))

    assert [read.device_time for read in reads] == [datetime(2026, 3, 1, 0, 15, 2, tzinfo=UTC)]
    await gate.stop()


async def test_keep_alive_is_answered_200_without_reads(hub, load, push):
    reads: list[PlateRead] = []
    gate = gate_for(80, reads)
    await gate.start(hub)

    reply = hub.http.handlers[gate.webhook_path](
        push("application/xml", load("heartbeat_videoloss.xml"))
    )

    assert reply == HttpReply(status=200)
    assert reads == []
    await gate.stop()


async def test_malformed_push_raises_payload_rejected_for_the_hub_to_count(hub, push):
    reads: list[PlateRead] = []
    gate = gate_for(80, reads)
    await gate.start(hub)

    with pytest.raises(PayloadRejected) as caught:
        hub.http.handlers[gate.webhook_path](push("application/xml", b"<EventNotificationAlert>"))

    assert caught.value.reason == "body: not well-formed XML (no element found: line 1, column 24)"
    assert reads == []
    await gate.stop()


# --- barrier control over ISAPI --------------------------------------------------------


def test_barrier_body_is_the_isapi_barrier_gate_document():
    assert barrier_gate_body("open") == (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b"<BarrierGate><ctrlMode>open</ctrlMode></BarrierGate>"
    )
    assert barrier_gate_body("close") == (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b"<BarrierGate><ctrlMode>close</ctrlMode></BarrierGate>"
    )


async def test_open_puts_barrier_gate_with_digest_auth(serve_camera):
    camera, port = await serve_camera(password=PASSWORD)
    gate = gate_for(port, channel=2)

    await gate.send(command("open"))
    await gate.stop()

    assert camera.challenges == 1
    assert len(camera.accepted) == 1
    request = camera.accepted[0]
    assert (request.method, request.path) == ("PUT", "/ISAPI/Parking/channels/2/barrierGate")
    assert request.content_type == "application/xml; charset=UTF-8"
    assert request.body == barrier_gate_body("open")
    assert request.authorization.startswith('Digest username="admin", realm="IP Camera(E0001)"')


async def test_second_command_reuses_the_challenge_and_sends_close(serve_camera):
    camera, port = await serve_camera(password=PASSWORD)
    gate = gate_for(port)

    await gate.send(command("open"))
    await gate.send(command("close"))
    await gate.stop()

    assert camera.challenges == 1
    assert [request.body for request in camera.accepted] == [
        barrier_gate_body("open"),
        barrier_gate_body("close"),
    ]


async def test_gate_without_credentials_sends_no_authorization(serve_camera):
    camera, port = await serve_camera(username=None)
    gate = HikvisionGate(None, "north", {"host": "127.0.0.1", "port": port}, lambda read: None)

    await gate.send(command("open"))
    await gate.stop()

    assert [(request.path, request.authorization) for request in camera.accepted] == [
        ("/ISAPI/Parking/channels/1/barrierGate", "")
    ]


async def test_wrong_password_gives_a_parking_error_with_status_401(serve_camera, caplog):
    camera, port = await serve_camera(password="the-real-one")
    gate = gate_for(port)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("open"))
    await gate.stop()

    assert str(caught.value) == (
        f"gate 'north': barrier open refused by Hikvision device 127.0.0.1:{port}: "
        "HTTP 401 Unauthorized; check username/password in the gate's options"
    )
    assert camera.accepted == []
    assert PASSWORD not in caplog.text


async def test_device_error_status_carries_the_isapi_status_string(serve_camera):
    answer = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
        "<statusCode>4</statusCode>\n<statusString>Invalid Operation</statusString>\n"
        "<subStatusCode>notSupport</subStatusCode>\n</ResponseStatus>\n"
    )
    _, port = await serve_camera(password=PASSWORD, status=403, answer=answer)
    gate = gate_for(port)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("open"))
    await gate.stop()

    assert str(caught.value) == (
        f"gate 'north': barrier open refused by Hikvision device 127.0.0.1:{port}: "
        "HTTP 403 Forbidden (statusString=Invalid Operation, subStatusCode=notSupport)"
    )


async def test_camera_that_does_not_answer_in_time_gives_a_parking_error(serve_camera):
    _, port = await serve_camera(password=PASSWORD, delay=2.0)
    gate = gate_for(port, timeout=0.2)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("open"))
    await gate.stop()

    assert str(caught.value) == (
        f"gate 'north': barrier open timed out after 0.2 s waiting for Hikvision device "
        f"127.0.0.1:{port}"
    )


async def test_unreachable_camera_gives_a_parking_error_naming_host_and_port():
    port = free_port()
    gate = gate_for(port)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("open"))
    await gate.stop()

    assert str(caught.value).startswith(
        f"gate 'north': barrier open failed talking to Hikvision device 127.0.0.1:{port}: "
        "ClientConnectorError: "
    )
    assert PASSWORD not in str(caught.value)


async def test_command_for_another_gate_is_refused_without_calling_the_camera(serve_camera):
    camera, port = await serve_camera(password=PASSWORD)
    gate = gate_for(port)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("open", gate="south"))

    assert str(caught.value) == "gate 'north' was handed a barrier command for gate 'south'"
    assert camera.accepted == [] and camera.challenges == 0


async def test_unsupported_action_is_refused_without_calling_the_camera(serve_camera):
    camera, port = await serve_camera(password=PASSWORD)
    gate = gate_for(port)

    with pytest.raises(ParkingError) as caught:
        await gate.send(command("lock"))

    assert str(caught.value) == (
        "barrier action 'lock' is not supported by the Hikvision adapter "
        "(expected one of open, close)"
    )
    assert camera.accepted == [] and camera.challenges == 0


def test_accept_from_lists_the_addresses_allowed_to_push_and_rejects_nonsense():
    settings = GateSettings.from_options(
        "north", {"host": "192.0.2.10", "accept_from": ["10.1.0.0/16", "::1"]}
    )
    assert settings.accept_from == ("10.1.0.0/16", "::1")
    named = GateSettings.from_options("north", {"host": "gate-north.lan"})
    assert named.accept_from is None  # a host name cannot be matched: any source, with a warning
    with pytest.raises(ParkingError, match="'somewhere' is not an IP address or network"):
        GateSettings.from_options("north", {"host": "192.0.2.10", "accept_from": ["somewhere"]})
