"""A person's own account settings: two-factor login (enrol with a QR code, recovery codes, turn off) and the
browsers logged in as them (the owner sees everyone's), each revocable at once."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector import keys
from collector.services.errors import DomainError
from collector.services.two_factor import TwoFactor, qr_svg
from collector.store.account_rows import TechnicianRow
from collector.web.render import reasons, render, see_other
from collector.web.sessions import (
    AUDIT_NOTE,
    COOKIE,
    ENROL_PATH,
    SESSION,
    during_enrolment,
    enrolment_due,
    form,
    page,
)

SESSIONS_PATH = "/settings/sessions"


def _two_factor(request: web.Request) -> TwoFactor:
    """The two-factor service on this app's store and clock."""
    return TwoFactor(request.app[keys.STORE], request.app[keys.CLOCK])


async def _me(request: web.Request) -> TechnicianRow:
    """The logged-in person's account as stored now."""
    async with request.app[keys.STORE].read() as tx:
        technician = await tx.technician(request[SESSION].name)
    assert technician is not None  # a session's account exists: sessions go when it does
    return technician


def _required(request: web.Request) -> bool:
    """True when this person may not turn two-factor off (the owner, unless the settings relax it)."""
    return request[SESSION].role == "owner" and not request.app[keys.SETTINGS].owner_two_factor_optional


async def _show(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    """The two-factor page: set-up (with the QR code of the new secret), or on, with what is left."""
    me = await _me(request)
    qr = qr_svg(me.name, me.totp_pending) if me.totp_pending and me.totp_secret is None else None
    left = await _two_factor(request).recovery_codes_left(me) if me.totp_secret else 0
    return render(request, "two_factor.html", status=status, **{
        "errors": [], "codes": None, "on": me.totp_secret is not None, "pending": me.totp_pending if qr else None,
        "qr": qr, "left": left, "required": _required(request), "due": enrolment_due(request), **context})


@during_enrolment
async def two_factor_page(request: web.Request) -> web.Response:
    """`GET /settings/two-factor`: whether two-factor is on, and the way to set it up or turn it off."""
    return await _show(request)


@during_enrolment
async def start_two_factor(request: web.Request) -> web.Response:
    """`POST /settings/two-factor/setup`: a new secret to scan (two-factor stays as it is until confirmed)."""
    await _two_factor(request).start(await _me(request))
    return see_other(ENROL_PATH)


@during_enrolment
async def enable_two_factor(request: web.Request) -> web.Response:
    """`POST /settings/two-factor/enable`: a code from the new secret turns two-factor on; the recovery codes are
    shown on this answer only."""
    code = str((await request.post()).get("otp", ""))
    try:
        codes = await _two_factor(request).enable(await _me(request), code)
    except DomainError as exc:
        return await _show(request, 422, errors=reasons(exc))
    request[AUDIT_NOTE] = (request[SESSION].name, "two-factor turned on")
    return await _show(request, codes=codes, due=False)


async def disable_two_factor(request: web.Request) -> web.Response:
    """`POST /settings/two-factor/disable`: turn two-factor off (not for the owner, unless the settings allow)."""
    if _required(request):
        return await _show(request, 403, errors=["The owner's account must keep two-factor login on "
                                                 "(the collector's setting owner_two_factor_optional allows it)."])
    await _two_factor(request).disable(await _me(request))
    request[AUDIT_NOTE] = (request[SESSION].name, "two-factor turned off")
    return see_other(ENROL_PATH, flash="Two-factor login is off.")


async def sessions_page(request: web.Request) -> web.Response:
    """`GET /settings/sessions`: the browsers logged in as this person (the owner: as anyone)."""
    session = request[SESSION]
    mine = None if session.role == "owner" else session.technician_id
    async with request.app[keys.STORE].read() as tx:
        listed = await tx.web_sessions(mine, request.app[keys.CLOCK]())
    return render(request, "web_sessions.html", sessions=listed, current=session.token_hash)


async def revoke_session(request: web.Request) -> web.Response:
    """`POST /settings/sessions/{session_hash}/revoke`: log a browser out now (one's own; the owner: anyone's)."""
    session = request[SESSION]
    target = request.match_info["session_hash"]
    only = None if session.role == "owner" else session.technician_id
    async with request.app[keys.STORE].transaction() as tx:
        ended = await tx.end_web_session(target, only)
    if not ended:
        return see_other(SESSIONS_PATH, flash="Not done: there is no such session of yours (logged out already?).")
    if target == session.token_hash:
        response = see_other("/login", flash="This browser is logged out.")
        response.del_cookie(COOKIE, path="/")
        return response
    return see_other(SESSIONS_PATH, flash="That browser is logged out.")


def setup(app: web.Application) -> None:
    """Register the two-factor and sessions pages."""
    app.router.add_get(ENROL_PATH, page(two_factor_page))
    app.router.add_post(f"{ENROL_PATH}/setup", form(start_two_factor))
    app.router.add_post(f"{ENROL_PATH}/enable", form(enable_two_factor))
    app.router.add_post(f"{ENROL_PATH}/disable", form(disable_two_factor))
    app.router.add_get(SESSIONS_PATH, page(sessions_page))
    app.router.add_post(SESSIONS_PATH + r"/{session_hash:[0-9a-f]{64}}/revoke", form(revoke_session))
