"""Logging in and out. The login form has its own CSRF token (a cookie and a field that must agree)."""

from __future__ import annotations

import math
import secrets
from ipaddress import ip_address
from urllib.parse import urlsplit

from aiohttp import web

from collector import keys
from collector.access import Access, declare
from collector.api.wiring import technicians
from collector.web.render import render, see_other
from collector.web.sessions import (
    CSRF_FIELD,
    SESSION,
    end_session,
    form,
    refusal,
    set_secret_cookie,
    start_session,
    tokens_match,
)
from collector.web.throttle import CheckGate, LoginThrottle, in_words

LOGIN_CSRF_COOKIE = "fieldpost_login"
THROTTLE = web.AppKey("login_throttle", LoginThrottle)
GATE = web.AppKey("login_gate", CheckGate)
# A busy collector asks the browser to come back this soon: a password check takes well under a second.
BUSY_RETRY_SECONDS = 2


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this collector only, never another site.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so `/<tab>/evil.example/`
    leaves the site: any control character, space or backslash sends the browser home instead.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if any(ch <= " " or ch in "\\\x7f" for ch in target) or urlsplit(target).netloc:
        return "/"
    return target


def client_address(request: web.Request) -> str:
    """The browser's address: the peer's, or, from a reverse proxy on this machine (Caddy, nginx), the address
    the proxy appended to X-Forwarded-For; else every login through the proxy would share one address."""
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    try:
        behind_proxy = ip_address(peer).is_loopback
    except ValueError:
        behind_proxy = False
    return forwarded if forwarded and behind_proxy else peer


def _login_form(request: web.Request, status: int = 200, error: str | None = None,
                retry_after: int | None = None) -> web.Response:
    """The login page with a fresh CSRF token in its cookie and its form."""
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, login_csrf=token, error=error,
                      next=safe_next(request.query.get("next")))
    set_secret_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@declare(Access.PUBLIC)
async def login_page(request: web.Request) -> web.Response:
    """`GET /login`: the login form (a logged-in browser goes straight on)."""
    if SESSION in request:
        return see_other(safe_next(request.query.get("next")))
    return _login_form(request)


@declare(Access.PUBLIC)
async def login(request: web.Request) -> web.Response:
    """`POST /login`: check the name and password; on success start a session and go on."""
    fields = await request.post()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not tokens_match(str(fields.get(CSRF_FIELD, "")), expected):
        return refusal(403, "This login form is out of date (missing or wrong CSRF token): reload the page.")
    name, address = str(fields.get("name", "")), client_address(request)
    now = request.app[keys.CLOCK]()
    throttle = request.app[THROTTLE]
    lock = throttle.lock(name, address, now)
    if lock is not None:
        wait = lock.until - now
        return _login_form(request, 429, f"Too many failed logins {lock.subject}: try again in "
                           f"{in_words(wait)} (after {lock.until:%H:%M:%S} UTC).",
                           retry_after=math.ceil(wait.total_seconds()))
    gate = request.app[GATE]
    if not gate.enter():
        return _login_form(request, 503, "The collector is busy checking other logins: try again in a few "
                           "seconds.", retry_after=BUSY_RETRY_SECONDS)
    try:
        technician = await technicians(request).authenticate(name, str(fields.get("password", "")))
    finally:
        gate.leave()
    if technician is None:
        throttle.failed(name, address, now)
        return _login_form(request, 401, "Wrong name or password.")
    throttle.succeeded(name)
    response = see_other(safe_next(request.query.get("next")))
    await start_session(request, response, technician, request.app[keys.CLOCK]())
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@form
async def logout(request: web.Request) -> web.Response:
    """`POST /logout`: end the session."""
    response = see_other("/login", flash="Logged out.")
    await end_session(request, response)
    return response


def setup(app: web.Application) -> None:
    """Register the login and logout routes, with the login throttle and the bound on password checks."""
    app[THROTTLE] = LoginThrottle()
    app[GATE] = CheckGate(app[keys.SETTINGS].login_concurrent_checks)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
