"""The ``escalation:`` section: named escalation policies, which incidents get which, and
when an incident closes by itself.

An incident raised without a policy of its own gets the policy of the first ``match:`` rule
naming its kind (exactly, or a prefix such as ``parking.*``) and/or severity. A caller that
brings its own policy (the home module does) keeps it. ``auto_resolve:`` rules close open
incidents of a kind a while after someone acknowledged them (``after_acknowledged``) and/or
when a bus event with the given data fires (``when_event``, ``event_data``,
``location_field``). An unacknowledged safety incident is never closed by a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import voluptuous as vol

from . import config_validation as cv
from .incidents import EscalationPolicy, EscalationStep, QuietHours, Severity

__all__ = [
    "ESCALATION_SCHEMA",
    "AutoResolveRule",
    "EscalationConfig",
    "PolicyMatch",
    "escalation_config",
    "kind_matches",
]


def kind_matches(pattern: str, kind: str) -> bool:
    """``parking.*`` matches every kind starting ``parking.``; anything else matches exactly."""
    if pattern.endswith(".*"):
        return kind.startswith(pattern[:-1])
    return kind == pattern


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """One ``match:`` rule: incidents of ``kind`` and/or ``severity`` get ``policy``."""

    policy: str
    kind: str | None = None
    severity: Severity | None = None

    def matches(self, kind: str, severity: Severity) -> bool:
        """Whether an incident of this kind and severity falls under the rule."""
        if self.kind is not None and not kind_matches(self.kind, kind):
            return False
        return self.severity is None or self.severity is severity


@dataclass(frozen=True, slots=True)
class AutoResolveRule:
    """One ``auto_resolve:`` rule for open incidents of ``kind`` (exact or ``prefix.*``).

    :param after_acknowledged: close an acknowledged incident this long after the
        acknowledgement.
    :param when_event: close the open incidents of the kind when this bus event fires …
    :param event_data: … and its data contains these values …
    :param location_field: … and (when given) the event's value of this field equals the
        incident's ``location``.
    """

    kind: str
    after_acknowledged: timedelta | None = None
    when_event: str | None = None
    event_data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    location_field: str | None = None

    def applies_to(self, kind: str, location: str, data: Mapping[str, Any]) -> bool:
        """Whether a ``when_event`` event with ``data`` closes an incident of kind/location."""
        if not kind_matches(self.kind, kind):
            return False
        return self.location_field is None or str(data.get(self.location_field)) == location

    def event_matches(self, data: Mapping[str, Any]) -> bool:
        """Whether the event's data carries every value of ``event_data``."""
        return all(key in data and data[key] == value for key, value in self.event_data.items())

    def describe(self) -> str:
        """The rule in words, for the audit log's note."""
        if self.when_event is not None:
            return f"auto_resolve: {self.kind} on {self.when_event}"
        return f"auto_resolve: {self.kind} {self.after_acknowledged} after acknowledgement"


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    """The validated ``escalation:`` section."""

    policies: Mapping[str, EscalationPolicy] = field(default_factory=lambda: MappingProxyType({}))
    match: tuple[PolicyMatch, ...] = ()
    auto_resolve: tuple[AutoResolveRule, ...] = ()

    def policy_for(self, kind: str, severity: Severity) -> EscalationPolicy | None:
        """The policy of the first matching ``match:`` rule, or None."""
        for rule in self.match:
            if rule.matches(kind, severity):
                return self.policies[rule.policy]
        return None

    def resolve_after_acknowledged(self, kind: str) -> AutoResolveRule | None:
        """The first ``after_acknowledged`` rule for this kind, or None."""
        for rule in self.auto_resolve:
            if rule.after_acknowledged is not None and kind_matches(rule.kind, kind):
                return rule
        return None

    def resolving_event_types(self) -> tuple[str, ...]:
        """The event types some ``when_event`` rule listens for, each once."""
        return tuple(dict.fromkeys(r.when_event for r in self.auto_resolve if r.when_event))

    def rules_for_event(
        self, event_type: str, data: Mapping[str, Any]
    ) -> tuple[AutoResolveRule, ...]:
        """The ``when_event`` rules this event (type and data) satisfies."""
        return tuple(
            rule
            for rule in self.auto_resolve
            if rule.when_event == event_type and rule.event_matches(data)
        )


# --------------------------------------------------------------------------- schema


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid(f"expected text, got {cv.describe_value(value)}")
    return str(value)


def _kind_pattern(value: Any) -> str:
    text = _text(value)
    if "*" in text[:-2] or (text.endswith("*") and not text.endswith(".*")):
        raise vol.Invalid(
            f"a kind is exact (detector.offline) or a prefix ending in .* (parking.*), "
            f"got {cv.describe_value(value)}"
        )
    return text


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise vol.Invalid("must be longer than 0s")
    return value


def _quiet_not_empty(quiet: dict[str, Any]) -> dict[str, Any]:
    if quiet["from"] == quiet["to"]:
        raise vol.Invalid("quiet hours need 'from' and 'to' to differ")
    return quiet


