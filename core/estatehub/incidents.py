"""Incidents: raised → escalated on timers → acknowledged → resolved, every step audited.

An incident is something a person must look at: a smoke alarm, a plate a guard must review,
a plugin that failed to start. It escalates through its policy's steps on the hub clock
until someone acknowledges it. A safety incident is never dropped: its policy always
repeats its last step until acknowledged, and it survives a restart (the store has it, and
its next step is rescheduled; a step that fell due while the hub was down runs at start).

Policies can also come from the estate config (``escalation:``, see
:mod:`estatehub.escalation`): an incident raised without a policy gets the first matching
configured one. A policy's quiet hours postpone the steps of non-safety incidents to the end
of the quiet period (audited, ``incident.postponed``); a safety incident is never postponed.
A step with ``require_ack: false`` is informational: it runs at its time even after the
incident was acknowledged, and is never the step that repeats.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from .exceptions import IncidentError

if TYPE_CHECKING:
    from .bus import Event, EventBus, Unsubscribe
    from .clock import Clock, TimerHandle
    from .escalation import EscalationConfig
    from .store import Store

_LOGGER = logging.getLogger(__name__)

SAFETY_REPEAT_DEFAULT = timedelta(minutes=5)
AUTO_RESOLVER = "auto_resolve"
"""The actor recorded when an ``escalation: auto_resolve:`` rule closes an incident."""


class Severity(enum.StrEnum):
    """How bad an incident is; ``safety`` means life safety (fire, gas, a fall)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    SAFETY = "safety"


