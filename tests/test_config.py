"""Loading an estate's YAML config: what a property manager sees when it is right or wrong.

The sample estates live in tests/configs/ (``xinyuan`` is valid, ``broken`` has mistakes in
the main file and in the files it includes). Smaller cases are written inline, starting at
line 1, so the line numbers in the expected messages can be checked by eye.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import voluptuous as vol

from estatehub import config_validation as cv
from estatehub.config import (
    ApiSettings,
    ApiToken,
    ConfigError,
    ConfigIssue,
    MqttSettings,
    PluginSettings,
    load_estate_config,
    load_yaml,
    position,
    validate,
)
from estatehub.exceptions import EstatehubError, PluginError

CONFIGS = Path(__file__).parent / "configs"

# Module schemas in the shape a subsystem plugin supplies them.
PARKING_SCHEMA = vol.Schema(
    {
        vol.Optional("tariff", default=dict): {
            vol.Optional("free_minutes", default=15): int,
            vol.Optional("hourly", default="5元"): cv.money_fen,
        },
        vol.Optional("gates", default=list): cv.list_of(
            {vol.Required("id"): cv.slug, vol.Optional("open_for", default="10s"): cv.duration}
        ),
    }
)
HOME_SCHEMA = vol.Schema({vol.Optional("escalate_after", default="2m"): cv.duration})
MODULES = {"parking": PARKING_SCHEMA, "home": HOME_SCHEMA}

DURATION_HELP = "expected a duration such as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00"
SLUG_HELP = "expected a slug (lower-case letters a-z, digits 0-9 and '-' between them)"


def write(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented, first line = line 1) to ``directory/name``."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def issues_of(path: Path, module_schemas=MODULES, **kwargs) -> list[str]:
    """The issues ``load_estate_config`` reports, as the user reads them."""
    with pytest.raises(ConfigError) as caught:
        load_estate_config(path, module_schemas, **kwargs)
    assert str(caught.value) == "\n".join(str(issue) for issue in caught.value.issues)
    return [str(issue) for issue in caught.value.issues]


def yaml_issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    return [str(issue) for issue in caught.value.issues]


# --------------------------------------------------------------------------- a valid estate


def test_the_sample_estate_loads_with_every_setting_resolved():
    config = load_estate_config(CONFIGS / "xinyuan" / "estate.yaml", MODULES)
    here = (CONFIGS / "xinyuan").resolve()

    assert config.path == here / "estate.yaml"
    assert config.name == "馨苑小区"
    assert config.timezone == ZoneInfo("Asia/Shanghai")
    assert (config.latitude, config.longitude) == (31.2304, 121.4737)
    assert config.store_path == here / "data" / "estatehub.db"
    assert config.capture_path == here / "capture.jsonl"
    assert config.api == ApiSettings(
        host="0.0.0.0",
        port=8741,
        tokens=(
            ApiToken("property-desk", "desk-0123456789abcdef", frozenset({"operator"})),
            ApiToken("gate-guard", "guard-0123456789abcdef", frozenset({"guard"})),
        ),
    )
    assert config.mqtt == MqttSettings(
        host="127.0.0.1",
        port=1883,
        username="estatehub",
        password="0007-correct-horse",
        client_id="xinyuan-hub",
        keepalive=30,
        reconnect_min=2.0,
        reconnect_max=120.0,
        tls=False,
    )
    assert config.plugins == PluginSettings(
        allow=frozenset({"parking", "home", "hikvision"}), block=frozenset({"legacy_gate"})
    )
    assert dict(config.modules) == {
        "parking": {
            "tariff": {"free_minutes": 30, "hourly": 500},
            "gates": [{"id": "gate-north", "open_for": dt.timedelta(seconds=8)}],
        },
        "home": {"escalate_after": dt.timedelta(minutes=2)},
    }
    assert config.sections == {}


def test_the_registry_comes_back_validated_with_full_flat_ids():
    config = load_estate_config(CONFIGS / "xinyuan" / "estate.yaml", MODULES)

    (building,) = config.registry["buildings"]
    (unit,) = building["units"]
    assert (building["id"], building["name"], unit["id"]) == ("b3", "3号楼", "1")
    # 1202 was written as a number and 0101 without quotes; both are flat ids as text.
    assert unit["flats"] == [
        {"id": "1202", "area_m2": 89.5, "household": "h-b3-1202", "full_id": "b3-1-1202"},
        {"id": "0101", "area_m2": 60.0, "full_id": "b3-1-0101"},
    ]
    assert config.registry["households"] == [
        {"id": "h-b3-1202", "name": "王家", "members": 3, "phone": "13800138000"}
    ]
    assert config.registry["devices"] == [
        {"id": "b3-1202-smoke", "flat": "b3-1-1202", "kind": "smoke"},
        {"id": "gate-north-camera", "kind": "anpr-camera"},
    ]


def test_tokens_passwords_and_secrets_never_show_in_reprs():
    config = load_estate_config(CONFIGS / "xinyuan" / "estate.yaml", MODULES)
    secrets = ["desk-0123456789abcdef", "guard-0123456789abcdef", "0007-correct-horse"]
    secrets.append("13800138000")

    assert repr(config.api.tokens[0]) == (
        "ApiToken(name='property-desk', roles=frozenset({'operator'}))"
    )
    assert repr(config.mqtt) == (
        "MqttSettings(host='127.0.0.1', port=1883, username='estatehub', "
        "client_id='xinyuan-hub', keepalive=30, reconnect_min=2.0, reconnect_max=120.0, "
        "tls=False)"
    )
    for shown in (repr(config), repr(config.raw), repr(dict(config.registry))):
        assert [secret for secret in secrets if secret in shown] == []
    assert repr(config.raw["mqtt"]["password"]) == "<secret mqtt_password>"


def test_loaded_values_remember_where_they_were_written():
    raw = load_yaml(CONFIGS / "xinyuan" / "estate.yaml")

    assert position(raw["estate"]) == ("estate.yaml", 3)  # a mapping starts at its first key
    assert position(raw, "estate") == ("estate.yaml", 2)
    assert position(raw["estate"]["name"]) == ("estate.yaml", 3)
    assert position(raw["api"], "port") == ("estate.yaml", 11)  # 8741: an int, no own position
    assert position(raw["api"]["tokens"], 1) == ("estate.yaml", 16)
    assert position(raw["api"]["tokens"][0]["token"]) == ("estate.yaml", 14)  # the !secret
    # The registry was included: its values name the included file.
    assert position(raw, "registry") == ("estate.yaml", 32)
    assert position(raw["registry"]["buildings"][0], "units") == ("registry.yaml", 4)
    assert position(raw["registry"]["households"][0]["name"]) == ("registry.yaml", 14)
    assert position(raw["api"], "nonexistent") is None
    assert position({"plain": "dict"}, "plain") is None


def test_an_empty_config_dir_defaults_store_path_and_embedded_broker(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        """,
    )
    config = load_estate_config(path, {})

    assert config.timezone == ZoneInfo("Asia/Shanghai")
    assert (config.latitude, config.longitude) == (None, None)
    assert config.store_path == tmp_path.resolve() / "estatehub.db"
    assert config.api == ApiSettings(host="127.0.0.1", port=8740, tokens=())
    assert config.mqtt is None  # no `mqtt:` section: the embedded in-process broker
    assert config.plugins == PluginSettings(allow=None, block=frozenset())
    assert config.capture_path is None
    assert config.registry == {"buildings": [], "households": [], "devices": []}
    assert config.modules == {}


