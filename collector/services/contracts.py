"""Contracts (versioned per client) and break/fix rate cards (per client, or everyone's)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from pydantic import Field

from collector.billing.model import BreakFixRates, Contract
from collector.services.base import Service
from collector.services.billing import ledger_of
from collector.services.errors import Conflict, Invalid
from collector.services.inputs import Input
from collector.services.views import contract_view, rates_view
from collector.store.billing_rows import ContractRow, RatesRow

FIRST_CONTRACT_NEEDS = ("start", "term_months", "workstation_rate", "server_rate")


class ContractInput(Input):
    """A new contract version; fields left out keep the previous version's."""

    effective_from: date | None = Field(None, description="default: `start` for the first version")
    effective_to: date | None = None
    start: date | None = None
    term_months: int | None = Field(None, gt=0)
    workstation_rate: Decimal | None = Field(None, ge=0, decimal_places=2)
    server_rate: Decimal | None = Field(None, ge=0, decimal_places=2)
    covers_remote: bool | None = None
    covers_onsite: bool | None = None
    covers_after_hours: bool | None = None
    included_hours: Decimal | None = Field(None, ge=0)
    onboarding_workstation_months: Decimal | None = Field(None, ge=0)
    onboarding_server_months: Decimal | None = Field(None, ge=0)
    monthly_fee: Decimal | None = Field(None, ge=0, decimal_places=2, description="flat, for the client, a month")


class RatesInput(Input):
    """A break/fix rate card version (for one client, or everyone)."""

    client: str | None = None
    effective_from: date
    effective_to: date | None = None
    hourly_rate: Decimal = Field(ge=0, decimal_places=2)
    minimum_minutes: int = Field(60, ge=0)
    increment_minutes: int = Field(15, ge=1)
    after_hours_multiplier: Decimal = Field(Decimal("1.5"), ge=1)
    onsite_minimum_minutes: int = Field(0, ge=0)
    emergency_minimum_minutes: int = Field(0, ge=0)


@dataclass(frozen=True)
class RateCard:
    """A rate card version and whose it is (None: everyone's)."""

    row: RatesRow
    client: str | None


def new_version(wanted: ContractInput, client_id: int, previous: Contract | None) -> Contract:
    """The contract version asked for: the previous version with the given fields changed."""
    given = wanted.model_dump(exclude_none=True, exclude={"effective_to"})
    if previous is None:
        missing = [f for f in FIRST_CONTRACT_NEEDS if f not in given]
        if missing:
            raise Invalid(None, f"a client's first contract needs {', '.join(missing)}")
        given.setdefault("effective_from", given["start"])
        return Contract(client=client_id, effective_to=wanted.effective_to, **given)
    if "effective_from" not in given:
        raise Invalid("effective_from", "a new contract version needs the day the change takes effect")
    return replace(previous, effective_to=wanted.effective_to, **given)


class Contracts(Service):
    """Clients' contracts and break/fix rates."""

    async def of_client(self, client: str) -> list[ContractRow]:
        """The client's contract versions, oldest first."""
        async with self.store.read() as tx:
            ledger = await ledger_of(tx, client)
            return await tx.contracts(ledger.client_id)

    async def by_client(self) -> dict[str, list[ContractRow]]:
        """Every client (in the store's order) with its contract versions, oldest first."""
        async with self.store.read() as tx:
            return {c.name: await tx.contracts(c.client_id) for c in await tx.clients() if c.billable}

    async def add(self, client: str, wanted: ContractInput) -> ContractRow:
        """A client's contract, or a new version of it (a rate change) from its `effective_from`."""
        async with self.store.transaction() as tx:
            ledger = await ledger_of(tx, client)
            previous = max(ledger.contracts, key=lambda c: c.effective_from, default=None)
            contract = new_version(wanted, ledger.client_id, previous)
            problem = ledger.settings.check_term(contract)
            if problem is not None:
                raise Invalid("term_months", problem)
            try:
                row = await tx.add_contract(ledger.client_id, contract, self.clock())
            except ValueError as exc:
                raise Conflict(str(exc)) from None
            await self.publish(tx, "contract.added", {"client": ledger.client, **contract_view(row)})
        return row

    async def rate_cards(self) -> list[RateCard]:
        """Every break/fix rate card version."""
        async with self.store.read() as tx:
            rows = await tx.rate_cards()
            clients = {c.client_id: c.name for c in await tx.clients()}
        return [RateCard(r, clients.get(r.client_id or 0)) for r in rows]

    async def add_rates(self, wanted: RatesInput) -> RateCard:
        """A rate card version from `effective_from`; earlier days keep theirs."""
        async with self.store.transaction() as tx:
            client_id = (await ledger_of(tx, wanted.client)).client_id if wanted.client else None
            try:
                row = await tx.add_rates(client_id, BreakFixRates(**wanted.model_dump(exclude={"client"})),
                                         self.clock())
            except ValueError as exc:
                raise Conflict(str(exc)) from None
            await self.publish(tx, "rates.added", rates_view(row, wanted.client))
        return RateCard(row, wanted.client)
