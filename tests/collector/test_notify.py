"""Delivery through apprise to real loopback receivers, failure classes, URL checks, message rendering."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from collector.notify.deliver import Delivery, deliver, redact, validate_url
from collector.notify.render import MAX_LINES, MAX_TITLE, NotifyItem, render_digest, render_group, render_test
from tests.notify_receivers import LOOPBACK, SmtpReceiver, WebhookReceiver, free_port

AT = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)


def item(
    alert_id: int = 42,
    event: str = "opened",
    severity: str = "critical",
    hostname: str = "RECEPTION-01",
    summary: str = "disk sda failing: 8 reallocated sectors",
    at: datetime = AT,
) -> NotifyItem:
    """An alert event of Acme Tooling's main office."""
    return NotifyItem(alert_id, event, severity, "Acme Tooling", "Main office", hostname, summary, at)


# --- deliver --------------------------------------------------------------------------------------


async def test_it_mails_title_and_body_through_a_real_smtp_server() -> None:
    async with SmtpReceiver() as smtp:
        outcome = await deliver(
            smtp.apprise_url(to="tech@example.com"), "CRITICAL Acme", "line one\nline two"
        )
        [message] = await smtp.wait_for(1)
    assert outcome == Delivery(ok=True, permanent=False, error=None)
    assert message["Subject"] == "CRITICAL Acme"
    assert message["To"] == "tech@example.com"
    assert message.get_body(("plain",)).get_content().splitlines() == ["line one", "line two"]


async def test_it_posts_title_and_message_to_a_json_webhook() -> None:
    async with WebhookReceiver() as hook:
        outcome = await deliver(hook.apprise_url("/fieldpost"), "CRITICAL Acme", "line one\nline two")
        [request] = await hook.wait_for(1)
    assert outcome.ok
    assert request.path == "/fieldpost"
    assert (request.body["title"], request.body["message"]) == ("CRITICAL Acme", "line one\nline two")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (410, True),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
async def test_it_calls_refusals_permanent_and_overload_transient(status: int, permanent: bool) -> None:
    async with WebhookReceiver([status]) as hook:
        outcome = await deliver(hook.apprise_url(), "t", "b")
    assert (outcome.ok, outcome.permanent) == (False, permanent)
    assert outcome.error is not None and f"error={status}" in outcome.error


async def test_it_succeeds_on_the_retry_after_a_server_error() -> None:
    async with WebhookReceiver([500, 200]) as hook:
        first = await deliver(hook.apprise_url(), "t", "b")
        second = await deliver(hook.apprise_url(), "t", "b")
        requests = await hook.wait_for(2)
    assert (first.ok, first.permanent, second.ok) == (False, False, True)
    assert [request.status for request in requests] == [500, 200]


@pytest.mark.parametrize("scheme", ["json", "mailto"])
async def test_it_calls_a_refused_connection_transient(scheme: str) -> None:
    url = {
        "json": f"json://{LOOPBACK}:{free_port()}/hook",
        "mailto": f"mailto://{LOOPBACK}:{free_port()}?from=fieldpost@example.com&to=tech@example.com",
    }[scheme]
    outcome = await deliver(url, "t", "b")
    assert (outcome.ok, outcome.permanent) == (False, False)
    assert outcome.error and "onnection error" in outcome.error


async def test_it_gives_up_after_the_timeout_as_transient() -> None:
    # A listening socket that never accepts: the connection opens, the answer never comes.
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        outcome = await deliver(f"json://{LOOPBACK}:{silent.getsockname()[1]}/hook", "t", "b", timeout=0.3)
    assert (outcome.ok, outcome.permanent) == (False, False)
    assert outcome.error and "did not finish" in outcome.error


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("nosuch://host/x", "does not support nosuch://"),
        ("https://example.com/hook", "does not support https://"),
        ("no url at all", "not an apprise URL"),
        ("json://", "cannot read this JSON URL"),
        ("mailto://", "invalid E-Mail URL"),
    ],
)
async def test_it_calls_an_unusable_url_permanent(url: str, reason: str) -> None:
    outcome = await deliver(url, "t", "b")
    assert (outcome.ok, outcome.permanent) == (False, True)
    assert outcome.error and reason in outcome.error


