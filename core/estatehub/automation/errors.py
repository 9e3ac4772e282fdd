"""The errors the automation engine raises on purpose."""

from __future__ import annotations

from ..exceptions import EstatehubError


class AutomationError(EstatehubError):
    """Root of the automation engine's errors."""


class AutomationConfigError(AutomationError):
    """Automation config the engine cannot use; the message names the automation and field."""


class UnknownAutomation(AutomationError):
    """An automation id that no configured automation has."""

    def __init__(self, automation_id: str, known: list[str]) -> None:
        shown = ", ".join(known) if known else "none are configured"
        super().__init__(f"no automation {automation_id!r} (known: {shown})")
        self.automation_id = automation_id


class TemplateError(AutomationError):
    """A template failed to compile or render; the message quotes the template."""

    def __init__(self, source: str, reason: str) -> None:
        shown = source if len(source) <= 120 else source[:119] + "…"
        super().__init__(f"template {shown!r}: {reason}")
        self.source = source
        self.reason = reason
