"""Regenerate core/estatehub/demo/demo.jsonl, the demo estate's capture.

Every payload is built by the vendor plugins' ``samples`` modules, in the vendors' real wire
formats (Hikvision ISAPI multipart ANPR pushes, zigbee2mqtt state JSON), so the demo
exercises the same parsers real devices do. Run from the repository root:

    python tools/make_demo_capture.py            # rewrite the file
    python tools/make_demo_capture.py --check    # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from estatehub_hikvision import samples as hik
from estatehub_zigbee2mqtt import samples as z2m

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 3, 2, tzinfo=SHANGHAI)  # a Monday
TARGET = Path(__file__).resolve().parents[1] / "core" / "estatehub" / "demo" / "demo.jsonl"


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def http(when: datetime, gate: str, content_type: str, body: bytes, comment: str) -> dict:
    record = {
        "at": when.isoformat(),
        "transport": "http",
        "method": "POST",
        "path": f"/api/webhook/hikvision/{gate}",
        "content_type": content_type,
    }
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_b64"] = base64.b64encode(body).decode("ascii")
    record["comment"] = comment
    return record


def mqtt(when: datetime, topic: str, payload: bytes, comment: str, retain: bool = False) -> dict:
    record = {
        "at": when.isoformat(),
        "transport": "mqtt",
        "topic": topic,
        "payload": payload.decode("utf-8"),
    }
    if retain:
        record["retain"] = True
    record["comment"] = comment
    return record


def api(when: datetime, path: str, user: str, body: dict, comment: str) -> dict:
    return {
        "at": when.isoformat(),
        "transport": "api",
        "method": "POST",
        "path": path,
        "user": user,
        "body": body,
        "comment": comment,
    }


def anpr(
    when: datetime,
    gate: str,
    plate: str,
    uuid: str,
    comment: str,
    *,
    device_time: datetime | None = None,
    ip: str = "192.0.2.10",
    **kwargs: object,
) -> dict:
    content_type, body = hik.anpr_push(plate, when=device_time or when, uuid=uuid, ip=ip, **kwargs)
    return http(when, gate, content_type, body, comment)


def records() -> list[dict]:
    south = "192.0.2.11"
    return [
        mqtt(
            at(7, 58),
            "zigbee2mqtt/b3/1203/smoke",
            z2m.smoke_clear_battery_string_old_release(),
            "retained state at start-up (old release: battery as a string)",
            retain=True,
        ),
        mqtt(
            at(7, 58),
            "zigbee2mqtt/b3-1202-smoke",
            z2m.smoke_clear_last_seen_epoch(),
            "retained state at start-up",
            retain=True,
        ),
        anpr(
            at(8, 12, 30),
            "north",
            "沪A8K352",
            "demo-0001",
            "resident car, plate with the camera's colour prefix",
            colour_prefix="蓝",
        ),
        anpr(
            at(8, 12, 31),
            "north",
            "沪A8K352",
            "demo-0001",
            "the same event posted again: counted once",
            colour_prefix="蓝",
            active_post_count=2,
            device_time=at(8, 12, 30),
        ),
        anpr(
            at(9, 2, 10),
            "north",
            "沪C5N728",
            "demo-0002",
            "a visitor arrives (no pass): admitted, billed",
        ),
        anpr(
            at(9, 30),
            "north",
            "沪AD12345",
            "demo-0003",
            "resident NEV; the camera's clock says 2034",
            device_time=datetime(2034, 1, 4, 9, 30, tzinfo=SHANGHAI),
        ),
        anpr(
            at(10, 5),
            "north",
            "沪A1O234",
            "demo-0004",
            "serial with an O: never opened automatically",
        ),
        http(
            at(10, 20),
            "north",
            "application/xml",
            b"<EventNotificationAlert><eventType>ANPR",
            "a truncated push: rejected with a reason, the hub keeps going",
        ),
        mqtt(
            at(10, 21),
            "zigbee2mqtt/b3-1202-smoke",
            b'{"smoke":"maybe"}',
            "a malformed detector payload",
        ),
        anpr(
            at(11, 47, 40),
            "south",
            "沪C5N728",
            "demo-0005",
            "the visitor leaves after 165 min: fee due",
            ip=south,
        ),
        api(
            at(11, 48, 30),
            "/api/services/parking/pay",
            "guard-room",
            {"plate": "沪C5N728", "method": "wechat"},
            "the visitor pays at the guard room; the barrier opens",
        ),
        anpr(at(11, 50), "north", "沪B99999", "demo-0006", "a blocked plate"),
        mqtt(
            at(14, 3),
            "zigbee2mqtt/b3-1202-smoke",
            z2m.smoke_alarm_last_seen_local(),
            "smoke in flat 1202",
        ),
        api(
            at(14, 9, 20),
            "/api/incidents/INC-20260302-0002/acknowledge",
            "property-desk",
            {"note": "staff on the way; household reached by phone"},
            "the property desk acknowledges",
        ),
        mqtt(at(14, 10), "zigbee2mqtt/b3-1202-smoke", z2m.smoke_clear_minimal(), "smoke gone"),
        anpr(
            at(17, 45),
            "south",
            "沪A8K352",
            "demo-0007",
            "the resident leaves",
            ip=south,
            colour_prefix="蓝",
        ),
        api(
            at(18, 0),
            "/api/incidents/INC-20260302-0002/resolve",
            "property-desk",
            {"note": "burnt pan; detector reset"},
            "the incident is closed",
        ),
    ]


def render() -> str:
    header = (
        "# estatehub demo capture (generated by tools/make_demo_capture.py; real vendor wire formats,"
        " made-up plates and addresses)\n"
    )
    return header + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print(
                f"{TARGET} is out of date: run python tools/make_demo_capture.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({len(records())} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
