"""An estate manager's automation mistakes come back with the file, the line and a fix."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from estatehub.automation import (
    AUTOMATIONS_SCHEMA,
    AutomationConfigError,
    AutomationEngine,
    estate_issues,
    validate_automations,
)
from estatehub.config import ConfigError, load_yaml
from estatehub.testing.harness import EstateHarness

from .conftest import automation_plugins, estate_yaml


def config_errors(tmp_path, automations: str, head: str | None = None) -> list[str]:
    text = estate_yaml(automations) if head is None else estate_yaml(automations, head)
    with pytest.raises(ConfigError) as caught:
        EstateHarness.from_yaml(tmp_path, text, plugins=automation_plugins())
    return str(caught.value).splitlines()


def test_every_mistake_is_reported_at_its_own_line(tmp_path):
    errors = config_errors(
        tmp_path,
        """
        - id: lights_at_sunset
          triggers:
            - trigger: state
              enitity_id: light.gate_north
            - platform: sun
              event: sunsett
          conditions:
            - condition: time
              after: "25:00"
            - condition: state
              entity_id: light.gate_north
              state: on
          actions:
            - action: Light.turn_on
            - delay: soon
        """,
    )
    assert errors == [
        "estate.yaml, line 11: automations[0] → triggers[0] → entity_id: "
        "'entity_id' is required for a state trigger",
        "estate.yaml, line 12: automations[0] → triggers[0] → enitity_id: unknown option "
        "'enitity_id' for a state trigger (did you mean 'entity_id'?); it takes: alias, "
        "attribute, enabled, entity_id, for, from, id, not_from, not_to, to, variables",
        "estate.yaml, line 14: automations[0] → triggers[1] → event: the sun event must be "
        "one of: sunrise, sunset; got 'sunsett' (did you mean 'sunset'?)",
        "estate.yaml, line 17: automations[0] → conditions[0] → after: expected a time of "
        "day such as 07:00 or 23:59:59, got '25:00'",
        "estate.yaml, line 20: automations[0] → conditions[1] → state: YAML reads "
        "on/off/yes/no/true/false without quotes as true or false; write the state in "
        "quotes, e.g. 'on'",
        "estate.yaml, line 22: automations[0] → actions[0] → action: expected a service such "
        "as 'notify.send' (domain.service in lower-case letters, digits and '_'), got "
        "'Light.turn_on'",
        "estate.yaml, line 23: automations[0] → actions[1] → delay: expected a duration such "
        "as 30s, 5m, 1h30m, 2d, 90 (seconds) or 00:05:00, got 'soon'",
    ]


def test_a_broken_template_is_caught_at_load_time_not_when_the_alarm_goes_off(tmp_path):
    errors = config_errors(
        tmp_path,
        """
        - id: gas_leak
          triggers:
            - trigger: event
              event_type: home.gas
          conditions:
            - "{{ trigger.event.data.ppm | float > }}"
          actions:
            - notify:
                message: "Gas at {{ trigger.event.data.flat "
        """,
    )
    assert errors == [
        "estate.yaml, line 14: automations[0] → conditions[0]: invalid template: "
        "unexpected 'end of print statement'",
        "estate.yaml, line 17: automations[0] → actions[0] → notify → message: invalid "
        "template: unexpected end of template, expected 'end of print statement'.",
    ]


def test_duplicate_automation_ids_name_the_line_of_the_first(tmp_path):
    errors = config_errors(
        tmp_path,
        """
        - id: door_held_open
          triggers: {trigger: event, event_type: access.door_held}
          actions: [{event: guard.call}]
        - id: door_held_open
          triggers: {trigger: event, event_type: access.door_forced}
          actions: [{event: guard.call}]
        """,
    )
    assert errors == [
        "estate.yaml, line 12: automations[1] → id: duplicate automation id "
        "'door_held_open': already used on line 9",
    ]


def test_both_spellings_of_one_key_is_an_error_not_a_silent_choice(tmp_path):
    errors = config_errors(
        tmp_path,
        """
        - id: visitor_car
          trigger:
            - platform: event
              trigger: event
              event_type: parking.decision
          triggers: []
          actions: []
        """,
    )
    assert errors == [
        "estate.yaml, line 10: automations[0] → trigger: write either 'triggers' or the "
        "older 'trigger', not both",
    ]


def test_an_automation_without_triggers_or_actions_says_what_is_missing(tmp_path):
    assert config_errors(
        tmp_path,
        """
        - id: nothing_starts_me
          actions:
            - event: x
        """,
    ) == [
        "estate.yaml, line 9: automations[0]: an automation needs 'triggers' (or the older "
        "'trigger'): what starts it",
    ]
    assert config_errors(
        tmp_path,
        """
        - id: does_nothing
          triggers: {trigger: event, event_type: x}
        """,
    ) == [
        "estate.yaml, line 9: automations[0]: an automation needs 'actions' (or the older "
        "'action'): what it does",
    ]


def test_unknown_trigger_condition_and_action_kinds_list_the_known_ones(tmp_path):
    errors = config_errors(
        tmp_path,
        """
        - id: odd
          triggers:
            - trigger: mqtt
              topic: x
          conditions:
            - condition: zone
          actions:
            - scene: scene.night
        """,
    )
    assert errors == [
        "estate.yaml, line 11: automations[0] → triggers[0] → trigger: unknown trigger "
        "kind 'mqtt'; known: event, state, numeric_state, time, time_pattern, sun, incident",
        "estate.yaml, line 14: automations[0] → conditions[0] → condition: unknown "
        "condition kind 'zone'; known: state, numeric_state, time, template, trigger, and, "
        "or, not",
        "estate.yaml, line 16: automations[0] → actions[0]: an action needs one of: action "
        "(a service call such as 'action: notify.send'), delay, wait_for_trigger, choose, "
        "if, repeat, event, notify, stop, variables, condition",
    ]


def test_numeric_thresholds_that_can_never_both_hold_are_refused(tmp_path):
    assert config_errors(
        tmp_path,
        """
        - id: water
          triggers:
            - trigger: numeric_state
              entity_id: sensor.manhole_7_water_level
              above: 0.8
              below: 0.2
          actions: [{event: x}]
        """,
    ) == [
        "estate.yaml, line 14: automations[0] → triggers[0] → below: above (0.8) must be "
        "lower than below (0.2), or nothing can match",
    ]


def test_a_use_blueprint_naming_a_missing_blueprint_says_where_it_looked(tmp_path):
    from estatehub.automation.blueprint import SHIPPED_BLUEPRINTS

    assert config_errors(
        tmp_path,
        """
        - id: from_blueprint
          use_blueprint:
            path: home/smoke.yaml
        """,
    ) == [
        "estate.yaml, line 10: automations[0] → use_blueprint → path: no blueprint home/smoke.yaml: "
        f"looked in {tmp_path / 'blueprints' / 'home'} and {SHIPPED_BLUEPRINTS / 'home'}",
    ]


HA_2024_10 = [
    {
        "id": "lights",
        "alias": "Street lights on at sunset",
        "triggers": [{"trigger": "sun", "event": "sunset", "offset": "-00:15:00"}],
        "conditions": [{"condition": "time", "weekday": ["mon", "tue"]}],
        "actions": [
            {"action": "light.turn_on", "target": {"entity_id": "light.street_1"}},
            {"delay": "00:05"},
        ],
    }
]
HA_OLD = [
    {
        "id": "lights",
        "alias": "Street lights on at sunset",
        "trigger": {"platform": "sun", "event": "sunset", "offset": "-00:15:00"},
        "condition": [{"condition": "time", "weekday": ["mon", "tue"]}],
        "action": [
            {"service": "light.turn_on", "target": {"entity_id": "light.street_1"}},
            {"delay": {"minutes": 5}},
        ],
    }
]


def test_old_and_new_home_assistant_spellings_mean_the_same_automation():
    new = AUTOMATIONS_SCHEMA(HA_2024_10)
    old = AUTOMATIONS_SCHEMA(HA_OLD)
    assert new == old
    automation = new[0]
    assert automation["triggers"] == [
        {"trigger": "sun", "event": "sunset", "offset": timedelta(minutes=-15), "enabled": True}
    ]
    assert automation["actions"] == [
        {
            "action": "light.turn_on",
            "target": {"entity_id": ["light.street_1"]},
            "enabled": True,
            "continue_on_error": False,
        },
        {"delay": timedelta(minutes=5), "enabled": True, "continue_on_error": False},
    ]
    assert automation["mode"] == "single"
    assert automation["max"] == 10
    assert automation["trace"] == {"stored_traces": 5}


def test_validated_automations_validate_to_themselves():
    validated = AUTOMATIONS_SCHEMA(
        [
            *HA_2024_10,
            {
                "alias": "Door held open",
                "triggers": [
                    {
                        "trigger": "state",
                        "entity_id": "binary_sensor.b3_door",
                        "to": "on",
                        "for": 120,
                    },
                    {"trigger": "time", "at": ["07:00", "19:30:15"]},
                    {"trigger": "incident", "kind": "access.*", "severity": "safety"},
                ],
                "conditions": ["{{ true }}", {"or": [{"condition": "trigger", "id": "0"}]}],
                "actions": [
                    {"condition": "state", "entity_id": "binary_sensor.b3_door", "state": "on"},
                    {"choose": [{"condition": "{{ true }}", "sequence": {"event": "x"}}]},
                    {"repeat": {"count": 2, "sequence": [{"delay": 1}]}},
                    {"notify": {"target": "role:guard", "message": "Door open"}},
                ],
            },
        ]
    )
    assert AUTOMATIONS_SCHEMA(validated) == validated
    assert validated[1]["id"] == "door_held_open"
    assert validated[1]["triggers"][1]["at"] == [time(7, 0), time(19, 30, 15)]
    assert validated[1]["triggers"][2]["event"] == ["raised"]


def test_automations_without_an_id_or_alias_are_numbered_by_their_place():
    validated = validate_automations(
        [
            {"triggers": {"trigger": "event", "event_type": "a"}, "actions": []},
            {
                "alias": "访客车辆",
                "triggers": {"trigger": "event", "event_type": "b"},
                "actions": [],
            },
        ]
    )
    assert [a["id"] for a in validated] == ["automation_1", "automation_2"]


async def test_the_engine_refuses_a_sun_trigger_when_the_estate_has_no_coordinates(tmp_path):
    harness = EstateHarness.from_yaml(
        tmp_path,
        "estate: {name: No Coordinates}\nplugins: {allow: []}\n",
        plugins=automation_plugins(),
    )
    with pytest.raises(AutomationConfigError) as caught:
        AutomationEngine(
            harness.hub,
            [{"id": "lights", "triggers": {"trigger": "sun", "event": "sunset"}, "actions": []}],
        )
    assert str(caught.value) == (
        "automation lights: triggers[0]: a sun trigger needs the estate's coordinates: set "
        "estate → latitude and longitude in the config"
    )


async def test_the_engine_validates_what_it_is_given_and_names_the_path(tmp_path):
    harness = EstateHarness.from_yaml(
        tmp_path, "estate: {name: t}\nplugins: {allow: []}\n", plugins=automation_plugins()
    )
    with pytest.raises(AutomationConfigError) as caught:
        AutomationEngine(
            harness.hub,
            [{"id": "x", "triggers": [{"trigger": "time", "at": "7pm"}], "actions": []}],
        )
    assert str(caught.value) == (
        "automations[0] → triggers[0] → at[0]: expected a time of day such as 07:00 or "
        "23:59:59, got '7pm'"
    )


def test_a_sun_trigger_in_an_estate_without_coordinates_is_reported_at_its_line(tmp_path):
    head = "estate:\n  name: No Coordinates\nplugins:\n  allow: []\n"
    text = estate_yaml(
        """
        - id: lights_on
          triggers: {trigger: sun, event: sunset}
          actions: [{event: lights.on}]
        - id: lights_off
          trigger:
            - platform: time
              at: "23:00"
            - platform: sun
              event: sunrise
          actions: [{event: lights.off}]
        """,
        head,
    )
    (tmp_path / "estate.yaml").write_text(text, encoding="utf-8")
    raw = load_yaml(tmp_path / "estate.yaml")["automations"]
    issues = estate_issues(raw, AUTOMATIONS_SCHEMA(raw), latitude=None, longitude=None)
    assert [str(issue) for issue in issues] == [
        "estate.yaml, line 7: automations[0] → triggers[0]: a sun trigger needs the estate's "
        "coordinates: set estate → latitude and longitude",
        "estate.yaml, line 13: automations[1] → trigger[1]: a sun trigger needs the estate's "
        "coordinates: set estate → latitude and longitude",
    ]
    assert estate_issues(raw, AUTOMATIONS_SCHEMA(raw), latitude=31.2, longitude=121.5) == []
