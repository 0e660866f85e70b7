"""Base classes and bounded types of the wire schema: strict immutable models whose fields carry description and unit.

Every value has a bound the collector's databases can hold: integers within 64 bits, no NaN or infinity,
strings and lists of limited length, timestamps from 2000-01-01 to the collector's now plus a day.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo

INT64_MAX = 2**63 - 1  # the largest integer SQLite's INTEGER and PostgreSQL's bigint hold
TEXT_MAX = 4096  # characters in any string that does not state its own bound
LIST_MAX = 1024  # items in any list or mapping that does not state its own bound
# A name people read (a hostname): no control characters, which no OS allows in one either.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# A collected_at up to a day ahead of the collector is accepted: the signature window already refuses
# requests from an agent whose clock is off by more than minutes, so anything further ahead was stamped
# by a clock that has since been corrected, and can never become valid by waiting.
FUTURE_SLACK = timedelta(days=1)


def fact(description: str, unit: str | None = None, **kwargs: Any) -> Any:
    """A model field with its description and, where it has one, its unit (shown in the JSON Schema).

    A list or mapping field with an empty default and no `max_length` gets LIST_MAX.
    """
    extra = {"unit": unit} if unit else None
    if kwargs.get("default_factory") in (list, dict):
        kwargs.setdefault("max_length", LIST_MAX)
    return Field(description=description, json_schema_extra=extra, **kwargs)


def _not_after_collector_now(value: datetime, info: ValidationInfo) -> datetime:
    """Refuse a timestamp more than FUTURE_SLACK after the `now` the collector validates with."""
    now = (info.context or {}).get("now")
    if now is not None and value > now + FUTURE_SLACK:
        raise ValueError(f"is more than {FUTURE_SLACK.days} day ahead of the collector's clock ({now.isoformat()})")
    return value


def _not_below_int64(value: int) -> int:
    """Refuse an integer below the smallest 64-bit integer."""
    if value < -INT64_MAX - 1:
        raise ValueError(f"must be at least {-INT64_MAX - 1}")
    return value


def _ipv4(value: str) -> str:
    """An IPv4 address in its canonical dotted form."""
    return str(ipaddress.IPv4Address(value))


def _ip_interface(value: str) -> str:
    """An IPv4 or IPv6 address with prefix length, canonical."""
    return str(ipaddress.ip_interface(value))


def _ipv4_network(value: str) -> str:
    """An IPv4 subnet in CIDR form, host bits cleared."""
    return str(ipaddress.IPv4Network(value, strict=False))


Timestamp = Annotated[
    AwareDatetime,
    Field(ge=EARLIEST, json_schema_extra={"formatMinimum": "2000-01-01T00:00:00Z",
                                          "formatMaximum": "the collector's now + 1 day"}),
    AfterValidator(_not_after_collector_now),
]
# Only the upper bound is a constraint here: a field's own `ge` (most counts have ge=0) must not be
# overridden, and pydantic lets the annotation's bound win over the field's.
Int = Annotated[int, Field(le=INT64_MAX), AfterValidator(_not_below_int64)]
IPv4 = Annotated[str, Field(max_length=15), AfterValidator(_ipv4)]
IPv4Subnet = Annotated[str, Field(max_length=18), AfterValidator(_ipv4_network)]
IPInterface = Annotated[str, Field(max_length=64), AfterValidator(_ip_interface)]
MAC48 = Annotated[str, Field(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", max_length=17)]
# Interfaces other than Ethernet have hardware addresses of other lengths (InfiniBand 20, tunnels 16).
HardwareAddress = Annotated[str, Field(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){0,31}$", max_length=95)]


class WireModel(BaseModel):
    """Base of every wire model: immutable, strict about unknown fields, bounded, finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=TEXT_MAX)


class Signal(WireModel):
    """Facts one check collected at one moment; subclasses set `kind`."""

    kind: str
    collected_at: Timestamp = fact("When the check collected these facts", "ISO 8601 timestamp")

    def stored_json(self) -> str:
        """The signal as the collector keeps it with the device's reports (a kind may leave secrets out)."""
        return self.model_dump_json()
