"""The printer_ip_conflict rule: site-wide correlation of who answered for which IP address, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rules import History, SiteReport
from collector.rules.printer_ip_conflict import correlate, evaluate, vendor
from shared.printer_ip_conflict import (
    ConflictEvent,
    NeighbourEntry,
    PrinterIpConflict,
    PrinterQueue,
    Probe,
    ProbeAnswer,
    SegmentKey,
)

T0 = datetime(2024, 11, 12, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
BROTHER = "00:1b:a9:03:04:05"
FUJI = "08:00:37:aa:bb:cc"
LAPTOP_1 = "3c:2a:f4:11:22:33"
LAPTOP_2 = "02:11:22:33:44:55"
ROUTER = "00:1c:73:10:20:30"
SEGMENT = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac="00:00:5e:00:01:01")
PRINTER = "192.0.2.50"
RECEPTION = PrinterQueue(
    name="Reception", uri=f"ipp://{PRINTER}/ipp/print", host=PRINTER, addresses=[PRINTER]
)


def probe(ip: str, *macs: str, at: datetime, method: str = "arp-raw") -> Probe:
    """A probe of `ip` that heard `macs`, in order, within two seconds."""
    answers = [
        ProbeAnswer(
            mac=m, first_seen=at + timedelta(milliseconds=i), last_seen=at + timedelta(seconds=1), replies=2
        )
        for i, m in enumerate(macs)
    ]
    return Probe(ip=ip, method=method, interface="eth0", window_seconds=2, answers=answers)


def seen(ip: str, mac: str, state: str | None = "reachable") -> NeighbourEntry:
    """A neighbour-table entry."""
    return NeighbourEntry(ip=ip, mac=mac, interface="eth0", state=state)


def report(
    host: str,
    at: datetime,
    *,
    probes=(),
    neighbours=(),
    events=(),
    queues=(RECEPTION,),
    segment: SegmentKey = SEGMENT,
) -> SiteReport:
    """One device's report as the collector stored it."""
    signal = PrinterIpConflict(
        collected_at=at,
        segment=segment,
        queues=list(queues),
        probes=list(probes),
        neighbours=list(neighbours),
        events=list(events),
    )
    return SiteReport(agent_id=f"ag_{host}", hostname=host, at=at, signal=signal)


def verdict(
    new: SiteReport,
    *recent: SiteReport,
    now: datetime | None = None,
    ip: str = PRINTER,
    settings=None,
):
    """The evaluation for `ip` when `new` arrives."""
    evaluations = correlate(new, list(recent), now or new.at, settings)
    return next(e for e in evaluations if e.subject == f"ip:{ip}")


def test_it_raises_a_conflict_when_two_macs_answer_one_probe():
    result = verdict(
        report("pc-01", T0, probes=[probe(PRINTER, BROTHER, FUJI, at=T0)]),
        report("pc-02", T0 - 5 * MIN, neighbours=[seen(PRINTER, FUJI)]),
    )
    assert result.status == "critical"
    assert result.rule == "printer_ip_conflict" and result.subject == "ip:192.0.2.50"
    assert result.summary.startswith(
        "IP address conflict at 192.0.2.50: 00:1b:a9:03:04:05 (Brother industries, LTD.) and "
        "08:00:37:aa:bb:cc (FUJIFILM Business Innovation Corp.) both answer; "
        "queues: Reception on pc-01 and Reception on pc-02"
    )
    assert "2 hardware addresses answered one ARP probe from pc-01" in result.summary
    assert result.details["pcs"] == ["pc-01", "pc-02"]
    assert [(m["mac"], m["seen_by"]) for m in result.details["macs"]] == [
        (BROTHER, ["pc-01"]),
        (FUJI, ["pc-01", "pc-02"]),
    ]
    assert result.details["scope"] == "site"


def test_it_names_the_vendor_from_the_oui_only_where_one_is_registered():
    assert vendor(BROTHER) == "Brother industries, LTD."
    assert vendor(LAPTOP_2) is None  # locally administered


def test_it_raises_a_conflict_on_a_flip_flop_seen_by_one_device():
    history = [
        report("pc-01", T0 - 10 * MIN, neighbours=[seen(PRINTER, BROTHER)]),
        report("pc-01", T0 - 5 * MIN, neighbours=[seen(PRINTER, FUJI)]),
    ]
    result = verdict(report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)]), *history)
    assert result.status == "critical"
    assert f"{BROTHER} and {FUJI} took turns answering, seen by pc-01" in result.summary


