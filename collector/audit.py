"""The audit log: every change a person makes through the dashboard or the API, and every login attempt.

Recorded at the HTTP layer, so no route that changes something can forget it: a request from a technician's
session or with the API token that is not a read, to a route for technicians or the owner, is written with
who made it, from where, the route, the values in its path and the fields it sent (secrets left out).
Logins are recorded whether they succeed or not, each step of a two-factor login too. Rows name what they
changed in text, so they outlive it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from collector import keys
from collector.access import Access, required
from collector.api.technician import BROWSER_TECHNICIAN, Handler
from collector.web.login import CODE_PATH, client_address
from collector.web.sessions import AUDIT_NOTE, SESSION

log = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Never written to the log: credentials, tokens, URLs that may carry passwords, and large uploads.
SECRET_WORDS = ("password", "token", "secret", "csrf", "url", "logo", "key", "otp")
VALUE_MAX = 200
LOGIN_PATHS = ("/login", CODE_PATH)


def visible(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a request sent, secrets left out and long values cut."""
    shown: dict[str, Any] = {}
    for name, value in fields.items():
        if any(word in name.lower() for word in SECRET_WORDS):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        shown[name] = text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"
    return shown


async def sent_fields(request: web.Request) -> dict[str, Any]:
    """What the request sent, read from its (already read) body: a form's fields or a JSON object's."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {name: value for name, value in (await request.post()).items() if isinstance(value, str)}
    if request.content_type == "application/json" and request.body_exists:
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return dict(request.query)


def actor_of(request: web.Request) -> str | None:
    """Who is making the request: the session's technician, the API token, or None (nobody known).

    A form's CSRF field is checked by its guard, not by the session middleware: a refused form answers
    4xx and is not recorded, so the session's name is the actor of every form that was carried out.
    """
    if BROWSER_TECHNICIAN in request:
        return request[BROWSER_TECHNICIAN]  # the dashboard's own API calls (session and CSRF header)
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return "API token"  # served without a session, so the guard found the token right
    if SESSION in request:
        return request[SESSION].name
    return None


@web.middleware
async def audit_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record a person's change (or login attempt) once the answer is known; a failure to record is logged."""
    response = await handler(request)
    route = request.match_info.route
    login = request.method == "POST" and request.path in LOGIN_PATHS
    person_route = required(route) in (Access.TECHNICIAN, Access.OWNER)
    if request.method in READS or not (login or person_route):
        return response
    fields = await sent_fields(request)
    actor = fields.get("name", "") if login else actor_of(request)
    if actor is None or (not login and response.status >= 400):
        return response
    resource = route.resource
    action = f"{request.method} {resource.canonical if resource else request.path}"
    if login:
        action = "login" if response.status < 400 else "failed login"
    if AUDIT_NOTE in request:  # the handler says what happened (a code asked, a recovery code used...)
        actor, action = request[AUDIT_NOTE]
    elif request.path == CODE_PATH:
        return response  # a code sent after its login had expired: nobody is known
    target = ", ".join(f"{k}={v}" for k, v in request.match_info.items())
    try:
        async with request.app[keys.STORE].transaction() as tx:
            await tx.add_audit(request.app[keys.CLOCK](), str(actor)[:VALUE_MAX], client_address(request),
                               action, target, response.status, {} if login else visible(fields))
    except Exception:
        log.exception("could not record %s by %s in the audit log", action, actor)
    return response
