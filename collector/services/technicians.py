"""Technician accounts: argon2id password hashes, created from the collector's CLI, checked at login."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from collector.services.base import Service
from collector.services.errors import Conflict, Invalid, NotFound
from collector.store.account_rows import Role, TechnicianRow

MIN_PASSWORD = 10
MAX_NAME = 64

_hasher = PasswordHasher()


def check_password(password: str) -> None:
    """Refuse a password too short to be one."""
    if len(password) < MIN_PASSWORD:
        raise Invalid("password", f"the password must have at least {MIN_PASSWORD} characters")


def check_name(name: str) -> None:
    """Refuse an empty, overlong or blank-padded name."""
    if not name or len(name) > MAX_NAME or name != name.strip():
        raise Invalid("name", f"the name must be 1 to {MAX_NAME} characters without leading or trailing blanks")


@cache
def _decoy_hash() -> str:
    """A hash to verify against for an unknown name, so both answers take as long."""
    return _hasher.hash("not a password anyone has")


def _verify(password_hash: str, password: str) -> bool:
    """True when the password matches the hash (blocking: argon2 is slow on purpose)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Technicians(Service):
    """Technician accounts: add, change a password, log in."""

    async def add(self, name: str, password: str, role: Role | None = None) -> TechnicianRow:
        """Create an account that can log in to the dashboard (role None: the first is the owner)."""
        check_name(name)
        check_password(password)
        hashed = await asyncio.to_thread(_hasher.hash, password)
        async with self.store.transaction() as tx:
            added = await tx.add_technician(name, hashed, self.clock(), role)
        if added is None:
            raise Conflict(f"there is a technician named {name!r} already")
        return added

    async def change_password(self, name: str, password: str) -> None:
        """Give a technician a new password and log out every browser of theirs."""
        check_password(password)
        hashed = await asyncio.to_thread(_hasher.hash, password)
        async with self.store.transaction() as tx:
            technician = await tx.technician(name)
            if technician is None:
                raise NotFound(f"there is no technician named {name!r}")
            await tx.set_password(technician.technician_id, hashed, end_sessions=True)

    async def authenticate(self, name: str, password: str) -> TechnicianRow | None:
        """The technician with this name and password, or None; upgrades an outdated hash on the way."""
        async with self.store.read() as tx:
            technician = await tx.technician(name)
        if technician is None:
            await asyncio.to_thread(lambda: _verify(_decoy_hash(), password))
            return None
        if not await asyncio.to_thread(_verify, technician.password_hash, password):
            return None
        if _hasher.check_needs_rehash(technician.password_hash):
            hashed = await asyncio.to_thread(_hasher.hash, password)
            async with self.store.transaction() as tx:
                await tx.set_password(technician.technician_id, hashed, end_sessions=False)
        return technician
