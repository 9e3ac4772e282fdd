"""A camera's webhook accepts pushes only from the addresses the gate allows."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import aiohttp

from estatehub.testing.harness import EstateHarness
from estatehub_hikvision import samples

ESTATE = """
estate: {name: sources}
plugins: {allow: [parking, hikvision]}
api: {host: 127.0.0.1}
modules:
  parking:
    gates:
      north:
        adapter: hikvision
        direction: in
        options: {host: 192.0.2.10}
      south:
        adapter: hikvision
        direction: out
        options: {host: 192.0.2.11, accept_from: [192.0.2.11, 127.0.0.0/8]}
"""


async def test_push_from_an_address_that_is_not_the_camera_is_refused_and_counted(tmp_path):
    harness = EstateHarness.from_yaml(tmp_path, ESTATE, serve_api=True)
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    content_type, body = samples.anpr_push(
        "沪C5N728", when=datetime(2026, 3, 2, 8, 0), uuid="src-1"
    )
    async with harness as e, aiohttp.ClientSession(e.hub.api_url) as http:
        async with http.post(
            "/api/webhook/hikvision/north", data=body, headers={"Content-Type": content_type}
        ) as r:
            assert r.status == 403
            assert "push from 127.0.0.1 refused" in await r.text()
        assert e.events_of("parking.plate_read") == []
        assert e.events_of("transport.rejected")[0]["reason"] == (
            "push from 127.0.0.1 refused: not an allowed source for /api/webhook/hikvision/north"
        )
        async with http.post(
            "/api/webhook/hikvision/south", data=body, headers={"Content-Type": content_type}
        ) as r:
            assert r.status == 200
        assert [d["gate"] for d in e.events_of("parking.plate_read")] == ["south"]


async def test_a_one_megabyte_push_arrives_whole_and_an_oversized_chunked_one_gets_413(tmp_path):
    harness = EstateHarness.from_yaml(tmp_path, ESTATE, serve_api=True)
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    content_type, body = samples.anpr_push(
        "沪C5N728", when=datetime(2026, 3, 2, 8, 0), uuid="big-1"
    )
    boundary = content_type.split("boundary=", 1)[1].encode()
    # A camera that sends a large detection picture first: the XML part comes after ~1 MB.
    picture = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="detectionPicture.jpg"; '
        b'filename="detectionPicture.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + b"\xff\xd8"
        + b"\x00" * 1_000_000
        + b"\xff\xd9\r\n"
    )
    big = picture + body
    async with harness as e, aiohttp.ClientSession(e.hub.api_url) as http:
        async with http.post(
            "/api/webhook/hikvision/south", data=big, headers={"Content-Type": content_type}
        ) as r:
            assert r.status == 200, await r.text()
        assert [d["plate"] for d in e.events_of("parking.plate_read")] == ["沪C5N728"]

        async def chunks():
            for _ in range(10):
                yield b"x" * 1_000_000

        async with http.post(
            "/api/webhook/hikvision/south", data=chunks(), headers={"Content-Type": content_type}
        ) as r:
            assert r.status == 413
        assert "over the 8388608 byte limit" in e.events_of("transport.rejected")[-1]["reason"]
        async with http.get("/api/webhook/hikvision/south") as r:
            assert r.status == 405


async def test_api_body_limit_holds_for_chunked_requests_too(tmp_path):
    secrets = "desk: desk-token-0123456789abcdef\n"
    yaml = ESTATE.replace(
        "api: {host: 127.0.0.1}",
        "api:\n  host: 127.0.0.1\n  tokens: [{name: desk, token: !secret desk, roles: [operator]}]",
    )
    harness = EstateHarness.from_yaml(tmp_path, yaml, secrets=secrets, serve_api=True)
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    auth = {"Authorization": "bearer desk-token-0123456789abcdef"}  # the scheme is case-insensitive

    async def note():
        yield b'{"note": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    async with harness as e, aiohttp.ClientSession(e.hub.api_url) as http:
        async with http.post("/api/incidents/INC-1/acknowledge", data=note(), headers=auth) as r:
            assert r.status == 413
        async with http.get("/api/nowhere", headers=auth) as r:
            assert r.status == 404
            assert (await r.json())["error"].startswith("Not Found")
        async with http.get("/api/incidents?state=bogus", headers=auth) as r:
            assert r.status == 400
