"""Hook implementations of the notify plugin: the ``notify`` subsystem and its notifiers."""

from __future__ import annotations

from collections.abc import Callable

from estatehub import hookimpl
from estatehub.hookspecs.base import SubsystemSpec

from .models import NotifierSpec
from .module import NOTIFY_SCHEMA, NotifyModule
from .notifiers import BUILTIN_NOTIFIERS


@hookimpl
def estatehub_register_subsystems(register: Callable[[SubsystemSpec], None]) -> None:
    """The ``notify`` subsystem (targets → channels, ``notify.send``, incident notices)."""
    register(
        SubsystemSpec(
            name="notify",
            factory=NotifyModule,
            config_schema=NOTIFY_SCHEMA,
            description="Notifications: webhook, WeCom, DingTalk, e-mail and log channels",
        )
    )


@hookimpl
def estatehub_register_notifiers(register: Callable[[NotifierSpec], None]) -> None:
    """The built-in notifier types: webhook, wecom, dingtalk, smtp, log."""
    for spec in BUILTIN_NOTIFIERS:
        register(spec)