async def test_it_keeps_the_errors_of_parallel_deliveries_apart() -> None:
    async with WebhookReceiver([404]) as refusing, WebhookReceiver([503]) as overloaded:
        outcomes = await asyncio.gather(
            *(deliver(hook.apprise_url(), "t", "b") for hook in [refusing, overloaded] * 8)
        )
    for outcome, expected in zip(outcomes, [404, 503] * 8, strict=True):
        assert outcome.error is not None
        assert outcome.error.count("error=") == 1 and f"error={expected}" in outcome.error
        assert outcome.permanent == (expected == 404)


# --- validate_url and redact ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mailtos://user:secret@example.com?smtp=smtp.example.com&from=alerts@example.com",
        "ntfys://ntfy.sh/fieldpost-alerts",
        "pover://userkey1234@apptoken5678",
        "tgram://123456789:AAHsecretToken/987654321",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "jsons://hooks.example.com/fieldpost",
        "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    ],
)
def test_it_accepts_urls_apprise_can_send_to(url: str) -> None:
    assert validate_url(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "not an apprise URL"),
        ("mailto:tech@example.com", "not an apprise URL"),
        ("nosuch://host", "apprise does not support nosuch:// URLs"),
        ("https://example.com/hook", "a plain webhook is json://"),
        ("tgram://123/", "cannot read this Telegram URL"),
        ("mailto://", "invalid E-Mail URL: Invalid ~From~ email"),
    ],
)
def test_it_says_why_a_url_is_not_accepted(url: str, reason: str) -> None:
    message = validate_url(url)
    assert message is not None and reason in message


@pytest.mark.parametrize(
    ("url", "secrets", "shown"),
    [
        (
            "mailtos://tech:hunter22@example.com?from=alerts@example.com",
            ["hunter22"],
            "mailtos://tech:****@example.com",
        ),
        ("tgram://123456789:AAHsecretToken/987654321", ["AAHsecretToken"], "tgram://"),
        ("pover://userkey1234@apptoken5678", ["userkey1234", "apptoken5678"], "pover://"),
        ("ntfys://ntfy.sh/alerts?token=tk_secret123", ["tk_secret123"], "ntfy.sh/alerts"),
        (
            "json://hooks.example.com/in?+Authorization=Bearer%20abc123&-key=qs_secret",
            ["abc123", "qs_secret"],
            "json://hooks.example.com/in?",
        ),
        ("nosuch://user:pw@host/token", ["pw", "host", "token"], "nosuch://"),
    ],
)
def test_it_redacts_secrets_for_display(url: str, secrets: list[str], shown: str) -> None:
    display = redact(url)
    assert shown in display
    assert not [secret for secret in secrets if secret in display]


def test_it_shows_only_the_parameters_the_url_gave() -> None:
    assert redact("json://hooks.example.com/in") == "json://hooks.example.com/in"


# --- render ---------------------------------------------------------------------------------------


def test_it_titles_a_single_alert_by_severity_place_and_summary() -> None:
    message = render_group([item()])
    assert message.title == "CRITICAL Acme Tooling / RECEPTION-01: disk sda failing: 8 reallocated sectors"
    assert message.text.splitlines() == [
        "disk sda failing: 8 reallocated sectors",
        "Client: Acme Tooling",
        "Site: Main office",
        "Device: RECEPTION-01",
        "Severity: critical",
        "Opened: 2026-11-23 03:12 UTC",
        "Alert: #42",
        "Acknowledge: fieldpost alerts ack 42",
    ]


def test_a_single_alert_says_what_to_do_and_links_to_the_dashboard_in_text_and_html() -> None:
    linked = replace(item(), link="https://rmm.example.com/alerts/42", action="replace the disk <soon>")
    message = render_group([linked])
    assert "What to do: replace the disk <soon>" in message.text.splitlines()
    assert "Open: https://rmm.example.com/alerts/42" in message.text.splitlines()
    assert '<a href="https://rmm.example.com/alerts/42">' in message.html
    assert "replace the disk &lt;soon&gt;" in message.html, "escaped"


@pytest.mark.parametrize(
    ("event", "severity", "hostname", "title_start"),
    [
        ("opened", "warning", "PC-07", "WARNING Acme Tooling / PC-07: "),
        ("changed", "critical", "PC-07", "Now CRITICAL Acme Tooling / PC-07: "),
        ("reminder", "critical", "PC-07", "Still CRITICAL Acme Tooling / PC-07: "),
        ("released", "warning", "PC-07", "WARNING Acme Tooling / PC-07: "),
        ("resolved", "critical", "PC-07", "RESOLVED Acme Tooling / PC-07: "),
        ("opened", "critical", "", "CRITICAL Acme Tooling / Main office: "),
    ],
)
def test_it_titles_each_event_for_what_happened(
    event: str, severity: str, hostname: str, title_start: str
) -> None:
    message = render_group([item(event=event, severity=severity, hostname=hostname)])
    assert message.title.startswith(title_start)
    assert ("Acknowledge:" in message.text) == (event != "resolved")
    assert ("Device:" in message.text) == bool(hostname)


