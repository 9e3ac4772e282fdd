"""Mistakes in ``modules: notify:`` are reported with the channel and option to fix."""

from __future__ import annotations

BASE = """
estate: {{name: 锦绣花园}}
modules:
  notify:
    channels:
{channels}
    targets:
{targets}
"""


def _config(channels: str, targets: str) -> str:
    return BASE.format(channels=channels, targets=targets)


async def test_unknown_notifier_type_fails_the_module_naming_the_installed_ones(make_estate):
    text = _config("      desk: {type: pager}", "      property_desk: desk")
    async with make_estate(text) as e:
        record = e.hub.modules["notify"]
        assert record.status.value == "failed"
        assert record.error == (
            "NotifyError: notify channel 'desk': unknown type 'pager' "
            "(installed: dingtalk, log, smtp, webhook, wecom)"
        )


async def test_target_naming_a_missing_channel_fails_the_module(make_estate):
    text = _config("      desk: {type: log}", "      guard: guard_room")
    async with make_estate(text) as e:
        assert e.hub.modules["notify"].error == (
            "NotifyError: notify target 'guard' names channel 'guard_room', "
            "which is not under channels: (desk)"
        )


async def test_missing_robot_key_names_the_option_not_a_value(make_estate):
    text = _config("      desk: {type: wecom}", "      property_desk: desk")
    async with make_estate(text) as e:
        assert e.hub.modules["notify"].error == (
            "NotifyError: notify channel 'desk' (wecom): required key not provided at key"
        )