def test_it_raises_a_conflict_when_devices_keep_seeing_different_macs():
    history = [
        report("pc-01", T0 - 8 * MIN, neighbours=[seen(PRINTER, BROTHER)]),
        report("pc-02", T0 - 6 * MIN, neighbours=[seen(PRINTER, FUJI)]),
    ]
    result = verdict(report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)]), *history)
    assert result.status == "critical"
    assert "2 hardware addresses answered within 15 minutes" in result.summary


def test_it_ignores_a_dhcp_lease_that_moved_once_even_with_a_stale_entry_left_behind():
    lease = "192.0.2.77"
    history = [
        report("pc-01", T0 - 12 * MIN, neighbours=[seen(lease, LAPTOP_1)]),
        report("pc-02", T0 - 6 * MIN, neighbours=[seen(lease, LAPTOP_2)]),
    ]
    new = report("pc-01", T0, neighbours=[seen(lease, LAPTOP_1, state="stale")])
    result = verdict(new, *history, ip=lease)
    assert (result.status, result.summary) == ("ok", "one hardware address answers for 192.0.2.77")


def test_it_ignores_a_one_way_change_seen_by_one_device():
    lease = "192.0.2.77"
    result = verdict(
        report("pc-01", T0, neighbours=[seen(lease, LAPTOP_2)]),
        report("pc-01", T0 - 10 * MIN, neighbours=[seen(lease, LAPTOP_1)]),
        ip=lease,
    )
    assert result.status == "ok"


def test_it_leaves_out_a_proxy_arp_device_that_answers_for_many_addresses():
    proxy = [seen(PRINTER, ROUTER), seen("192.0.2.60", ROUTER), seen("192.0.2.70", ROUTER)]
    result = verdict(
        report("pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)], neighbours=proxy),
        report("pc-02", T0 - 2 * MIN, neighbours=[seen(PRINTER, BROTHER)]),
    )
    assert result.status == "ok"


def test_it_still_sees_the_same_two_macs_as_a_conflict_without_the_proxy_arp_pattern():
    result = verdict(
        report("pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)], neighbours=[seen(PRINTER, ROUTER)]),
        report("pc-02", T0 - 2 * MIN, neighbours=[seen(PRINTER, BROTHER)]),
    )
    assert result.status == "critical"


def test_it_does_not_count_proxy_arp_answers_that_fell_out_of_the_window():
    old = report("pc-02", T0 - 30 * MIN, neighbours=[seen("192.0.2.60", ROUTER), seen("192.0.2.70", ROUTER)])
    result = verdict(report("pc-01", T0, probes=[probe(PRINTER, BROTHER, ROUTER, at=T0)]), old)
    assert result.status == "critical"


def test_it_treats_vrrp_hsrp_and_glbp_routers_answering_together_as_normal():
    for virtual in ("00:00:5e:00:01:01", "00:00:0c:07:ac:01", "00:07:b4:00:01:02"):
        new = report("pc-01", T0, probes=[probe("192.0.2.1", virtual, ROUTER, at=T0)])
        assert verdict(new, ip="192.0.2.1").status == "ok"
    plain = report("pc-01", T0, probes=[probe("192.0.2.1", "00:1c:73:99:99:99", ROUTER, at=T0)])
    assert verdict(plain, ip="192.0.2.1").status == "critical"


def test_it_ignores_the_unspecified_address():
    new = report("pc-01", T0, probes=[probe("0.0.0.0", BROTHER, FUJI, at=T0)], queues=())
    assert correlate(new, [], T0) == []


def test_it_warns_when_a_printer_changed_identity():
    history = [
        report("pc-01", T0 - 3 * 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 3 * 60 * MIN)]),
        report("pc-01", T0 - 2 * 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 2 * 60 * MIN)]),
    ]
    result = verdict(report("pc-01", T0, probes=[probe(PRINTER, FUJI, at=T0)]), *history)
    assert result.status == "warning"
    assert result.summary == (
        "printer at 192.0.2.50 changed identity: was 00:1b:a9:03:04:05 (Brother industries, LTD.), "
        "now 08:00:37:aa:bb:cc (FUJIFILM Business Innovation Corp.); queues: Reception on pc-01"
    )
    assert (result.details["previous_mac"], result.details["current_mac"]) == (BROTHER, FUJI)
    later = T0 + 25 * 60 * MIN
    replaced = report("pc-01", T0, probes=[probe(PRINTER, FUJI, at=T0)])
    assert (
        verdict(report("pc-01", later, probes=[probe(PRINTER, FUJI, at=later)]), *history, replaced).status
        == "ok"
    )


