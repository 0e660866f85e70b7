"""Real loopback receivers for notification tests: an SMTP server (aiosmtpd) and a JSON webhook (aiohttp)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (until someone binds it after this returns)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class _Receiver(Generic[T]):
    """What both receivers share: the items collected on the test's loop, waiting for them, `async with`."""

    def __init__(self) -> None:
        self.port = 0
        self._items: list[T] = []
        self._changed = asyncio.Condition()

    async def _add(self, item: T) -> None:
        """Keep `item` and wake whoever waits for it."""
        async with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    # The timeout is the helper's whole point: a test reads `await smtp.wait_for(2, timeout=3)`.
    async def wait_for(self, count: int, timeout: float = 5) -> list[T]:  # noqa: ASYNC109
        """All items once at least `count` arrived; if not within `timeout`, TimeoutError naming what did."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self._items) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"expected {count} within {timeout}s, got {len(self._items)}: {self._items!r}"
            ) from None
        return list(self._items)

    async def start(self) -> None:
        """Start serving on a free loopback port."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class SmtpReceiver(_Receiver[EmailMessage]):
    """An SMTP server on 127.0.0.1 and a free port (no TLS, no auth) that keeps every message it accepts.

    aiosmtpd's Controller serves from its own thread and loop, so even a blocking sender on the
    test's loop thread cannot starve it. Use `async with SmtpReceiver() as smtp:`; messages arrive
    in `smtp.messages` as parsed `EmailMessage`s (`await smtp.wait_for(1)`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._controller: Controller | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        """The messages accepted so far, oldest first."""
        return list(self._items)

    def apprise_url(self, to: str = "technician@example.com", sender: str = "fieldpost@example.com") -> str:
        """The apprise URL that mails `to` through this server (apprise's "local relay" form, no TLS)."""
        return f"mailto://{LOOPBACK}:{self.port}?from={sender}&to={to}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd hook: parse the message and hand it to the test's loop."""
        message = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(message, EmailMessage) and self._loop is not None
        # This runs on the controller's loop; the waiters live on the test's loop.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._add(message), self._loop))
        return "250 Message accepted for delivery"

    async def start(self) -> None:
        """Start serving on a free loopback port."""
        self._loop = asyncio.get_running_loop()
        self.port = free_port()
        self._controller = Controller(self, hostname=LOOPBACK, port=self.port)
        # Controller.start blocks until its thread serves; keep the test's loop free meanwhile.
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None


@dataclass(frozen=True)
class WebhookRequest:
    """One request the webhook receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int


class WebhookReceiver(_Receiver[WebhookRequest]):
    """An HTTP server on 127.0.0.1 that keeps every JSON body it is sent and answers scripted statuses.

    `statuses` are answered in order and the last one repeats: `[500, 200]` fails once then
    accepts, `[404]` always refuses. It serves on the test's own event loop, so the sender must
    not block that loop (`collector.notify.deliver` runs apprise in a worker thread).
    """

    def __init__(self, statuses: Iterable[int] = (200,)) -> None:
        super().__init__()
        self._script = list(statuses) or [200]
        self._runner: web.AppRunner | None = None

    @property
    def requests(self) -> list[WebhookRequest]:
        """The requests received so far, oldest first."""
        return list(self._items)

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received so far, oldest first."""
        return [request.body for request in self._items]

    def apprise_url(self, path: str = "/hook") -> str:
        """The apprise json:// URL that posts to this receiver."""
        return f"json://{LOOPBACK}:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = self._script[min(len(self._items), len(self._script) - 1)]
        await self._add(WebhookRequest(request.path, dict(request.headers), body, status))
        return web.json_response({"status": status}, status=status)

    async def start(self) -> None:
        """Start serving on a free loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