def test_an_in_memory_store_and_a_default_broker_setup(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        store:
          path: ":memory:"
        mqtt:
          host: broker.local
        capture:
        """,
    )
    config = load_estate_config(path, {})

    assert config.store_path == Path(":memory:")
    assert config.mqtt == MqttSettings(host="broker.local")
    assert config.capture_path == tmp_path.resolve() / "capture.jsonl"


def test_modules_without_a_body_and_always_on_modules_run_on_their_defaults(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          parking:
        """,
    )
    governance = vol.Schema({vol.Optional("quorum", default="2/3"): str})
    config = load_estate_config(
        path, {**MODULES, "governance": governance}, always_on=["governance", "audit"]
    )

    assert dict(config.modules) == {
        "parking": {"tariff": {"free_minutes": 15, "hourly": 500}, "gates": []},
        "governance": {"quorum": "2/3"},
        "audit": {},  # always on, no schema: nothing to configure
    }


def test_plugin_sections_are_validated_and_may_not_take_core_names(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        district_uplink:
          broker: district.example
        """,
    )
    uplink = vol.Schema(
        {vol.Required("broker"): str, vol.Optional("every", default="1m"): cv.duration}
    )

    config = load_estate_config(path, {}, section_schemas={"district_uplink": uplink})
    assert dict(config.sections) == {
        "district_uplink": {"broker": "district.example", "every": dt.timedelta(minutes=1)}
    }
    with pytest.raises(PluginError, match="plugins may not register core config sections: api"):
        load_estate_config(path, {}, section_schemas={"api": uplink})


# --------------------------------------------------------------------------- wrong values


def test_a_wrong_type_deep_in_a_module_config_names_file_line_and_path(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        store:
          path: ":memory:"
        api:
          port: 8740
        registry:
          buildings:
            - id: b3
        modules:
          home:
          parking:
            tariff:
              free_minutes: abc
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_estate_config(path, MODULES)

    assert str(caught.value) == (
        "estate.yaml, line 14: modules → parking → tariff → free_minutes: expected int, got 'abc'"
    )
    assert caught.value.issues == (
        ConfigIssue(
            file="estate.yaml",
            line=14,
            path=("modules", "parking", "tariff", "free_minutes"),
            message="expected int, got 'abc'",
        ),
    )
    assert isinstance(caught.value, EstatehubError)


def test_every_mistake_in_the_file_and_its_includes_is_listed_in_file_and_line_order():
    assert issues_of(CONFIGS / "broken" / "estate.yaml") == [
        "estate.yaml, line 4: estate → timezone: unknown time zone 'Asia/Shangai' "
        "(did you mean 'Asia/Shanghai'?)",
        "estate.yaml, line 8: api → tokens[0] → token: a token must be at least 16 characters long",
        "estate.yaml, line 9: api → tokens[0] → roles[1]: not a valid value, "
        "expected one of: admin, guard, operator, viewer",
        f"estate.yaml, line 14: modules → home → escalate_after: {DURATION_HELP}, got 'soon'",
        "modules/parking.yaml, line 2: modules → parking → tariff → free_minutes: "
        "expected int, got 'abc'",
        "modules/parking.yaml, line 3: modules → parking → tariff → hourly: "
        "'5.505元' is not a whole number of fen (1 分 = 0.01 元)",
        f"modules/parking.yaml, line 6: modules → parking → gates[0] → open_for: {DURATION_HELP}, "
        "got 'soon'",
        "modules/parking.yaml, line 7: modules → parking → gates[1] → id: "
        "required key not provided",
        "modules/parking.yaml, line 7: modules → parking → gates[1] → name: extra keys not allowed",
        "registry.yaml, line 7: registry → buildings[0] → units[0] → flats[0] → area_m2: "
        "expected a number above 0, got -5",
        f"registry.yaml, line 8: registry → buildings[1] → id: {SLUG_HELP}, got 'B4'",
    ]


def test_the_secret_value_stays_out_of_the_error_about_it():
    with pytest.raises(ConfigError) as caught:
        load_estate_config(CONFIGS / "broken" / "estate.yaml", MODULES)
    assert "too-short" not in str(caught.value)


def test_core_sections_report_wrong_values_where_they_were_written(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
          latitude: 95
        api:
          port: http
          tokens:
            - name: desk
              token: desk-0123456789abcdef
              roles: []
        mqtt:
          host: 127.0.0.1
          password: secret-but-not-a-secret
          reconnect:
            min: 1m
            max: 10s
          tls: maybe
        plugins:
          allow: [parking]
          block: [parking]
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 3: estate → latitude: expected a latitude between -90 and 90, got 95",
        "estate.yaml, line 5: api → port: expected a port number between 1 and 65535, got 'http'",
        "estate.yaml, line 9: api → tokens[0] → roles: "
        "a token needs at least one role: admin, guard, operator, viewer",
        "estate.yaml, line 13: mqtt → reconnect: reconnect min must not be longer than max",
        "estate.yaml, line 16: mqtt → tls: expected true or false, got 'maybe'",
        "estate.yaml, line 17: plugins: plugins both allowed and blocked: parking",
    ]


def test_coordinates_come_in_pairs(tmp_path):
    path = write(tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\n  latitude: 31.2304\n")
    assert issues_of(path) == [
        "estate.yaml, line 1: estate: give both latitude and longitude, or neither"
    ]


def test_a_missing_required_key_points_at_its_parent_and_an_extra_key_at_itself(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          timezone: Asia/Shanghai
        api:
          prot: 8740
        mqtt:
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 1: estate → name: required key not provided",
        "estate.yaml, line 4: api → prot: extra keys not allowed",
        "estate.yaml, line 5: mqtt → host: required key not provided",
    ]


def test_a_section_of_the_wrong_shape_is_named_with_what_was_found(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        api: 8740
        registry:
          buildings:
            id: b3
            units: none
        modules:
          home: [escalate_after]
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 3: api: expected a mapping, got 8740",
        # `units: none` was read as a list of one unit, so the unit itself is wrong.
        "estate.yaml, line 7: registry → buildings[0] → units[0]: expected a mapping, got 'none'",
        "estate.yaml, line 9: modules → home: expected a mapping, got a list",
    ]


def test_unknown_modules_and_sections_list_the_known_ones(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          parkin:
            tariff: {}
          home:
        moduls: {}
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 4: modules → parkin: unknown module 'parkin' "
        "(did you mean 'parking'?); known modules: home, parking",
        "estate.yaml, line 7: moduls: unknown section 'moduls' (did you mean 'modules'?); "
        "known sections: api, automations, capture, escalation, estate, modules, mqtt, "
        "plugins, registry, store",
    ]


def test_an_always_on_module_missing_a_required_setting_says_so(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          home:
        """,
    )
    governance = vol.Schema({vol.Required("committee_chair"): str})
    assert issues_of(path, {**MODULES, "governance": governance}, always_on=["governance"]) == [
        "estate.yaml, line 3: modules → governance → committee_chair: required key not provided"
    ]


