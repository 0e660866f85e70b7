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


def probe(ip: str, *macs: str, at: datetime, method: str = "arp-raw", interface: str = "eth0") -> Probe:
    """A probe of `ip` that heard `macs`, in order, within two seconds."""
    answers = [
        ProbeAnswer(
            mac=m, first_seen=at + timedelta(milliseconds=i), last_seen=at + timedelta(seconds=1), replies=2
        )
        for i, m in enumerate(macs)
    ]
    return Probe(ip=ip, method=method, interface=interface, window_seconds=2, answers=answers)


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


def test_it_warns_naming_the_likely_cause_when_pcs_keep_seeing_different_macs():
    history = [
        report("pc-01", T0 - 8 * MIN, neighbours=[seen(PRINTER, BROTHER)]),
        report("pc-02", T0 - 6 * MIN, neighbours=[seen(PRINTER, FUJI)]),
    ]
    result = verdict(report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)]), *history)
    assert result.status == "warning"
    assert result.summary.startswith(
        f"PCs disagree about 192.0.2.50: pc-01 sees {BROTHER} (Brother industries, LTD.), "
        f"pc-02 sees {FUJI} (FUJIFILM Business Innovation Corp.); likely a Wi-Fi extender or repeater doing MAC-NAT"
    )
    assert result.details["reasons"] == ["2 hardware addresses answered within 60 minutes, each PC saw one"]


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
    old = report("pc-02", T0 - 90 * MIN, neighbours=[seen("192.0.2.60", ROUTER), seen("192.0.2.70", ROUTER)])
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
        report("pc-01", T0 - 180 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 180 * MIN)]),
        report("pc-01", T0 - 90 * MIN, probes=[probe(PRINTER, BROTHER, FUJI, at=T0 - 90 * MIN)]),
    ]
    assert verdict(report("pc-01", T0, probes=[probe(PRINTER, FUJI, at=T0)]), *history).status == "ok"


def test_it_keeps_the_conflict_within_the_window_and_resolves_after_it():
    conflict = report("pc-01", T0, probes=[probe(PRINTER, BROTHER, FUJI, at=T0)])
    later = report("pc-01", T0 + 5 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 + 5 * MIN)])
    assert verdict(later, conflict).status == "critical"
    settled = report("pc-01", T0 + 61 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 + 61 * MIN)])
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
    """The verdict when `other` saw FUJI between two sightings of BROTHER by pc-01 (a disagreement on one LAN)."""
    before = report("pc-01", T0 - 2 * MIN, neighbours=[seen(PRINTER, BROTHER)])
    return verdict(report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)]), before, other).status


def test_it_compares_only_reports_from_the_same_segment():
    elsewhere = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac="00:1c:73:aa:aa:aa")
    assert interleaved(report("pc-09", T0 - MIN, neighbours=[seen(PRINTER, FUJI)])) == "warning"
    assert interleaved(report("pc-09", T0 - MIN, neighbours=[seen(PRINTER, FUJI)], segment=elsewhere)) == "ok"


def test_it_matches_a_segment_whose_vrrp_pair_answered_with_either_mac():
    real_mac = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER)
    both = [probe("192.0.2.1", "00:00:5e:00:01:01", ROUTER, at=T0 - MIN)]
    other = report("pc-02", T0 - MIN, neighbours=[seen(PRINTER, FUJI)], probes=both, segment=real_mac)
    assert interleaved(other) == "warning"


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


# --- false criticals: what only looks like a conflict --------------------------------------------------------

EXTENDER = "50:c7:bf:12:34:56"  # TP-Link range extender, answering with its own MAC for the devices beyond it
NAS_1, NAS_2 = "00:11:32:aa:bb:01", "00:11:32:aa:bb:02"  # Synology, one NAS with two NICs
WIRED = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER, interface="Ethernet")
WIFI = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER, interface="Wi-Fi")


def statuses(new: SiteReport, *recent: SiteReport) -> dict[str, str]:
    """Status by subject of every evaluation of `new`."""
    return {e.subject: e.status for e in correlate(new, list(recent), new.at)}


