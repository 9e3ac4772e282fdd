"""Each notifier speaks its vendor's public format, checked on a local server.

WeCom group robot: POST /cgi-bin/webhook/send?key=KEY with {"msgtype": "text", "text":
{"content", "mentioned_mobile_list"}} or markdown. DingTalk custom robot: POST
/robot/send?access_token=TOKEN[&timestamp=ms&sign=…] with {"msgtype": "text", "text":
{"content"}, "at": {"atMobiles", "atUserIds", "isAtAll"}}; sign is
base64(HMAC-SHA256(secret, "timestamp\\nsecret")).
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
from email import policy

ESTATE = """
estate: {{name: 锦绣花园}}
modules:
  notify:
    channels:
      desk_wecom:
        type: wecom
        key: !secret wecom_desk
        base_url: {url}/cgi-bin/webhook/send
        mentioned_mobile_list: ["13800001111"]
      desk_wecom_md:
        type: wecom
        key: md-key
        msgtype: markdown
        base_url: {url}/wecom-md
      guard_dingtalk:
        type: dingtalk
        access_token: !secret dingtalk_token
        secret: !secret dingtalk_secret
        base_url: {url}/robot/send
        at_mobiles: ["13900002222"]
      family_hook:
        type: webhook
        url: {url}/hook
        headers: {{X-Estate: jinxiu}}
    targets:
      property_desk: [desk_wecom, desk_wecom_md]
      guard: guard_dingtalk
      "household:*": family_hook
"""
SECRETS = """
wecom_desk: 693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa
dingtalk_token: 0a1b2c3d
dingtalk_secret: SEC0123456789abcdef
"""
# 2026-03-02 08:00 +08:00 (the harness's start), in milliseconds.
START_MS = 1772409600000


async def test_wecom_robot_gets_text_with_mentions_and_markdown(robot, make_estate, notify_module):
    async with make_estate(ESTATE.format(url=robot.url), secrets=SECRETS) as estate:
        result = await estate.call(
            "notify", "send", {"target": "property_desk", "title": "门禁", "message": "3号楼门常开"}
        )
        await notify_module(estate).idle()
    assert result == {
        "queued": [
            {
                "id": "N-20260302-00001",
                "target": "property_desk",
                "channels": ["desk_wecom", "desk_wecom_md"],
            }
        ],
        "duplicates": [],
        "unrouted": [],
    }
    [text] = [r for r in robot.received if r.path == "/cgi-bin/webhook/send"]
    assert text.query == {"key": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"}
    assert text.body == {
        "msgtype": "text",
        "text": {"content": "门禁\n3号楼门常开", "mentioned_mobile_list": ["13800001111"]},
    }
    [markdown] = [r for r in robot.received if r.path == "/wecom-md"]
    assert markdown.query == {"key": "md-key"}
    assert markdown.body == {
        "msgtype": "markdown",
        "markdown": {"content": "**门禁**\n3号楼门常开"},
    }


async def test_dingtalk_robot_gets_signed_text_with_at(robot, make_estate, notify_module):
    async with make_estate(ESTATE.format(url=robot.url), secrets=SECRETS) as estate:
        await estate.call("notify", "send", {"target": "guard", "message": "东门围栏告警"})
        await notify_module(estate).idle()
    [request] = robot.received
    assert request.path == "/robot/send"
    expected_sign = base64.b64encode(
        hmac.new(
            b"SEC0123456789abcdef", f"{START_MS}\nSEC0123456789abcdef".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert request.query == {
        "access_token": "0a1b2c3d",
        "timestamp": str(START_MS),
        "sign": expected_sign,
    }
    assert request.body == {
        "msgtype": "text",
        "text": {"content": "东门围栏告警"},
        "at": {"atMobiles": ["13900002222"], "atUserIds": [], "isAtAll": False},
    }


def test_dingtalk_signature_matches_the_documented_recipe():
    from estatehub_notify.notifiers import dingtalk_sign

    # Computed with the recipe on DingTalk's robot page: HmacSHA256 over "timestamp\nsecret"
    # keyed with the secret, then Base64 (URL-encoding is the HTTP client's job).
    assert dingtalk_sign(1577808000000, "this is secret") == base64.b64encode(
        hmac.new(b"this is secret", b"1577808000000\nthis is secret", hashlib.sha256).digest()
    ).decode("ascii")
    assert dingtalk_sign(1577808000000, "this is secret") != dingtalk_sign(
        1577808000001, "this is secret"
    )


async def test_generic_webhook_posts_the_notification_as_json(robot, make_estate, notify_module):
    async with make_estate(ESTATE.format(url=robot.url), secrets=SECRETS) as estate:
        await estate.call(
            "notify",
            "send",
            {
                "target": "household:h-wang",
                "message": "访客车辆已到达",
                "data": {"plate": "沪A12345"},
            },
        )
        await notify_module(estate).idle()
    [request] = robot.received
    assert request.path == "/hook"
    assert request.body == {
        "id": "N-20260302-00001",
        "target": "household:h-wang",
        "title": "",
        "message": "访客车辆已到达",
        "data": {"plate": "沪A12345"},
        "at": "2026-03-02T08:00:00+08:00",
    }


SMTP_ESTATE = """
estate: {{name: 锦绣花园}}
modules:
  notify:
    channels:
      office_mail:
        type: smtp
        host: 127.0.0.1
        port: {port}
        sender: hub@jinxiu.example
        to: [office@jinxiu.example, manager@jinxiu.example]
    targets:
      property_desk: office_mail
"""


async def test_email_goes_out_through_the_smtp_server(smtp, make_estate, notify_module, audit_of):
    async with make_estate(SMTP_ESTATE.format(port=smtp.port)) as estate:
        await estate.call(
            "notify",
            "send",
            {"target": "property_desk", "title": "燃气告警", "message": "5号楼 2-801"},
        )
        await notify_module(estate).idle()
        audit = audit_of(estate, "office_mail")
    [(sender, recipients, data)] = smtp.messages
    assert sender == "hub@jinxiu.example"
    assert recipients == ["office@jinxiu.example", "manager@jinxiu.example"]
    mail = email.message_from_bytes(data, policy=policy.default)
    assert mail["Subject"] == "燃气告警"
    assert mail["To"] == "office@jinxiu.example, manager@jinxiu.example"
    assert mail["X-Estatehub-Notification"] == "N-20260302-00001"
    assert mail.get_content().strip() == "5号楼 2-801"
    assert audit == [
        (
            "notify.delivered",
            {
                "channel": "office_mail",
                "type": "smtp",
                "notification": "N-20260302-00001",
                "target": "property_desk",
                "attempt": 1,
            },
        )
    ]
