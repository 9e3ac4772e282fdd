"""Incidents and automations reach people through the notify module.

A safety incident's steps name targets (``household:h-wang``, ``property_desk``,
``guard``); each step's targets get the summary and the instruction on their channels, on
the virtual clock, and the repeats keep coming until someone acknowledges.
"""

from __future__ import annotations

from datetime import timedelta

from estatehub.incidents import EscalationPolicy, EscalationStep, Severity

ESTATE = """
estate: {{name: 锦绣花园}}
modules:
  notify:
    channels:
      desk:
        type: wecom
        key: desk-key
        base_url: {url}/desk
      guard_room:
        type: dingtalk
        access_token: guard-token
        base_url: {url}/guard
      families:
        type: webhook
        url: {url}/families
      journal:
        type: log
    targets:
      property_desk: [desk, journal]
      guard: guard_room
      "household:*": families
automations:
  - id: ebike_in_lift
    triggers: {{trigger: event, event_type: ebike.detected}}
    actions:
      - notify:
          target: guard
          title: 电梯内发现电动车
          message: "Lift {{{{ trigger.event.data.lift }}}}: e-bike {{{{ trigger.event.data.tag }}}}"
"""
SMOKE_POLICY = EscalationPolicy(
    steps=(
        EscalationStep(timedelta(0), ("household:h-wang",), "请确认家中情况"),
        EscalationStep(timedelta(minutes=2), ("property_desk",), "派人到 3号楼 1202"),
        EscalationStep(timedelta(minutes=5), ("guard",), "call 119 if smoke is confirmed"),
    ),
    repeat_every=timedelta(minutes=5),
)


async def test_unacknowledged_smoke_alarm_notifies_every_step_until_acknowledged(
    robot, make_estate, notify_module
):
    async with make_estate(ESTATE.format(url=robot.url)) as e:
        notify = notify_module(e)
        incident = e.hub.incidents.raise_incident(
            "smoke",
            Severity.SAFETY,
            "b3-1-1202",
            "3号楼1202 烟感报警",
            source="home",
            policy=SMOKE_POLICY,
        )
        await e.settle()
        await notify.idle()
        assert robot.bodies("/families") == [
            {
                "id": "N-20260302-00001",
                "target": "household:h-wang",
                "title": "[safety] smoke · b3-1-1202",
                "message": f"3号楼1202 烟感报警\n请确认家中情况\n{incident.id}",
                "data": {
                    "incident": incident.id,
                    "kind": "smoke",
                    "severity": "safety",
                    "location": "b3-1-1202",
                    "level": 0,
                    "repeat": 0,
                },
                "at": "2026-03-02T08:00:00+08:00",
            }
        ]
        await e.advance(timedelta(minutes=2))
        await notify.idle()
        assert robot.bodies("/desk") == [
            {
                "msgtype": "text",
                "text": {
                    "content": f"[safety] smoke · b3-1-1202\n3号楼1202 烟感报警\n派人到 3号楼 1202\n{incident.id}"
                },
            }
        ]
        await e.advance(timedelta(minutes=3))
        await notify.idle()
        await e.advance(timedelta(minutes=5))  # the first repeat of the last step
        await notify.idle()
        guard = [b["text"]["content"].split("\n")[-1] for b in robot.bodies("/guard")]
        assert guard == [incident.id, f"{incident.id} (repeat 1)"]
        e.hub.incidents.acknowledge(incident.id, by="guard-li")
        await e.advance(timedelta(hours=1))
        await notify.idle()
        assert len(robot.bodies("/guard")) == 2
        assert len(robot.bodies("/desk")) == 1 and len(robot.bodies("/families")) == 1
        journal = [
            entry.detail["notification"]
            for entry in e.hub.store.audit_entries(subject="notify:journal")
        ]
        assert journal == ["N-20260302-00002"]


async def test_automation_notify_action_goes_through_notify_send(robot, make_estate, notify_module):
    async with make_estate(ESTATE.format(url=robot.url)) as e:
        e.hub.bus.fire("ebike.detected", {"lift": "B3-L1", "tag": "E200-3411"})
        await e.settle()
        await notify_module(e).idle()
        assert e.events_of("notify.requested") == []
        [body] = robot.bodies("/guard")
        assert body == {
            "msgtype": "text",
            "text": {"content": "电梯内发现电动车\nLift B3-L1: e-bike E200-3411"},
            "at": {"atMobiles": [], "atUserIds": [], "isAtAll": False},
        }


async def test_log_channel_writes_the_notification_to_the_hub_log(
    robot, make_estate, notify_module, caplog
):
    async with make_estate(ESTATE.format(url=robot.url)) as e:
        await e.call(
            "notify", "send", {"target": "property_desk", "title": "通知", "message": "明早停水"}
        )
        await notify_module(e).idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "estatehub_notify.notifiers"]
    assert lines == ["notify journal → property_desk: 通知 | 明早停水"]