def _steps_in_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    afters = [step["after"] for step in steps]
    if afters != sorted(afters):
        raise vol.Invalid("steps must be in order of 'after' (earliest first)")
    return steps


_STEP_SCHEMA = vol.Schema(
    {
        vol.Required("after"): cv.duration,
        vol.Required("notify"): vol.All(cv.ensure_list, [_text], vol.Length(min=1)),
        vol.Optional("instruction", default=""): str,
        vol.Optional("require_ack", default=True): bool,
    }
)
_POLICY_SCHEMA = vol.Schema(
    {
        vol.Required("steps"): vol.All(
            cv.list_of(_STEP_SCHEMA), vol.Length(min=1), _steps_in_order
        ),
        vol.Optional("repeat_every"): vol.All(cv.duration, _positive),
        vol.Optional("quiet_hours"): vol.All(
            {vol.Required("from"): cv.time_of_day, vol.Required("to"): cv.time_of_day},
            _quiet_not_empty,
        ),
    }
)
_SEVERITIES = [s.value for s in Severity]


def _kind_or_severity(rule: dict[str, Any]) -> dict[str, Any]:
    if "kind" not in rule and "severity" not in rule:
        raise vol.Invalid("a match rule needs 'kind', 'severity' or both")
    return rule


_MATCH_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Optional("kind"): _kind_pattern,
            vol.Optional("severity"): vol.In(_SEVERITIES),
            vol.Required("policy"): _text,
        },
        _kind_or_severity,
    )
)


def _auto_resolve_complete(rule: dict[str, Any]) -> dict[str, Any]:
    if "after_acknowledged" not in rule and "when_event" not in rule:
        raise vol.Invalid("an auto_resolve rule needs 'after_acknowledged', 'when_event' or both")
    for needs_event in ("event_data", "location_field"):
        if needs_event in rule and "when_event" not in rule:
            raise vol.Invalid(f"'{needs_event}' only applies together with 'when_event'")
    return rule


_AUTO_RESOLVE_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("kind"): _kind_pattern,
            vol.Optional("after_acknowledged"): cv.duration,
            vol.Optional("when_event"): _text,
            vol.Optional("event_data"): {str: object},
            vol.Optional("location_field"): _text,
        },
        _auto_resolve_complete,
    )
)


def _policies_exist(section: dict[str, Any]) -> dict[str, Any]:
    policies = section["policies"]
    for index, rule in enumerate(section["match"]):
        if rule["policy"] not in policies:
            known = ", ".join(sorted(policies)) or "none are defined"
            raise vol.Invalid(
                f"no policy {cv.describe_value(rule['policy'])} under escalation → policies "
                f"(policies: {known})",
                path=["match", index, "policy"],
            )
    return section


def _empty_parts_filled(section: dict[str, Any]) -> dict[str, Any]:
    """``match:`` written with nothing below it is an empty list, and so on."""
    return {
        "policies": section.get("policies") or {},
        "match": section.get("match") or [],
        "auto_resolve": section.get("auto_resolve") or [],
    }


ESCALATION_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Optional("policies", default=dict): vol.Any(None, {_text: _POLICY_SCHEMA}),
            vol.Optional("match", default=list): vol.Any(None, cv.list_of(_MATCH_SCHEMA)),
            vol.Optional("auto_resolve", default=list): vol.Any(
                None, cv.list_of(_AUTO_RESOLVE_SCHEMA)
            ),
        },
        _empty_parts_filled,
        _policies_exist,
    )
)
"""The ``escalation:`` section."""


def _policy(validated: Mapping[str, Any]) -> EscalationPolicy:
    quiet = validated.get("quiet_hours")
    return EscalationPolicy(
        steps=tuple(
            EscalationStep(
                after=step["after"],
                notify=tuple(str(target) for target in step["notify"]),
                instruction=str(step["instruction"]),
                require_ack=step["require_ack"],
            )
            for step in validated["steps"]
        ),
        repeat_every=validated.get("repeat_every"),
        quiet_hours=QuietHours(quiet["from"], quiet["to"]) if quiet else None,
    )


def escalation_config(validated: Mapping[str, Any] | None) -> EscalationConfig:
    """Build the :class:`EscalationConfig` from the section as :data:`ESCALATION_SCHEMA`
    returned it (``None``: no section, no policies)."""
    if not validated:
        return EscalationConfig()
    return EscalationConfig(
        policies=MappingProxyType(
            {str(name): _policy(body) for name, body in validated["policies"].items()}
        ),
        match=tuple(
            PolicyMatch(
                policy=str(rule["policy"]),
                kind=str(rule["kind"]) if "kind" in rule else None,
                severity=Severity(rule["severity"]) if "severity" in rule else None,
            )
            for rule in validated["match"]
        ),
        auto_resolve=tuple(
            AutoResolveRule(
                kind=str(rule["kind"]),
                after_acknowledged=rule.get("after_acknowledged"),
                when_event=str(rule["when_event"]) if "when_event" in rule else None,
                event_data=MappingProxyType(dict(rule.get("event_data") or {})),
                location_field=str(rule["location_field"]) if "location_field" in rule else None,
            )
            for rule in validated["auto_resolve"]
        ),
    )