def test_a_crashing_module_schema_is_reported_not_raised(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          home:
            escalate_after: 5m
        """,
    )

    def buggy_validator(config):
        return config["missing"]

    assert issues_of(path, {"home": vol.Schema(buggy_validator)}) == [
        "estate.yaml, line 4: modules → home: the schema for this section crashed "
        "(KeyError: 'missing'); this is a bug in the plugin that validates it, not in your file"
    ]


# --------------------------------------------------------------------------- registry


def test_registry_cross_references_are_checked_with_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        registry:
          buildings:
            - id: b3
              units:
                - id: 1
                  flats:
                    - id: 1202
                      household: h-b3-1202
                    - id: 1203
                      household: h-b3-1230
                - id: 1
            - id: b3
          households:
            - id: h-b3-1202
            - id: h-b3-1202
          devices:
            - id: b3-1202-smoke
              flat: b3-1-1202
              kind: smoke
            - id: b3-1202-smoke
              flat: b3-1-1204
              kind: smoke
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 12: registry → buildings[0] → units[0] → flats[1] → household: "
        "household 'h-b3-1230' is not in registry → households (did you mean 'h-b3-1202'?)",
        "estate.yaml, line 13: registry → buildings[0] → units[1] → id: "
        "duplicate unit id '1' in building 'b3': already used on line 7",
        "estate.yaml, line 14: registry → buildings[1] → id: "
        "duplicate building id 'b3': already used on line 5",
        "estate.yaml, line 17: registry → households[1] → id: "
        "duplicate household id 'h-b3-1202': already used on line 16",
        "estate.yaml, line 22: registry → devices[1] → id: "
        "duplicate device id 'b3-1202-smoke': already used on line 19",
        "estate.yaml, line 23: registry → devices[1] → flat: "
        "flat 'b3-1-1204' is not in the registry (did you mean 'b3-1-1203'?)",
    ]


def test_flat_ids_that_collide_once_joined_are_duplicates(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        registry:
          buildings:
            - id: b3
              units:
                - id: 1-1
                  flats: [{id: 202}]
            - id: b3-1
              units:
                - id: 1
                  flats: [{id: 202}]
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 12: registry → buildings[1] → units[0] → flats[0] → id: "
        "duplicate flat 'b3-1-1-202': already used on line 8",
    ]


def test_duplicate_token_names_and_shared_tokens_are_rejected(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        api:
          tokens:
            - {name: desk, token: desk-0123456789abcdef, roles: operator}
            - {name: desk, token: desk-fedcba9876543210, roles: operator}
            - {name: guard, token: desk-0123456789abcdef, roles: guard}
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 6: api → tokens[1] → name: duplicate token name 'desk': "
        "already used on line 5",
        "estate.yaml, line 7: api → tokens[2] → token: this token is the same as the token of "
        "'desk'; give each its own",
    ]


# --------------------------------------------------------------------------- YAML problems


def test_a_yaml_syntax_error_names_file_line_and_the_parsers_problem(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
          timezone: Asia/Shanghai: east
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 3: invalid YAML: mapping values are not allowed here"
    ]
    assert issues_of(path) == yaml_issues_of(path)


def test_a_tab_in_the_indentation_is_reported_on_the_tabs_own_line(tmp_path):
    path = tmp_path / "estate.yaml"
    path.write_text(
        "estate:\n  name: 馨苑小区\nstore:\n\tpath: x.db\napi:\n  port: 8740\nmodules:\n",
        encoding="utf-8",
    )
    # Not "(while scanning for the next token on line 7)": the tab is the problem.
    assert yaml_issues_of(path) == [
        "estate.yaml, line 4: invalid YAML: tabs are not allowed for indentation; use spaces"
    ]


def test_an_unclosed_list_is_reported_on_the_last_line_with_where_it_opened(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        plugins:
          allow: [parking,
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 4: invalid YAML: expected the node content, but found '<stream end>' "
        "(while parsing a flow node)"
    ]


def test_duplicate_keys_are_reported_with_both_lines(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        api:
          port: 8740
          host: 0.0.0.0
          port: 8741
        estate:
          name: 另一个小区
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 6: api: duplicate key 'port': already written on line 4",
        "estate.yaml, line 7: duplicate key 'estate': already written on line 1",
    ]


def test_keys_merged_from_an_anchor_may_be_overridden(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        gate_defaults: &gate {open_for: 10s, adapter: hikvision}
        gates:
          north:
            <<: *gate
            open_for: 20s
        """,
    )
    raw = load_yaml(path)
    assert raw["gates"]["north"] == {"open_for": "20s", "adapter": "hikvision"}
    assert position(raw["gates"]["north"], "adapter") == ("estate.yaml", 1)
    assert position(raw["gates"]["north"], "open_for") == ("estate.yaml", 5)


