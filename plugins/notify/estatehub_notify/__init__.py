"""estatehub-notify: the ``notify`` subsystem and its notifiers (webhook, WeCom, DingTalk, SMTP, log)."""

from .models import DeliveryError, Notification, NotifierContext, NotifierSpec, NotifyError

__all__ = ["DeliveryError", "Notification", "NotifierContext", "NotifierSpec", "NotifyError"]
