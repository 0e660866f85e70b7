"""Send one message to one apprise URL: did it arrive, and if not, can trying again help."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import apprise
from apprise import AppriseAttachment, AppriseResult, AppriseResultStatus, NotifyBase, NotifyFormat
from apprise.attachment.memory import AttachMemory

# Apprise's HTTP plugins report a refused request only in their log line, always in the shape
# "Failed to send <service> notification: <reason>, error=<status>." (json://, ntfy://, pover://,
# tgram://, slack://, discord://, workflows://, ...): the status is nowhere else in the result.
_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")

# Client errors that say "not now" rather than "never": request timeout and rate limiting.
_RETRYABLE_4XX = frozenset({408, 429})

# Query parameters apprise shows verbatim even in its privacy URL: "+Name" is an HTTP header
# (often Authorization) and "-name" a query parameter (often a token) of the webhook plugins.
_VERBATIM_SECRET_PREFIXES = ("+", "-")

_MASK = "****"

# Seconds past apprise's own deadline before the event loop stops waiting for a delivery thread.
BACKSTOP = 1.0


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery: arrived, or not and why; `permanent` means retrying cannot help."""

    ok: bool
    permanent: bool
    error: str | None


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (a mail's attachment), held in memory."""

    name: str
    content: bytes
    mimetype: str


async def deliver(
    url: str, title: str, body: str, html: str = "", timeout: float = 30,  # noqa: ASYNC109
    attachments: Sequence[Attachment] = (),
) -> Delivery:
    """Send `title`/`body` (plain text) to the one apprise `url`, giving up after `timeout` seconds; a service
    that prefers HTML (mail) gets `html` where given, and apprise writes the plain-text part from it.
    `attachments` go with it where the service takes files (mail does)."""
    # apprise blocks; its own deadline ends the wait, as a thread cannot be cancelled. Should that deadline
    # fail (a plugin that ignores it, a thread wait that never wakes), the event loop's stops waiting anyway.
    try:
        return await asyncio.wait_for(asyncio.to_thread(_deliver, url, title, body, html, timeout, attachments),
                                      timeout + BACKSTOP)
    except TimeoutError:
        return Delivery(ok=False, permanent=False, error=f"the delivery did not finish within {timeout:g} s")


def validate_url(url: str) -> str | None:
    """Why apprise would not accept `url` as a channel, or None when it would."""
    return _load(url)[1]


def redact(url: str) -> str:
    """`url` for display: secrets masked (apprise's privacy mode), only the parameters the URL gave."""
    plugin, _ = _load(url)
    if plugin is None:
        # Nothing tells which parts of an unreadable URL are secret: show only what kind it is.
        scheme = url.strip().partition("://")[0] if "://" in url else ""
        return f"{scheme}://{_MASK}" if scheme else _MASK
    masked = urlsplit(plugin.url(privacy=True))
    given = {unquote(key).lower() for key, _ in _raw_query_pairs(urlsplit(url.strip()).query)}
    kept = [
        f"{key}={_MASK if unquote(key).startswith(_VERBATIM_SECRET_PREFIXES) else value}"
        for key, value in _raw_query_pairs(masked.query)
        if unquote(key).lower() in given
    ]
    return masked._replace(query="&".join(kept)).geturl()


def _raw_query_pairs(query: str) -> list[tuple[str, str]]:
    """The still-encoded key/value pairs of a query (a "+" stays: it is apprise's header prefix)."""
    return [(key, value) for key, _, value in (part.partition("=") for part in query.split("&") if part)]


def _load(url: str) -> tuple[NotifyBase | None, str | None]:
    """The apprise plugin for `url`, or why there is none (our own words: apprise only logs its reasons)."""
    text = url.strip()
    schema, separator, _ = text.partition("://")
    if not separator or not schema:
        return None, "not an apprise URL: expected schema://..., e.g. mailto://, ntfy:// or json://"
    schema = schema.lower()
    plugins = apprise.NotificationManager()
    service = plugins[schema].service_name if schema in plugins else f"{schema}://"
    try:
        # Also takes a service's own https:// webhook URL (Discord, Slack, ...) where apprise knows its shape.
        plugin = apprise.Apprise.instantiate(text, suppress_exceptions=False)
    except Exception as exc:  # the plugin's constructor rejecting a value is the only text there is
        return None, f"invalid {service} URL: {str(exc).strip()}"
    if plugin is not None:
        return plugin, None
    if schema not in plugins:
        hint = (
            " (a plain webhook is json://, jsons://, form:// or xml://)"
            if schema in ("http", "https")
            else ""
        )
        return None, f"apprise does not support {schema}:// URLs{hint}"
    if not plugins[schema].enabled:
        return None, f"{schema}:// ({service}) is not available on this system"
    return None, f"apprise cannot read this {service} URL: check it against the service's URL syntax"


def _deliver(
    url: str, title: str, body: str, html: str, timeout: float, attachments: Sequence[Attachment]
) -> Delivery:
    """Blocking delivery through a fresh Apprise object (nothing shared with other threads)."""
    plugin, error = _load(url)
    if plugin is None:
        return Delivery(ok=False, permanent=True, error=error)
    sender = apprise.Apprise()
    sender.add(plugin)
    # A plugin names the formats it takes, the one it prefers first.
    formats = plugin.notify_format if isinstance(plugin.notify_format, tuple) else (plugin.notify_format,)
    if html and formats[0] == NotifyFormat.HTML:
        body, body_format = html, NotifyFormat.HTML
    else:
        body_format = NotifyFormat.TEXT
    attach = AppriseAttachment()
    for file in attachments:
        attach.add(AttachMemory(content=file.content, name=file.name, mimetype=file.mimetype))
    with sender.notify(body=body, title=title, body_format=body_format, timeout=timeout,
                       attach=attach if attachments else None) as result:
        return _outcome(result)


def _outcome(result: AppriseResult) -> Delivery:
    """Classify apprise's result of notifying one service.

    The logs come from the result (apprise records them per service and per call, kept apart by
    context variables), not from `apprise.LogCapture`, which hooks the process-wide logger and so
    would mix in the errors of deliveries running at the same time in other threads.
    """
    if result:
        return Delivery(ok=True, permanent=False, error=None)
    error = "; ".join(entry.message for entry in result.logs()) or f"apprise reported {result.status.name}"
    if result.status == AppriseResultStatus.TIMEOUT:
        return Delivery(ok=False, permanent=False, error=error)
    if len(result) == 0:
        # No service was even tried: apprise could not use the message itself.
        return Delivery(ok=False, permanent=True, error=error)
    statuses = [int(status) for status in _HTTP_STATUS.findall(error)]
    refused = bool(statuses) and 400 <= statuses[-1] < 500 and statuses[-1] not in _RETRYABLE_4XX
    # Anything else (no connection, read timeout, 5xx, an SMTP error) may well pass on a later try.
    return Delivery(ok=False, permanent=refused, error=error)
