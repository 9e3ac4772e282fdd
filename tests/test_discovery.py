"""LAN discovery: a household's Home Assistant finds the estate hub as _estatehub._tcp.local.

Every test that opens zeroconf binds it to 127.0.0.1, so no packet leaves the machine. The
household side is a separate AsyncZeroconf instance (and once a separate process), as it is
on a real LAN. Estate names and ids carry a random suffix: another test run on this machine
at the same time shares loopback multicast, and must neither take our names nor be mistaken
for our hub.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import ifaddr
import pytest
from zeroconf import ServiceStateChange, Zeroconf, service_type_name
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

import estatehub
from estatehub.discovery import (
    SERVICE_TYPE,
    AddressPlan,
    DiscoveryError,
    HubAdvertiser,
    host_name_for,
    instance_name_for,
    plan_addresses,
)
from estatehub.exceptions import EstatehubError

LOOPBACK = "127.0.0.1"
WAIT = 5.0  # seconds: registering takes about 1 s, a goodbye about 0.25 s

# -- the instance name -------------------------------------------------------------------


def test_a_chinese_estate_name_is_the_instance_name_as_it_is() -> None:
    assert instance_name_for("陆家嘴花园") == "陆家嘴花园"
    assert instance_name_for("翠湖天地 二期") == "翠湖天地 二期"


def test_dots_in_an_estate_name_do_not_split_the_dns_label() -> None:
    assert instance_name_for("St. Mary's Court 2.0") == "St· Mary's Court 2·0"


def test_control_characters_and_runs_of_spaces_become_one_space() -> None:
    assert instance_name_for("  翠湖\n天地\t\t 二期\x7f ") == "翠湖 天地 二期"


def test_an_estate_name_with_nothing_printable_falls_back_to_estatehub() -> None:
    assert instance_name_for("\x00\n ") == "estatehub"


def test_a_long_chinese_name_is_cut_on_a_character_and_leaves_room_for_a_rename() -> None:
    name = "上海市浦东新区陆家嘴街道世纪大道一号国际花园业主委员会自治小区"  # 31 chars, 93 bytes
    label = instance_name_for(name)

    assert label == name[:19]  # 19 × 3 = 57 bytes; a 20th character would make 60 > 59
    # zeroconf renames a taken name to "<label>-2", "-3" …; even "-999" stays valid.
    assert len(f"{label}-999".encode()) == 61
    assert service_type_name(f"{label}-999.{SERVICE_TYPE}") == SERVICE_TYPE


def test_the_service_points_at_a_host_name_of_its_own() -> None:
    assert host_name_for("Lujiazui_Garden-01") == "estatehub-lujiazui-garden-01.local."


# -- the TXT record ----------------------------------------------------------------------


def test_the_txt_record_carries_version_estate_api_id_and_modules() -> None:
    advertiser = HubAdvertiser(
        name="陆家嘴花园",
        host=LOOPBACK,
        port=8740,
        properties={"id": "lujiazui-01", "modules": "parking,home,governance"},
    )

    assert dict(advertiser.properties) == {
        "version": estatehub.__version__,
        "estate": "陆家嘴花园",
        "api": "/api",
        "id": "lujiazui-01",
        "modules": "parking,home,governance",
    }
    assert advertiser.instance_name == "陆家嘴花园"
    assert advertiser.service_name == "陆家嘴花园._estatehub._tcp.local."
    assert advertiser.server == "estatehub-lujiazui-01.local."
    assert advertiser.addresses == ()
    assert not advertiser.running


@pytest.mark.parametrize("key", ["token", "owner_phone"])
def test_a_token_or_personal_data_cannot_be_put_in_the_txt_record(key: str) -> None:
    with pytest.raises(DiscoveryError) as caught:
        HubAdvertiser(
            name="陆家嘴花园",
            host=LOOPBACK,
            port=8740,
            properties={"id": "lujiazui-01", key: "3f9c2a77d1e04b5c"},
        )

    assert caught.value.reason == (
        f"TXT key '{key}' is not allowed: anyone on the LAN reads the TXT record, so it "
        "carries only version, estate, api, id, modules (the caller gives api, id, modules)"
    )


def test_version_and_estate_are_filled_in_by_the_advertiser_not_the_caller() -> None:
    with pytest.raises(DiscoveryError, match=r"^TXT key 'version' is not allowed"):
        HubAdvertiser(
            name="陆家嘴花园", host=LOOPBACK, port=8740, properties={"id": "a", "version": "9"}
        )


def test_a_hub_without_a_stable_id_is_refused() -> None:
    with pytest.raises(DiscoveryError) as caught:
        HubAdvertiser(name="陆家嘴花园", host=LOOPBACK, port=8740, properties={"modules": "home"})

    assert caught.value.reason == (
        "TXT id '' must be 1 to 63 ASCII letters, digits, '-' or '_', starting with a letter "
        "or digit (a stable id of this hub, never a secret)"
    )


def test_modules_must_be_a_comma_list_of_module_ids() -> None:
    with pytest.raises(DiscoveryError) as caught:
        HubAdvertiser(
            name="陆家嘴花园",
            host=LOOPBACK,
            port=8740,
            properties={"id": "lujiazui-01", "modules": "parking, home"},
        )

    assert caught.value.reason == (
        "TXT modules 'parking, home' must be module ids separated by commas, "
        "e.g. 'parking,home'; ' home' is not one"
    )


def test_a_very_long_estate_name_is_cut_to_fit_one_txt_entry() -> None:
    advertiser = HubAdvertiser(
        name="园" * 100, host=LOOPBACK, port=8740, properties={"id": "lujiazui-01"}
    )

    assert advertiser.properties["estate"] == "园" * 82  # "estate=" + 246 bytes ≤ 255
    assert advertiser.instance_name == "园" * 19


def test_port_zero_is_refused_because_households_could_not_connect() -> None:
    with pytest.raises(DiscoveryError) as caught:
        HubAdvertiser(name="陆家嘴花园", host=LOOPBACK, port=0, properties={"id": "a"})

    assert caught.value.reason == "cannot advertise port 0: give the port the API is bound to"
    assert issubclass(DiscoveryError, EstatehubError)


async def test_an_update_before_start_changes_what_start_will_hubs() -> None:
    advertiser = HubAdvertiser(
        name="陆家嘴花园", host=LOOPBACK, port=8740, properties={"id": "lujiazui-01"}
    )

    await advertiser.update({"modules": "parking"})
    with pytest.raises(DiscoveryError, match=r"^TXT key 'tokens' is not allowed"):
        await advertiser.update({"tokens": "3f9c2a77d1e04b5c"})

    assert advertiser.properties["modules"] == "parking"
    assert "tokens" not in advertiser.properties
    assert not advertiser.running


# -- which addresses are advertised ------------------------------------------------------

# A gateway box: loopback, wired LAN with an IPv6 link-local address, and Wi-Fi.
ADAPTERS = [
    ifaddr.Adapter(
        "lo", "lo", [ifaddr.IP("127.0.0.1", 8, "lo"), ifaddr.IP(("::1", 0, 0), 128, "lo")], 1
    ),
    ifaddr.Adapter(
        "eth0",
        "eth0",
        [
            ifaddr.IP("192.168.10.5", 24, "eth0"),
            ifaddr.IP(("fe80::5054:ff:fe12:3456", 0, 2), 64, "eth0"),
        ],
        2,
    ),
    ifaddr.Adapter(
        "wlan0",
        "wlan0",
        [ifaddr.IP("10.8.0.7", 16, "wlan0"), ifaddr.IP(("fd12::7", 0, 0), 64, "wlan0")],
        3,
    ),
]
LOOPBACK_ONLY = ADAPTERS[:1]


def test_a_hub_listening_on_all_addresses_advertises_every_lan_address_but_loopback() -> None:
    assert plan_addresses(["0.0.0.0"], None, ADAPTERS) == AddressPlan(
        addresses=("192.168.10.5", "10.8.0.7"), interfaces=None, ipv6=False
    )


def test_a_hub_listening_on_all_ipv6_addresses_advertises_the_ipv6_ones() -> None:
    assert plan_addresses(["::"], None, ADAPTERS) == AddressPlan(
        addresses=("fe80::5054:ff:fe12:3456", "fd12::7"), interfaces=None, ipv6=True
    )


def test_a_hub_on_all_addresses_can_be_advertised_on_the_wired_lan_only() -> None:
    assert plan_addresses(["0.0.0.0"], ["eth0"], ADAPTERS) == AddressPlan(
        addresses=("192.168.10.5",), interfaces=("192.168.10.5",), ipv6=False
    )


def test_a_hub_on_all_addresses_bound_to_loopback_advertises_127_0_0_1() -> None:
    assert plan_addresses(["0.0.0.0"], [LOOPBACK], ADAPTERS) == AddressPlan(
        addresses=(LOOPBACK,), interfaces=(LOOPBACK,), ipv6=False
    )


@pytest.mark.parametrize("host", [LOOPBACK, "192.168.10.5"])
def test_a_hub_on_one_address_advertises_it_and_only_there(host: str) -> None:
    assert plan_addresses([host], None, ADAPTERS) == AddressPlan(
        addresses=(host,), interfaces=(host,), ipv6=False
    )


def test_a_machine_with_only_loopback_has_nothing_to_advertise_to_the_lan() -> None:
    with pytest.raises(DiscoveryError) as caught:
        plan_addresses(["0.0.0.0"], None, LOOPBACK_ONLY)

    assert caught.value.reason == (
        "no network interface other than loopback has an IPv4 address to advertise "
        "(the API listens on 0.0.0.0)"
    )


def test_an_interface_name_this_machine_does_not_have_is_refused() -> None:
    with pytest.raises(DiscoveryError) as caught:
        plan_addresses(["0.0.0.0"], ["wlan9"], ADAPTERS)

    assert (
        caught.value.reason
        == "no network interface named 'wlan9' (this machine has: eth0, lo, wlan0)"
    )


def test_an_address_this_machine_does_not_have_is_refused() -> None:
    with pytest.raises(DiscoveryError) as caught:
        plan_addresses(["0.0.0.0"], ["203.0.113.77"], ADAPTERS)

    assert caught.value.reason == (
        "interface 203.0.113.77 is not an address of this machine (its addresses: 127.0.0.1, "
        "::1, 192.168.10.5, fe80::5054:ff:fe12:3456, 10.8.0.7, fd12::7)"
    )


def test_an_empty_interface_list_is_refused_rather_than_advertising_nowhere() -> None:
    with pytest.raises(DiscoveryError, match=r"^the interface list is empty"):
        plan_addresses(["0.0.0.0"], [], ADAPTERS)


# -- on the (loopback) network -----------------------------------------------------------


class Household:
    """A household's zeroconf on the LAN: a separate instance that browses for hubs."""

    def __init__(self, zc: AsyncZeroconf) -> None:
        self.zc = zc
        self.seen: asyncio.Queue[tuple[ServiceStateChange, str]] = asyncio.Queue()

    def on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        self.seen.put_nowait((state_change, name))

    async def sees(self, change: ServiceStateChange, name: str) -> None:
        """Wait until the browser reports ``change`` for ``name`` (others are skipped)."""
        async with asyncio.timeout(WAIT):
            while await self.seen.get() != (change, name):
                pass

    async def resolve(self, name: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        assert await info.async_request(self.zc.zeroconf, 3000), f"{name} did not resolve"
        return info


@pytest.fixture
async def household() -> AsyncIterator[Household]:
    zc = AsyncZeroconf(interfaces=[LOOPBACK])
    household = Household(zc)
    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, handlers=[household.on_change])
    yield household
    await browser.async_cancel()
    await zc.async_close()


