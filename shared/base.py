"""Base classes of the wire schema: strict immutable models whose fields carry description and unit."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def fact(description: str, unit: str | None = None, **kwargs: Any) -> Any:
    """A model field with its description and, where it has one, its unit (shown in the JSON Schema)."""
    extra = {"unit": unit} if unit else None
    return Field(description=description, json_schema_extra=extra, **kwargs)


class WireModel(BaseModel):
    """Base of every wire model: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Signal(WireModel):
    """Facts one check collected at one moment; subclasses set `kind`."""

    kind: str
    collected_at: AwareDatetime = fact("When the check collected these facts", "ISO 8601 timestamp")
