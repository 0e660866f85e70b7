"""Rendering pages: the Jinja2 environment, the navigation, one-time messages and the template filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from collector import keys
from collector.api.errors import status_of
from collector.services.errors import DomainError, Invalid
from collector.web.sessions import SESSION

FLASH_COOKIE = "fieldpost_flash"
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@dataclass(frozen=True)
class NavItem:
    """A navigation bar entry: a label, the path it opens, and the paths below which it is current."""

    label: str
    path: str
    below: tuple[str, ...] = ()

    def current(self, path: str) -> bool:
        """True when a page at `path` belongs to this entry."""
        return path == self.path or any(path.startswith(prefix) for prefix in self.below)


NAV = web.AppKey("web_nav", list[NavItem])
TEMPLATES = web.AppKey("web_templates", Environment)


def when(moment: datetime | str | None) -> Markup:
    """A moment (or its ISO text) as a <time> element in UTC; the page's script shows it in local time."""
    if not moment:
        return Markup("—")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return Markup('<time datetime="{}">{} UTC</time>').format(moment.isoformat(), f"{moment:%Y-%m-%d %H:%M}")


def ago(moment: datetime | None, now: datetime) -> str:
    """How long ago a moment was, in the largest unit that fits ("3 min ago", "2 d ago")."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit} ago"
    return "just now"


def size(value: float | None) -> str:
    """A byte count in binary units (`12.3 GiB`)."""
    if value is None:
        return "—"
    amount, unit = float(value), UNITS[0]
    for unit in UNITS:
        if abs(amount) < 1024 or unit == UNITS[-1]:
            break
        amount /= 1024
    return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"


def duration(seconds: float) -> str:
    """A span of seconds in the unit that reads best (`1.0 s`, `4.5 min`, `2.3 h`)."""
    for unit, length in (("h", 3600), ("min", 60)):
        if abs(seconds) >= length:
            return f"{seconds / length:.1f} {unit}"
    return f"{seconds:.1f} s"


# A fact named with a unit suffix: its label drops the suffix and its value carries the unit.
UNIT_SUFFIXES: dict[str, Callable[[float], str]] = {
    "_bytes": size, "_seconds": duration, "_c": lambda v: f"{v:g} °C", "_percent": lambda v: f"{v:.1f} %",
    "_ms": lambda v: f"{v:.1f} ms", "_days": lambda v: f"{v:g} days",
}


def label(key: str) -> str:
    """A snake_case fact name as words, without its unit ("free_bytes" -> "Free", "temperature_c" -> "Temperature")."""
    stem = next((key[: -len(suffix)] for suffix in UNIT_SUFFIXES if key.endswith(suffix) and len(key) > len(suffix)),
                key)
    words = stem.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def fact_value(key: str, value: Any) -> str:
    """A fact's value as a person reads it: the unit its name carries, floats rounded, yes/no, — for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        unit = next((show for suffix, show in UNIT_SUFFIXES.items() if key.endswith(suffix)), None)
        if unit is not None:
            return unit(value)
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value)


def status(view: dict[str, Any]) -> str:
    """Where an alert stands, in words (the feed's script says the same for live alerts)."""
    if view["state"] == "resolved":
        return "resolved"
    words = [f"acknowledged by {view['acknowledged_by']}" if view["acknowledged_by"] else "open"]
    if view["snoozed_until"]:
        words.append(f"snoozed until {datetime.fromisoformat(view['snoozed_until']):%Y-%m-%d %H:%M} UTC")
    if view["flapping"]:
        words.append("flapping")
    return ", ".join(words)


def environment() -> Environment:
    """The template environment: autoescaped HTML, undefined names are errors."""
    env = Environment(loader=PackageLoader("collector.web", "templates"),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.globals.update(when=when, status=status)
    env.filters.update(ago=ago, size=size, label=label, fact_value=fact_value)
    return env


def set_flash(response: web.StreamResponse, message: str) -> None:
    """Show a message once, on the next page this browser opens."""
    response.set_cookie(FLASH_COOKIE, quote(message), httponly=True, samesite="Lax", path="/")


def see_other(location: str, flash: str | None = None) -> web.Response:
    """Redirect after a form (303: the browser follows with GET), optionally with a message."""
    response = web.Response(status=303, headers={"Location": location})
    if flash:
        set_flash(response, flash)
    return response


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page from a template, with the session, navigation and any message waiting for this browser."""
    session = request.get(SESSION)
    flash = unquote(request.cookies.get(FLASH_COOKIE, "")) or None
    html = request.app[TEMPLATES].get_template(template).render(
        request=request, static=lambda name: request.app.router["static"].url_for(filename=name),
        session=session, csrf=session.csrf_token if session else "", nav=request.app[NAV],
        flash=flash, now=request.app[keys.CLOCK](), **context,
    )
    response = web.Response(text=html, content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})
    if flash:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


# Everything the pages load is served by the collector itself; no inline script can run.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def reasons(exc: DomainError) -> list[str]:
    """Why an operation was refused, one line per bad field, as a page lists it."""
    if isinstance(exc, Invalid) and exc.field is None and exc.problems:
        return [str(problem) for problem in exc.problems]
    return [exc.reason]


def refused(exc: DomainError, back: str, done: str = "done") -> web.Response:
    """A refused form: back to its page, with a message saying why ("Not done: ...")."""
    return see_other(back, flash=f"Not {done}: {'; '.join(reasons(exc))}")


def refused_page(request: web.Request, exc: DomainError) -> web.Response:
    """A refused page: the page that says why, with the status that says why."""
    text = "; ".join(reasons(exc))
    return render(request, "missing.html", status=status_of(exc), what=f"{text[:1].upper()}{text[1:]}.")