def test_times_and_numbers_with_leading_zeros_stay_text(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        day_starts: 7:30
        closes: 23:59:59
        flat: 0101
        pin: 007
        floor: 12
        area: 89.5
        hex: 0x1F
        tls: yes
        """,
    )
    assert load_yaml(path) == {
        "day_starts": "7:30",  # YAML 1.1 would read 450 (base 60)
        "closes": "23:59:59",
        "flat": "0101",  # YAML 1.1 would read the octal 65
        "pin": "007",
        "floor": 12,
        "area": 89.5,
        "hex": 31,
        "tls": True,
    }


def test_an_unknown_tag_is_an_error_naming_the_tags_we_know(tmp_path):
    path = write(tmp_path, "estate.yaml", "estate:\n  name: !env_var ESTATE_NAME\n")
    assert yaml_issues_of(path) == [
        "estate.yaml, line 2: estate → name: unknown tag '!env_var'; "
        "estatehub understands !secret and !include"
    ]


def test_a_file_saved_as_gbk_is_reported_with_its_line(tmp_path):
    path = tmp_path / "estate.yaml"
    path.write_bytes("estate:\n  name: 馨苑小区\n".encode("gbk"))
    # 馨苑小 happen to be valid UTF-8 byte pairs in GBK; 区 (0xc7 0xf8) is not.
    assert yaml_issues_of(path) == [
        "estate.yaml, line 2: the file is not UTF-8 text (byte 0xc7 cannot be read); "
        "if it was saved as GBK, save it again as UTF-8"
    ]


def test_a_missing_config_file_is_an_error_not_a_traceback(tmp_path):
    assert yaml_issues_of(tmp_path / "estate.yaml") == [
        f"estate.yaml: cannot read the config file {tmp_path / 'estate.yaml'}: file not found"
    ]


def test_a_config_that_is_not_a_mapping_is_rejected(tmp_path):
    path = write(tmp_path, "estate.yaml", "- estate\n- modules\n")
    assert issues_of(path) == [
        "estate.yaml, line 1: an estate config is a mapping of sections "
        "(estate:, registry:, modules: …), got a list"
    ]


def test_an_empty_config_file_needs_an_estate_section(tmp_path):
    path = write(tmp_path, "estate.yaml", "# nothing yet\n")
    assert issues_of(path) == ["estate.yaml, line 1: estate: required section not provided"]


# --------------------------------------------------------------------------- !secret


def test_a_missing_secret_names_file_line_and_secret(tmp_path):
    write(tmp_path, "secrets.yaml", "desk_token: desk-0123456789abcdef\n")
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        mqtt:
          host: 127.0.0.1
          username: estatehub
          password: !secret mqtt_password
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 6: mqtt → password: secret 'mqtt_password' not found in secrets.yaml"
    ]


def test_a_secret_without_a_secrets_file_says_where_it_looked(tmp_path):
    path = write(tmp_path, "estate.yaml", "api:\n  tokens:\n    - token: !secret desk_token\n")
    assert yaml_issues_of(path) == [
        "estate.yaml, line 3: api → tokens[0] → token: secret 'desk_token' not found: "
        "there is no secrets.yaml beside estate.yaml"
    ]


def test_an_included_file_takes_secrets_from_its_own_folder_then_the_config_folder(tmp_path):
    write(tmp_path, "secrets.yaml", "mqtt_password: from-the-config-folder\n")
    write(tmp_path, "modules/secrets.yaml", "gate_password: from-the-modules-folder\n")
    write(
        tmp_path,
        "modules/parking.yaml",
        "gate: !secret gate_password\nbroker: !secret mqtt_password\n",
    )
    path = write(tmp_path, "estate.yaml", "modules:\n  parking: !include modules/parking.yaml\n")
    parking = load_yaml(path)["modules"]["parking"]
    assert parking == {"gate": "from-the-modules-folder", "broker": "from-the-config-folder"}
    assert position(parking["gate"]) == ("modules/parking.yaml", 1)


def test_secrets_are_read_as_the_exact_text_written_in_the_file(tmp_path):
    write(
        tmp_path,
        "secrets.yaml",
        """
        hex_token: 0x0123456789abcdef
        card_number: 1234_5678_9012_3456
        door_pin: 007
        safe_word: yes
        ratio: 1e3
        nothing_yet: null
        day: 2026-03-01
        """,
    )
    names = ["hex_token", "card_number", "door_pin", "safe_word", "ratio", "nothing_yet", "day"]
    path = write(tmp_path, "estate.yaml", "".join(f"{name}: !secret {name}\n" for name in names))
    assert load_yaml(path) == {
        "hex_token": "0x0123456789abcdef",  # not the number 81985529216486895
        "card_number": "1234_5678_9012_3456",  # not 1234567890123456
        "door_pin": "007",
        "safe_word": "yes",
        "ratio": "1e3",
        "nothing_yet": "null",
        "day": "2026-03-01",
    }


def test_a_secret_must_be_one_value_that_is_not_empty(tmp_path):
    write(
        tmp_path,
        "secrets.yaml",
        "door_pins: [1234, 5678]\nbroker:\n  user: hub\nempty:\ntagged: !!int 5\n",
    )
    path = write(
        tmp_path,
        "estate.yaml",
        "a: !secret door_pins\nb: !secret broker\nc: !secret empty\nd: !secret tagged\n",
    )
    assert yaml_issues_of(path) == [
        "secrets.yaml, line 1: secret 'door_pins' must be a single value, not a list",
        "secrets.yaml, line 2: secret 'broker' must be a single value, not a mapping",
        "secrets.yaml, line 4: secret 'empty' is empty; write its value after the colon",
        "secrets.yaml, line 5: secret 'tagged' is not text; write its value without a tag",
    ]


def test_a_secret_echoed_by_a_plugin_validator_is_masked(tmp_path):
    write(tmp_path, "secrets.yaml", "gate_password: hunter2hunter2\n")
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          home:
            password: !secret gate_password
        """,
    )

    def careless(value):
        raise vol.Invalid(f"password {value} is too guessable")

    schema = vol.Schema({"password": careless})
    assert issues_of(path, {"home": schema}) == [
        "estate.yaml, line 5: modules → home → password: "
        "password <secret gate_password> is too guessable"
    ]


