"""Logging in and out: the password, then, with two-factor on, the code (`/login/code`). Each login form has its
own CSRF token (a cookie and a field that must agree)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from ipaddress import ip_address
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from collector import keys
from collector.access import Access, declare
from collector.api.wiring import technicians
from collector.auth import token_hash
from collector.services.two_factor import TwoFactor
from collector.store.account_rows import TechnicianRow
from collector.web.render import render, see_other
from collector.web.sessions import (
    AUDIT_NOTE,
    CSRF_FIELD,
    SESSION,
    during_enrolment,
    end_session,
    form,
    refusal,
    set_secret_cookie,
    start_session,
    tokens_match,
)
from collector.web.throttle import CheckGate, LoginThrottle, in_words

LOGIN_CSRF_COOKIE = "fieldpost_login"
# A login whose password was right and whose code is owed: its cookie, its page, how long it waits.
CHALLENGE_COOKIE = "fieldpost_login_code"
CODE_PATH = "/login/code"
CODE_WITHIN = timedelta(minutes=5)
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


def _form_page(template: str, request: web.Request, status: int = 200, error: str | None = None,
               retry_after: int | None = None) -> web.Response:
    """A login step's page (password, or code) with a fresh CSRF token in its cookie and its form."""
    token = secrets.token_urlsafe(32)
    response = render(request, template, status=status, login_csrf=token, error=error,
                      next=safe_next(request.query.get("next")))
    set_secret_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


_login_form = partial(_form_page, "login.html")
_code_form = partial(_form_page, "login_code.html")


@declare(Access.PUBLIC)
async def login_page(request: web.Request) -> web.Response:
    """`GET /login`: the login form (a logged-in browser goes straight on)."""
    if SESSION in request:
        return see_other(safe_next(request.query.get("next")))
    return _login_form(request)


async def _locked(request: web.Request, name: str, address: str, form: Callable[..., web.Response]
                  ) -> web.Response | None:
    """The answer to a login attempt the throttle refuses now (wrong passwords or codes before), else None."""
    now = request.app[keys.CLOCK]()
    lock = await request.app[THROTTLE].lock(name, address, now)
    if lock is None:
        return None
    wait = lock.until - now
    return form(request, 429, f"Too many failed logins {lock.subject}: try again in {in_words(wait)} "
                f"(after {lock.until:%H:%M:%S} UTC).", retry_after=math.ceil(wait.total_seconds()))


def _login_csrf_right(request: web.Request, fields: MultiDictProxy[str | bytes | FileField]) -> bool:
    """True when the login form's CSRF field matches its cookie."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected) and tokens_match(str(fields.get(CSRF_FIELD, "")), expected)


async def _logged_in(request: web.Request, technician: TechnicianRow, address: str) -> web.Response:
    """The account is proven: forgive its failures, start the session, go on."""
    await request.app[THROTTLE].succeeded(technician.name)
    response = see_other(safe_next(request.query.get("next")))
    await start_session(request, response, technician, request.app[keys.CLOCK](), address)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.del_cookie(CHALLENGE_COOKIE, path="/")
    return response


@declare(Access.PUBLIC)
async def login(request: web.Request) -> web.Response:
    """`POST /login`: check the name and password; on success start a session and go on, or, with two-factor
    on, ask for the code."""
    fields = await request.post()
    if not _login_csrf_right(request, fields):
        return refusal(403, "This login form is out of date (missing or wrong CSRF token): reload the page.")
    name, address = str(fields.get("name", "")), client_address(request)
    locked = await _locked(request, name, address, _login_form)
    if locked is not None:
        return locked
    gate = request.app[GATE]
    if not gate.enter():
        return _login_form(request, 503, "The collector is busy checking other logins: try again in a few "
                           "seconds.", retry_after=BUSY_RETRY_SECONDS)
    try:
        technician = await technicians(request).authenticate(name, str(fields.get("password", "")))
    finally:
        gate.leave()
    now = request.app[keys.CLOCK]()
    if technician is None:
        await request.app[THROTTLE].failed(name, address, now)
        return _login_form(request, 401, "Wrong name or password.")
    if technician.totp_secret is None:
        return await _logged_in(request, technician, address)
    request[AUDIT_NOTE] = (technician.name, "password right, code asked")
    challenge = secrets.token_urlsafe(32)
    async with request.app[keys.STORE].transaction() as tx:
        await tx.add_login_challenge(token_hash(challenge), technician.technician_id, now, now + CODE_WITHIN)
    response = see_other(f"{CODE_PATH}?next={quote(safe_next(request.query.get('next')), safe='')}")
    set_secret_cookie(request, response, CHALLENGE_COOKIE, challenge, int(CODE_WITHIN.total_seconds()))
    return response


async def _challenged(request: web.Request) -> TechnicianRow | None:
    """The account whose password this browser gave and whose code is still owed, or None."""
    cookie = request.cookies.get(CHALLENGE_COOKIE)
    if not cookie:
        return None
    async with request.app[keys.STORE].read() as tx:
        return await tx.login_challenge(token_hash(cookie), request.app[keys.CLOCK]())


def _start_over(request: web.Request) -> web.Response:
    """Back to the password: the code was asked too long ago (or never)."""
    next_path = quote(safe_next(request.query.get("next")), safe="")
    return see_other(f"/login?next={next_path}", flash="The login took too long: enter the password again.")


@declare(Access.PUBLIC)
async def code_page(request: web.Request) -> web.Response:
    """`GET /login/code`: the second step of a login with two-factor on."""
    if await _challenged(request) is None:
        return _start_over(request)
    return _code_form(request)


@declare(Access.PUBLIC)
async def code(request: web.Request) -> web.Response:
    """`POST /login/code`: check the authenticator's code or a recovery code; on success start the session."""
    fields = await request.post()
    if not _login_csrf_right(request, fields):
        return refusal(403, "This login form is out of date (missing or wrong CSRF token): reload the page.")
    technician = await _challenged(request)
    if technician is None:
        return _start_over(request)
    address = client_address(request)
    locked = await _locked(request, technician.name, address, _code_form)
    if locked is not None:
        return locked
    used = await TwoFactor(request.app[keys.STORE], request.app[keys.CLOCK]).check(technician, str(fields.get(
        "otp", "")))
    if used is None:
        request[AUDIT_NOTE] = (technician.name, "failed login (wrong or reused code)")
        await request.app[THROTTLE].failed(technician.name, address, request.app[keys.CLOCK]())
        return _code_form(request, 401, "Wrong code, or one used already: enter the code the app shows now.")
    request[AUDIT_NOTE] = (technician.name, "login" if used == "code" else "login with a recovery code")
    async with request.app[keys.STORE].transaction() as tx:
        await tx.end_login_challenge(token_hash(request.cookies[CHALLENGE_COOKIE]))
    return await _logged_in(request, technician, address)


@form
@during_enrolment
async def logout(request: web.Request) -> web.Response:
    """`POST /logout`: end the session."""
    response = see_other("/login", flash="Logged out.")
    await end_session(request, response)
    return response


def setup(app: web.Application) -> None:
    """Register the login and logout routes, with the login throttle and the bound on password checks."""
    app[THROTTLE] = LoginThrottle(app[keys.STORE])
    app[GATE] = CheckGate(app[keys.SETTINGS].login_concurrent_checks)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get(CODE_PATH, code_page)
    app.router.add_post(CODE_PATH, code)
    app.router.add_post("/logout", logout)