def test_it_sums_up_a_burst_with_criticals_first_and_resolutions_last() -> None:
    message = render_group(
        [
            item(1, "resolved", "warning", "PC-01", "backup ok again", AT),
            item(2, "opened", "warning", "PC-02", "reboot pending for 9 days", AT),
            item(3, "opened", "critical", "PC-03", "disk failing", AT + timedelta(minutes=1)),
            item(4, "reminder", "critical", "PC-04", "disk failing", AT),
        ]
    )
    assert message.title == "[fieldpost] 4 alerts: 2 critical, 1 warning, 1 resolved"
    assert message.text.splitlines() == [
        "Acme Tooling / Main office / PC-04: Still CRITICAL disk failing (#4, 2026-11-23 03:12 UTC)",
        "Acme Tooling / Main office / PC-03: CRITICAL disk failing (#3, 2026-11-23 03:13 UTC)",
        "Acme Tooling / Main office / PC-02: WARNING reboot pending for 9 days (#2, 2026-11-23 03:12 UTC)",
        "Acme Tooling / Main office / PC-01: RESOLVED backup ok again (#1, 2026-11-23 03:12 UTC)",
    ]
    assert message.html.count("<li>") == 4 and "<strong>Acme Tooling / Main office / PC-04</strong>" in message.html


def test_two_events_of_one_alert_in_a_burst_are_one_line_its_latest() -> None:
    message = render_group([
        item(7, "opened", "warning", "PC-07", "disk 8 % free", AT),
        item(7, "changed", "critical", "PC-07", "disk 3 % free", AT + timedelta(minutes=1)),
        item(8, "opened", "critical", "PC-08", "disk failing", AT),
    ])
    assert message.title == "[fieldpost] 2 alerts: 2 critical"
    assert [line.split(":")[0] for line in message.text.splitlines()] == [
        "Acme Tooling / Main office / PC-08", "Acme Tooling / Main office / PC-07"]
    assert "Now CRITICAL disk 3 % free" in message.text and "8 % free" not in message.text


def test_it_cuts_a_long_burst_and_says_how_many_are_left_out() -> None:
    message = render_group([item(alert_id=n, hostname=f"PC-{n:02}") for n in range(1, 41)])
    lines = message.text.splitlines()
    assert message.title == "[fieldpost] 40 alerts: 40 critical"
    assert len(lines) == MAX_LINES
    assert lines[-1] == f"... and {40 - MAX_LINES + 1} more: see `fieldpost alerts`"


def test_it_keeps_titles_short() -> None:
    title = render_group([item(summary="x" * 300)]).title
    assert len(title) == MAX_TITLE and title.endswith("…")


def test_it_refuses_to_render_nothing() -> None:
    with pytest.raises(ValueError, match="at least one"):
        render_group([])


def test_it_lists_opened_still_open_and_resolved_in_the_digest() -> None:
    title, body = render_digest(
        opened=[item(5, "opened", "warning", "PC-05", "printer address conflict")],
        still_open=[item(5, "opened", "warning", "PC-05", "printer address conflict"), item(3)],
        resolved=[],
        day=date(2026, 11, 23),
    )
    assert title == "[fieldpost] Digest 2026-11-23: 1 opened, 2 still open, 0 resolved"
    assert body.split("\n\n") == [
        "Opened (1):\nAcme Tooling / Main office / PC-05: WARNING printer address conflict (#5, 2026-11-23 03:12 UTC)",
        "Still open (2):\n"
        "Acme Tooling / Main office / RECEPTION-01: CRITICAL disk sda failing: 8 reallocated sectors"
        " (#3, 2026-11-23 03:12 UTC)\n"
        "Acme Tooling / Main office / PC-05: WARNING printer address conflict (#5, 2026-11-23 03:12 UTC)",
        "Resolved (0):\nnone",
    ]


def test_it_names_the_channel_in_the_test_message() -> None:
    title, body = render_test("phone")
    assert title == "[fieldpost] Test message for channel phone"
    assert "'phone'" in body
