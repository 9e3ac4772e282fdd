"""Topic names, filters and the subscription index behave as MQTT 3.1.1 says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estatehub.exceptions import TransportError
from estatehub.transports.topics import (
    InvalidTopicError,
    TopicIndex,
    topic_matches,
    validate_filter,
    validate_topic,
)


@pytest.mark.parametrize(
    ("topic_filter", "reason"),
    [
        ("zigbee2mqtt/#/set", "'#' is only allowed as the last level"),
        ("zigbee2mqtt/b3#", "'#' must fill a whole level, not 'b3#'"),
        ("tele/+STATE", "'+' must fill a whole level, not '+STATE'"),
        ("", "must not be empty"),
        ("stat/plug\x00/POWER", "must not contain the NUL character"),
    ],
)
def test_integrator_typo_in_a_subscription_filter_is_refused_with_the_rule(
    topic_filter: str, reason: str
) -> None:
    with pytest.raises(InvalidTopicError) as caught:
        validate_filter(topic_filter)
    assert caught.value.reason == reason
    assert caught.value.kind == "topic filter"
    assert str(caught.value) == f"invalid MQTT topic filter {topic_filter!r}: {reason}"
    assert isinstance(caught.value, TransportError)


def test_filter_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidTopicError) as caught:
        validate_filter(42)  # type: ignore[arg-type]
    assert caught.value.reason == "must be a str, got int"


def test_overlong_topic_is_refused() -> None:
    with pytest.raises(InvalidTopicError) as caught:
        validate_topic("a" * 65536)
    assert caught.value.reason == "is longer than 65535 bytes of UTF-8"


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "+", "zigbee2mqtt/+", "zigbee2mqtt/+/set", "+/+", "/x", "a//b", "$SYS/#", "tele/+/LWT"],
)
def test_well_formed_filters_pass(topic_filter: str) -> None:
    validate_filter(topic_filter)


def test_publishing_to_a_wildcard_topic_is_refused() -> None:
    with pytest.raises(InvalidTopicError) as caught:
        validate_topic("zigbee2mqtt/+/set")
    assert caught.value.reason == "wildcards '+' and '#' are only allowed in subscription filters"
    assert caught.value.kind == "topic"


def test_real_device_topics_are_valid_topic_names() -> None:
    for topic in (
        "zigbee2mqtt/b3-1202-smoke",
        "tele/lamp-7/STATE",
        "homeassistant/lock/gate/config",
    ):
        validate_topic(topic)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("zigbee2mqtt/#", "zigbee2mqtt/b3-1202-smoke", True),
        ("zigbee2mqtt/#", "zigbee2mqtt", True),  # '#' includes the parent level
        ("zigbee2mqtt/#", "zigbee2mqttx/a", False),
        ("zigbee2mqtt/+", "zigbee2mqtt/b3/1202", False),
        ("zigbee2mqtt/+/set", "zigbee2mqtt/b3-1202-siren/set", True),
        ("tele/+/STATE", "tele/lamp-7/SENSOR", False),
        ("+", "/a", False),
        ("/+", "/a", True),
        ("a/+/c", "a//c", True),
        ("a/b", "a/b/", False),
        ("#", "$SYS/broker/uptime", False),  # wildcards never reach into $ topics
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("$SYS/+/uptime", "$SYS/broker/uptime", True),
    ],
)
def test_topic_matching_follows_mqtt(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_index_returns_every_matching_subscription_in_the_order_added() -> None:
    index: TopicIndex[str] = TopicIndex()
    assert index.add("zigbee2mqtt/#", "capture-all") is True
    assert index.add("zigbee2mqtt/b3-1202-smoke", "smoke-adapter") is True
    assert index.add("zigbee2mqtt/+", "state-tracker") is True
    assert index.add("zigbee2mqtt/b3-1202-smoke", "second-smoke-view") is False
    assert index.add("tele/+/STATE", "tasmota") is True

    assert index.match("zigbee2mqtt/b3-1202-smoke") == (
        "capture-all",
        "smoke-adapter",
        "state-tracker",
        "second-smoke-view",
    )
    assert index.match("zigbee2mqtt/b3-1202-smoke/availability") == ("capture-all",)
    assert index.match("tele/lamp-7/STATE") == ("tasmota",)
    assert index.match("stat/lamp-7/POWER") == ()
    assert index.filters() == [
        "zigbee2mqtt/#",
        "zigbee2mqtt/b3-1202-smoke",
        "zigbee2mqtt/+",
        "tele/+/STATE",
    ]
    assert len(index) == 5


def test_index_forgets_a_filter_when_its_last_subscription_goes() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("zigbee2mqtt/+/set", "one")
    index.add("zigbee2mqtt/+/set", "two")
    assert index.match("zigbee2mqtt/siren/set") == ("one", "two")  # now cached

    assert index.discard("zigbee2mqtt/+/set", "one") is False
    assert index.match("zigbee2mqtt/siren/set") == ("two",)
    assert index.discard("zigbee2mqtt/+/set", "two") is True
    assert index.match("zigbee2mqtt/siren/set") == ()
    assert index.filters() == []
    assert index.discard("zigbee2mqtt/+/set", "two") is False  # already gone: a no-op


def test_index_sees_a_wildcard_added_after_a_topic_was_cached() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("tele/lamp-7/STATE", "exact")
    assert index.match("tele/lamp-7/STATE") == ("exact",)
    index.add("tele/#", "late-wildcard")
    assert index.match("tele/lamp-7/STATE") == ("exact", "late-wildcard")


def test_index_keeps_dollar_topics_away_from_leading_wildcards() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("#", "everything")
    index.add("+/broker/uptime", "plus")
    index.add("$SYS/#", "sys")
    assert index.match("$SYS/broker/uptime") == ("sys",)
    assert index.match("site/broker/uptime") == ("everything", "plus")


_levels = st.sampled_from(["a", "b", "", "$SYS"])
_topics = st.lists(_levels, min_size=1, max_size=4).map("/".join).filter(bool)
_filter_levels = st.sampled_from(["a", "b", "", "+", "$SYS"])


@st.composite
def _filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(_filter_levels, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels) or "+"


@settings(max_examples=300, deadline=None)
@given(filters=st.lists(_filters(), min_size=1, max_size=8), topics=st.lists(_topics, max_size=8))
def test_index_agrees_with_topic_matches_for_any_filters(
    filters: list[str], topics: list[str]
) -> None:
    index: TopicIndex[int] = TopicIndex()
    for number, topic_filter in enumerate(filters):
        validate_filter(topic_filter)
        index.add(topic_filter, number)
    for topic in topics:
        expected = tuple(n for n, f in enumerate(filters) if topic_matches(f, topic))
        assert index.match(topic) == expected
    for number, topic_filter in enumerate(filters):
        index.discard(topic_filter, number)
    assert index.filters() == []
    for topic in topics:
        assert index.match(topic) == ()
