"""Two-factor login for dashboard accounts: TOTP codes (RFC 6238, any authenticator app) and recovery codes.

A person enrols by scanning a QR code of a new secret and typing a code from it; only then is two-factor on,
and ten recovery codes are shown, once (only their SHA-256 is kept; each works once). A code is accepted for
the current 30 s step or the one either side (phones' clocks drift), and never twice: the newest step spent
is kept with the account, so a code seen over someone's shoulder is worthless.
"""

from __future__ import annotations

import hmac
import secrets

import pyotp
import segno

from collector.auth import token_hash
from collector.services.base import Service
from collector.services.errors import Invalid, NotFound
from collector.store.account_rows import TechnicianRow

ISSUER = "fieldpost"
RECOVERY_CODES = 10
# Steps either side of now a code may be from: a phone a little fast or slow still logs in.
DRIFT_STEPS = 1
# Recovery codes: 50 random bits each, in letters and digits nobody confuses (no 0/o, 1/l).
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def qr_svg(technician: str, secret: str) -> str:
    """The enrolment QR code (an otpauth:// URI) as an inline SVG."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=technician, issuer_name=ISSUER)
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")


def _normal(code: str) -> str:
    """A typed code without the blanks and dashes people add."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _recovery_code() -> str:
    """A recovery code people can copy: ten letters and digits in two groups."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


class TwoFactor(Service):
    """Enrol, check, turn off and reset a person's two-factor login."""

    def _step_matching(self, secret: str, code: str) -> int | None:
        """The 30 s step near now whose code this is, or None."""
        totp = pyotp.TOTP(secret)
        now = totp.timecode(self.clock())
        typed = _normal(code)
        for step in (now, now - DRIFT_STEPS, now + DRIFT_STEPS):
            if hmac.compare_digest(totp.generate_otp(step), typed):
                return step
        return None

    async def start(self, technician: TechnicianRow) -> str:
        """Make a new secret for the person to scan; two-factor stays as it is until a code confirms it."""
        secret = pyotp.random_base32()
        async with self.store.transaction() as tx:
            await tx.set_totp_pending(technician.technician_id, secret)
        return secret

    async def enable(self, technician: TechnicianRow, code: str) -> list[str]:
        """Turn two-factor on once a code from the new secret is right; returns the recovery codes (shown once)."""
        secret = technician.totp_pending
        if secret is None:
            raise Invalid(None, "start the set-up first: there is no new secret to confirm")
        step = self._step_matching(secret, code)
        if step is None:
            raise Invalid("code", "that is not the code the app shows now: check the phone's clock and try again")
        codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
        async with self.store.transaction() as tx:
            await tx.enable_totp(technician.technician_id, secret, step, [token_hash(_normal(c)) for c in codes])
        return codes

    async def check(self, technician: TechnicianRow, code: str) -> str | None:
        """Spend a code at login: "code" for a TOTP code, "recovery code" for a recovery code, None when neither
        is right (a TOTP code already used is refused as well)."""
        if technician.totp_secret is None or not code.strip():
            return None
        step = self._step_matching(technician.totp_secret, code)
        async with self.store.transaction() as tx:
            if step is not None:
                return "code" if await tx.accept_totp_step(technician.technician_id, step) else None
            spent = await tx.use_recovery_code(technician.technician_id, token_hash(_normal(code)), self.clock())
        return "recovery code" if spent else None

    async def disable(self, technician: TechnicianRow) -> None:
        """Turn two-factor off for this person (their recovery codes go with it)."""
        async with self.store.transaction() as tx:
            await tx.disable_totp(technician.technician_id)

    async def reset(self, name: str, by: str) -> bool:
        """The owner's way back in for a person who lost their phone: two-factor off and every browser of theirs
        logged out, recorded in the audit log as done `by` someone; False when it was off already."""
        async with self.store.transaction() as tx:
            technician = await tx.technician(name)
            if technician is None:
                raise NotFound(f"there is no technician named {name!r}")
            was_on = await tx.disable_totp(technician.technician_id)
            for session in await tx.web_sessions(technician.technician_id, self.clock()):
                await tx.end_web_session(session.token_hash)
            await tx.add_audit(self.clock(), by, "local", "two-factor reset", f"name={name}", 0, {})
        return was_on

    async def recovery_codes_left(self, technician: TechnicianRow) -> int:
        """How many recovery codes the person has left."""
        async with self.store.read() as tx:
            return await tx.recovery_codes_left(technician.technician_id)