# --------------------------------------------------------------------------- !include


def test_an_include_cycle_is_reported_with_the_chain(tmp_path):
    write(tmp_path, "registry.yaml", "buildings: !include buildings/all.yaml\n")
    write(tmp_path, "buildings/all.yaml", "- !include ../registry.yaml\n")
    path = write(
        tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nregistry: !include registry.yaml\n"
    )
    assert yaml_issues_of(path) == [
        "buildings/all.yaml, line 1: registry → buildings[0]: include cycle: estate.yaml → "
        "registry.yaml → buildings/all.yaml → registry.yaml"
    ]


def test_a_missing_include_is_reported_at_the_include(tmp_path):
    path = write(
        tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nregistry: !include registy.yaml\n"
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 3: registry: cannot read registy.yaml: file not found"
    ]


def test_syntax_errors_in_an_included_file_name_that_file(tmp_path):
    write(tmp_path, "modules/home.yaml", "escalate_after: 2m\n  notify: guard\n")
    path = write(
        tmp_path,
        "estate.yaml",
        "estate:\n  name: 馨苑小区\nmodules:\n  home: !include modules/home.yaml\n  parking: [\n",
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 5: invalid YAML: expected the node content, but found '<stream end>' "
        "(while parsing a flow node)",
    ]
    path = write(tmp_path, "estate.yaml", "modules:\n  home: !include modules/home.yaml\n")
    assert yaml_issues_of(path) == [
        "modules/home.yaml, line 2: invalid YAML: mapping values are not allowed here"
    ]


# --------------------------------------------------------------------------- validate()


def test_validate_returns_the_validated_data_and_no_issues(tmp_path):
    path = write(tmp_path, "gates.yaml", "north:\n  open_for: 20s\n")
    schema = vol.Schema({cv.slug: {vol.Optional("open_for", default="10s"): cv.duration}})
    assert validate(load_yaml(path), schema) == (
        {"north": {"open_for": dt.timedelta(seconds=20)}},
        [],
    )