class IncidentState(enum.StrEnum):
    """Where an incident is in its life."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One step: ``after`` the incident was raised, tell ``notify`` (roles or targets).

    ``require_ack`` false makes the step informational: it runs at its time whether or not
    someone has acknowledged (until the incident is resolved) and is never repeated.
    """

    after: timedelta
    notify: tuple[str, ...]
    instruction: str = ""
    require_ack: bool = True


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily period (estate time) in which non-safety escalation steps wait.

    ``start`` later than ``end`` wraps midnight (``22:00`` → ``07:00``); ``end`` itself is
    outside the period.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise IncidentError(f"quiet hours from {self.start} to {self.end} are empty")

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls inside the quiet period."""
        of_day = moment.timetz().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= of_day < self.end
        return of_day >= self.start or of_day < self.end

    def end_after(self, moment: datetime) -> datetime:
        """The first end of the quiet period after ``moment``, in ``moment``'s time zone."""
        end = datetime.combine(moment.date(), self.end, tzinfo=moment.tzinfo)
        return end if end > moment else end + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """The steps an unacknowledged incident goes through, in order of ``after``.

    After the last step, ``repeat_every`` (if set) repeats the last step until someone
    acknowledges. Safety incidents always repeat (default every 5 minutes).
    """

    steps: tuple[EscalationStep, ...] = ()
    repeat_every: timedelta | None = None
    quiet_hours: QuietHours | None = None

    @property
    def repeated_step(self) -> int | None:
        """Index of the step that repeats: the last one needing an acknowledgement (the
        last step when none does), or None without steps."""
        for index in range(len(self.steps) - 1, -1, -1):
            if self.steps[index].require_ack:
                return index
        return len(self.steps) - 1 if self.steps else None

    def __post_init__(self) -> None:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters) or any(a < timedelta(0) for a in afters):
            raise IncidentError(f"escalation steps must be in order of 'after' and ≥ 0: {afters}")
        if self.repeat_every is not None and self.repeat_every <= timedelta(0):
            raise IncidentError("repeat_every must be positive")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (seconds for durations)."""
        return {
            "steps": [
                {
                    "after": s.after.total_seconds(),
                    "notify": list(s.notify),
                    "instruction": s.instruction,
                    "require_ack": s.require_ack,
                }
                for s in self.steps
            ],
            "repeat_every": self.repeat_every.total_seconds() if self.repeat_every else None,
            "quiet_hours": [
                self.quiet_hours.start.isoformat(),
                self.quiet_hours.end.isoformat(),
            ]
            if self.quiet_hours
            else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationPolicy:
        """Inverse of :meth:`as_dict`."""
        steps = tuple(
            EscalationStep(
                timedelta(seconds=s["after"]),
                tuple(s["notify"]),
                s.get("instruction", ""),
                s.get("require_ack", True),
            )
            for s in data.get("steps", ())
        )
        repeat = data.get("repeat_every")
        quiet = data.get("quiet_hours")
        return cls(
            steps,
            timedelta(seconds=repeat) if repeat else None,
            QuietHours(time.fromisoformat(quiet[0]), time.fromisoformat(quiet[1]))
            if quiet
            else None,
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as it stands; replaced (never mutated) on every step.

    ``level`` is the index of the last escalation step carried out (-1 before any);
    ``repeats`` counts repeats of the last step; ``occurrences`` counts how often the same
    condition was reported again while the incident was open.
    """

    id: str
    kind: str
    severity: Severity
    location: str
    summary: str
    source: str
    raised_at: datetime
    state: IncidentState = IncidentState.RAISED
    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    level: int = -1
    repeats: int = 0
    occurrences: int = 1
    next_step_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    dedupe_key: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Not yet resolved."""
        return self.state is not IncidentState.RESOLVED

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, used by the store and the API."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity.value,
            "location": self.location,
            "summary": self.summary,
            "source": self.source,
            "raised_at": self.raised_at.isoformat(),
            "state": self.state.value,
            "policy": self.policy.as_dict(),
            "level": self.level,
            "repeats": self.repeats,
            "occurrences": self.occurrences,
            "next_step_at": _iso(self.next_step_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": _iso(self.acknowledged_at),
            "resolved_by": self.resolved_by,
            "resolved_at": _iso(self.resolved_at),
            "dedupe_key": self.dedupe_key,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """Inverse of :meth:`as_dict`."""
        return cls(
            id=data["id"],
            kind=data["kind"],
            severity=Severity(data["severity"]),
            location=data["location"],
            summary=data["summary"],
            source=data["source"],
            raised_at=datetime.fromisoformat(data["raised_at"]),
            state=IncidentState(data["state"]),
            policy=EscalationPolicy.from_dict(data["policy"]),
            level=data["level"],
            repeats=data["repeats"],
            occurrences=data.get("occurrences", 1),
            next_step_at=_from_iso(data.get("next_step_at")),
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=_from_iso(data.get("acknowledged_at")),
            resolved_by=data.get("resolved_by"),
            resolved_at=_from_iso(data.get("resolved_at")),
            dedupe_key=data.get("dedupe_key"),
            data=data.get("data", {}),
        )

    def event_data(self) -> dict[str, Any]:
        """The fields every ``incident.*`` event carries."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity.value,
            "location": self.location,
            "summary": self.summary,
        }