def test_a_mac_nat_extender_makes_pcs_disagree_but_is_not_a_conflict():
    wired = [
        report("pc-01", T0 - i * 15 * MIN, segment=WIRED,
               probes=[probe(PRINTER, BROTHER, at=T0 - i * 15 * MIN, interface="Ethernet")])
        for i in range(4)
    ]
    behind = [
        report("laptop-05", T0 - i * 15 * MIN + MIN, segment=WIFI,
               probes=[probe(PRINTER, EXTENDER, at=T0 - i * 15 * MIN + MIN, method="neighbour-table",
                             interface="Wi-Fi")])
        for i in range(1, 4)
    ]
    now = report("laptop-05", T0, segment=WIFI, probes=[probe(PRINTER, EXTENDER, at=T0, interface="Wi-Fi")])
    result = verdict(now, *wired, *behind)
    assert result.status == "warning"
    assert result.summary.startswith(
        f"PCs disagree about 192.0.2.50: laptop-05 (Wi-Fi) sees {EXTENDER} (TP-LINK TECHNOLOGIES CO.,LTD.), "
        f"pc-01 (Ethernet) sees {BROTHER} (Brother industries, LTD.); likely a Wi-Fi extender"
    )
    assert result.details["likely_cause"].startswith("likely a Wi-Fi extender or repeater doing MAC-NAT")


def test_a_pc_behind_the_extender_that_also_sees_the_gateway_through_it_is_another_segment():
    behind_gateway = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=EXTENDER)
    wired = report("pc-01", T0 - 5 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 5 * MIN)])
    result = verdict(report("laptop-05", T0, probes=[probe(PRINTER, EXTENDER, at=T0)], segment=behind_gateway),
                     wired)
    assert result.status == "ok"


def test_a_dual_nic_nas_answering_one_probe_twice_is_a_warning_naming_it():
    result = verdict(report("pc-01", T0, probes=[probe("192.0.2.30", NAS_1, NAS_2, at=T0)], queues=()),
                     ip="192.0.2.30")
    assert result.status == "warning"
    assert result.summary == (
        f"{NAS_1} (Synology Incorporated) and {NAS_2} (Synology Incorporated) both answer for 192.0.2.30: "
        "likely one device with two network ports answering for it (same vendor, adjacent hardware addresses), "
        "such as a NAS with two NICs on one LAN (2 hardware addresses answered one ARP probe from pc-01)"
    )


def test_a_dual_nic_nas_seen_by_two_pcs_or_taking_turns_stays_below_critical():
    ip = "192.0.2.30"
    history = [
        report("pc-02", T0 - 10 * MIN, neighbours=[seen(ip, NAS_2)], queues=()),
        report("pc-01", T0 - 5 * MIN, neighbours=[seen(ip, NAS_1)], queues=()),
        report("pc-02", T0 - 2 * MIN, neighbours=[seen(ip, NAS_2)], queues=()),
    ]
    across = verdict(report("pc-01", T0, neighbours=[seen(ip, NAS_1)], queues=()), *history, ip=ip)
    assert across.status == "warning"
    assert across.summary.startswith(f"PCs disagree about 192.0.2.30: pc-01 sees {NAS_1} (Synology Incorporated)")
    assert across.details["likely_cause"].startswith("likely one device with two network ports")
    turns = [report("pc-01", T0 - m * MIN, probes=[probe(ip, mac, at=T0 - m * MIN)], queues=())
             for m, mac in ((30, NAS_1), (15, NAS_2))]
    flip = verdict(report("pc-01", T0, probes=[probe(ip, NAS_1, at=T0)], queues=()), *turns, ip=ip)
    assert flip.status == "warning" and "took turns" in flip.summary
    far = "00:11:32:aa:cc:01"  # same vendor, but not the same device's ports
    assert verdict(report("pc-01", T0, probes=[probe(ip, NAS_1, far, at=T0)], queues=()), ip=ip).status == "critical"


VIRTUAL = [
    NeighbourEntry(ip="192.168.122.50", mac="52:54:00:12:34:56", interface="virbr0", state="reachable"),
    NeighbourEntry(ip="172.17.0.2", mac="02:42:ac:11:00:02", interface="docker0", state="reachable"),
    NeighbourEntry(ip="172.18.0.3", mac="02:42:ac:12:00:03", interface="br-5f3c2a1b9d0e", state="reachable"),
    NeighbourEntry(ip="192.168.56.101", mac="08:00:27:aa:bb:cc", interface="vboxnet0", state="reachable"),
    NeighbourEntry(ip="172.20.160.5", mac="00:15:5d:01:02:03", interface="vEthernet (WSL)", state="reachable"),
]


def other_vm(entry: NeighbourEntry) -> NeighbourEntry:
    """The same private address on another PC's own virtual network, held by another VM or container."""
    return entry.model_copy(update={"mac": entry.mac[:-2] + "99"})