def test_validate_resolves_positions_for_a_part_of_the_file(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        modules:
          parking:
            gates:
              - id: North Gate
                open_for: 8s
        """,
    )
    parking = load_yaml(path)["modules"]["parking"]
    validated, issues = validate(parking, PARKING_SCHEMA, ("modules", "parking"))
    assert validated is None
    assert issues == [
        ConfigIssue(
            "estate.yaml",
            4,
            ("modules", "parking", "gates", 0, "id"),
            f"{SLUG_HELP}, got 'North Gate'",
        )
    ]


def test_validate_works_without_positions():
    validated, issues = validate({"port": "http"}, vol.Schema({"port": int}), ("api",))
    assert validated is None
    assert [str(issue) for issue in issues] == ["api → port: expected int, got 'http'"]


def test_an_issue_without_a_line_still_reads_well():
    assert (
        str(ConfigIssue("estate.yaml", None, (), "cannot read it")) == "estate.yaml: cannot read it"
    )
    assert str(ConfigIssue("", None, ("api", "tokens", 0), "bad")) == "api → tokens[0]: bad"


# --------------------------------------------------------------------------- hostile files


def test_lists_nested_thousands_deep_are_refused_with_the_line_not_a_traceback(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        "estate:\n  name: 馨苑小区\nmodules:\n  parking: " + "[" * 5000 + "]" * 5000 + "\n",
    )
    assert yaml_issues_of(path) == ["estate.yaml, line 4: nested too deeply (more than 100 levels)"]


def test_a_block_mapping_nested_a_thousand_deep_is_refused_where_level_101_starts(tmp_path):
    keys = "".join(" " * (3 + level) + f"k{level}:\n" for level in range(1000))
    path = write(tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nmodules:\n  parking:\n")
    path.write_text(path.read_text(encoding="utf-8") + keys, encoding="utf-8")
    # Levels: the file 1, modules 2, parking's body 3 (line 5), … level 101 on line 103.
    assert yaml_issues_of(path) == [
        "estate.yaml, line 103: nested too deeply (more than 100 levels)"
    ]


def test_nesting_is_counted_across_included_files(tmp_path):
    # The file is level 1, `modules` 2, the included file's mapping 3, its lists 4 and on.
    write(tmp_path, "modules/deep.yaml", "# 97 lists\ngates: " + "[" * 97 + "]" * 97 + "\n")
    write(tmp_path, "modules/deeper.yaml", "# 98 lists\ngates: " + "[" * 98 + "]" * 98 + "\n")
    path = write(tmp_path, "estate.yaml", "modules:\n  parking: !include modules/deep.yaml\n")
    gates = load_yaml(path)["modules"]["parking"]["gates"]
    for _ in range(96):
        (gates,) = gates
    assert gates == []  # 97 lists, the innermost empty: level 100, allowed
    path = write(tmp_path, "estate.yaml", "modules:\n  parking: !include modules/deeper.yaml\n")
    assert yaml_issues_of(path) == [
        "modules/deeper.yaml, line 2: nested too deeply (more than 100 levels)"
    ]


def test_aliases_cannot_stack_up_nesting_or_contain_themselves(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        "estate:\n  name: 馨苑小区\n"
        "base: &base " + "[" * 60 + "]" * 60 + "\n"
        "more: " + "[" * 45 + "*base" + "]" * 45 + "\n",
    )
    assert yaml_issues_of(path) == ["estate.yaml, line 4: nested too deeply (more than 100 levels)"]
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          parking: &parking
            tariff: *parking
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 5: modules → parking → tariff: this alias refers to a mapping or "
        "list it is inside, so it would nest without end"
    ]


def test_a_chain_of_includes_stops_after_twenty_files(tmp_path):
    for number in range(25):
        write(tmp_path, f"part{number}.yaml", f"next: !include part{number + 1}.yaml\n")
    write(tmp_path, "part25.yaml", "end: true\n")
    path = write(tmp_path, "estate.yaml", "parts: !include part0.yaml\n")
    # estate.yaml and part0 … part18 are 20 files; part18 may not include a 21st.
    assert yaml_issues_of(path) == [
        "part18.yaml, line 1: parts" + " → next" * 19 + ": !include nested too deeply "
        "(more than 20 files, each including the next)"
    ]


def test_validate_refuses_data_nested_too_deeply_before_the_schema_recurses():
    data: list = []
    innermost = data
    for _ in range(5000):
        innermost.append([])
        innermost = innermost[0]
    validated, issues = validate(data, vol.Schema(list), ("modules", "parking"))
    assert validated is None
    assert [str(issue) for issue in issues] == [
        "modules → parking: nested too deeply (more than 100 levels)"
    ]


def test_an_included_file_shows_only_the_start_of_its_text_in_an_error(tmp_path):
    passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    write(tmp_path, "passwd", passwd)
    path = write(tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nregistry: !include passwd\n")
    # The two lines are one YAML string; only its first 40 characters are shown.
    assert issues_of(path) == [
        "passwd, line 1: registry: expected a mapping, got 'root:x:0:0:root:/root:/bin/bash daemon:x…'"
    ]


def test_devices_and_pipes_are_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    path = write(
        tmp_path,
        "estate.yaml",
        "estate:\n  name: 馨苑小区\nregistry: !include /dev/zero\nmodules: !include pipe.yaml\n",
    )
    dev_zero = os.path.relpath("/dev/zero", tmp_path)
    not_regular = (
        "it is not a regular file (a device, pipe or socket); "
        "only regular files of at most 1 MiB are read"
    )
    assert yaml_issues_of(path) == [
        f"estate.yaml, line 3: registry: cannot read {dev_zero}: {not_regular}",
        f"estate.yaml, line 4: modules: cannot read pipe.yaml: {not_regular}",
    ]
    assert yaml_issues_of(tmp_path / "pipe.yaml") == [
        f"pipe.yaml: cannot read the config file {tmp_path / 'pipe.yaml'}: {not_regular}"
    ]


def test_files_larger_than_1_mib_are_not_read(tmp_path):
    padding = "#" * (1024 * 1024) + "\n"
    write(tmp_path, "registry.yaml", padding + "buildings: []\n")
    (tmp_path / "secrets.yaml").write_text(padding + "desk_token: x\n", encoding="utf-8")
    path = write(
        tmp_path,
        "estate.yaml",
        "registry: !include registry.yaml\napi:\n  tokens:\n    - token: !secret desk_token\n",
    )
    too_big = "it is larger than 1 MiB; only files of at most 1 MiB are read"
    assert yaml_issues_of(path) == [
        f"estate.yaml, line 1: registry: cannot read registry.yaml: {too_big}",
        f"estate.yaml, line 4: api → tokens[0] → token: cannot read secrets.yaml: {too_big}",
        "estate.yaml, line 4: api → tokens[0] → token: secret 'desk_token' not found in "
        "secrets.yaml",
    ]
    big = tmp_path / "big.yaml"
    big.write_text(padding, encoding="utf-8")
    assert yaml_issues_of(big) == [f"big.yaml: cannot read the config file {big}: {too_big}"]


def test_values_yaml_cannot_construct_are_reported_not_raised(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        f"""
        api:
          port: {"1" * 5000}
        holiday: 2026-13-45
        floor: !!int ground
        """,
    )
    assert yaml_issues_of(path) == [
        "estate.yaml, line 2: api → port: a number of 5000 digits is too long to read",
        "estate.yaml, line 3: holiday: '2026-13-45' cannot be read as a date or time "
        "(month must be in 1..12); put it in quotes if it is meant as text",
        "estate.yaml, line 4: floor: 'ground' cannot be read as a whole number "
        "(invalid literal for int() with base 10: 'ground'); put it in quotes if it is meant "
        "as text",
    ]


# --------------------------------------------------------------------------- error format


def test_a_null_key_is_reported_on_its_own_line(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          home:
            escalate_after: 2m
        null: 1
        """,
    )
    assert yaml_issues_of(path) == ["estate.yaml, line 6: a key must be text, got null"]
    path = write(tmp_path, "estate.yaml", "modules:\n  home:\n    ~: 2m\n")
    assert yaml_issues_of(path) == [
        "estate.yaml, line 3: modules → home: a key must be text, got null"
    ]


