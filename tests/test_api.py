"""The REST API on a real socket: bearer tokens, no anonymous writes, incidents, services."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from estatehub.testing.harness import EstateHarness

ESTATE = """
estate: {name: api estate}
plugins:
  allow: [parking, home, zigbee2mqtt]
api:
  host: 127.0.0.1
  tokens:
    - {name: property-desk, token: !secret desk, roles: [operator]}
    - {name: lobby-screen, token: !secret viewer, roles: [viewer]}
modules:
  parking:
    gates:
      north: {adapter: mqtt_json, direction: in}
  home:
    detectors:
      d1: {options: {friendly_name: d1}}
"""
SECRETS = "desk: desk-token-0123456789abcdef\nviewer: viewer-token-0123456789abcdef\n"
DESK = {"Authorization": "Bearer desk-token-0123456789abcdef"}
VIEWER = {"Authorization": "Bearer viewer-token-0123456789abcdef"}


@pytest.fixture
async def estate(tmp_path):
    harness = EstateHarness.from_yaml(tmp_path, ESTATE, secrets=SECRETS, serve_api=True)
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    async with harness as e, aiohttp.ClientSession(e.hub.api_url) as http:
        yield e, http


async def test_reads_need_a_token_and_health_does_not(estate):
    _, http = estate
    async with http.get("/api/states") as response:
        assert response.status == 401
        assert (await response.json()) == {"error": "a valid bearer token is required"}
    async with http.get("/api/states", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 401
    async with http.get("/api/health") as response:
        assert (await response.json())["modules"] == {"parking": "running", "home": "running"}
    async with http.get("/api/states", headers=VIEWER) as response:
        ids = [s["entity_id"] for s in await response.json()]
        assert "sensor.parking_open_sessions" in ids and "binary_sensor.d1" in ids
    async with http.get("/api/states/binary_sensor.d1", headers=VIEWER) as response:
        assert (await response.json())["attributes"]["kind"] == "smoke"
    async with http.get("/api/states/sensor.nope", headers=VIEWER) as response:
        assert response.status == 404


async def test_acknowledging_an_incident_needs_a_writing_role_and_is_audited(estate):
    e, http = estate
    e.mqtt("zigbee2mqtt/d1", b'{"smoke":true}')
    await e.settle()
    async with http.get("/api/incidents", headers=VIEWER) as response:
        (incident,) = await response.json()
    assert (incident["kind"], incident["state"]) == ("smoke", "raised")
    path = f"/api/incidents/{incident['id']}/acknowledge"
    async with http.post(path) as response:
        assert response.status == 401  # no anonymous writes
    async with http.post(path, headers=VIEWER, json={}) as response:
        assert response.status == 403
    async with http.post(path, headers=DESK, json={"note": "on my way"}) as response:
        body = await response.json()
        assert response.status == 200, body
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", "property-desk")
    async with http.post(path, headers=DESK, json={}) as response:
        assert response.status == 409
        assert "already acknowledged" in (await response.json())["error"]
    async with http.post("/api/incidents/INC-nope/acknowledge", headers=DESK, json={}) as response:
        assert response.status == 404
    entry = e.hub.store.audit_entries(incident["id"])[-1]
    assert (entry.actor, entry.action, entry.detail) == (
        "property-desk",
        "incident.acknowledged",
        {"note": "on my way"},
    )


async def test_services_are_called_with_validation_and_roles(estate):
    _, http = estate
    async with http.post("/api/services/parking/pay", headers=DESK, json={"plate": ""}) as response:
        assert response.status == 400
        assert "plate" in (await response.json())["error"]
    async with http.post(
        "/api/services/parking/pay", headers=DESK, json={"plate": "沪C5N728"}
    ) as response:
        assert response.status == 409
        assert "no open parking session" in (await response.json())["error"]
    async with http.post(
        "/api/services/parking/open_barrier",
        headers=VIEWER,
        json={"gate": "north", "reason": "test"},
    ) as response:
        assert response.status == 403
    async with http.post("/api/services/parking/nope", headers=DESK, json={}) as response:
        assert response.status == 404
    async with http.post("/api/services/parking/pay", headers=DESK, data=b"{not json") as response:
        assert response.status == 400
        assert "not JSON" in (await response.json())["error"]
    async with http.get("/api/services", headers=VIEWER) as response:
        names = {(s["domain"], s["service"]) for s in await response.json()}
    assert ("parking", "pay") in names and ("parking", "open_barrier") in names


async def test_webhook_paths_answer_400_with_the_reason_for_bad_payloads(estate):
    e, http = estate
    async with http.post("/api/webhook/nobody/here", data=b"x") as response:
        assert response.status == 404
    assert (
        e.events_of("transport.rejected")[-1]["reason"]
        == "no webhook registered at /api/webhook/nobody/here"
    )


async def test_only_writes_the_caller_was_allowed_to_make_are_captured(tmp_path):
    from estatehub.transports.capture import CaptureWriter, read_capture

    harness = EstateHarness.from_yaml(tmp_path, ESTATE, secrets=SECRETS, serve_api=True)
    config = harness.hub.config
    harness.hub.config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=0))
    harness.hub.capture = CaptureWriter(tmp_path / "capture.jsonl")
    async with harness as e, aiohttp.ClientSession(e.hub.api_url) as http:
        e.mqtt("zigbee2mqtt/d1", b'{"smoke":true}')
        await e.settle()
        incident_id = e.hub.incidents.open_incidents()[0].id
        async with http.post(
            f"/api/incidents/{incident_id}/acknowledge", headers=VIEWER, json={}
        ) as response:
            assert response.status == 403
        async with http.post(
            f"/api/incidents/{incident_id}/acknowledge", headers=DESK, json={}
        ) as response:
            assert response.status == 200
    api_records = [r for r in read_capture(tmp_path / "capture.jsonl") if r.transport == "api"]
    assert [(r.fields["user"], r.fields["path"]) for r in api_records] == [
        ("property-desk", f"/api/incidents/{incident_id}/acknowledge")
    ]


async def test_plugins_endpoint_shows_run_time_status(estate):
    _, http = estate
    async with http.get("/api/plugins", headers=VIEWER) as response:
        plugins = {p["name"]: p for p in await response.json()}
    assert plugins["parking"]["status"] == "loaded"
    assert "estatehub_register_subsystems" in plugins["parking"]["hooks"]
