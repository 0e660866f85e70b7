"""Security headers on every response the collector sends: pages, API, static files, errors and the feed."""

from __future__ import annotations

from aiohttp import web

from collector import keys

# An HTML answer that sets no policy of its own (the API's value report, an error page) may show its inline
# styles and embedded images, and nothing else: no script, no request, no frame around it.
LOCKED_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "form-action 'none'; base-uri 'none'")
# A year; without includeSubDomains, since the collector may share its domain with other hosts.
HSTS = "max-age=31536000"


def served_over_https(request: web.Request) -> bool:
    """True when the browser talks https to us or to the reverse proxy in front (X-Forwarded-Proto)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Set the headers no response goes without (an `on_response_prepare` hook; a handler's own win)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    public_url = request.app[keys.SETTINGS].public_url or ""
    if served_over_https(request) or public_url.lower().startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if response.content_type == "text/html":
        headers.setdefault("Content-Security-Policy", LOCKED_CSP)


def setup(app: web.Application) -> None:
    """Add the security headers to every response of the app."""
    app.on_response_prepare.append(add_security_headers)
