"""Things as JSON-ready dicts: the shape the API answers with and the live feed carries (money as exact text)."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from collector.alerts.silence import Silence
from collector.billing.ledger import BillingSettings, Ledger
from collector.billing.model import Charge, Classification, Invoice, Part
from collector.billing.saved import saved_minutes
from collector.notify.deliver import redact
from collector.store import ChannelRow
from collector.store.billing_rows import (
    ClientTax,
    ContractRow,
    DeviceBillingRow,
    IncidentRow,
    IssuedInvoiceRow,
    NoteRow,
    RatesRow,
    TimeEntryRow,
)
from collector.store.report_rows import TimeSavedRow


def money(value: Decimal | None) -> str | None:
    """Money as exact decimal text for JSON."""
    return None if value is None else str(value)


def contract_view(row: ContractRow) -> dict[str, Any]:
    """A contract version."""
    c = row.contract
    return {
        "contract_id": row.contract_id,
        "effective_from": c.effective_from.isoformat(),
        "effective_to": c.effective_to.isoformat() if c.effective_to else None,
        "start": c.start.isoformat(),
        "term_months": c.term_months,
        "workstation_rate": money(c.workstation_rate),
        "server_rate": money(c.server_rate),
        "covers_remote": c.covers_remote,
        "covers_onsite": c.covers_onsite,
        "covers_after_hours": c.covers_after_hours,
        "included_hours": money(c.included_hours),
        "onboarding_workstation_months": money(c.onboarding_workstation_months),
        "onboarding_server_months": money(c.onboarding_server_months),
        "monthly_fee": money(c.monthly_fee),
    }


def charge_view(charge: Charge) -> dict[str, Any]:
    """A one-off charge."""
    return {"charge_id": charge.id, "day": charge.day.isoformat(), "description": charge.description,
            "amount": money(charge.amount)}


def rates_view(row: RatesRow, client: str | None) -> dict[str, Any]:
    """A rate card version (`client` None: everyone's card)."""
    r = row.rates
    return {
        "rates_id": row.rates_id,
        "client": client,
        "effective_from": r.effective_from.isoformat(),
        "effective_to": r.effective_to.isoformat() if r.effective_to else None,
        "hourly_rate": money(r.hourly_rate),
        "minimum_minutes": r.minimum_minutes,
        "increment_minutes": r.increment_minutes,
        "after_hours_multiplier": money(r.after_hours_multiplier),
        "onsite_minimum_minutes": r.onsite_minimum_minutes,
        "emergency_minimum_minutes": r.emergency_minimum_minutes,
    }


def device_billing_view(row: DeviceBillingRow, ledger: Ledger) -> dict[str, Any]:
    """A device with its class, contact and managed days."""
    device = row.model(ledger.settings.zone)
    return {
        "agent_id": row.agent_id,
        "hostname": row.hostname,
        "site": row.site,
        "device_class": row.device_class,
        "contact": row.contact,
        "active_from": device.active_from.isoformat(),
        "active_to": device.active_to.isoformat() if device.active_to else None,
    }


def incident_view(incident: IncidentRow) -> dict[str, Any]:
    """An incident as lists and the feed show it."""
    return {
        "incident_id": incident.incident_id,
        "client": incident.client,
        "title": incident.title,
        "category": incident.category,
        "emergency": incident.emergency,
        "status": incident.status,
        "alert_id": incident.alert_id,
        "alert_ids": list(incident.alert_ids),
        "opened_at": incident.opened_at.isoformat(),
        "opened_by": incident.opened_by,
        "closed_at": incident.closed_at.isoformat() if incident.closed_at else None,
        "closed_by": incident.closed_by,
        "resolution": incident.resolution,
    }


def note_view(note: NoteRow) -> dict[str, Any]:
    """A note on an incident."""
    return {"note_id": note.note_id, "incident_id": note.incident_id, "at": note.at.isoformat(),
            "by": note.author, "text": note.text}


def entry_view(entry: TimeEntryRow, classification: Classification | None = None) -> dict[str, Any]:
    """A time entry, with how it is billed once it is finished."""
    return {
        "entry_id": entry.entry_id,
        "incident_id": entry.incident_id,
        "technician": entry.technician,
        "started_at": entry.started_at.isoformat(),
        "stopped_at": entry.stopped_at.isoformat() if entry.stopped_at else None,
        "minutes": entry.minutes,
        "running": entry.running,
        "on_site": entry.on_site,
        "after_hours": entry.after_hours,
        "override": entry.override,
        "override_reason": entry.override_reason,
        "note": entry.note,
        "classification": classification,
    }


def part_view(part: Part) -> dict[str, Any]:
    """A part fitted on an incident."""
    return {
        "part_id": part.id,
        "incident_id": part.incident_id,
        "day": part.day.isoformat(),
        "description": part.description,
        "cost": money(part.cost),
        "price": money(part.price),
        "quantity": part.quantity,
    }


def billing_settings_view(settings: BillingSettings) -> dict[str, Any]:
    """The billing settings, the tax rate as exact decimal text."""
    return {field.name: str(value) if isinstance(value, Decimal) else value
            for field in fields(settings) for value in [getattr(settings, field.name)]}


def client_tax_view(tax: ClientTax) -> dict[str, Any]:
    """A client's own tax terms (a rate of None and no exemption: the default rate)."""
    return {"tax_rate": None if tax.tax_rate is None else f"{tax.tax_rate.normalize():f}", "exemption": tax.exemption}


def issued_view(row: IssuedInvoiceRow) -> dict[str, Any]:
    """An issued invoice: its body as issued, and whether and why it was voided."""
    return {**row.body, "issued_at": row.issued_at.isoformat(), "issued_by": row.issued_by,
            "voided_at": row.voided_at.isoformat() if row.voided_at else None, "voided_by": row.voided_by,
            "void_reason": row.void_reason}


def invoice_view(invoice: Invoice) -> dict[str, Any]:
    """An invoice, amounts as exact decimal text."""
    totals = invoice.totals()
    return {
        "client": invoice.client,
        "month": f"{invoice.month:%Y-%m}",
        "currency": invoice.currency,
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "quantity": f"{line.quantity.normalize():f}",
                "unit_price": money(line.unit_price),
                "amount": money(line.amount),
                "ref": line.ref,
            }
            for line in invoice.lines
        ],
        "tax": {"label": invoice.tax.label, "rate": f"{invoice.tax.charged.normalize():f}",
                "exemption": invoice.tax.exemption},
        "totals": {
            name: money(getattr(totals, name))
            for name in ("contract", "onboarding", "fee", "time", "parts", "subtotal", "tax", "total")
        },
    }


