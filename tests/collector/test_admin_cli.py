"""The admin CLI (`fieldpost-collector token|revoke|clients|user`) works through the same services as the API
and the dashboard, on either backend: what it creates they see, and what they refuse it refuses."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pyotp
import pytest

from collector.auth import token_hash
from collector.cli import main
from collector.services.technicians import Technicians
from collector.services.two_factor import TwoFactor
from collector.store import Store
from tests.support.clock import Clock


async def run(capsys: pytest.CaptureFixture[str], database: str, clock: Clock, *argv: str) -> tuple[int, str, str]:
    """Run the CLI on the test's database (in a thread: it runs its own event loop); returns code, out, err."""
    code = await asyncio.to_thread(main, ["--db", database, *argv], clock)
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_token_it_creates_is_listed_for_its_site_and_revoked_once(
    store: Store, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    code, out, _ = await run(capsys, database, clock, "token", "create", "--client", "Acme Tooling", "--site",
                             "HQ", "--expires", "7d", "--uses", "3")
    token = out.strip()
    assert code == 0 and token.startswith("fp_enrol_")
    async with store.read() as tx:
        [listed] = await tx.enrolment_tokens()
    assert (listed.token_hash, listed.client, listed.site) == (token_hash(token), "Acme Tooling", "HQ")
    assert (listed.expires_at, listed.uses_left) == (clock() + timedelta(days=7), 3)

    assert await run(capsys, database, clock, "clients") == (0, "Acme Tooling\n  HQ: 0 devices\n", "")
    assert await run(capsys, database, clock, "token", "revoke", token) == (0, "token revoked\n", "")
    code, _, err = await run(capsys, database, clock, "token", "revoke", token)
    assert code == 1 and "no such token, or it was revoked before" in err


async def test_a_token_expires_after_a_week_and_fifty_pcs_unless_told_otherwise(
    store: Store, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    create = ("token", "create", "--client", "Acme Tooling", "--site", "HQ")
    code, _, err = await run(capsys, database, clock, *create)
    assert code == 0 and f"The token works until {clock() + timedelta(days=7):%Y-%m-%d %H:%M} UTC, for 50 PCs." in err
    code, _, err = await run(capsys, database, clock, *create, "--expires", "never", "--uses", "unlimited")
    assert code == 0 and "The token works without expiry, for any number of PCs." in err
    async with store.read() as tx:
        made = sorted((t.expires_at is None, t.expires_at, t.uses_left) for t in await tx.enrolment_tokens())
    assert made == [(False, clock() + timedelta(days=7), 50), (True, None, None)]
    with pytest.raises(SystemExit):
        main(["token", "create", "--help"])
    assert "by default it works for 7 days and for 50 PCs" in " ".join(capsys.readouterr().out.split())


async def test_the_install_command_it_prints_is_https_to_the_public_url(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create = ("token", "create", "--client", "Acme Tooling", "--site", "HQ")
    code, _, err = await run(capsys, database, Clock(), *create)
    assert code == 0 and "fieldpost-agent install --collector https://COLLECTOR --token" in err
    monkeypatch.setenv("FIELDPOST_COLLECTOR_PUBLIC_URL", "https://fp.example.net")
    code, _, err = await run(capsys, database, Clock(), *create)
    assert code == 0 and "fieldpost-agent install --collector https://fp.example.net --token" in err
    assert "http://" not in err


async def test_it_refuses_to_revoke_a_device_it_does_not_know(
    store: Store, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run(capsys, database, Clock(), "revoke", "ag_nobody")
    assert (code, out) == (1, "")
    assert "no agent ag_nobody that is not revoked" in err


async def test_a_technician_it_adds_can_log_in_and_a_second_one_of_that_name_is_refused(
    store: Store, database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\ncorrect horse battery\n"))
    code, out, _ = await run(capsys, database, clock, "user", "add", "anna", "--password-stdin")
    assert code == 0 and "technician 'anna' created" in out
    technicians = Technicians(store, clock)
    assert (await technicians.authenticate("anna", "correct horse battery")) is not None
    assert await technicians.authenticate("anna", "wrong password!") is None
    code, _, err = await run(capsys, database, clock, "user", "add", "anna", "--password-stdin")
    assert code == 1 and "there is a technician named 'anna' already" in err


async def test_the_first_account_is_the_owner_and_later_ones_technicians_unless_a_role_is_given(
    store: Store, database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    said = []
    for name, role in (("anna", []), ("ben", []), ("carla", ["--role", "owner"]), ("dan", ["--role", "technician"])):
        monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\ncorrect horse battery\n"))
        code, out, _ = await run(capsys, database, Clock(), "user", "add", name, "--password-stdin", *role)
        assert code == 0
        said.append(out.split(":")[0])
    assert said == ["technician 'anna' created as the owner", "technician 'ben' created as a technician",
                    "technician 'carla' created as the owner", "technician 'dan' created as a technician"]
    async with store.read() as tx:
        roles = [(await tx.technician(name)).role for name in ("anna", "ben", "carla", "dan")]  # type: ignore[union-attr]
    assert roles == ["owner", "technician", "owner", "technician"]


async def test_reset_2fa_turns_a_lost_phones_two_factor_off_and_logs_the_person_out(
    store: Store, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    anna = await Technicians(store, clock).add("anna", "correct horse battery")
    two_factor = TwoFactor(store, clock)
    secret = await two_factor.start(anna)
    async with store.read() as tx:
        anna = await tx.technician("anna")  # type: ignore[assignment]
    codes = await two_factor.enable(anna, pyotp.TOTP(secret).at(clock()))
    async with store.read() as tx:
        anna = await tx.technician("anna")  # type: ignore[assignment]
    # On this backend too: a code is spent once (its step), a recovery code once.
    clock.advance(seconds=30)
    code = pyotp.TOTP(secret).at(clock())
    assert await two_factor.check(anna, code) == "code"
    assert await two_factor.check(anna, code) is None
    assert await two_factor.check(anna, codes[0]) == "recovery code"
    assert await two_factor.check(anna, codes[0]) is None
    async with store.transaction() as tx:
        await tx.add_web_session("h" * 64, anna.technician_id, "csrf", clock(), clock() + timedelta(days=1),
                                 "192.0.2.7", "Firefox")
        assert [s.address for s in await tx.web_sessions(None, clock())] == ["192.0.2.7"]

    code, out, _ = await run(capsys, database, clock, "user", "reset-2fa", "anna")
    assert code == 0 and "two-factor login of 'anna' is off" in out
    async with store.read() as tx:
        assert (await tx.technician("anna")).totp_secret is None  # type: ignore[union-attr]
        assert await tx.web_sessions(None, clock()) == []
        assert await tx.recovery_codes_left(anna.technician_id) == 0
        [entry] = await tx.audit_log(10)
    assert (entry.actor, entry.action, entry.target) == ("collector CLI", "two-factor reset", "name=anna")
    code, _, err = await run(capsys, database, clock, "user", "reset-2fa", "nobody")
    assert code == 1 and "there is no technician named 'nobody'" in err
