"""`estatehub run` announces the hub on the LAN (here: loopback) with its id and modules."""

from __future__ import annotations

import dataclasses
import uuid

from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from estatehub.discovery import SERVICE_TYPE
from estatehub.testing.harness import EstateHarness


async def test_a_running_hub_is_found_with_its_stable_id_and_running_modules(tmp_path):
    name = f"馨苑 {uuid.uuid4().hex[:6]}"
    yaml = (
        f"estate: {{name: {name}}}\nplugins: {{allow: [parking]}}\napi: {{host: 127.0.0.1}}\n"
        "modules:\n  parking:\n    gates:\n      north: {adapter: mqtt_json}\n"
    )
    harness = EstateHarness.from_yaml(
        tmp_path, yaml, serve_api=True, store_path=tmp_path / "hub.db"
    )
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    harness.hub.advertise = True
    async with harness as e:
        assert e.hub.advertiser is not None
        port = int(e.hub.api_url.rsplit(":", 1)[1])
        household = AsyncZeroconf(interfaces=["127.0.0.1"])
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, e.hub.advertiser.service_name)
            assert await info.async_request(household.zeroconf, 3000)
            assert info.port == port
            assert info.parsed_addresses() == ["127.0.0.1"]
            txt = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
            assert txt["id"] == e.hub.hub_id()
            assert txt["modules"] == "parking"
            assert txt["estate"] == name
        finally:
            await household.async_close()
        first_id = e.hub.hub_id()
    again = EstateHarness.from_yaml(tmp_path, yaml, store_path=tmp_path / "hub.db")
    async with again as e:
        assert e.hub.hub_id() == first_id  # the id survives restarts
