"""The sample builder the lead uses for demo captures and benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from estatehub.hookspecs.parking import Direction, PlateRead
from estatehub_hikvision.anpr import parse_anpr_push
from estatehub_hikvision.samples import NAMESPACES, anpr_push, fake_jpeg, heartbeat_push

CST = timezone(timedelta(hours=8))
WHEN = datetime(2026, 3, 1, 8, 15, 2, tzinfo=CST)


@pytest.mark.parametrize("namespace", [*NAMESPACES.values(), None])
def test_sample_push_parses_back_to_the_values_put_in(push, namespace):
    content_type, body = anpr_push(
        "苏A7KM35",
        when=WHEN,
        uuid="demo-0001",
        namespace=namespace,
        colour_prefix="蓝",
        retransmission=True,
        active_post_count=2,
        direction="reverse",
        channel=3,
        ip="192.0.2.33",
    )

    reads = parse_anpr_push(push(content_type, body), "north")

    assert reads == [
        PlateRead(
            gate="north",
            raw_plate="蓝苏A7KM35",
            received_at=datetime(2026, 3, 1, 0, 15, 9, tzinfo=UTC),
            device_time=WHEN,
            direction=Direction.OUT,
            confidence=96,
            plate_colour="blue",
            event_key="demo-0001",
            retransmission=True,
            vendor="hikvision",
            pictures=("licensePlatePicture.jpg", "detectionPicture.jpg"),
        )
    ]


def test_sample_push_is_multipart_with_the_xml_and_two_jpeg_parts():
    content_type, body = anpr_push("沪A12345", when=WHEN, uuid="demo-0002")

    boundary = content_type.split("boundary=", 1)[1]
    assert content_type.startswith("multipart/form-data; boundary=" + "-" * 27)
    assert body.count(b"--" + boundary.encode() + b"\r\n") == 3
    assert body.endswith(b"--" + boundary.encode() + b"--\r\n")
    assert b'name="anpr.xml";filename="anpr.xml"' in body
    assert b"<dateTime>2026-03-01T08:15:02+08:00</dateTime>" in body
    assert b"<licensePlate>\xe6\xb2\xaaA12345</licensePlate>" in body
    assert b"<palteTypeByGAT>2</palteTypeByGAT>" in body
    assert fake_jpeg("demo-0002/licensePlatePicture.jpg") in body
    assert fake_jpeg("demo-0002/detectionPicture.jpg") in body


def test_same_arguments_give_the_same_bytes():
    assert anpr_push("沪A12345", when=WHEN, uuid="u") == anpr_push("沪A12345", when=WHEN, uuid="u")
    assert anpr_push("沪A12345", when=WHEN, uuid="u") != anpr_push("沪A12345", when=WHEN, uuid="v")


def test_naive_time_is_written_without_offset_and_read_as_device_local(push):
    content_type, body = anpr_push("沪A12345", when=datetime(2026, 3, 1, 8, 15, 2), uuid="u")

    (read,) = parse_anpr_push(push(content_type, body), "north")

    assert b"<dateTime>2026-03-01T08:15:02</dateTime>" in body
    assert read.device_time == datetime(2026, 3, 1, 0, 15, 2, tzinfo=UTC)


def test_plate_text_is_xml_escaped(push):
    content_type, body = anpr_push("A<&>B", when=WHEN, uuid="u")

    (read,) = parse_anpr_push(push(content_type, body), "north")

    assert read.raw_plate == "A<&>B"


def test_heartbeat_sample_gives_no_reads(push):
    content_type, body = heartbeat_push(when=WHEN)

    assert content_type == "application/xml"
    assert parse_anpr_push(push(content_type, body), "north") == []
