"""The built-in notifiers: generic JSON webhook, WeCom and DingTalk robots, SMTP e-mail, log.

Each one makes one attempt per :meth:`send` and raises :class:`DeliveryError` when it fails;
retries, timeouts, rate limits and the audit log belong to the channel worker. Base URLs
are options so tests (and estates behind a proxy) can point them elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

import aiohttp
import voluptuous as vol

from estatehub import config_validation as cv

from .models import DeliveryError, Notification, NotifierContext, NotifierSpec

_LOGGER = logging.getLogger(__name__)

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
# WeCom robots take at most 2048 bytes of text and 4096 of markdown (their public limits).
WECOM_TEXT_LIMIT = 2048
WECOM_MARKDOWN_LIMIT = 4096


def _http_url(value: Any) -> str:
    text = str(value)
    if not text.startswith(("http://", "https://")):
        raise vol.Invalid(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def _headline(message: Notification) -> str:
    return f"{message.title}\n{message.message}" if message.title else message.message


async def _post_json(
    context: NotifierContext, url: str, params: Mapping[str, str], body: Any, headers: Any = None
) -> Any:
    """POST ``body`` as JSON; returns the decoded JSON answer (None if it is not JSON)."""
    try:
        async with context.session.post(
            url, params=dict(params), json=body, headers=headers
        ) as reply:
            text = await reply.text()
            if reply.status >= 400:
                # A 4xx other than 408/429 will not get better by asking again.
                retryable = reply.status >= 500 or reply.status in (408, 429)
                raise DeliveryError(f"HTTP {reply.status}: {text[:200]}", retryable=retryable)
    except aiohttp.ClientError as err:
        raise DeliveryError(f"{type(err).__name__}: {err}") from None
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _check_errcode(answer: Any, vendor: str) -> None:
    # Both robots answer HTTP 200 with {"errcode": 0, "errmsg": "ok"}; anything else failed.
    if isinstance(answer, Mapping) and answer.get("errcode", 0) != 0:
        raise DeliveryError(f"{vendor} errcode {answer.get('errcode')}: {answer.get('errmsg', '')}")


# -- generic JSON webhook ---------------------------------------------------------------


class WebhookNotifier:
    """POSTs ``{"id", "target", "title", "message", "data", "at"}`` as JSON to ``url``."""

    def __init__(self, context: NotifierContext, options: Mapping[str, Any]) -> None:
        self._context = context
        self._url: str = options["url"]
        self._headers: dict[str, str] = {str(k): str(v) for k, v in options["headers"].items()}

    async def send(self, message: Notification) -> None:
        """One POST; HTTP ≥ 400 or a connection error raises :class:`DeliveryError`."""
        body = {
            "id": message.id,
            "target": message.target,
            "title": message.title,
            "message": message.message,
            "data": dict(message.data),
            "at": message.created_at.isoformat() if message.created_at else None,
        }
        await _post_json(self._context, self._url, {}, body, self._headers or None)


WEBHOOK_OPTIONS = vol.Schema(
    {vol.Required("url"): _http_url, vol.Optional("headers", default=dict): {str: str}}
)


# -- WeCom group robot --------------------------------------------------------------------


class WeComNotifier:
    """A WeCom (企业微信) group robot: ``POST …/cgi-bin/webhook/send?key=KEY``.

    ``msgtype: text`` sends ``{"msgtype": "text", "text": {"content", "mentioned_list",
    "mentioned_mobile_list"}}``; ``msgtype: markdown`` sends ``{"msgtype": "markdown",
    "markdown": {"content"}}`` with the title in bold.
    """

    def __init__(self, context: NotifierContext, options: Mapping[str, Any]) -> None:
        self._context = context
        self._key: str = options["key"]
        self._url: str = options["base_url"]
        self._msgtype: str = options["msgtype"]
        self._mentioned: list[str] = list(options["mentioned_list"])
        self._mobiles: list[str] = list(options["mentioned_mobile_list"])

    def body(self, message: Notification) -> dict[str, Any]:
        """The JSON body for one notification."""
        if self._msgtype == "markdown":
            content = (
                f"**{message.title}**\n{message.message}" if message.title else message.message
            )
            return {
                "msgtype": "markdown",
                "markdown": {"content": _cut_utf8(content, WECOM_MARKDOWN_LIMIT)},
            }
        text: dict[str, Any] = {"content": _cut_utf8(_headline(message), WECOM_TEXT_LIMIT)}
        if self._mentioned:
            text["mentioned_list"] = self._mentioned
        if self._mobiles:
            text["mentioned_mobile_list"] = self._mobiles
        return {"msgtype": "text", "text": text}

    async def send(self, message: Notification) -> None:
        """One POST; a non-zero ``errcode`` raises :class:`DeliveryError`."""
        answer = await _post_json(self._context, self._url, {"key": self._key}, self.body(message))
        _check_errcode(answer, "WeCom")


WECOM_OPTIONS = vol.Schema(
    {
        vol.Required("key"): vol.All(str, vol.Length(min=1)),
        vol.Optional("base_url", default=WECOM_URL): _http_url,
        vol.Optional("msgtype", default="text"): vol.In(["text", "markdown"]),
        vol.Optional("mentioned_list", default=list): vol.All(cv.ensure_list, [str]),
        vol.Optional("mentioned_mobile_list", default=list): vol.All(cv.ensure_list, [str]),
    }
)


# -- DingTalk robot -----------------------------------------------------------------------


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")).

    The result goes into the query string (aiohttp URL-encodes it).
    """
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkNotifier:
    """A DingTalk (钉钉) custom robot: ``POST …/robot/send?access_token=TOKEN``.

    Body ``{"msgtype": "text", "text": {"content"}, "at": {"atMobiles", "atUserIds",
    "isAtAll"}}`` or ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": …}``.
    With ``secret`` (加签), ``timestamp`` (ms, hub clock) and ``sign`` join the query.
    """

    def __init__(self, context: NotifierContext, options: Mapping[str, Any]) -> None:
        self._context = context
        self._token: str = options["access_token"]
        self._secret: str | None = options.get("secret")
        self._url: str = options["base_url"]
        self._msgtype: str = options["msgtype"]
        self._at = {
            "atMobiles": list(options["at_mobiles"]),
            "atUserIds": list(options["at_user_ids"]),
            "isAtAll": bool(options["at_all"]),
        }

    def body(self, message: Notification) -> dict[str, Any]:
        """The JSON body for one notification."""
        if self._msgtype == "markdown":
            title = message.title or message.message.split("\n", 1)[0]
            text = f"### {message.title}\n{message.message}" if message.title else message.message
            return {
                "msgtype": "markdown",
                "markdown": {"title": title, "text": text},
                "at": self._at,
            }
        return {"msgtype": "text", "text": {"content": _headline(message)}, "at": self._at}

    def params(self) -> dict[str, str]:
        """The query string: the token, and the signature when a secret is set."""
        params = {"access_token": self._token}
        if self._secret:
            timestamp = round(self._context.timestamp() * 1000)
            params["timestamp"] = str(timestamp)
            params["sign"] = dingtalk_sign(timestamp, self._secret)
        return params

    async def send(self, message: Notification) -> None:
        """One POST; a non-zero ``errcode`` raises :class:`DeliveryError`."""
        answer = await _post_json(self._context, self._url, self.params(), self.body(message))
        _check_errcode(answer, "DingTalk")


