"""Delivery: retries with capped backoff, giving up, timeouts, dedupe, rate limits, audit.

Every wait is on the virtual clock: time moves only when the test advances it, so each
retry happens exactly when the backoff says.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

ESTATE = """
estate: {{name: 锦绣花园}}
modules:
  notify:
    dedupe_window: 60s
    channels:
      desk:
        type: webhook
        url: {url}/desk
        retry: {{attempts: 3, initial: 2s, max: 3s}}
      notices:
        type: webhook
        url: {url}/notices
        rate_limit: {{count: 2, per: 60s}}
      stuck:
        type: webhook
        url: {url}/hang
        timeout: 10s
        retry: {{attempts: 2, initial: 5s}}
    targets:
      property_desk: desk
      guard: [stuck, desk]
      residents: notices
"""


def failed(attempt: int, error: str, notification: str = "N-20260302-00001") -> tuple:
    return (
        "notify.attempt_failed",
        {
            "channel": "desk",
            "type": "webhook",
            "notification": notification,
            "target": "property_desk",
            "attempt": attempt,
            "error": error,
        },
    )


def delivered(attempt: int, notification: str = "N-20260302-00001", target="property_desk"):
    return (
        "notify.delivered",
        {
            "channel": "desk",
            "type": "webhook",
            "notification": notification,
            "target": target,
            "attempt": attempt,
        },
    )


@pytest.fixture
def estate(robot, make_estate):
    return make_estate(ESTATE.format(url=robot.url))


async def test_robot_answering_500_is_retried_with_backoff_until_it_delivers(
    robot, estate, notify_module, audit_of
):
    robot.script["/desk"] = [500, 500]
    async with estate as e:
        notify = notify_module(e)
        await e.call("notify", "send", {"target": "property_desk", "message": "电梯困人"})
        await notify.idle()
        assert audit_of(e, "desk") == [failed(1, "HTTP 500: upstream busy")]
        await e.advance(1.9)  # the first backoff is 2 s
        await notify.idle()
        assert len(robot.bodies("/desk")) == 1
        await e.advance(0.1)
        await notify.idle()
        assert len(robot.bodies("/desk")) == 2
        await e.advance(3)  # doubled to 4 s, capped at 3 s
        await notify.idle()
        assert audit_of(e, "desk") == [
            failed(1, "HTTP 500: upstream busy"),
            failed(2, "HTTP 500: upstream busy"),
            delivered(3),
        ]
        assert [r["attempt"] for r in e.events_of("notify.delivered")] == [3]
    assert [b["message"] for b in robot.bodies("/desk")] == ["电梯困人"] * 3


async def test_channel_gives_up_after_its_attempts_and_says_so(
    robot, estate, notify_module, audit_of
):
    robot.script["/desk"] = [503] * 10
    async with estate as e:
        notify = notify_module(e)
        await e.call("notify", "send", {"target": "property_desk", "message": "水泵故障"})
        # Let each real request finish before moving the virtual clock past its backoff.
        for backoff in (0, 2, 3, 60):
            await e.advance(backoff)
            await notify.idle()
        gave_up = ("notify.gave_up", {**failed(3, "HTTP 503: upstream busy")[1]})
        assert audit_of(e, "desk") == [
            failed(1, "HTTP 503: upstream busy"),
            failed(2, "HTTP 503: upstream busy"),
            failed(3, "HTTP 503: upstream busy"),
            gave_up,
        ]
        assert e.events_of("notify.gave_up") == [gave_up[1]]
        assert notify.channels["desk"].given_up == 1
    assert len(robot.bodies("/desk")) == 3


async def test_rejected_request_is_not_retried(robot, estate, notify_module, audit_of):
    robot.script["/desk"] = [400]
    async with estate as e:
        await e.call("notify", "send", {"target": "property_desk", "message": "x"})
        await notify_module(e).idle()
        await e.advance(timedelta(minutes=5))
        await notify_module(e).idle()
        assert [action for action, _ in audit_of(e, "desk")] == [
            "notify.attempt_failed",
            "notify.gave_up",
        ]
    assert len(robot.bodies("/desk")) == 1


async def test_hanging_channel_delays_no_other_channel_and_times_out_on_the_clock(
    robot, estate, notify_module, audit_of
):
    async with estate as e:
        notify = notify_module(e)
        result = await e.call("notify", "send", {"target": "guard", "message": "东门强行闯入"})
        assert result["queued"][0]["channels"] == ["stuck", "desk"]
        await notify.idle(["desk"])
        # The other channel delivered while "stuck" still waits for an answer …
        assert robot.bodies("/desk")[0]["message"] == "东门强行闯入"
        assert notify.channels["stuck"].state.value == "sending"
        # … and keeps delivering.
        await e.call("notify", "send", {"target": "property_desk", "message": "第二条"})
        await notify.idle(["desk"])
        assert [b["message"] for b in robot.bodies("/desk")] == ["东门强行闯入", "第二条"]
        assert audit_of(e, "desk") == [
            delivered(1, target="guard"),
            delivered(1, "N-20260302-00002"),
        ]
        assert audit_of(e, "stuck") == []
        await e.advance(10)
        await notify.idle(["desk"])
        assert audit_of(e, "stuck") == [
            (
                "notify.attempt_failed",
                {
                    "channel": "stuck",
                    "type": "webhook",
                    "notification": "N-20260302-00001",
                    "target": "guard",
                    "attempt": 1,
                    "error": "no answer within 10 s",
                },
            )
        ]
        assert notify.channels["stuck"].state.value == "waiting"  # the 5 s backoff


async def test_same_message_to_same_target_within_the_window_is_sent_once(
    robot, estate, notify_module, audit_of
):
    async with estate as e:
        notify = notify_module(e)
        first = await e.call("notify", "send", {"target": "property_desk", "message": "停电通知"})
        await e.advance(30)
        again = await e.call("notify", "send", {"target": "property_desk", "message": "停电通知"})
        other = await e.call("notify", "send", {"target": "property_desk", "message": "复电通知"})
        await notify.idle()
        assert first["duplicates"] == [] and again["duplicates"] == ["property_desk"]
        assert again["queued"] == [] and other["duplicates"] == []
        assert notify.duplicates == 1
        await e.advance(31)  # 61 s after the first: outside the window
        later = await e.call("notify", "send", {"target": "property_desk", "message": "停电通知"})
        await notify.idle()
        assert later["duplicates"] == []
        deduped = e.hub.store.audit_entries(subject="property_desk")
        assert [(d.action, d.at.isoformat()) for d in deduped] == [
            ("notify.deduplicated", "2026-03-02T08:00:30+08:00")
        ]
    assert [b["message"] for b in robot.bodies("/desk")] == ["停电通知", "复电通知", "停电通知"]


async def test_rate_limit_holds_the_third_message_until_the_window_moves(
    robot, estate, notify_module
):
    async with estate as e:
        notify = notify_module(e)
        for text in ("一", "二", "三"):
            await e.call("notify", "send", {"target": "residents", "message": text})
        await notify.idle()
        assert [b["message"] for b in robot.bodies("/notices")] == ["一", "二"]
        await e.advance(59.9)
        await notify.idle()
        assert len(robot.bodies("/notices")) == 2
        await e.advance(0.1)
        await notify.idle()
        assert [b["message"] for b in robot.bodies("/notices")] == ["一", "二", "三"]
        delivered_at = [
            entry.at.isoformat()
            for entry in e.hub.store.audit_entries(subject="notify:notices")
            if entry.action == "notify.delivered"
        ]
        assert delivered_at == [
            "2026-03-02T08:00:00+08:00",
            "2026-03-02T08:00:00+08:00",
            "2026-03-02T08:01:00+08:00",
        ]


async def test_target_without_a_channel_is_reported_not_dropped_silently(estate):
    async with estate as e:
        result = await e.call(
            "notify", "send", {"target": ["nobody", "property_desk"], "message": "x"}
        )
        assert result["unrouted"] == ["nobody"]
        assert [q["target"] for q in result["queued"]] == ["property_desk"]
        [entry] = e.hub.store.audit_entries(subject="nobody")
        assert (entry.actor, entry.action) == ("notify", "notify.unrouted")
