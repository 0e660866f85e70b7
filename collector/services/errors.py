"""Domain errors: what a service refuses and why, for the API and the dashboard to map to HTTP in one place."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


class DomainError(Exception):
    """An operation was refused; the message says why, in words a technician can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # The message as a page shows it beside the form (without the field's name).
        self.reason = message


class NotFound(DomainError):
    """The thing the operation names does not exist."""


class Conflict(DomainError):
    """The operation clashes with the state things are in (closed already, a timer running, ...)."""


@dataclass(frozen=True)
class Problem:
    """One bad field of an input, and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Invalid(DomainError):
    """The input is wrong: one named field (`field`), or several (`problems`), or the input as a whole."""

    def __init__(self, field: str | None, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message if field else self.message
        self.problems = problems or ((Problem(field, message),) if field else ())

    @classmethod
    def of(cls, exc: ValidationError) -> Invalid:
        """The problems pydantic found, one per bad field."""
        problems = tuple(Problem(".".join(map(str, e["loc"])) or "(input)", e["msg"]) for e in exc.errors())
        return cls(None, "; ".join(map(str, problems)) or "bad input", problems)
