"""Rows of the technician accounts and what the dashboard reads besides: technicians, sessions, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

# The owner sets the collector up (accounts, tokens, channels, billing setup, contracts); a technician works
# alerts, incidents and time.
Role = Literal["owner", "technician"]
ROLES: tuple[Role, ...] = ("owner", "technician")


@dataclass(frozen=True)
class TechnicianRow:
    """A technician who can log in to the dashboard."""

    technician_id: int
    name: str
    password_hash: str
    created_at: datetime
    role: Role
    totp_secret: str | None = None  # two-factor is on when set
    totp_pending: str | None = None  # shown for enrolment, not confirmed yet
    totp_last_step: int | None = None  # the newest 30 s step a code was accepted for (no replays)


@dataclass(frozen=True)
class WebSessionRow:
    """A logged-in browser: whose it is, its CSRF token and when it ends."""

    technician_id: int
    name: str
    csrf_token: str
    expires_at: datetime
    role: Role
    token_hash: str = ""
    two_factor: bool = False
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class SessionListing:
    """A logged-in browser as its person (or the owner) sees it in the list of sessions."""

    token_hash: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    address: str
    user_agent: str


@dataclass(frozen=True)
class EnrolmentTokenRow:
    """An enrolment token as the settings page lists it (the token itself is never stored)."""

    token_hash: str
    client: str
    site: str
    created_at: datetime
    expires_at: datetime | None
    uses_left: int | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change or login attempt."""

    entry_id: int
    at: datetime
    actor: str
    address: str
    action: str
    target: str
    status: int
    detail: dict[str, Any]
