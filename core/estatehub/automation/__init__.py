"""Automations in Home Assistant's shape: triggers, conditions, actions, modes, traces.

The estate config's ``automations:`` list is validated by :data:`AUTOMATIONS_SCHEMA` and run
by :class:`AutomationEngine`. Everything is HA-compatible in shape (HA's key names, old and
new spellings) except two documented extensions: the ``incident`` trigger and the
``notify`` action.
"""

from __future__ import annotations

from .engine import AutomationEngine, AutomationInfo, EngineStats
from .errors import AutomationConfigError, AutomationError, TemplateError, UnknownAutomation
from .schema import (
    AUTOMATION_SCHEMA,
    AUTOMATIONS_SCHEMA,
    estate_issues,
    validate_automation,
    validate_automations,
)
from .trace import describe_trace

__all__ = [
    "AUTOMATIONS_SCHEMA",
    "AUTOMATION_SCHEMA",
    "AutomationConfigError",
    "AutomationEngine",
    "AutomationError",
    "AutomationInfo",
    "EngineStats",
    "TemplateError",
    "UnknownAutomation",
    "describe_trace",
    "estate_issues",
    "validate_automation",
    "validate_automations",
]
