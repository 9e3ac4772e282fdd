"""Loading an estate's YAML config: what a property manager sees when it is right or wrong.

The sample estates live in tests/configs/ (``xinyuan`` is valid, ``broken`` has mistakes in
the main file and in the files it includes). Smaller cases are written inline, starting at
line 1, so the line numbers in the expected messages can be checked by eye.
"""

from __future__ import annotations

import datetime as dt
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
        "known sections: api, capture, estate, modules, mqtt, plugins, registry, store",
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


def test_a_tab_in_the_indentation_is_a_syntax_error_on_its_line(tmp_path):
    path = tmp_path / "estate.yaml"
    path.write_text("estate:\n  name: 馨苑小区\nstore:\n\tpath: x.db\n", encoding="utf-8")
    assert yaml_issues_of(path) == [
        "estate.yaml, line 4: invalid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token)"
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
        "estate.yaml, line 6: duplicate key 'port': already written on line 4",
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
        "estate.yaml, line 2: unknown tag '!env_var'; estatehub understands !secret and !include"
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
        "estate.yaml, line 6: secret 'mqtt_password' not found in secrets.yaml"
    ]


def test_a_secret_without_a_secrets_file_says_where_it_looked(tmp_path):
    path = write(tmp_path, "estate.yaml", "api:\n  tokens:\n    - token: !secret desk_token\n")
    assert yaml_issues_of(path) == [
        "estate.yaml, line 3: secret 'desk_token' not found: there is no secrets.yaml beside "
        "estate.yaml"
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


def test_a_secret_that_is_not_text_must_be_quoted(tmp_path):
    write(tmp_path, "secrets.yaml", "door_pin: 123456\nsafe_word: yes\nempty:\n")
    path = write(
        tmp_path,
        "estate.yaml",
        "pin: !secret door_pin\nword: !secret safe_word\nnothing: !secret empty\n",
    )
    assert yaml_issues_of(path) == [
        "secrets.yaml, line 2: secret 'safe_word' is not text; write its value in quotes",
        "secrets.yaml, line 3: secret 'empty' is empty; write its value in quotes",
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
        "buildings/all.yaml, line 1: include cycle: estate.yaml → registry.yaml → "
        "buildings/all.yaml → registry.yaml"
    ]


def test_a_missing_include_is_reported_at_the_include(tmp_path):
    path = write(
        tmp_path, "estate.yaml", "estate:\n  name: 馨苑小区\nregistry: !include registy.yaml\n"
    )
    assert yaml_issues_of(path) == ["estate.yaml, line 3: cannot read registy.yaml: file not found"]


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
