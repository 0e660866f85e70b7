"""Who may call each route: every handler registered on the app declares it, and the route table test reads it.

The guards (`collector.api.technician.technician`, `collector.web.sessions.page` and `form`) declare what
they enforce; the few routes without a guard declare themselves `public`, `agent` or `push` with `declare`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from aiohttp.web_urldispatcher import AbstractRoute, StaticResource

F = TypeVar("F", bound=Callable[..., object])
ATTRIBUTE = "required_access"


class Access(StrEnum):
    """What a request must carry to be served."""

    PUBLIC = "public"  # nothing: health, the login form, the pages' static files
    AGENT = "agent"  # an enrolment token (enrol) or the device's Ed25519 signature (reports)
    PUSH = "push token"  # a backup job's secret URL
    TECHNICIAN = "technician"  # a dashboard session (forms and API writes with its CSRF token) or the API token
    OWNER = "owner"  # as technician, and the account is the owner's (users, tokens, channels, billing setup)


def declare(access: Access) -> Callable[[F], F]:
    """Mark a handler with what it requires (the guards do this for their own handlers)."""

    def mark(handler: F) -> F:
        setattr(handler, ATTRIBUTE, access)
        return handler

    return mark


def required(route: AbstractRoute) -> Access | None:
    """What a route of the app requires, or None when its handler declares nothing."""
    if isinstance(route.resource, StaticResource):
        return Access.PUBLIC  # the stylesheets and scripts the login page needs too
    found = getattr(route.handler, ATTRIBUTE, None)
    return found if isinstance(found, Access) else None



OWNER_ONLY = ("only the collector's owner may do this (accounts, enrolment tokens, notification channels, "
              "billing settings, contracts): log in as the owner")


def permits(role: str, need: Access) -> bool:
    """True when an account of this role may call a route that requires `need` (a technician or owner one)."""
    return need is not Access.OWNER or role == "owner"