def test_it_does_not_call_the_end_of_a_conflict_an_identity_change():
    history = [
        report("pc-01", T0 - 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 60 * MIN)]),
        report("pc-01", T0 - 30 * MIN, probes=[probe(PRINTER, BROTHER, FUJI, at=T0 - 30 * MIN)]),
    ]
    assert verdict(report("pc-01", T0, probes=[probe(PRINTER, FUJI, at=T0)]), *history).status == "ok"


def test_it_keeps_the_conflict_within_the_window_and_resolves_after_it():
    conflict = report("pc-01", T0, probes=[probe(PRINTER, BROTHER, FUJI, at=T0)])
    later = report("pc-01", T0 + 5 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 + 5 * MIN)])
    assert verdict(later, conflict).status == "critical"
    settled = report("pc-01", T0 + 16 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 + 16 * MIN)])
    assert verdict(settled, conflict, later).status == "ok"


def test_it_uses_the_window_the_client_configured():
    conflict = report("pc-01", T0, probes=[probe(PRINTER, BROTHER, FUJI, at=T0)])
    later = report("pc-01", T0 + 5 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 + 5 * MIN)])
    assert verdict(later, conflict, settings={"printer_ip_conflict": {"window_minutes": 3}}).status == "ok"


def test_it_raises_a_conflict_from_a_windows_conflict_event_for_an_hour():
    event = ConflictEvent(ip="192.0.2.20", mac=LAPTOP_1, at=T0 - 10 * MIN, event_id=4199)
    new = report("pc-03", T0, events=[event], queues=())
    result = verdict(new, ip="192.0.2.20")
    assert result.status == "critical"
    assert f"Windows on pc-03 logged an address conflict with {LAPTOP_1}" in result.summary
    assert verdict(new, now=T0 + 55 * MIN, ip="192.0.2.20").status == "ok"


def test_a_windows_conflict_alert_names_the_pcs_own_mac_and_the_other_one():
    event = ConflictEvent(ip="192.0.2.20", mac=BROTHER, at=T0 - 10 * MIN, event_id=4199, own_mac=LAPTOP_1)
    result = verdict(report("pc-03", T0, events=[event], queues=()), ip="192.0.2.20")
    assert result.status == "critical"
    assert result.summary.startswith(
        f"IP address conflict at 192.0.2.20: {BROTHER} (Brother industries, LTD.) and {LAPTOP_1} "
    )
    assert f"Windows on pc-03 logged an address conflict between its own {LAPTOP_1} and {BROTHER}" in result.summary
    assert {m["mac"] for m in result.details["macs"]} == {BROTHER, LAPTOP_1}


def interleaved(other: SiteReport) -> str:
    """The verdict when `other` saw FUJI between two sightings of BROTHER by pc-01 (a conflict on one LAN)."""
    before = report("pc-01", T0 - 2 * MIN, neighbours=[seen(PRINTER, BROTHER)])
    return verdict(report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)]), before, other).status


def test_it_compares_only_reports_from_the_same_segment():
    elsewhere = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac="00:1c:73:aa:aa:aa")
    assert interleaved(report("pc-09", T0 - MIN, neighbours=[seen(PRINTER, FUJI)])) == "critical"
    assert interleaved(report("pc-09", T0 - MIN, neighbours=[seen(PRINTER, FUJI)], segment=elsewhere)) == "ok"


def test_it_matches_a_segment_whose_vrrp_pair_answered_with_either_mac():
    real_mac = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER)
    both = [probe("192.0.2.1", "00:00:5e:00:01:01", ROUTER, at=T0 - MIN)]
    other = report("pc-02", T0 - MIN, neighbours=[seen(PRINTER, FUJI)], probes=both, segment=real_mac)
    assert interleaved(other) == "critical"


def test_it_evaluates_every_address_the_new_report_mentions():
    new = report(
        "pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)], neighbours=[seen("192.0.2.9", LAPTOP_1)]
    )
    assert [(e.subject, e.status) for e in correlate(new, [], T0)] == [
        ("ip:192.0.2.9", "ok"),
        ("ip:192.0.2.50", "ok"),
    ]


def test_the_rule_correlates_with_other_devices_of_the_site_as_one_site_alert():
    other_pc = report("pc-02", T0 - 5 * MIN, probes=[probe(PRINTER, BROTHER, FUJI, at=T0 - 5 * MIN)])
    new = report("pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)]).signal
    [result] = evaluate(new, History(now=T0, hostname="pc-01", agent_id="ag_pc-01", site=(other_pc,)))
    assert (result.subject, result.status, result.scope) == ("ip:192.0.2.50", "critical", "site")
    [alone] = evaluate(new, History(now=T0, hostname="pc-01", agent_id="ag_pc-01"))
    assert alone.status == "ok", "one hardware address seen by this PC alone is no conflict"