def test_a_key_written_as_a_number_is_named_as_a_key(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        modules:
          parking:
            residents:
              h-wang: [沪A8K352]
              123:
                - 沪B20231
        """,
    )
    schema = vol.Schema({"residents": {str: [cv.plate_string]}})
    assert issues_of(path, {"parking": schema}) == [
        "estate.yaml, line 7: modules → parking → residents → 123: a key must be text, got 123"
    ]


def test_a_missing_secret_is_reported_with_the_path_it_is_used_at(tmp_path):
    write(tmp_path, "secrets.yaml", "desk_token: desk-0123456789abcdef\n")
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        api:
          tokens:
            - {name: desk, token: !secret desk_token, roles: operator}
            - name: guard
              token: !secret guard_token
              roles: guard
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 7: api → tokens[1] → token: secret 'guard_token' not found in "
        "secrets.yaml"
    ]


def test_module_messages_are_rewritten_into_words(tmp_path):
    write(tmp_path, "secrets.yaml", "desk_token: desk-0123456789abcdef\n")
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
          timezone: !secret desk_token
        modules:
          parking:
            gates: []
            visitor_passes:
              - valid_from: 2026-03-02 08:00:00
            plate_rules:
              small_nev_letters: DI
              suffix: AB1
            tariff:
              daily_cap: -1元
        """,
    )

    def aware(value):
        if value.tzinfo is None:
            raise vol.Invalid(
                f"{value!r} has no UTC offset; write it like 2026-03-01T08:00:00+08:00"
            )
        return value

    parking = vol.Schema(
        {
            "gates": vol.All(list, vol.Length(min=1)),
            "visitor_passes": [{"valid_from": aware}],
            "plate_rules": {
                "small_nev_letters": vol.Match(r"^[A-HJ-NP-Z]+$"),
                "suffix": vol.Match(r"^[A-Z]{2}$", msg="two capital letters, such as DF"),
            },
            "tariff": {"daily_cap": vol.Any(None, cv.money_fen)},
        }
    )
    assert issues_of(path, {"parking": parking}) == [
        "estate.yaml, line 3: estate → timezone: "
        "the value of !secret desk_token is not a known time zone such as Asia/Shanghai",
        "estate.yaml, line 6: modules → parking → gates: must have at least 1 item",
        "estate.yaml, line 8: modules → parking → visitor_passes[0] → valid_from: "
        "2026-03-02T08:00:00 has no UTC offset; write it like 2026-03-01T08:00:00+08:00",
        "estate.yaml, line 10: modules → parking → plate_rules → small_nev_letters: "
        "expected one or more of the characters A–H, J–N, P–Z, got 'DI'",
        "estate.yaml, line 11: modules → parking → plate_rules → suffix: "
        "two capital letters, such as DF",
        "estate.yaml, line 13: modules → parking → tariff → daily_cap: "
        "an amount of money must be 0 or more, got '-1元'",
    ]


@pytest.mark.parametrize(
    ("schema", "written", "message"),
    [
        (vol.All(str, vol.Length(max=1)), "ab", "must have at most 1 character"),
        (vol.All(str, vol.Length(min=3)), "ab", "must have at least 3 characters"),
        (vol.All(list, vol.Length(min=2)), ["a"], "must have at least 2 items"),
        (vol.All(dict, vol.Length(min=1)), {}, "must have at least 1 entry"),
        (
            vol.Match(r"^[a-z0-9]{4}$"),
            "ab",
            "expected exactly 4 of the characters a–z, 0–9, got 'ab'",
        ),
        (
            vol.Match(r"^\d+(-\d+)?$"),
            "x",
            r"expected text matching the pattern ^\d+(-\d+)?$, got 'x'",
        ),
        (vol.Match(r"^[a-z]+$"), 5, "expected text, got 5"),
        (str, 5, "expected text, got 5"),
        (vol.Any(None, cv.duration), "soon", f"{DURATION_HELP}, got 'soon'"),
        (vol.Any(None, str), 5, "not a valid value, got 5"),
        (vol.Any(None, dict), 5, "not a valid value, got 5"),
    ],
)
def test_voluptuous_messages_of_each_kind_read_as_words(schema, written, message):
    _, issues = validate({"option": written}, vol.Schema({"option": schema}))
    assert [issue.message for issue in issues] == [message]