class Hubs:
    """Builds advertisers for one test, with one estate name and id unique to the test."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.estate = f"陆家嘴花园 {suffix}"
        self.hub_id = f"lujiazui-{suffix}"
        self.made: list[HubAdvertiser] = []

    def __call__(self, **overrides: Any) -> HubAdvertiser:
        options: dict[str, Any] = {
            "name": self.estate,
            "host": LOOPBACK,
            "port": 8740,
            "properties": {"id": self.hub_id, "modules": "parking,home"},
            "interfaces": [LOOPBACK],
            **overrides,
        }
        advertiser = HubAdvertiser(**options)
        self.made.append(advertiser)
        return advertiser

    def txt(self, modules: str = "parking,home") -> dict[str, str]:
        """The TXT record a household should read."""
        return {
            "version": estatehub.__version__,
            "estate": self.estate,
            "api": "/api",
            "id": self.hub_id,
            "modules": modules,
        }


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    made = Hubs()
    yield made
    for advertiser in made.made:
        await advertiser.stop()


@pytest.mark.parametrize("host", [LOOPBACK, "0.0.0.0"])
async def test_a_household_finds_the_hub_and_reads_port_address_and_txt(
    household: Household, hubs: Hubs, host: str
) -> None:
    advertiser = hubs(host=host, port=8741)
    await advertiser.start()
    await household.sees(ServiceStateChange.Added, advertiser.service_name)
    info = await household.resolve(advertiser.service_name)

    assert advertiser.running
    assert advertiser.addresses == (LOOPBACK,)
    assert (info.type, info.name) == (SERVICE_TYPE, advertiser.service_name)
    assert advertiser.instance_name == hubs.estate
    assert (info.server, info.port) == (advertiser.server, 8741)
    assert info.parsed_addresses() == [LOOPBACK]
    assert info.decoded_properties == hubs.txt()


async def test_a_household_in_another_process_resolves_the_hub(hubs: Hubs) -> None:
    advertiser = hubs(port=8742)
    await advertiser.start()
    script = (
        "import asyncio, json, sys\n"
        "from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf\n"
        "async def main():\n"
        "    async with AsyncZeroconf(interfaces=['127.0.0.1']) as zc:\n"
        "        info = AsyncServiceInfo(sys.argv[1], sys.argv[2])\n"
        "        found = await info.async_request(zc.zeroconf, 3000)\n"
        "        print(json.dumps({'found': found, 'type': info.type, 'server': info.server,\n"
        "            'port': info.port, 'addresses': info.parsed_addresses(),\n"
        "            'txt': info.decoded_properties}, ensure_ascii=False))\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        SERVICE_TYPE,
        advertiser.service_name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 20)

    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {
        "found": True,
        "type": SERVICE_TYPE,
        "server": advertiser.server,
        "port": 8742,
        "addresses": [LOOPBACK],
        "txt": hubs.txt(),
    }


async def test_an_update_changes_the_txt_the_household_sees(
    household: Household, hubs: Hubs
) -> None:
    advertiser = hubs()
    await advertiser.start()
    await household.sees(ServiceStateChange.Added, advertiser.service_name)

    await advertiser.update({"modules": "parking,home,access"})
    await household.sees(ServiceStateChange.Updated, advertiser.service_name)
    info = await household.resolve(advertiser.service_name)

    assert info.decoded_properties == hubs.txt("parking,home,access")
    assert dict(advertiser.properties) == hubs.txt("parking,home,access")
    assert (info.port, info.parsed_addresses()) == (8740, [LOOPBACK])


async def test_modules_changed_while_the_hub_registers_are_what_households_read(
    household: Household, hubs: Hubs
) -> None:
    advertiser = hubs()
    starting = asyncio.create_task(advertiser.start())
    await asyncio.sleep(0.1)  # zeroconf probes for the name for about a second
    await advertiser.update({"modules": "parking,home,access"})
    await starting

    await household.sees(ServiceStateChange.Added, advertiser.service_name)
    info = await household.resolve(advertiser.service_name)
    if info.decoded_properties != hubs.txt("parking,home,access"):
        # The first announcement went out with the record from before the update.
        await household.sees(ServiceStateChange.Updated, advertiser.service_name)
        info = await household.resolve(advertiser.service_name)
    assert info.decoded_properties == hubs.txt("parking,home,access")


async def test_a_running_hub_cannot_start_twice_and_stop_withdraws_it(
    household: Household, hubs: Hubs
) -> None:
    advertiser = hubs()
    await advertiser.start()
    await household.sees(ServiceStateChange.Added, advertiser.service_name)
    with pytest.raises(DiscoveryError) as caught:
        await advertiser.start()
    assert caught.value.reason == f"{advertiser.service_name} is already advertised"

    await advertiser.stop()
    await household.sees(ServiceStateChange.Removed, advertiser.service_name)

    assert not advertiser.running
    await advertiser.stop()  # a second stop does nothing
    assert not advertiser.running


async def test_a_second_hub_with_the_same_estate_name_gets_a_unique_name(
    household: Household, hubs: Hubs
) -> None:
    first = hubs(port=8743)
    second = hubs(port=8744)
    await first.start()
    await second.start()
    await household.sees(ServiceStateChange.Added, first.service_name)
    await household.sees(ServiceStateChange.Added, second.service_name)

    assert second.instance_name == f"{first.instance_name}-2"
    assert second.service_name == f"{first.instance_name}-2._estatehub._tcp.local."
    assert (await household.resolve(first.service_name)).port == 8743
    assert (await household.resolve(second.service_name)).port == 8744


async def test_an_interface_address_not_on_this_machine_fails_start_with_the_reason(
    hubs: Hubs,
) -> None:
    advertiser = hubs(host="0.0.0.0", interfaces=["203.0.113.77"])

    with pytest.raises(DiscoveryError, match=r"^interface 203\.0\.113\.77 is not an address"):
        await advertiser.start()

    assert not advertiser.running
    assert advertiser.addresses == ()


async def hold_mdns_port_alone() -> socket.socket:
    """Bind UDP 5353 the way a responder that does not share it would (no SO_REUSE*).

    Another zeroconf on this machine (a parallel test run) may hold the port for a moment,
    so try for a while before giving up.
    """
    deadline = time.monotonic() + 15
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("0.0.0.0", 5353))
        except OSError as err:
            sock.close()
            if err.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            return sock


async def test_an_mdns_port_taken_by_a_responder_that_will_not_share_fails_start(
    hubs: Hubs,
) -> None:
    advertiser = hubs()
    sock = await hold_mdns_port_alone()
    try:
        with pytest.raises(DiscoveryError) as caught:
            await advertiser.start()
    finally:
        sock.close()

    assert caught.value.reason == (
        "the mDNS port 5353 is taken by a program that does not share it "
        "(Address already in use); with avahi-daemon, set disallow-other-stacks=no"
    )
    assert not advertiser.running
    # Nothing was left half-open: once the port is free, the same advertiser starts.
    await advertiser.start()
    assert advertiser.running
