"""Whatever a camera (or anyone on the network) sends, the parser answers or rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from estatehub.exceptions import PayloadRejected
from estatehub.transports.base import InboundHttp
from estatehub_hikvision.anpr import parse_anpr_push, parse_plates_list

CAPTURE = (Path(__file__).parent / "fixtures" / "anpr_push_barrier_gate_cn.multipart").read_bytes()
CAPTURE_TYPE = "multipart/form-data; boundary=---------------------------7d9a2c31e0f44"
CONTENT_TYPES = st.sampled_from(
    [CAPTURE_TYPE, "application/xml", "application/json", "multipart/form-data; boundary=x"]
)


def outcome(content_type: str, body: bytes) -> str:
    request = InboundHttp(
        "POST", "/api/webhook/hikvision/north", content_type, body, datetime.now(UTC)
    )
    try:
        reads = parse_anpr_push(request, "north")
    except PayloadRejected as rejected:
        assert rejected.reason
        return "rejected"
    assert len(reads) <= 1
    return "read" if reads else "ignored"


@settings(max_examples=300, deadline=None)
@given(content_type=CONTENT_TYPES, body=st.binary(max_size=2048))
def test_random_bytes_are_answered_or_rejected(content_type, body):
    assert outcome(content_type, body) in {"read", "ignored", "rejected"}


@settings(max_examples=300, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(CAPTURE)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(CAPTURE) - 1), st.integers(0, 255)),
        max_size=8,
    ),
)
def test_damaged_captures_are_answered_or_rejected(cut, flips):
    body = bytearray(CAPTURE[:cut] if cut else CAPTURE)
    for position, value in flips:
        if position < len(body):
            body[position] = value

    assert outcome(CAPTURE_TYPE, bytes(body)) in {"read", "ignored", "rejected"}


PLATES = (Path(__file__).parent / "fixtures" / "plates_unordered.xml").read_bytes()


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(PLATES) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_damaged_plates_answers_are_read_in_order_or_rejected(flips):
    body = bytearray(PLATES)
    for position, value in flips:
        body[position] = value

    try:
        reads = parse_plates_list(bytes(body), "north", received_at=datetime.now(UTC))
    except PayloadRejected as rejected:
        assert rejected.reason.startswith("Plates answer: ")
        return
    times = [read.device_time for read in reads]
    assert times == sorted(times)