# --------------------------------------------------------------------------- core sections


def test_an_mqtt_host_written_as_a_url_says_how_to_write_it(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        api:
          host: http://0.0.0.0:8740/
        mqtt:
          host: mqtt://127.0.0.1:1883
        """,
    )
    expected = "expected a host name or IP address without scheme, port or path, such as "
    expected += "192.168.10.5, broker.local or fd00::10"
    assert issues_of(path) == [
        f"estate.yaml, line 4: api → host: {expected}, got 'http://0.0.0.0:8740/'; "
        "write host: 0.0.0.0 and port: 8740",
        f"estate.yaml, line 6: mqtt → host: {expected}, got 'mqtt://127.0.0.1:1883'; "
        "write host: 127.0.0.1 and port: 1883",
    ]


def test_plugin_lists_written_with_include_or_secret_are_refused(tmp_path):
    write(tmp_path, "plugins.yaml", "block: [hikvision]\n")
    write(tmp_path, "allowed.yaml", "[parking, home]\n")
    write(tmp_path, "secrets.yaml", "gate_plugin: hikvision\n")
    read_early = "write the allow/block lists in estate.yaml itself (they are read before "
    path = write(
        tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nplugins: !include plugins.yaml\n"
    )
    assert issues_of(path) == [
        f"estate.yaml, line 3: plugins: {read_early}anything else, so !include is not followed "
        "here)"
    ]
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        plugins:
          allow: !include allowed.yaml
          block: [legacy_gate, !secret gate_plugin]
        """,
    )
    assert issues_of(path) == [
        f"estate.yaml, line 4: plugins → allow: {read_early}anything else, so !include is not "
        "followed here)",
        f"estate.yaml, line 5: plugins → block[1]: {read_early}anything else, so !secret is "
        "not followed here)",
    ]


def test_the_estate_name_cannot_be_a_secret(tmp_path):
    write(tmp_path, "secrets.yaml", "estate_name: 馨苑小区\n")
    path = write(tmp_path, "estate.yaml", "estate:\n  name: !secret estate_name\n")
    assert issues_of(path) == [
        "estate.yaml, line 2: estate → name: the estate name is shown everywhere; "
        "it cannot be a secret"
    ]


def test_a_capture_path_that_run_could_not_write_is_reported_at_check_time(tmp_path):
    (tmp_path / "captures").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder\n", encoding="utf-8")
    here = tmp_path.resolve()
    for written, problem in [
        (
            "captures",
            f"{here / 'captures'} is a folder; name a file in it, such as "
            f"{here / 'captures' / 'capture.jsonl'}",
        ),
        (
            "notes.txt/traffic.jsonl",
            f"cannot create the folder {here / 'notes.txt'}: "
            f"{here / 'notes.txt'} is a file, not a folder",
        ),
        (
            "notes.txt/2026/traffic.jsonl",
            f"cannot create the folder {here / 'notes.txt' / '2026'}: "
            f"{here / 'notes.txt'} is a file, not a folder",
        ),
    ]:
        path = write(
            tmp_path, "estate.yaml", f"estate:\n  name: 馨苑小区\ncapture:\n  path: {written}\n"
        )
        assert issues_of(path) == [f"estate.yaml, line 4: capture → path: {problem}"]
    # A folder that does not exist yet is fine: `run` creates it.
    path = write(
        tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\ncapture:\n  path: new/traffic.jsonl\n"
    )
    assert load_estate_config(path, {}).capture_path == here / "new" / "traffic.jsonl"


def test_file_paths_the_system_cannot_take_are_reported(tmp_path):
    path = write(
        tmp_path,
        "estate.yaml",
        """
        estate:
          name: 馨苑小区
        store:
          path: "data\\0.db"
        capture:
          path: ~nobody-here-at-all/traffic.jsonl
        """,
    )
    assert issues_of(path) == [
        "estate.yaml, line 4: store → path: a file path cannot contain a NUL character (\\0)",
        "estate.yaml, line 6: capture → path: cannot find the home folder in "
        "'~nobody-here-at-all/traffic.jsonl'; write the full path",
    ]


# --------------------------------------------------------------------------- check-config


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("modules:\n  parking: " + "[" * 5000 + "]" * 5000 + "\n", 4),
        ("modules:\n  parking:\n" + "".join(" " * (3 + n) + f"k{n}:\n" for n in range(3000)), None),
    ],
    ids=["flow", "block"],
)
def test_check_config_reports_hostile_nesting_and_exits_1(tmp_path, body, line):
    path = tmp_path / "estate.yaml"
    path.write_text("estate:\n  name: 馨苑小区\n" + body, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "estatehub", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    # A 3000-level block mapping needs 4.5 million spaces of indentation: over 1 MiB.
    first = (
        f"estate.yaml, line {line}: nested too deeply (more than 100 levels)"
        if line is not None
        else f"estate.yaml: cannot read the config file {path}: it is larger than 1 MiB; "
        "only files of at most 1 MiB are read"
    )
    assert done.stderr.splitlines() == [first, f"1 error in {path}"]
