"""Login throttling: exponential backoff per account and per address, and a bound on concurrent password checks.

A few wrong passwords cost nothing; after that each failure doubles the wait before the next attempt (up to
`LONGEST_WAIT`), so guessing is slow whatever the guesser's speed. An office behind one address gets more
free failures than one account does. The failures are kept in the database, shared by every collector
process on it. Each password check runs argon2 with 64 MiB, so at most a few run at
once; a login beyond that is answered at once (503) instead of queueing memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.store import Store

FREE_PER_ACCOUNT = 5
FREE_PER_ADDRESS = 20
FIRST_WAIT = timedelta(seconds=2)
LONGEST_WAIT = timedelta(minutes=15)
# Failures this long ago are forgotten, and the backoff starts over.
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Lock:
    """Why and how long a login is refused: whose failures ("for this account", "from this address"), until when."""

    subject: str
    until: datetime


def backoff(failures: int, free: int) -> timedelta:
    """The wait after `failures` failures in a row when `free` of them cost nothing: 0, then 2 s doubling."""
    if failures <= free:
        return timedelta(0)
    return min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(failures - free - 1, 32))


class LoginThrottle:
    """Failed logins by account and by address, kept in the database: every collector process on it sees the
    same failures, so running several does not multiply a guesser's tries."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def _keys(account: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("account", account.strip().casefold()), ("address", address)

    async def lock(self, account: str, address: str, now: datetime) -> Lock | None:
        """The lock that refuses a login to `account` from `address` now, or None when it may be tried."""
        locks = []
        async with self._store.read() as tx:
            for scope, subject in self._keys(account, address):
                seen = await tx.login_failures(scope, subject)
                if seen is None or now - seen[1] > FORGET_AFTER:
                    continue
                free = FREE_PER_ACCOUNT if scope == "account" else FREE_PER_ADDRESS
                until = seen[1] + backoff(seen[0], free)
                if until > now:
                    locks.append(Lock("for this account" if scope == "account" else "from this address", until))
        return max(locks, key=lambda lock: lock.until, default=None)

    async def failed(self, account: str, address: str, now: datetime) -> None:
        """Count a wrong name, password or code against the account and the address."""
        async with self._store.transaction() as tx:
            for scope, subject in self._keys(account, address):
                await tx.add_login_failure(scope, subject, now, now - FORGET_AFTER)

    async def succeeded(self, account: str) -> None:
        """The account's owner got in: its failures are forgiven (the address's stay counted)."""
        scope, subject = self._keys(account, "")[0]
        async with self._store.transaction() as tx:
            await tx.clear_login_failures(scope, subject)


class CheckGate:
    """At most `limit` password checks at once; `enter` says False at once when all are taken."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    def enter(self) -> bool:
        """Take a slot if one is free."""
        if self.busy >= self.limit:
            return False
        self.busy += 1
        return True

    def leave(self) -> None:
        """Give a slot back."""
        self.busy -= 1


def in_words(wait: timedelta) -> str:
    """A wait as a person reads it: "45 seconds", "4 minutes", "15 minutes"."""
    seconds = max(1, int(-(-wait.total_seconds() // 1)))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"
