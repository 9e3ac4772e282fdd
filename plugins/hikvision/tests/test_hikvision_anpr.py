"""The ANPR push and Plates parsers, on real-format fixtures and their variants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from estatehub.exceptions import PayloadRejected
from estatehub.hookspecs.parking import Direction, ParkingError, PlateRead
from estatehub_hikvision.anpr import (
    MAX_BODY_BYTES,
    MAX_MULTIPART_PARTS,
    MAX_PLATE_LENGTH,
    parse_anpr_push,
    parse_plates_list,
)

RECEIVED_AT = datetime(2026, 3, 1, 0, 15, 9, tzinfo=UTC)
CAPTURE_BOUNDARY = "---------------------------7d9a2c31e0f44"
CAPTURE_CONTENT_TYPE = f"multipart/form-data; boundary={CAPTURE_BOUNDARY}"
ISAPI_NS = b'xmlns="http://www.isapi.org/ver20/XMLSchema"'
CST = timezone(timedelta(hours=8))
PICTURES = ("licensePlatePicture.jpg", "detectionPicture.jpg")
FAKE_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\r\n--\x00\xff\xd9"
)

BARRIER_GATE_READ = PlateRead(
    gate="north",
    raw_plate="蓝苏A7KM35",
    received_at=RECEIVED_AT,
    device_time=datetime(2034, 1, 4, 15, 57, 3, tzinfo=CST),
    direction=Direction.OUT,
    confidence=78,
    plate_colour="blue",
    event_key="5b0c2f3e-1dd2-11b2-9a41-00005e005301",
    retransmission=False,
    vendor="hikvision",
    pictures=PICTURES,
)


def only_read(reads: list[PlateRead]) -> PlateRead:
    assert len(reads) == 1
    return reads[0]


def rejection(request) -> str:
    with pytest.raises(PayloadRejected) as caught:
        parse_anpr_push(request, "north")
    return caught.value.reason


# --- the captured barrier-gate push ----------------------------------------------------


def test_captured_barrier_gate_push_becomes_one_read_with_every_field(load, push):
    request = push(CAPTURE_CONTENT_TYPE, load("anpr_push_barrier_gate_cn.multipart"))

    read = only_read(parse_anpr_push(request, "north"))

    assert read == BARRIER_GATE_READ
    # the camera's own offset is kept, not converted to the hub's zone
    assert read.device_time.utcoffset() == timedelta(hours=8)


def test_colour_prefix_stays_in_raw_plate_for_the_parking_subsystem_to_strip(load, push):
    read = only_read(
        parse_anpr_push(push("application/xml", load("anpr_barrier_gate_cn.xml")), "north")
    )

    assert read.raw_plate == "蓝苏A7KM35"
    assert read.plate_colour == "blue"


def test_device_clock_years_off_is_reported_but_received_at_is_the_hubs(load, push):
    read = only_read(
        parse_anpr_push(push("application/xml", load("anpr_barrier_gate_cn.xml")), "north")
    )

    assert read.device_time == datetime(2034, 1, 4, 7, 57, 3, tzinfo=UTC)
    assert read.received_at == RECEIVED_AT


@pytest.mark.parametrize(
    "namespace",
    [
        b'xmlns="http://www.hikvision.com/ver20/XMLSchema"',
        b'xmlns="http://www.isapi.org/ver20/XMLSchema"',
        b'xmlns="http://www.std-cgi.com/ver20/XMLSchema"',
        b"",
        b'xmlns:hik="http://www.hikvision.com/ver20/XMLSchema"',
    ],
    ids=["hikvision.com", "isapi.org", "std-cgi.com", "none", "prefixed-only"],
)
def test_every_namespace_variant_reads_the_same(load, push, namespace):
    document = load("anpr_barrier_gate_cn.xml").replace(ISAPI_NS, namespace)

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read == BARRIER_GATE_READ


def test_utf8_bom_and_blank_line_before_the_declaration_are_tolerated(load, push):
    document = b"\xef\xbb\xbf\r\n" + load("anpr_barrier_gate_cn.xml")

    read = only_read(parse_anpr_push(push("application/xml; charset=UTF-8", document), "north"))

    assert read == BARRIER_GATE_READ


def test_ipc_push_with_hikvision_namespace_and_unknown_colour(load, push):
    request = push("application/xml", load("anpr_ipc_hikvision_ns.xml"))

    read = only_read(parse_anpr_push(request, "east"))

    assert read == PlateRead(
        gate="east",
        raw_plate="沪AD31857",
        received_at=RECEIVED_AT,
        device_time=datetime(2026, 3, 1, 8, 15, 2, tzinfo=CST),
        direction=Direction.IN,
        confidence=100,
        plate_colour=None,
        event_key="20260301081502824000000000000000000000000000000000000000000001",
        retransmission=False,
        vendor="hikvision",
        pictures=("licensePlatePicture.jpg", "vehiclePicture.jpg"),
    )


# --- direction, retransmission, keys, time ---------------------------------------------


@pytest.mark.parametrize(
    ("camera_direction", "forward_is", "expected"),
    [
        ("forward", Direction.IN, Direction.IN),
        ("reverse", Direction.IN, Direction.OUT),
        ("forward", Direction.OUT, Direction.OUT),
        ("reverse", Direction.OUT, Direction.IN),
        ("unknown", Direction.IN, None),
        ("", Direction.IN, None),
    ],
)
def test_camera_direction_maps_through_the_gates_forward_is(
    load, push, camera_direction, forward_is, expected
):
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"<direction>reverse</direction>", f"<direction>{camera_direction}</direction>".encode()
    )

    read = only_read(
        parse_anpr_push(push("application/xml", document), "north", forward_is=forward_is)
    )

    assert read.direction is expected


def test_resend_marked_isDataRetransmission_true_is_flagged(load, push):
    document = load("anpr_ipc_hikvision_ns.xml").replace(
        b"<isDataRetransmission>false", b"<isDataRetransmission>true"
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "east"))

    assert read.retransmission is True
    assert read.event_key == "20260301081502824000000000000000000000000000000000000000000001"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"true", True),
        (b"TRUE", True),
        (b" true ", True),
        (b"1", True),
        (b"false", False),
        (b"0", False),
        (b"", False),
        (b"yes", False),
    ],
)
def test_isDataRetransmission_spellings_in_xml(load, push, value, expected):
    document = load("anpr_ipc_hikvision_ns.xml").replace(
        b"<isDataRetransmission>false<", b"<isDataRetransmission>" + value + b"<"
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "east"))

    assert read.retransmission is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("true", True),
        ("True", True),
        ("1", True),
        (1, True),
        (False, False),
        ("false", False),
        ("0", False),
        (0, False),
        (None, False),
    ],
)
def test_isDataRetransmission_spellings_in_json(load, push, value, expected):
    document = json.loads(load("anpr_push.json"))
    document["isDataRetransmission"] = value
    body = json.dumps(document, ensure_ascii=False).encode()

    read = only_read(parse_anpr_push(push("application/json", body), "east"))

    assert read.retransmission is expected


def test_push_without_isDataRetransmission_is_a_live_read(load, push):
    # the captured barrier-gate firmware has no such element at all
    document = load("anpr_barrier_gate_cn.xml")
    assert b"isDataRetransmission" not in document

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read.retransmission is False


def test_repeated_post_with_higher_active_post_count_keeps_the_event_key(load, push):
    first = load("anpr_barrier_gate_cn.xml").replace(
        b"<activePostCount>17<", b"<activePostCount>1<"
    )
    second = first.replace(b"<activePostCount>1<", b"<activePostCount>2<")

    read_one = only_read(parse_anpr_push(push("application/xml", first), "north"))
    read_two = only_read(parse_anpr_push(push("application/xml", second), "north"))

    assert read_one == read_two == BARRIER_GATE_READ


def test_firmware_without_uuid_gets_a_stable_key_that_hides_the_plate(load, push):
    without_uuid = load("anpr_barrier_gate_cn.xml").replace(
        b"<UUID>5b0c2f3e-1dd2-11b2-9a41-00005e005301</UUID>", b""
    )
    repeated = without_uuid.replace(b"<activePostCount>17<", b"<activePostCount>18<")
    other_car = without_uuid.replace("蓝苏A7KM35".encode(), "蓝苏A7KM36".encode())

    key = only_read(parse_anpr_push(push("application/xml", without_uuid), "north")).event_key
    key_repeated = only_read(parse_anpr_push(push("application/xml", repeated), "north")).event_key
    key_other = only_read(parse_anpr_push(push("application/xml", other_car), "north")).event_key

    assert key == key_repeated
    assert key != key_other
    assert key.startswith("hikvision-")
    assert len(key) == len("hikvision-") + 24
    assert "A7KM35" not in key


def test_timestamp_without_offset_is_device_local_shanghai_by_default(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"2034-01-04T15:57:03+08:00", b"2026-03-01T08:15:02"
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read.device_time == datetime(2026, 3, 1, 0, 15, 2, tzinfo=UTC)
    assert read.device_time.tzinfo == ZoneInfo("Asia/Shanghai")


def test_device_zone_is_a_parameter(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"2034-01-04T15:57:03+08:00", b"2026-03-01T08:15:02"
    )

    read = only_read(
        parse_anpr_push(push("application/xml", document), "north", device_tz="Europe/Berlin")
    )

    assert read.device_time == datetime(2026, 3, 1, 7, 15, 2, tzinfo=UTC)


def test_unknown_device_zone_is_a_configuration_error(load, push):
    request = push("application/xml", load("anpr_barrier_gate_cn.xml"))

    with pytest.raises(ParkingError) as caught:
        parse_anpr_push(request, "north", device_tz="Asia/Atlantis")

    assert str(caught.value).startswith("unknown device time zone 'Asia/Atlantis'")


def test_unreadable_device_time_still_lets_the_car_through_without_device_time(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"2034-01-04T15:57:03+08:00", b"34-1-4 15h57"
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read.device_time is None
    assert read.raw_plate == "蓝苏A7KM35"


def test_unrecognised_plate_unknown_is_passed_on_untouched(load, push):
    document = load("anpr_ipc_hikvision_ns.xml").replace(
        "<licensePlate>沪AD31857<".encode(), b"<licensePlate>unknown<"
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "east"))

    assert read.raw_plate == "unknown"


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("100", 100), ("101", None), ("x", None)])
def test_confidence_outside_0_to_100_is_dropped(load, push, raw, expected):
    document = load("anpr_barrier_gate_cn.xml").replace(
        b"<confidenceLevel>78<", f"<confidenceLevel>{raw}<".encode()
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read.confidence == expected


# --- not ANPR: keep-alives and other alarms --------------------------------------------


def test_videoloss_keep_alive_gives_no_read(load, push):
    assert parse_anpr_push(push("application/xml", load("heartbeat_videoloss.xml")), "north") == []


def test_other_alarm_pushed_as_multipart_gives_no_read(load, push, build_multipart):
    linedetection = load("heartbeat_videoloss.xml").replace(
        b"<eventType>videoloss<", b"<eventType>linedetection<"
    )
    body = build_multipart(
        [
            ("linedetection", "application/xml", linedetection),
            ("detection.jpg", "image/jpeg", FAKE_JPEG),
        ]
    )

    reads = parse_anpr_push(push("multipart/form-data; boundary=MIME_boundary_test", body), "north")

    assert reads == []


# --- JSON firmwares --------------------------------------------------------------------

JSON_READ = PlateRead(
    gate="west",
    raw_plate="黄沪B52719",
    received_at=RECEIVED_AT,
    device_time=datetime(2026, 3, 1, 18, 40, 11, tzinfo=CST),
    direction=Direction.IN,
    confidence=91,
    plate_colour="yellow",
    event_key="7c4e9a52-1dd2-11b2-8f10-00005e005303",
    retransmission=True,
    vendor="hikvision",
    pictures=PICTURES,
)


def test_json_push_reads_like_the_xml_one(load, push):
    read = only_read(parse_anpr_push(push("application/json", load("anpr_push.json")), "west"))

    assert read == JSON_READ


def test_json_push_inside_multipart_part_anpr_json(load, push, build_multipart):
    body = build_multipart(
        [
            ("anpr.json", "application/json", load("anpr_push.json")),
            (PICTURES[0], "image/jpeg", FAKE_JPEG),
        ]
    )

    read = only_read(
        parse_anpr_push(push("multipart/form-data; boundary=MIME_boundary_test", body), "west")
    )

    assert read == JSON_READ


def test_json_wrapped_in_an_EventNotificationAlert_key(load, push):
    body = b'{"EventNotificationAlert": ' + load("anpr_push.json") + b"}"

    read = only_read(parse_anpr_push(push("application/json", body), "west"))

    assert read == JSON_READ


def test_json_with_a_single_pictureInfo_object(load, push):
    document = json.loads(load("anpr_push.json"))
    document["ANPR"]["pictureInfoList"] = {"pictureInfo": {"fileName": "licensePlatePicture.jpg"}}

    read = only_read(
        parse_anpr_push(push("application/json", json.dumps(document).encode()), "west")
    )

    assert read.pictures == ("licensePlatePicture.jpg",)


def test_json_with_pictureInfoList_as_a_bare_list(load, push):
    document = json.loads(load("anpr_push.json"))
    document["ANPR"]["pictureInfoList"] = [{"fileName": "detectionPicture.jpg"}]

    read = only_read(
        parse_anpr_push(push("application/json", json.dumps(document).encode()), "west")
    )

    assert read.pictures == ("detectionPicture.jpg",)


# --- multipart framing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line_break", "closing"),
    [(b"\r\n", True), (b"\n", True), (b"\r\n", False), (b"\n", False)],
    ids=["crlf", "lf-only", "crlf-no-final-boundary", "lf-no-final-boundary"],
)
def test_multipart_framing_variants(load, push, build_multipart, line_break, closing):
    body = build_multipart(
        [("anpr.xml", "application/xml", load("anpr_barrier_gate_cn.xml"))]
        + [(name, "image/jpeg", FAKE_JPEG) for name in PICTURES],
        line_break=line_break,
        closing=closing,
    )

    read = only_read(
        parse_anpr_push(push("multipart/form-data; boundary=MIME_boundary_test", body), "north")
    )

    assert read == BARRIER_GATE_READ


def test_capture_cut_before_its_final_boundary_still_parses(load, push):
    body = load("anpr_push_barrier_gate_cn.multipart")
    cut = body[: body.rindex(b"--" + CAPTURE_BOUNDARY.encode() + b"--")]

    read = only_read(parse_anpr_push(push(CAPTURE_CONTENT_TYPE, cut), "north"))

    assert read == BARRIER_GATE_READ


def test_quoted_boundary_and_preamble(load, push, build_multipart):
    body = build_multipart(
        [("anpr.xml", "application/xml", load("anpr_barrier_gate_cn.xml"))],
        boundary="b=oundary; x",
        preamble=b"This is a multi-part message in MIME format.\r\n",
    )

    read = only_read(
        parse_anpr_push(push('multipart/form-data; boundary="b=oundary; x"', body), "north")
    )

    assert read == BARRIER_GATE_READ


def test_event_part_found_by_its_filename_when_named_otherwise(load, push):
    boundary = "xYzZY"
    xml = load("anpr_barrier_gate_cn.xml")
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="xml_file"; filename="anpr.xml"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + xml
        + f"\r\n--{boundary}--\r\n".encode()
    )

    read = only_read(
        parse_anpr_push(push(f"multipart/form-data; boundary={boundary}", body), "north")
    )

    assert read == BARRIER_GATE_READ


def test_jpeg_bytes_that_look_like_a_boundary_mid_line_do_not_split_parts(
    load, push, build_multipart
):
    sneaky_jpeg = FAKE_JPEG + b"x--MIME_boundary_test\r\n--MIME_boundary_testX\r\n" + FAKE_JPEG
    body = build_multipart(
        [
            (PICTURES[0], "image/jpeg", sneaky_jpeg),
            ("anpr.xml", "application/xml", load("anpr_barrier_gate_cn.xml")),
        ]
    )

    read = only_read(
        parse_anpr_push(push("multipart/form-data; boundary=MIME_boundary_test", body), "north")
    )

    assert read == BARRIER_GATE_READ


# --- rejections ------------------------------------------------------------------------


def test_body_over_8_mib_is_rejected_before_parsing(push):
    reason = rejection(push("application/xml", b" " * (MAX_BODY_BYTES + 1)))

    assert reason == (
        "body is 8388609 bytes, more than the 8 MiB an ANPR push may carry; lower the "
        "camera's picture quality or upload fewer pictures"
    )


def test_wrong_content_type_is_rejected_with_a_hint(load, push):
    reason = rejection(push("text/plain", load("anpr_barrier_gate_cn.xml")))

    assert reason == (
        "Content-Type 'text/plain' is not multipart/form-data, application/xml or "
        "application/json; is the camera's HTTP listening host pointed at the right URL?"
    )


def test_missing_content_type_is_rejected(load, push):
    reason = rejection(push("", load("anpr_barrier_gate_cn.xml")))

    assert reason == (
        "request has no Content-Type; expected multipart/form-data with an 'anpr.xml' part, "
        "application/xml or application/json"
    )


def test_multipart_without_boundary_parameter_is_rejected(load, push):
    reason = rejection(push("multipart/form-data", load("anpr_push_barrier_gate_cn.multipart")))

    assert reason == "Content-Type 'multipart/form-data' has no boundary parameter"


def test_multipart_whose_boundary_never_appears_is_rejected(load, push):
    reason = rejection(
        push("multipart/form-data; boundary=other", load("anpr_push_barrier_gate_cn.multipart"))
    )

    assert reason == "multipart body has no part delimited by boundary 'other'"


def test_multipart_with_pictures_but_no_anpr_xml_is_rejected_naming_the_parts(
    push, build_multipart
):
    body = build_multipart([(name, "image/jpeg", FAKE_JPEG) for name in PICTURES])

    reason = rejection(push("multipart/form-data; boundary=MIME_boundary_test", body))

    assert reason == (
        "multipart body has no 'anpr.xml' part (nor any XML or JSON part); parts: "
        "'licensePlatePicture.jpg', 'detectionPicture.jpg'"
    )


def test_rejection_lists_ten_part_names_and_counts_the_rest(push, build_multipart):
    names = [f"picture-{number:02}.jpg" for number in range(1, 41)]
    body = build_multipart([(name, "image/jpeg", FAKE_JPEG) for name in names])

    reason = rejection(push("multipart/form-data; boundary=MIME_boundary_test", body))

    assert reason == (
        "multipart body has no 'anpr.xml' part (nor any XML or JSON part); parts: "
        + ", ".join(f"'picture-{number:02}.jpg'" for number in range(1, 11))
        + " … and 30 more"
    )


def test_rejection_shortens_an_absurdly_long_part_name(push, build_multipart):
    body = build_multipart([("x" * 5000, "image/jpeg", FAKE_JPEG)])

    reason = rejection(push("multipart/form-data; boundary=MIME_boundary_test", body))

    assert reason == (
        f"multipart body has no 'anpr.xml' part (nor any XML or JSON part); parts: '{'x' * 39}…'"
    )


def test_multipart_with_200000_unnamed_parts_is_rejected_after_64(push):
    body = b"--b\r\n\r\n" * 200_000 + b"--b--\r\n"
    assert len(body) < MAX_BODY_BYTES  # small enough to pass the size check

    reason = rejection(push("multipart/form-data; boundary=b", body))

    assert MAX_MULTIPART_PARTS == 64
    assert reason == (
        "multipart body has more than 64 parts; an ANPR push carries one event part and a "
        "few pictures"
    )


def test_multipart_with_exactly_64_parts_is_still_read(load, push, build_multipart):
    pictures = [(f"picture-{number:02}.jpg", "image/jpeg", FAKE_JPEG) for number in range(63)]
    body = build_multipart(
        [("anpr.xml", "application/xml", load("anpr_barrier_gate_cn.xml")), *pictures]
    )

    read = only_read(
        parse_anpr_push(push("multipart/form-data; boundary=MIME_boundary_test", body), "north")
    )

    assert read.raw_plate == "蓝苏A7KM35"


def test_65th_part_is_one_too_many_even_without_a_closing_boundary(load, push, build_multipart):
    pictures = [(f"picture-{number:02}.jpg", "image/jpeg", FAKE_JPEG) for number in range(64)]
    body = build_multipart(
        [("anpr.xml", "application/xml", load("anpr_barrier_gate_cn.xml")), *pictures],
        closing=False,
    )

    reason = rejection(push("multipart/form-data; boundary=MIME_boundary_test", body))

    assert reason.startswith("multipart body has more than 64 parts")


def test_broken_xml_inside_the_part_names_the_part(load, push, build_multipart):
    truncated = load("anpr_barrier_gate_cn.xml")[:400]
    body = build_multipart([("anpr.xml", "application/xml", truncated)])

    reason = rejection(push("multipart/form-data; boundary=MIME_boundary_test", body))

    assert reason == "part 'anpr.xml': not well-formed XML (no element found: line 11, column 11)"


def test_body_that_is_not_xml_is_rejected(push):
    reason = rejection(push("application/xml", b"OK"))

    assert reason == "body: not well-formed XML (syntax error: line 1, column 0)"


def test_empty_body_is_rejected(push):
    assert rejection(push("application/xml", b"\xef\xbb\xbf  \r\n")) == (
        "body: empty, expected an XML document"
    )


def test_xml_declared_as_gb2312_is_decoded(load, push):
    document = (
        load("anpr_barrier_gate_cn.xml")
        .decode("utf-8")
        .replace('encoding="utf-8"', 'encoding="GB2312"')
        .encode("gb2312")
    )

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert read == BARRIER_GATE_READ


def test_xml_declared_as_gb2312_with_bytes_it_cannot_hold_is_rejected(load, push):
    document = (
        load("anpr_barrier_gate_cn.xml")
        .replace(b'encoding="utf-8"', b'encoding="GB2312"')
        .replace("蓝苏A7KM35".encode(), b"\xff\xfeA7KM35")
    )
    offset = document.index(b"\xff\xfe")

    assert rejection(push("application/xml", document)) == (
        f"body: XML declares encoding 'GB2312' but is not (illegal multibyte sequence at "
        f"byte {offset})"
    )


def test_xml_declaring_an_unknown_encoding_is_rejected(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(b'encoding="utf-8"', b'encoding="atf-8"')

    assert rejection(push("application/xml", document)) == (
        "body: XML declares an encoding Python lacks (unknown encoding: atf-8)"
    )


def test_entity_expansion_bomb_is_refused(push):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><EventNotificationAlert>&lol2;'
        b"</EventNotificationAlert>"
    )

    reason = rejection(push("application/xml", bomb))

    assert reason == "body: XML with a DTD or entity declarations refused (EntitiesForbidden)"


def test_other_root_element_is_rejected(load, push):
    reason = rejection(push("application/xml", load("plates_single.xml")))

    assert reason == "body: root element is <Plates>, expected <EventNotificationAlert>"


def test_anpr_event_without_anpr_element_is_rejected(load, push):
    document = load("heartbeat_videoloss.xml").replace(b">videoloss<", b">ANPR<")

    assert rejection(push("application/xml", document)) == (
        "body: eventType is 'ANPR' but there is no <ANPR> element"
    )


def test_document_with_neither_eventType_nor_anpr_is_rejected(load, push):
    document = load("heartbeat_videoloss.xml").replace(b"<eventType>videoloss</eventType>", b"")

    assert rejection(push("application/xml", document)) == (
        "body: no eventType and no <ANPR> element, so this is not an ANPR event"
    )


def test_anpr_without_licensePlate_is_rejected(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        "<licensePlate>蓝苏A7KM35</licensePlate>".encode(), b""
    )

    assert rejection(push("application/xml", document)) == "body: <ANPR> has no <licensePlate>"


def test_anpr_with_empty_licensePlate_is_rejected(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        "<licensePlate>蓝苏A7KM35</licensePlate>".encode(), b"<licensePlate> </licensePlate>"
    )

    assert rejection(push("application/xml", document)) == "body: <ANPR><licensePlate> is empty"


def test_licensePlate_of_5000_characters_is_rejected_naming_the_field(load, push):
    document = load("anpr_barrier_gate_cn.xml").replace(
        "<licensePlate>蓝苏A7KM35</licensePlate>".encode(),
        b"<licensePlate>" + b"A" * 5000 + b"</licensePlate>",
    )

    assert rejection(push("application/xml", document)) == (
        "body: <ANPR><licensePlate> is 5000 characters long, more than the 32 a plate can have"
    )


def test_licensePlate_of_5000_characters_in_a_multipart_push_names_the_part(load, push):
    body = load("anpr_push_barrier_gate_cn.multipart").replace(
        "<licensePlate>蓝苏A7KM35</licensePlate>".encode(),
        b"<licensePlate>" + "沪".encode() * 5000 + b"</licensePlate>",
    )

    assert rejection(push(CAPTURE_CONTENT_TYPE, body)) == (
        "part 'anpr.xml': <ANPR><licensePlate> is 5000 characters long, more than the 32 "
        "a plate can have"
    )


def test_json_licensePlate_of_33_characters_is_rejected_naming_the_field(load, push):
    body = load("anpr_push.json").replace('"黄沪B52719"'.encode(), b'"' + b"B" * 33 + b'"')

    assert rejection(push("application/json", body)) == (
        "body: ANPR.licensePlate is 33 characters long, more than the 32 a plate can have"
    )


def test_licensePlate_of_exactly_32_characters_is_still_a_read(load, push):
    plate = "蓝苏A7KM35".ljust(MAX_PLATE_LENGTH, "X")
    document = load("anpr_barrier_gate_cn.xml").replace("蓝苏A7KM35".encode(), plate.encode())

    read = only_read(parse_anpr_push(push("application/xml", document), "north"))

    assert (MAX_PLATE_LENGTH, read.raw_plate) == (32, plate)


def test_json_that_does_not_parse_is_rejected(push):
    reason = rejection(push("application/json", b'{"eventType": "ANPR",'))

    assert reason == (
        "body: not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 22 (char 21))"
    )


def test_json_nested_absurdly_deep_is_rejected_not_crashing(push):
    assert rejection(push("application/json", b"[" * 100_000)) == (
        "body: JSON nested too deeply to be an ANPR event"
    )


def test_json_array_is_rejected(push):
    assert rejection(push("application/json", b"[]")) == (
        "body: JSON top level is of type list, expected an object"
    )


def test_json_plate_that_is_not_a_string_is_rejected(load, push):
    body = load("anpr_push.json").replace('"黄沪B52719"'.encode(), b"52719")

    assert rejection(push("application/json", body)) == (
        "body: ANPR.licensePlate is of type int, expected a string"
    )


# --- the older Plates polling answer ---------------------------------------------------


def test_plates_answer_with_one_entry(load):
    reads = parse_plates_list(
        load("plates_single.xml"), "north", "Europe/London", received_at=RECEIVED_AT
    )

    assert reads == [
        PlateRead(
            gate="north",
            raw_plate="XY12ABC",
            received_at=RECEIVED_AT,
            device_time=datetime(2020, 4, 24, 15, 16, 27, tzinfo=UTC),
            direction=Direction.IN,
            event_key="202004241616278800",
            vendor="hikvision",
            pictures=("202004241616278800",),
        )
    ]


def test_unordered_plates_answer_comes_back_oldest_first(load):
    reads = parse_plates_list(load("plates_unordered.xml"), "north", received_at=RECEIVED_AT)

    assert [(read.raw_plate, read.device_time, read.direction) for read in reads] == [
        ("沪A6K2M9", datetime(2026, 3, 1, 0, 15, 2, tzinfo=UTC), Direction.IN),
        ("浙B1D9T4", datetime(2026, 3, 1, 0, 15, 2, tzinfo=UTC), Direction.IN),
        ("沪C7Q2K8", datetime(2026, 3, 1, 0, 17, 5, tzinfo=UTC), Direction.OUT),
        ("苏E3N8P1", datetime(2026, 3, 1, 0, 19, 44, tzinfo=UTC), Direction.IN),
    ]
    assert [read.event_key for read in reads] == [
        "202603010815020100",
        "202603010815020200",
        "202603010817050300",
        "202603010819440400",
    ]


def test_plates_entry_without_plateNumber_is_rejected_by_position(load):
    document = load("plates_unordered.xml").replace(
        "<plateNumber>沪A6K2M9</plateNumber>".encode(), b""
    )

    with pytest.raises(PayloadRejected) as caught:
        parse_plates_list(document, "north", received_at=RECEIVED_AT)

    assert caught.value.reason == "Plates answer: <Plate> #2 has no <plateNumber>"


def test_plates_entry_with_unreadable_captureTime_is_rejected(load):
    document = load("plates_single.xml").replace(b"20200424T1616270000", b"2020-04-24 16:16")

    with pytest.raises(PayloadRejected) as caught:
        parse_plates_list(document, "north", received_at=RECEIVED_AT)

    assert caught.value.reason == (
        "Plates answer: <Plate> #1 has captureTime '2020-04-24 16:16', expected "
        "YYYYMMDDThhmmss followed by digits"
    )


@pytest.mark.parametrize(
    ("capture_time", "expected"),
    [
        ("20200424T161627", datetime(2020, 4, 24, 8, 16, 27, tzinfo=UTC)),
        ("20200424T1616275000", datetime(2020, 4, 24, 8, 16, 27, 500000, tzinfo=UTC)),
        ("20200424T161627Z", datetime(2020, 4, 24, 16, 16, 27, tzinfo=UTC)),
        ("20200424T161627+0100", datetime(2020, 4, 24, 15, 16, 27, tzinfo=UTC)),
    ],
)
def test_plates_captureTime_forms(load, capture_time, expected):
    document = load("plates_single.xml").replace(b"20200424T1616270000", capture_time.encode())

    (read,) = parse_plates_list(document, "north", received_at=RECEIVED_AT)

    assert read.device_time == expected


def test_plates_captureTime_with_impossible_offset_is_rejected(load):
    document = load("plates_single.xml").replace(b"20200424T1616270000", b"20200424T161627+9999")

    with pytest.raises(PayloadRejected) as caught:
        parse_plates_list(document, "north", received_at=RECEIVED_AT)

    assert caught.value.reason == (
        "Plates answer: <Plate> #1 has captureTime '20200424T161627+9999', expected "
        "YYYYMMDDThhmmss followed by digits"
    )


def test_plates_parser_refuses_an_event_document(load):
    with pytest.raises(PayloadRejected) as caught:
        parse_plates_list(load("heartbeat_videoloss.xml"), "north", received_at=RECEIVED_AT)

    assert caught.value.reason == (
        "Plates answer: root element is <EventNotificationAlert>, expected <Plates>"
    )
