"""A broken capture line is an error naming the file and line, never a traceback."""

from __future__ import annotations

import pytest

from estatehub.transports.capture import CaptureError, read_capture

GOOD = '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": "zigbee2mqtt/d1", "payload": "{}"}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "{not json",
            "cap.jsonl, line 2: not JSON (Expecting property name enclosed in double quotes at column 2)",
        ),
        ("[1, 2]", "cap.jsonl, line 2: expected a JSON object, got list"),
        (
            '{"at": "2026-03-02T08:00:00", "transport": "mqtt", "topic": "t"}',
            "cap.jsonl, line 2: 'at' must be an ISO 8601 time with an offset, got '2026-03-02T08:00:00'",
        ),
        (
            '{"at": "9999-12-31T23:59:59-12:00", "transport": "mqtt", "topic": "t"}',
            "cap.jsonl, line 2: 'at' must be an ISO 8601 time with an offset, got '9999-12-31T23:59:59-12:00'",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "pigeon"}',
            "cap.jsonl, line 2: transport must be one of mqtt, http, api; got 'pigeon'",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "http", "method": "POST"}',
            "cap.jsonl, line 2: http record without 'path'",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": "t", "payload_b64": "!!!notbase64"}',
            "cap.jsonl, line 2: 'payload_b64' is not valid base64",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": "t", "retain": "false"}',
            "cap.jsonl, line 2: 'retain' must be true or false, got \"false\"",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": 5}',
            "cap.jsonl, line 2: 'topic' must be text, got 5",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "mqtt", "topic": "t", "qos": 7}',
            "cap.jsonl, line 2: 'qos' must be 0, 1 or 2, got 7",
        ),
        (
            '{"at": "2026-03-02T08:00:00+08:00", "transport": "api", "method": "POST", "path": "/x", "user": "u", "body": [1]}',
            "cap.jsonl, line 2: an api record's 'body' must be a JSON object",
        ),
        ("[" * 100_000, "cap.jsonl, line 2: not JSON (nested too deeply)"),
    ],
)
def test_each_kind_of_broken_line_is_named(tmp_path, line, message):
    capture = tmp_path / "cap.jsonl"
    capture.write_text(GOOD + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CaptureError) as caught:
        list(read_capture(capture))
    assert str(caught.value) == message


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    capture = tmp_path / "cap.jsonl"
    capture.write_bytes(GOOD.encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(CaptureError, match=r"cap.jsonl, line 2: not UTF-8 \(byte 1\)"):
        list(read_capture(capture))
