"""Hypothesis strategies for the wire schema, read off the pydantic models: any signal the schema accepts.

Every bound the models state is followed (lengths, ranges, patterns, timestamps from 2000-01-01 to the
collector's now + 1 day, IPv4 and MAC forms); strings may hold any character, NUL included. Sizes are
kept small so that an example stays quick; the bounds themselves are tested by `hostile`.
"""

from __future__ import annotations

import ipaddress
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from shared.base import EARLIEST, FUTURE_SLACK, INT64_MAX, TEXT_MAX
from shared.wire import KnownSignal

SMALL = 3  # items in a generated list
TEXT = 12  # characters in a generated string
# Fields whose validators accept a language of their own (a schedule, a time zone name).
OVERRIDES: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("BackupJob", "schedule"): st.sampled_from(["daily", "weekly", "0 22 * * 0", "*/15 * * * *"]),
    ("BackupJob", "timezone"): st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
}


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """The bounds stated by a field's metadata (ge, le, lengths, pattern, validators)."""
    found: dict[str, Any] = {"validators": set()}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update({k: v for k, v in _bounds(item.metadata).items() if k != "validators"})
            found["validators"] |= _bounds(item.metadata)["validators"]
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            if hasattr(item, name) and getattr(item, name) is not None:
                found[name] = getattr(item, name)
        func = getattr(item, "func", None)
        if func is not None:
            found["validators"].add(func.__name__)
    return found


def _moments(now: datetime) -> st.SearchStrategy[str]:
    """ISO 8601 timestamps the schema accepts, in any UTC offset."""
    zones = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    latest = now + FUTURE_SLACK - timedelta(minutes=1)
    return st.builds(
        lambda at, zone: at.astimezone(zone).isoformat(),
        st.datetimes(EARLIEST.replace(tzinfo=None), latest.replace(tzinfo=None), timezones=st.just(UTC)),
        zones,
    )


def _strategy(annotation: Any, metadata: list[Any], now: datetime) -> st.SearchStrategy[Any]:
    """JSON-ready values of one annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _strategy(args[0], [*metadata, *args[1:]], now)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_strategy(a, metadata if a is not type(None) else [], now) for a in args))
    if annotation is type(None):
        return st.none()
    if origin is typing.Literal:
        return st.sampled_from(args)
    bounds = _bounds(metadata)
    if origin is list:
        return st.lists(_strategy(args[0], [], now), min_size=bounds.get("min_length", 0),
                        max_size=min(bounds.get("max_length", SMALL), SMALL))
    if origin is dict:
        return st.dictionaries(_strategy(args[0], [], now), _strategy(args[1], [], now), max_size=SMALL)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model(annotation, now)
    if annotation is AwareDatetime or annotation is datetime:
        return _moments(now)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(bounds.get("ge", -INT64_MAX - 1), bounds.get("le", INT64_MAX))
    if annotation is float:
        return st.floats(bounds.get("ge"), bounds.get("le"), allow_nan=False, allow_infinity=False)
    if annotation is str:
        validators = bounds["validators"]
        if "_ipv4" in validators:
            return st.ip_addresses(v=4).map(str)
        if "_ipv4_network" in validators:
            return st.builds(lambda ip, bits: str(ip) + f"/{bits}", st.ip_addresses(v=4), st.integers(0, 32)) \
                .map(lambda text: str(ipaddress.IPv4Network(text, strict=False)))
        if "_ip_interface" in validators:
            return st.builds(lambda ip, bits: f"{ip}/{bits}", st.ip_addresses(v=4), st.integers(0, 32)) \
                .map(lambda text: str(ipaddress.ip_interface(text)))
        if "pattern" in bounds:
            return st.from_regex(bounds["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= bounds.get("max_length", TEXT_MAX))
        low = bounds.get("min_length", 0)
        return st.text(min_size=low, max_size=max(low, min(bounds.get("max_length", TEXT), TEXT)))
    raise TypeError(f"no strategy for {annotation!r}")


def model(cls: type[BaseModel], now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    """JSON-ready objects of a wire model: every required field, and any of the optional ones."""
    required, optional = {}, {}
    for name, info in cls.model_fields.items():
        strategy = OVERRIDES.get((cls.__name__, name))
        if strategy is None:
            strategy = _strategy(info.annotation, list(info.metadata), now)
        (required if info.is_required() else optional)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def signals(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    """Any signal the schema accepts, as JSON-ready data."""
    return st.one_of(*(model(cls, now).map(lambda d, kind=cls.model_fields["kind"].default: {**d, "kind": kind})
                       for cls in typing.get_args(KnownSignal)))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) of a JSON document's scalar strings, integers and floats."""
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in _leaves(child, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, child in enumerate(value) for leaf in _leaves(child, (*path, index))]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [(path, value)]
    return []


INFINITY = "INFINITY"  # written as 1e999 into the body (see `body_of`)


def out_of_bounds(value: Any) -> list[Any]:
    """Replacements no field of the value's type accepts."""
    if isinstance(value, str):
        spoiled = ["x" * (TEXT_MAX + 1)]
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return spoiled
        return [*spoiled, "1999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-23:59"]
    if isinstance(value, int):
        return [INT64_MAX + 1, -INT64_MAX - 2]
    return [INFINITY]


@st.composite
def hostile(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    """A signal the schema accepts with one value replaced by one out of every bound."""
    signal = draw(signals(now))
    leaves = [(path, value) for path, value in _leaves(signal) if path != ("kind",)]
    if not leaves:
        return draw(hostile(now))
    path, value = draw(st.sampled_from(leaves))
    node: Any = signal
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = draw(st.sampled_from(out_of_bounds(value)))
    return signal
