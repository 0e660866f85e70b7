"""Browser sessions: the session cookie, the CSRF token, and the guards on pages and forms.

A session is a random cookie (HttpOnly, SameSite=Lax, Secure over https) whose SHA-256 is stored with
the technician and a random CSRF token. Every form carries that token in a hidden `csrf` field, and the
pages' scripts send it as `X-CSRF-Token`; a POST without the matching token is refused (403).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import quote

from aiohttp import web

from collector import keys
from collector.access import OWNER_ONLY, Access, declare, permits
from collector.api.technician import BROWSER_ROLE, BROWSER_TECHNICIAN, SESSION_STANDS
from collector.auth import token_hash
from collector.headers import served_over_https
from collector.store.account_rows import TechnicianRow, WebSessionRow

COOKIE = "fieldpost_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME = timedelta(days=14)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATIC_PREFIX = "/static/"

OWNER_ONLY_PAGE = f"{OWNER_ONLY[:1].upper()}{OWNER_ONLY[1:]}."

SESSION = web.RequestKey("web_session", WebSessionRow)
# What the audit log records for a request a handler names itself (the login steps): who, and what, in words.
AUDIT_NOTE = web.RequestKey("audit_note", tuple)
# A session's last use is written at most this often (not one write per request).
TOUCH_EVERY = timedelta(minutes=1)
USER_AGENT_MAX = 200
# Marks the few pages and forms an owner who must still set up two-factor may use.
DURING_ENROLMENT = "allowed_during_enrolment"
ENROL_PATH = "/settings/two-factor"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def technician(request: web.Request) -> str:
    """The logged-in technician's name: the one who does the work."""
    return request[SESSION].name


def set_secret_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                      max_age: int | None = None) -> None:
    """Set a cookie scripts cannot read, sent on top-level navigation only, and only over https if we are."""
    response.set_cookie(name, value, httponly=True, samesite="Lax", secure=served_over_https(request),
                        path="/", max_age=max_age)


def tokens_match(presented: str | None, expected: str) -> bool:
    """True when a presented CSRF token equals the expected one (compared in constant time)."""
    return bool(presented) and hmac.compare_digest(str(presented).encode(), expected.encode())


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the browser's session, if its cookie names one, for the pages and the technician API.

    The API (`collector.api.technician`) accepts the session as it accepts the bearer token, but for
    anything other than a read only together with the CSRF header.
    """
    cookie = request.cookies.get(COOKIE)
    if cookie and not request.path.startswith(STATIC_PREFIX):
        now = request.app[keys.CLOCK]()
        async with request.app[keys.STORE].read() as tx:
            session = await tx.web_session(token_hash(cookie), now)
        if session is not None:
            request[SESSION] = session
            if session.last_used_at is None or now - session.last_used_at >= TOUCH_EVERY:
                async with request.app[keys.STORE].transaction() as tx:
                    await tx.touch_web_session(session.token_hash, now)
            header = request.headers.get(CSRF_HEADER)
            # Until the owner has set up two-factor, the API answers their session as a stranger.
            csrf_right = request.method in SAFE_METHODS or tokens_match(header, session.csrf_token)
            if csrf_right and not enrolment_due(request):
                request[BROWSER_TECHNICIAN] = session.name
                request[BROWSER_ROLE] = session.role
                request[SESSION_STANDS] = partial(_stands, request, session.token_hash)
    return await handler(request)


async def _stands(request: web.Request, session_hash: str) -> bool:
    """True while the session is neither revoked, ended nor expired (read afresh: another process may end it)."""
    async with request.app[keys.STORE].read() as tx:
        return await tx.web_session(session_hash, request.app[keys.CLOCK]()) is not None


def enrolment_due(request: web.Request) -> bool:
    """True when the session is the owner's, who must set up two-factor before anything else (the default)."""
    session = request[SESSION]
    return (session.role == "owner" and not session.two_factor
            and not request.app[keys.SETTINGS].owner_two_factor_optional)


def during_enrolment(handler: Handler) -> Handler:
    """Let an owner who must still set up two-factor use this page or form (the set-up itself, logging out)."""
    setattr(handler, DURING_ENROLMENT, True)
    return handler


async def start_session(request: web.Request, response: web.StreamResponse, technician: TechnicianRow,
                        now: datetime, address: str) -> None:
    """Log the browser in: store the new session (where from, which browser) and give the browser its cookie."""
    cookie = secrets.token_urlsafe(32)
    agent = request.headers.get("User-Agent", "")[:USER_AGENT_MAX]
    async with request.app[keys.STORE].transaction() as tx:
        await tx.add_web_session(token_hash(cookie), technician.technician_id, secrets.token_urlsafe(32), now,
                                 now + LIFETIME, address, agent)
    set_secret_cookie(request, response, COOKIE, cookie, int(LIFETIME.total_seconds()))


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Log the browser out: forget its session and delete its cookie."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        async with request.app[keys.STORE].transaction() as tx:
            await tx.end_web_session(token_hash(cookie))
    response.del_cookie(COOKIE, path="/")


def page(handler: Handler, need: Access = Access.TECHNICIAN) -> Handler:
    """A page: without a session, redirect to the login page (and come back here after it); 403 for a
    session whose role may not see it."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if SESSION not in request:
            login = f"/login?next={quote(request.path_qs, safe='')}"
            return web.Response(status=303, headers={"Location": login})
        if not permits(request[SESSION].role, need):
            return refusal(403, OWNER_ONLY_PAGE)
        if enrolment_due(request) and not getattr(handler, DURING_ENROLMENT, False):
            return web.Response(status=303, headers={"Location": ENROL_PATH})
        return await handler(request)

    return declare(need)(guarded)


def owner_page(handler: Handler) -> Handler:
    """A page for the owner only."""
    return page(handler, Access.OWNER)


def owner_form(handler: Handler) -> Handler:
    """A form for the owner only."""
    return form(handler, Access.OWNER)


def refusal(status: int, message: str) -> web.Response:
    """A plain refusal of a form or script request."""
    return web.Response(status=status, text=message, headers={"Cache-Control": "no-store"})


def form(handler: Handler, need: Access = Access.TECHNICIAN) -> Handler:
    """A form's POST: 401 without a session, 403 without the session's CSRF token (field or header) or for a
    session whose role may not send it."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        session = request.get(SESSION)
        if session is None:
            return refusal(401, "You are not logged in (or your session ended): log in and try again.")
        fields = await request.post()
        presented = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not isinstance(presented, str) or not tokens_match(presented, session.csrf_token):
            return refusal(403, "This form is out of date (missing or wrong CSRF token): reload and retry.")
        if not permits(session.role, need):
            return refusal(403, OWNER_ONLY_PAGE)
        if enrolment_due(request) and not getattr(handler, DURING_ENROLMENT, False):
            return refusal(403, f"Set up two-factor login first ({ENROL_PATH}): the owner's account needs it.")
        return await handler(request)

    return declare(need)(guarded)


def wants_json(request: web.Request) -> bool:
    """True for the pages' own scripts, which ask for JSON instead of a redirect."""
    return request.headers.get("Accept", "").startswith("application/json")