def channel_view(channel: ChannelRow) -> dict[str, Any]:
    """A notification channel (secrets in its URL hidden)."""
    return {
        "name": channel.name, "url": redact(channel.url), "min_severity": channel.min_severity,
        "clients": list(channel.clients), "kinds": list(channel.kinds),
        "quiet_hours": (f"{channel.quiet_start:%H:%M}-{channel.quiet_end:%H:%M}"
                        if channel.quiet_start and channel.quiet_end else None),
        "timezone": channel.timezone, "digest_at": channel.digest_at.strftime("%H:%M") if channel.digest_at else None,
        "last_sent_at": channel.last_sent_at.isoformat() if channel.last_sent_at else None,
        "broken": channel.broken_reason,
        "disabled": channel.disabled_at.isoformat() if channel.disabled_at else None,
    }


def silence_view(silence: Silence) -> dict[str, Any]:
    """A silence."""
    matchers = {k: v for k, v in vars(silence.matchers).items() if v is not None}
    return {
        "silence_id": silence.silence_id, "matchers": matchers, "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat() if silence.ends_at else None, "cron": silence.cron,
        "duration_minutes": silence.duration.total_seconds() / 60 if silence.duration else None,
        "timezone": silence.timezone, "comment": silence.comment, "created_by": silence.created_by,
    }


def time_saved_view(saved: TimeSavedRow, worked: int | None = None) -> dict[str, Any]:
    """The estimate of an incident's work without the preparation (with the minutes saved when `worked` is known)."""
    view = {
        "incident_id": saved.incident_id,
        "minutes_without": saved.minutes_without,
        "preparation": saved.preparation,
        "detail": saved.detail,
        "recorded_at": saved.recorded_at.isoformat(),
        "recorded_by": saved.recorded_by,
    }
    return view if worked is None else {**view, "minutes_saved": saved_minutes(saved, worked)}