DINGTALK_OPTIONS = vol.Schema(
    {
        vol.Required("access_token"): vol.All(str, vol.Length(min=1)),
        vol.Optional("secret"): vol.All(str, vol.Length(min=1)),
        vol.Optional("base_url", default=DINGTALK_URL): _http_url,
        vol.Optional("msgtype", default="text"): vol.In(["text", "markdown"]),
        vol.Optional("at_mobiles", default=list): vol.All(cv.ensure_list, [str]),
        vol.Optional("at_user_ids", default=list): vol.All(cv.ensure_list, [str]),
        vol.Optional("at_all", default=False): bool,
    }
)


# -- SMTP e-mail --------------------------------------------------------------------------


class SmtpNotifier:
    """E-mail through an SMTP server, with the stdlib client in a worker thread.

    The blocking client runs under ``asyncio.to_thread`` with the attempt timeout as its
    socket timeout, so a dead server never holds the loop.
    """

    def __init__(self, context: NotifierContext, options: Mapping[str, Any]) -> None:
        self._context = context
        self._options = dict(options)

    def email(self, message: Notification) -> EmailMessage:
        """The e-mail for one notification."""
        mail = EmailMessage()
        mail["From"] = self._options["sender"]
        mail["To"] = ", ".join(self._options["to"])
        mail["Subject"] = message.title or message.message.split("\n", 1)[0][:78]
        mail["X-Estatehub-Notification"] = message.id
        mail.set_content(message.message)
        return mail

    async def send(self, message: Notification) -> None:
        """Send one e-mail; SMTP and socket errors raise :class:`DeliveryError`."""
        mail = self.email(message)
        try:
            await asyncio.to_thread(self._send_blocking, mail)
        except smtplib.SMTPResponseException as err:
            # 5xx answers are permanent (bad recipient, refused sender).
            raise DeliveryError(
                f"SMTP {err.smtp_code}: {err.smtp_error!r}", retryable=err.smtp_code < 500
            ) from None
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"{type(err).__name__}: {err}") from None

    def _send_blocking(self, mail: EmailMessage) -> None:
        options = self._options
        timeout = self._context.timeout
        client: smtplib.SMTP
        if options["security"] == "ssl":
            client = smtplib.SMTP_SSL(
                options["host"],
                options["port"],
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(options["host"], options["port"], timeout=timeout)
        with client:
            if options["security"] == "starttls":
                client.starttls(context=ssl.create_default_context())
            if options.get("username"):
                client.login(options["username"], options.get("password", ""))
            client.send_message(mail)


SMTP_OPTIONS = vol.Schema(
    {
        vol.Required("host"): cv.host,
        vol.Optional("port", default=25): cv.port,
        vol.Optional("security", default="none"): vol.In(["none", "starttls", "ssl"]),
        vol.Optional("username"): str,
        vol.Optional("password"): str,
        vol.Required("sender"): vol.All(str, vol.Length(min=3)),
        vol.Required("to"): vol.All(cv.ensure_list, [str], vol.Length(min=1)),
    }
)


# -- log ----------------------------------------------------------------------------------


class LogNotifier:
    """Writes the notification to the hub's log (the fallback every estate has)."""

    def __init__(self, context: NotifierContext, options: Mapping[str, Any]) -> None:
        self._channel = context.channel
        self._level = logging.getLevelName(options["level"].upper())

    async def send(self, message: Notification) -> None:
        """Log one line; never fails."""
        _LOGGER.log(
            self._level,
            "notify %s → %s: %s",
            self._channel,
            message.target,
            _headline(message).replace("\n", " | "),
        )


LOG_OPTIONS = vol.Schema(
    {vol.Optional("level", default="warning"): vol.In(["debug", "info", "warning", "error"])}
)


BUILTIN_NOTIFIERS: tuple[NotifierSpec, ...] = (
    NotifierSpec("webhook", WebhookNotifier, WEBHOOK_OPTIONS, "POST the notification as JSON"),
    NotifierSpec("wecom", WeComNotifier, WECOM_OPTIONS, "WeCom (企业微信) group robot webhook"),
    NotifierSpec("dingtalk", DingTalkNotifier, DINGTALK_OPTIONS, "DingTalk (钉钉) custom robot"),
    NotifierSpec("smtp", SmtpNotifier, SMTP_OPTIONS, "E-mail through an SMTP server"),
    NotifierSpec("log", LogNotifier, LOG_OPTIONS, "A line in the hub's log"),
)
