"""The notify models, re-exported from where they live: ``estatehub.hookspecs.notify``."""

from __future__ import annotations

from estatehub.hookspecs.notify import (
    DeliveryError,
    Notification,
    Notifier,
    NotifierContext,
    NotifierSpec,
    NotifyError,
)

__all__ = [
    "DeliveryError",
    "Notification",
    "Notifier",
    "NotifierContext",
    "NotifierSpec",
    "NotifyError",
]
