"""What operations take: strict pydantic models validated the same way from a JSON body, a form or the CLI."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector.rules.expectations import known_zone
from collector.services.errors import Invalid

TECHNICIAN = "technician"
# A span a technician asks for (a snooze, a silence): positive, finite, at most a year, so a date stays a date.
MAX_MINUTES = 366 * 24 * 60
Minutes = Annotated[float, Field(gt=0, le=MAX_MINUTES, allow_inf_nan=False)]
# A stored row's id: positive and within the 64-bit integers both databases keep (a larger one is refused, not a 500).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]

# A practical address check: one @, a dotted domain of letters, digits and hyphens, no characters that a mail
# URL or header would have to escape.
_ADDRESS = re.compile(
    r"[A-Za-z0-9_+'-]+(\.[A-Za-z0-9_+'-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def valid_address(text: str) -> str:
    """The e-mail address trimmed, its domain lower-cased; ValueError saying what is wrong with it."""
    address = text.strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address) or len(address.partition("@")[0]) > 64:
        raise ValueError(f"{address!r} is not an e-mail address like owner@example.com")
    local, _, domain = address.partition("@")
    return f"{local}@{domain.lower()}"


class Input(BaseModel):
    """An operation's input: unknown fields are errors, and money never arrives as a float."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats(cls, value: Any, info: Any) -> Any:
        """Refuse a JSON number with a fraction where a Decimal is wanted: send "45.50", not 45.5."""
        if isinstance(value, float) and cls.model_fields[info.field_name].annotation in (
            Decimal,
            Decimal | None,
        ):
            raise ValueError('send amounts as strings ("45.50") so no cent is lost to floating point')
        return value


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: bytes | dict[str, Any]) -> M:
    """`data` (JSON text or a form's fields) as `model`, or Invalid naming each bad field."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data or b"{}")
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid.of(exc) from None


def zone(value: str) -> str:
    """An IANA time zone name."""
    return known_zone(value)