class IncidentManager:
    """Raises, escalates, acknowledges and resolves incidents; owns their timers.

    :param escalation: the estate's ``escalation:`` section: policies for incidents raised
        without one, and auto-resolution rules. ``None``: callers bring their own policies.
    """

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        store: Store,
        escalation: EscalationConfig | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._store = store
        self._escalation = escalation
        self._incidents: dict[str, Incident] = {}
        self._open_by_key: dict[str, str] = {}
        self._timers: dict[str, TimerHandle] = {}
        self._resolve_timers: dict[str, TimerHandle] = {}
        self._unsubscribes: list[Unsubscribe] = []
        if escalation is not None:
            for event_type in escalation.resolving_event_types():
                self._unsubscribes.append(bus.listen(event_type, self._resolve_on_event))

    # -- queries -----------------------------------------------------------------------

    @property
    def escalation(self) -> EscalationConfig | None:
        """The configured policies and auto-resolution rules, if any."""
        return self._escalation

    def get(self, incident_id: str) -> Incident:
        """The incident; raises :class:`IncidentError` for an unknown id."""
        try:
            return self._incidents[incident_id]
        except KeyError:
            raise IncidentError(f"no incident {incident_id!r}") from None

    def open_incidents(self) -> list[Incident]:
        """Every incident not yet resolved, oldest first."""
        return [i for i in self._incidents.values() if i.is_open]

    def all(self) -> list[Incident]:
        """Every incident this hub knows (open ones and those resolved while it ran)."""
        return list(self._incidents.values())

    def find_open(self, dedupe_key: str) -> Incident | None:
        """The open incident raised with this dedupe key, if any."""
        incident_id = self._open_by_key.get(dedupe_key)
        return self._incidents.get(incident_id) if incident_id else None

    # -- lifecycle ---------------------------------------------------------------------

    def restore(self) -> int:
        """Load open incidents from the store and re-arm their escalation; returns how many."""
        count = 0
        for row in self._store.load_incidents((IncidentState.RAISED, IncidentState.ACKNOWLEDGED)):
            incident = Incident.from_dict(row)
            self._incidents[incident.id] = incident
            if incident.dedupe_key:
                self._open_by_key[incident.dedupe_key] = incident.id
            self._arm(incident)
            if incident.state is IncidentState.ACKNOWLEDGED:
                self._arm_resolve_after_ack(incident)
            count += 1
        return count

    def shutdown(self) -> None:
        """Cancel every timer and listener (the store keeps the incidents and their next step)."""
        for timer in (*self._timers.values(), *self._resolve_timers.values()):
            timer.cancel()
        self._timers.clear()
        self._resolve_timers.clear()
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()

    # -- operations --------------------------------------------------------------------

    def raise_incident(
        self,
        kind: str,
        severity: Severity,
        location: str,
        summary: str,
        *,
        source: str,
        policy: EscalationPolicy | None = None,
        dedupe_key: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Incident:
        """Raise an incident, or count a repeat of the open one with the same dedupe key.

        Without a ``policy`` the first configured policy matching ``kind`` and ``severity``
        applies (none: no steps). The policy's steps with ``after`` zero run at once and
        are reported in the ``incident.raised`` event (unless quiet hours postpone them);
        later steps fire ``incident.escalated`` on timers.
        """
        if dedupe_key is not None:
            existing = self.find_open(dedupe_key)
            if existing is not None:
                updated = replace(existing, occurrences=existing.occurrences + 1)
                self._save(
                    updated, "incident.repeated", source, {"occurrences": updated.occurrences}
                )
                self._bus.fire(
                    "incident.repeated",
                    {**updated.event_data(), "occurrences": updated.occurrences},
                )
                return updated
        if policy is None and self._escalation is not None:
            policy = self._escalation.policy_for(kind, severity)
        policy = policy or EscalationPolicy()
        if severity is Severity.SAFETY and policy.repeat_every is None:
            # Life safety is never dropped: keep repeating the last step until acknowledged.
            policy = replace(policy, repeat_every=SAFETY_REPEAT_DEFAULT)
        now = self._clock.now()
        sequence = self._store.next_sequence(f"incident:{now:%Y%m%d}")
        incident = Incident(
            id=f"INC-{now:%Y%m%d}-{sequence:04d}",
            kind=kind,
            severity=severity,
            location=location,
            summary=summary,
            source=source,
            raised_at=now,
            policy=policy,
            dedupe_key=dedupe_key,
            data=dict(data or {}),
        )
        notify: list[str] = []
        instruction = ""
        if not self._is_quiet(incident, now):
            while incident.level + 1 < len(policy.steps) and policy.steps[
                incident.level + 1
            ].after <= timedelta(0):
                step = policy.steps[incident.level + 1]
                notify.extend(step.notify)
                instruction = step.instruction or instruction
                incident = replace(incident, level=incident.level + 1)
        incident, postponed_from = self._schedule(incident, now)
        if dedupe_key is not None:
            self._open_by_key[dedupe_key] = incident.id
        self._save(incident, "incident.raised", source, {"notify": notify, "summary": summary})
        _LOGGER.warning("incident %s raised: %s at %s (%s)", incident.id, kind, location, severity)
        self._bus.fire(
            "incident.raised",
            {**incident.event_data(), "notify": notify, "instruction": instruction},
        )
        self._report_postponed(incident, postponed_from)
        self._arm(incident)
        return incident

    def acknowledge(self, incident_id: str, by: str, note: str = "") -> Incident:
        """Record that ``by`` has seen the incident and when; stops its escalation
        (informational steps, ``require_ack: false``, still run at their time)."""
        incident = self.get(incident_id)
        if incident.state is not IncidentState.RAISED:
            raise IncidentError(f"incident {incident_id} is already {incident.state.value}")
        self._disarm(incident_id)
        now = self._clock.now()
        updated = replace(
            incident,
            state=IncidentState.ACKNOWLEDGED,
            acknowledged_by=by,
            acknowledged_at=now,
        )
        updated, postponed_from = self._schedule(updated, now)
        self._save(updated, "incident.acknowledged", by, {"note": note})
        self._bus.fire("incident.acknowledged", {**updated.event_data(), "by": by})
        self._report_postponed(updated, postponed_from)
        self._arm(updated)
        self._arm_resolve_after_ack(updated)
        return updated

    def resolve(self, incident_id: str, by: str, note: str = "") -> Incident:
        """Close the incident (acknowledging it too if nobody had)."""
        incident = self.get(incident_id)
        if incident.state is IncidentState.RESOLVED:
            raise IncidentError(f"incident {incident_id} is already resolved")
        self._disarm(incident_id)
        resolve_timer = self._resolve_timers.pop(incident_id, None)
        if resolve_timer is not None:
            resolve_timer.cancel()
        now = self._clock.now()
        updated = replace(
            incident,
            state=IncidentState.RESOLVED,
            acknowledged_by=incident.acknowledged_by or by,
            acknowledged_at=incident.acknowledged_at or now,
            resolved_by=by,
            resolved_at=now,
            next_step_at=None,
        )
        if incident.dedupe_key is not None:
            self._open_by_key.pop(incident.dedupe_key, None)
        self._save(updated, "incident.resolved", by, {"note": note})
        self._bus.fire("incident.resolved", {**updated.event_data(), "by": by})
        return updated

    # -- escalation --------------------------------------------------------------------

    def _next_step(self, incident: Incident, last_step_at: datetime) -> tuple[int, datetime] | None:
        """The step to run next and when (before quiet hours), or None."""
        policy = incident.policy
        steps = policy.steps
        if incident.state is IncidentState.ACKNOWLEDGED:
            for index in range(incident.level + 1, len(steps)):
                if not steps[index].require_ack:
                    return index, incident.raised_at + steps[index].after
            return None
        if incident.state is not IncidentState.RAISED:
            return None
        if incident.level + 1 < len(steps):
            return incident.level + 1, incident.raised_at + steps[incident.level + 1].after
        repeated = policy.repeated_step
        if policy.repeat_every is not None and repeated is not None:
            return repeated, last_step_at + policy.repeat_every
        return None

    def _is_quiet(self, incident: Incident, moment: datetime) -> bool:
        quiet = incident.policy.quiet_hours
        # Quiet hours never hold back life safety.
        return (
            quiet is not None
            and incident.severity is not Severity.SAFETY
            and quiet.contains(moment)
        )

    def _schedule(
        self, incident: Incident, last_step_at: datetime
    ) -> tuple[Incident, datetime | None]:
        """Set ``next_step_at``; also returns when the step was due if quiet hours moved it."""
        upcoming = self._next_step(incident, last_step_at)
        if upcoming is None:
            return replace(incident, next_step_at=None), None
        due = max(upcoming[1], self._clock.now())
        quiet = incident.policy.quiet_hours
        if quiet is not None and self._is_quiet(incident, due):
            return replace(incident, next_step_at=quiet.end_after(due)), due
        return replace(incident, next_step_at=due), None

    def _report_postponed(self, incident: Incident, due: datetime | None) -> None:
        if due is None or incident.next_step_at is None:
            return
        upcoming = self._next_step(incident, due)
        level = upcoming[0] if upcoming is not None else incident.level
        detail = {
            "level": level,
            "due_at": due.isoformat(),
            "until": incident.next_step_at.isoformat(),
        }
        self._store.audit(self._clock.now(), "hub", "incident.postponed", incident.id, detail)
        _LOGGER.info(
            "incident %s: step %d postponed by quiet hours until %s",
            incident.id,
            level,
            detail["until"],
        )
        self._bus.fire("incident.postponed", {**incident.event_data(), **detail})

    def _arm(self, incident: Incident) -> None:
        self._disarm(incident.id)
        if incident.next_step_at is None:
            return
        incident_id = incident.id
        self._timers[incident_id] = self._clock.call_at(
            incident.next_step_at, lambda: self._escalate(incident_id)
        )

    def _disarm(self, incident_id: str) -> None:
        timer = self._timers.pop(incident_id, None)
        if timer is not None:
            timer.cancel()

    def _escalate(self, incident_id: str) -> None:
        self._timers.pop(incident_id, None)
        incident = self._incidents.get(incident_id)
        if incident is None or not incident.is_open:
            return
        upcoming = self._next_step(incident, self._clock.now())
        if upcoming is None:
            return
        index = upcoming[0]
        repeat = index <= incident.level
        if repeat:
            incident = replace(incident, repeats=incident.repeats + 1)
        else:
            incident = replace(incident, level=index)
        step = incident.policy.steps[index]
        now = self._clock.now()
        incident, postponed_from = self._schedule(incident, now)
        detail = {"level": index, "repeat": incident.repeats, "notify": list(step.notify)}
        self._save(incident, "incident.escalated", "hub", detail)
        _LOGGER.warning(
            "incident %s escalated to %s%s",
            incident.id,
            ", ".join(step.notify),
            f" (repeat {incident.repeats})" if repeat else "",
        )
        self._bus.fire(
            "incident.escalated",
            {
                **incident.event_data(),
                "level": index,
                "repeat": incident.repeats,
                "notify": list(step.notify),
                "instruction": step.instruction,
            },
        )
        self._report_postponed(incident, postponed_from)
        self._arm(incident)

    # -- automatic resolution ------------------------------------------------------------

    def _arm_resolve_after_ack(self, incident: Incident) -> None:
        if self._escalation is None or incident.acknowledged_at is None:
            return
        rule = self._escalation.resolve_after_acknowledged(incident.kind)
        if rule is None or rule.after_acknowledged is None:
            return
        incident_id = incident.id
        self._resolve_timers[incident_id] = self._clock.call_at(
            incident.acknowledged_at + rule.after_acknowledged,
            lambda: self._auto_resolve(incident_id, rule.describe()),
        )

    def _auto_resolve(self, incident_id: str, reason: str) -> None:
        self._resolve_timers.pop(incident_id, None)
        incident = self._incidents.get(incident_id)
        if incident is not None and incident.is_open:
            self.resolve(incident_id, by=AUTO_RESOLVER, note=reason)

    def _resolve_on_event(self, event: Event) -> None:
        if self._escalation is None:
            return
        for rule in self._escalation.rules_for_event(event.type, event.data):
            for incident in self.open_incidents():
                if not rule.applies_to(incident.kind, incident.location, event.data):
                    continue
                if incident.severity is Severity.SAFETY and incident.state is IncidentState.RAISED:
                    # A safety incident is closed only after a person has acknowledged it.
                    continue
                self.resolve(incident.id, by=AUTO_RESOLVER, note=rule.describe())

    def _save(self, incident: Incident, action: str, actor: str, detail: Mapping[str, Any]) -> None:
        self._incidents[incident.id] = incident
        self._store.save_incident(
            incident.id, incident.state.value, incident.raised_at, incident.as_dict()
        )
        self._store.audit(self._clock.now(), actor, action, incident.id, detail)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
