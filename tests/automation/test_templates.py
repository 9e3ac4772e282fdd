"""Templates see the estate's states and the hub clock, and nothing else of the machine."""

from __future__ import annotations

import pytest

from estatehub.automation.errors import TemplateError
from estatehub.automation.templates import TemplateEngine, parse_result, result_as_boolean
from estatehub.bus import EventBus
from estatehub.clock import VirtualClock
from estatehub.states import StateMachine

from .conftest import MONDAY_8AM


@pytest.fixture
def templates() -> TemplateEngine:
    clock = VirtualClock(MONDAY_8AM, tz=MONDAY_8AM.tzinfo)
    states = StateMachine(EventBus(clock))
    states.set("sensor.b3_gas_ppm", "12.5", {"unit": "ppm", "flat": "b3-1-1202"})
    states.set("binary_sensor.b3_smoke", "off")
    states.set("binary_sensor.b5_smoke", "on")
    return TemplateEngine(states, clock)


def test_home_assistant_state_helpers_read_the_hub_states(templates):
    render = templates.render
    assert render("{{ states('sensor.b3_gas_ppm') | float * 2 }}", {}) == 25.0
    assert render("{{ states('sensor.nothing') }}", {}) == "unknown"
    assert render("{{ states.sensor.b3_gas_ppm.state }}", {}) == 12.5
    assert render("{{ states.sensor.b3_gas_ppm.attributes.unit }}", {}) == "ppm"
    assert render("{{ state_attr('sensor.b3_gas_ppm', 'flat') }}", {}) == "b3-1-1202"
    assert render("{{ state_attr('sensor.nothing', 'flat') }}", {}) is None
    assert render("{{ is_state('binary_sensor.b3_smoke', 'off') }}", {}) is True
    assert render("{{ is_state('binary_sensor.b3_smoke', ['on', 'unknown']) }}", {}) is False
    assert render("{{ is_state_attr('sensor.b3_gas_ppm', 'unit', 'ppm') }}", {}) is True
    assert render(
        "{{ states.binary_sensor | selectattr('state', 'eq', 'on') | map(attribute='entity_id') | list }}",
        {},
    ) == ["binary_sensor.b5_smoke"]


def test_now_is_the_hub_clock_in_the_estate_timezone(templates):
    assert templates.render("{{ now().isoformat() }}", {}) == "2026-03-02T08:00:00+08:00"
    assert templates.render("{{ utcnow().hour }}", {}) == 0
    assert templates.render("{{ as_timestamp(now()) }}", {}) == MONDAY_8AM.timestamp()
    assert (
        templates.render("{{ (now() + timedelta(minutes=90)).strftime('%H:%M') }}", {}) == "09:30"
    )
    assert templates.render("{{ as_datetime('2026-03-02T09:00:00').hour }}", {}) == 9


def test_variables_and_trigger_are_visible(templates):
    variables = {"trigger": {"event": {"data": {"flat": "b3-1-1202"}}}, "minutes": 5}
    assert (
        templates.render("{{ trigger.event.data.flat }}/{{ minutes }}", variables) == "b3-1-1202/5"
    )
    assert templates.render(
        {"flat": "{{ trigger.event.data.flat }}", "list": ["{{ minutes + 1 }}", 7], "plain": "x"},
        variables,
    ) == {"flat": "b3-1-1202", "list": [6, 7], "plain": "x"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-3.5", -3.5),
        ("True", True),
        ("None", None),
        ("[1, 'a']", [1, "a"]),
        ("{'a': 1}", {"a": 1}),
        ("007", "007"),
        ("1202", 1202),
        ("on", "on"),
        ("true", "true"),
        ("b3-1-1202", "b3-1-1202"),
        ("'quoted'", "'quoted'"),
        ("1e400", "1e400"),
    ],
)
def test_rendered_text_becomes_a_native_value_as_in_home_assistant(text, value):
    assert parse_result(text) == value
    assert type(parse_result(text)) is type(value)


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        (True, True),
        ("on", True),
        ("Yes", True),
        ("1", True),
        (2.5, True),
        ("off", False),
        (0, False),
        (None, False),
        ("nope", False),
    ],
)
def test_template_results_are_true_the_way_home_assistant_reads_them(value, truth):
    assert result_as_boolean(value) is truth


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ cycler.__init__.__globals__.os }}",
            "not allowed in a template: access to attribute '__init__' of 'type' object is unsafe.",
        ),
        (
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
            "not allowed in a template: access to attribute '__globals__' of 'function' object is unsafe.",
        ),
        ("{{ open('/etc/passwd').read() }}", "'open' is undefined"),
        (
            "{% include '/etc/passwd' %}",
            "not allowed in a template: include, import and extends (templates cannot read files)",
        ),
        (
            "{% import 'os' as os %}{{ os.system('id') }}",
            "not allowed in a template: include, import and extends (templates cannot read files)",
        ),
        (
            "{% extends '/etc/hosts' %}",
            "not allowed in a template: include, import and extends (templates cannot read files)",
        ),
        (
            "{{ states.sensor.b3_gas_ppm.attributes.update({'unit': 'x'}) }}",
            "'mappingproxy object' has no attribute 'update'",
        ),
        (
            "{{ states._machine.set('lock.b3_gate', 'unlocked') }}",
            "not allowed in a template: access to attribute '_machine' of '_States' object is unsafe.",
        ),
        (
            "{{ 'x' * 10 ** 8 }}",
            "not allowed in a template: a result of 100000000 items is longer than 100000",
        ),
        ("{{ 9 ** 9999999 }}", "not allowed in a template: exponent 9999999 is larger than 1000"),
    ],
)
def test_a_template_cannot_reach_files_processes_or_the_hubs_internals(templates, source, reason):
    with pytest.raises(TemplateError) as caught:
        templates.render(source, {})
    assert caught.value.reason == reason


async def test_an_automation_whose_template_tries_to_escape_fails_alone(estate_factory):
    async with estate_factory(
        """
        - id: sneaky
          triggers: {trigger: event, event_type: test.go}
          actions:
            - event: test.leak
              event_data: {secret: "{{ cycler.__init__.__globals__.os.environ }}"}
        - id: honest
          triggers: {trigger: event, event_type: test.go}
          actions: [{event: test.fine}]
        """
    ) as estate:
        await estate.fire("test.go")
        trace = estate.last_trace("sneaky")
        assert trace["script_execution"] == "error"
        assert trace["steps"][0]["error"] == (
            "TemplateError: template '{{ cycler.__init__.__globals__.os.environ }}': not allowed "
            "in a template: access to attribute '__init__' of 'type' object is unsafe."
        )
        assert estate.events_of("test.leak") == []
        assert estate.events_of("test.fine") == [{}]


def test_templates_are_compiled_once(templates):
    first = templates.compile("{{ 1 + 1 }}")
    assert templates.compile("{{ 1 + 1 }}") is first
    assert first.render({}) == 2
    assert first.render_text({}) == "2"


def test_templates_get_no_names_beyond_the_state_and_time_helpers(templates):
    # Jinja's own harmless globals, and ours; nothing that reads files or the network.
    assert templates.names() == [
        "as_datetime",
        "as_timestamp",
        "cycler",
        "dict",
        "is_state",
        "is_state_attr",
        "joiner",
        "lipsum",
        "namespace",
        "now",
        "range",
        "state_attr",
        "states",
        "timedelta",
        "utcnow",
    ]