def test_neighbours_of_virtual_networks_are_never_compared_across_pcs():
    segment = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER, interface="eth0")
    pc_02 = report("pc-02", T0 - 5 * MIN, neighbours=[other_vm(e) for e in VIRTUAL], segment=segment)
    pc_01 = report("pc-01", T0, neighbours=[*VIRTUAL, seen(PRINTER, BROTHER)], segment=segment)
    assert statuses(pc_01, pc_02) == {f"ip:{PRINTER}": "ok"}


def test_probes_of_virtual_network_addresses_are_not_compared_either():
    segment = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER, interface="eth0")
    vm = probe("192.168.122.50", "52:54:00:12:34:56", at=T0, interface="virbr0")
    other_vm = probe("192.168.122.50", "52:54:00:12:34:99", at=T0 - MIN, interface="virbr0")
    pc_02 = report("pc-02", T0 - MIN, probes=[other_vm], segment=segment)
    pc_01 = report("pc-01", T0, probes=[vm], segment=segment)
    assert statuses(pc_01, pc_02) == {f"ip:{PRINTER}": "ok"}


def test_virtual_networks_are_left_out_by_name_when_the_segment_is_unknown():
    pc_02 = report("pc-02", T0 - 5 * MIN, neighbours=[other_vm(e) for e in VIRTUAL], segment=SegmentKey())
    pc_01 = report("pc-01", T0, neighbours=VIRTUAL, segment=SegmentKey())
    assert statuses(pc_01, pc_02) == {f"ip:{PRINTER}": "ok"}


def test_only_entries_of_the_segments_own_subnet_and_interface_count():
    segment = SegmentKey(subnet="192.0.2.0/24", gateway_ip="192.0.2.1", gateway_mac=ROUTER, interface="eth0")
    wlan = NeighbourEntry(ip=PRINTER, mac=FUJI, interface="wlan0", state="reachable")
    lab = NeighbourEntry(ip="198.51.100.7", mac=FUJI, interface="eth0", state="reachable")
    pc_02 = report("pc-02", T0 - 5 * MIN, neighbours=[wlan, lab], segment=segment)
    pc_01 = report("pc-01", T0, neighbours=[seen(PRINTER, BROTHER)], segment=segment)
    assert statuses(pc_01, pc_02) == {f"ip:{PRINTER}": "ok"}
    assert statuses(pc_02, pc_01) == {f"ip:{PRINTER}": "ok"}, "its queue's address is still evaluated"


# --- flip-flops over the history ---------------------------------------------------------------------------------


def test_it_finds_a_flip_flop_of_a_printer_address_over_the_days_history():
    history = [
        report("pc-01", T0 - 6 * 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 6 * 60 * MIN)]),
        report("pc-01", T0 - 90 * MIN, probes=[probe(PRINTER, FUJI, at=T0 - 90 * MIN)]),
    ]
    result = verdict(report("pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)]), *history)
    assert result.status == "critical"
    assert f"{BROTHER} and {FUJI} took turns answering, seen by pc-01" in result.summary
    assert {m["mac"] for m in result.details["macs"]} == {BROTHER, FUJI}


def test_a_flip_flop_whose_last_turn_left_the_window_is_over():
    history = [
        report("pc-01", T0 - 6 * 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 6 * 60 * MIN)]),
        report("pc-01", T0 - 5 * 60 * MIN, probes=[probe(PRINTER, FUJI, at=T0 - 5 * 60 * MIN)]),
        report("pc-01", T0 - 4 * 60 * MIN, probes=[probe(PRINTER, BROTHER, at=T0 - 4 * 60 * MIN)]),
    ]
    assert verdict(report("pc-01", T0, probes=[probe(PRINTER, BROTHER, at=T0)]), *history).status == "ok"


def test_an_address_only_in_neighbour_tables_is_judged_within_the_window_as_dhcp_reuses_it():
    lease = "192.0.2.77"
    history = [
        report("pc-01", T0 - 6 * 60 * MIN, neighbours=[seen(lease, LAPTOP_1)], queues=()),
        report("pc-01", T0 - 3 * 60 * MIN, neighbours=[seen(lease, LAPTOP_2)], queues=()),
    ]
    new = report("pc-01", T0, neighbours=[seen(lease, LAPTOP_1)], queues=())
    assert verdict(new, *history, ip=lease).status == "ok"


def test_windows_re_resolving_one_address_during_one_check_sees_both_and_that_is_critical():
    rounds = probe(PRINTER, BROTHER, FUJI, at=T0, method="neighbour-table")
    result = verdict(report("pc-07", T0, probes=[rounds]))
    assert result.status == "critical"
    assert "2 hardware addresses answered while pc-07 re-resolved the address during one check" in (
        result.summary
    )
