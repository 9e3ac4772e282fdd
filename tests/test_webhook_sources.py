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
