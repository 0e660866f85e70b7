"""The printer_ip_conflict check's parsers on real Linux/CUPS output and documented Windows/macOS shapes."""

from __future__ import annotations

import ipaddress
import socket
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.printer_ip_conflict import PrinterIpConflictCheck
from agent.checks.printer_ip_conflict.neighbours import (
    GET_NETNEIGHBOR_SCRIPT,
    normalise_mac,
    parse_arp_an,
    parse_get_netneighbor,
    parse_ip_neigh_json,
    parse_proc_net_arp,
    read_neighbours,
)
from agent.checks.printer_ip_conflict.printers import (
    LPSTAT_ARGV,
    WINDOWS_PRINTERS_SCRIPT,
    parse_lpstat_v,
    parse_windows_printers,
    read_cups_queues,
    resolve_host,
    wsd_addresses,
    wsd_queue,
)
from agent.checks.printer_ip_conflict.probe import (
    ETH_P_ARP,
    arp_request,
    linux_route,
    parse_arp_claim,
    parse_resolve_rounds,
    parse_route_get,
    resolve_script,
    windows_probes,
)
from agent.checks.printer_ip_conflict.segment import LocalInterface, own_mac, segment_key
from agent.checks.printer_ip_conflict.winevents import EVENTS_SCRIPT, parse_conflict_events
from agent.commands import CommandResult, run_command
from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict, Probe, ProbeAnswer
from tests.agent.recorded_runs import FIXTURES, Recorded
from tests.cupsd import need_cupsd, private_cupsd
from tests.support.clock import Clock

PRINTERS = FIXTURES / "printers"
MDNS = {"brw3c2af4112233.local": ["192.0.2.90"], "fileserver": ["192.168.1.5"]}


def dns(host: str) -> list[str]:
    """Name resolution of the test's imaginary LAN."""
    return MDNS.get(host, [])


def fixture(name: str) -> str:
    """A recorded output's text."""
    return (PRINTERS / name).read_text()


def by_name(queues: list) -> dict:
    """Queues by name."""
    return {q.name: q for q in queues}


# --- CUPS ---------------------------------------------------------------------------------------------


def test_it_reads_every_queue_and_device_uri_from_lpstat():
    assert parse_lpstat_v(fixture("lpstat-v-cups-2.4.2.txt")) == [
        (
            "Bonjour",
            "dnssd://Brother%20HL-L2350DW%20series._ipp._tcp.local./"
            "?uuid=e3248000-80ce-11db-8000-30055c773bcf",
        ),
        ("Office-HP", "lpd://printer-office.example/queue"),
        ("Reception", "ipp://192.0.2.50/ipp/print"),
        ("Secure", "ipps://192.0.2.70:443/ipp/print"),
        ("Warehouse_Label", "socket://192.0.2.60:9100"),
        ("Web", "http://192.0.2.80:631/ipp/port1"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Gerät für Empfang: socket://192.0.2.60:9100",
        "matériel pour Empfang : socket://192.0.2.60:9100",
        "périphérique pour Empfang\u00a0: socket://192.0.2.60:9100",
        "matériel pour Empfang\u202f: socket://192.0.2.60:9100",
    ],
)
def test_it_reads_lpstat_lines_in_another_language_by_their_shape(line: str):
    assert parse_lpstat_v(line + "\n") == [("Empfang", "socket://192.0.2.60:9100")]


def test_it_reads_every_queue_of_a_french_lpstat():
    assert parse_lpstat_v(fixture("lpstat-v-fr-cups-2.4.2.txt")) == [
        (
            "Bonjour",
            "dnssd://Brother%20HL-L2350DW%20series._ipp._tcp.local./"
            "?uuid=e3248000-80ce-11db-8000-30055c773bcf",
        ),
        ("Bureau-HP", "lpd://printer-office.example/queue"),
        ("Etiquettes_Entrepot", "socket://192.0.2.60:9100"),
        ("Local", "usb://Brother/HL-L2350DW?serial=E78123A9N123456"),
        ("Réception", "ipp://192.0.2.50/ipp/print"),
    ]


def test_it_takes_the_address_of_each_network_queue_and_says_why_a_name_did_not_resolve():
    run = Recorded({LPSTAT_ARGV: ("printers/lpstat-v-cups-2.4.2.txt", 0)})
    queues = by_name(read_cups_queues(run, dns))
    assert queues["Reception"].addresses == ["192.0.2.50"]
    assert queues["Secure"].addresses == ["192.0.2.70"]
    assert queues["Warehouse_Label"].addresses == ["192.0.2.60"]
    assert queues["Web"].addresses == ["192.0.2.80"]
    office = queues["Office-HP"]
    assert (office.host, office.addresses) == ("printer-office.example", [])
    assert "printer-office.example did not resolve" in office.unresolved


def test_it_reports_a_dnssd_queue_unresolved_when_ippfind_is_missing():
    run = Recorded({LPSTAT_ARGV: ("printers/lpstat-v-cups-2.4.2.txt", 0)})
    bonjour = by_name(read_cups_queues(run, dns))["Bonjour"]
    assert bonjour.addresses == []
    assert "Brother HL-L2350DW series._ipp._tcp.local." in bonjour.unresolved
    assert "ippfind is not installed" in bonjour.unresolved


def test_it_resolves_a_dnssd_queue_through_ippfind_and_the_resolver():
    run = Recorded(
        {
            LPSTAT_ARGV: ("printers/lpstat-v-cups-2.4.2.txt", 0),
            ("ippfind",): ("printers/ippfind-service.txt", 0),
        }
    )
    bonjour = by_name(read_cups_queues(run, dns))["Bonjour"]
    assert (bonjour.host, bonjour.addresses, bonjour.unresolved) == (
        "brw3c2af4112233.local",
        ["192.0.2.90"],
        None,
    )
    assert ("ippfind", "-T", "3", "Brother HL-L2350DW series._ipp._tcp.local.") in run.calls


def test_it_reports_a_dnssd_service_that_ippfind_did_not_find():
    run = Recorded({LPSTAT_ARGV: ("printers/lpstat-v-cups-2.4.2.txt", 0), ("ippfind",): ("", 1)})
    assert "not found on the network" in by_name(read_cups_queues(run, dns))["Bonjour"].unresolved


def test_it_resolves_host_names_through_the_system_resolver():
    assert resolve_host("localhost") == ["127.0.0.1"]


def test_it_reads_queues_from_a_real_cups_scheduler(monkeypatch: pytest.MonkeyPatch):
    need_cupsd()
    queues = {
        "Reception": "ipp://192.0.2.50/ipp/print",
        "Label": "socket://192.0.2.60:9100",
        "Local": "usb://Brother/HL-L2350DW?serial=E78123A9N123456",
    }
    with private_cupsd(queues) as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        found = by_name(read_cups_queues(run_command, dns))
    assert {name: q.addresses for name, q in found.items()} == {
        "Label": ["192.0.2.60"],
        "Reception": ["192.0.2.50"],
    }


def test_it_reads_a_real_cups_scheduler_from_a_french_session_in_the_c_locale(monkeypatch: pytest.MonkeyPatch):
    """The agent's own locale is French; lpstat still answers in English because the agent asks for C."""
    need_cupsd()
    outputs: list[str] = []

    def run(argv, timeout=60.0):
        result = run_command(argv, timeout)
        outputs.append(result.stdout)
        return result

    with private_cupsd({"Réception": "ipp://192.0.2.50/ipp/print"}) as env:
        monkeypatch.setenv("CUPS_SERVER", env["CUPS_SERVER"])
        monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
        monkeypatch.setenv("LANG", "fr_FR.UTF-8")
        found = by_name(read_cups_queues(run, dns))
    assert outputs == ["device for Réception: ipp://192.0.2.50/ipp/print\n"]
    assert found["Réception"].addresses == ["192.0.2.50"]


# --- Windows printers ---------------------------------------------------------------------------------


def test_it_joins_windows_printers_with_their_port_addresses():
    queues = by_name(parse_windows_printers(fixture("windows-printers.json"), dns))
    assert queues["Reception"].addresses == ["192.168.1.50"]
    assert queues["Warehouse"].addresses == ["192.168.1.70"]
    assert (queues["\\\\fileserver\\Boardroom"].host, queues["\\\\fileserver\\Boardroom"].addresses) == (
        "fileserver",
        ["192.168.1.5"],
    )
    assert "WSD port" in queues["Brother HL-L2350DW"].unresolved
    assert "Microsoft Print to PDF" not in queues and "Label" not in queues


def test_it_falls_back_to_win32_tcpipprinterport_when_printerhostaddress_is_empty():
    queues = by_name(parse_windows_printers(fixture("windows-printers.json"), dns))
    assert queues["Accounts MFP"].addresses == ["192.168.1.51"]


def test_it_finds_the_address_of_a_wsd_printer_through_its_device_container():
    queues = by_name(parse_windows_printers(fixture("windows-printers-wsd.json"), dns))
    brother = queues["Brother HL-L2350DW series"]
    assert (brother.uri, brother.host, brother.addresses) == (
        "WSD-6f3a12c4-90b1-4a8e-9d7e-2c7f0e1b5a11",
        "192.168.1.60",
        ["192.168.1.60"],
    )
    assert queues["HP LaserJet M404dn"].addresses == ["192.168.1.61"], "from the PnP location URL"
    assert queues["Reception"].addresses == ["192.168.1.50"]


def test_it_says_why_a_wsd_printer_has_no_address():
    canon = by_name(parse_windows_printers(fixture("windows-printers-wsd.json"), dns))["Canon MF640C"]
    assert canon.addresses == [] and "PnP nodes hold no address" in canon.unresolved


def test_it_resolves_a_wsd_device_that_gives_a_host_name():
    nodes = [
        {"InstanceId": "SWD\\PRINTENUM\\{1}", "FriendlyName": "Lab", "ContainerId": "C1"},
        {"InstanceId": "SWD\\DAFWSDProvider\\urn:uuid:1", "ContainerId": "c1",
         "LocationInfo": "http://fileserver:80/WebServices/Device"},
    ]
    assert wsd_addresses(nodes) == {"Lab": ["fileserver"]}
    queue = wsd_queue("Lab", "WSD-1", ["fileserver"], dns)
    assert (queue.host, queue.addresses) == ("fileserver", ["192.168.1.5"])


# --- neighbour tables ---------------------------------------------------------------------------------


def test_it_reads_complete_ipv4_entries_from_ip_j_neigh():
    entries = parse_ip_neigh_json(fixture("ip-j-neigh-show.json"))
    assert [(e.ip, e.mac, e.interface, e.state) for e in entries] == [
        ("192.0.2.1", "00:00:5e:00:01:01", "v0", "reachable"),
        ("192.0.2.50", "00:1b:a9:03:04:05", "v0", "permanent"),
        ("192.0.2.51", "3c:2a:f4:11:22:33", "v0", "stale"),
        ("192.0.2.54", "08:00:37:aa:bb:cc", "v0", "probe"),
    ]


def test_it_reads_the_same_entries_from_proc_net_arp():
    entries = parse_proc_net_arp(fixture("proc-net-arp.txt"))
    assert [(e.ip, e.mac, e.state) for e in entries] == [
        ("192.0.2.1", "00:00:5e:00:01:01", None),
        ("192.0.2.50", "00:1b:a9:03:04:05", "permanent"),
        ("192.0.2.51", "3c:2a:f4:11:22:33", None),
        ("192.0.2.54", "08:00:37:aa:bb:cc", None),
    ]


def test_it_falls_back_to_proc_net_arp_below_the_root_without_iproute2(tmp_path: Path):
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/arp").write_text(fixture("proc-net-arp.txt"))
    entries = read_neighbours("linux", Recorded({}), tmp_path)
    assert [e.ip for e in entries] == ["192.0.2.1", "192.0.2.50", "192.0.2.51", "192.0.2.54"]


def test_it_prefers_ip_j_neigh_on_linux(tmp_path: Path):
    run = Recorded({("ip", "-j", "-4", "neigh"): ("printers/ip-j-neigh-show.json", 0)})
    assert [e.state for e in read_neighbours("linux", run, tmp_path)] == [
        "reachable",
        "permanent",
        "stale",
        "probe",
    ]


def test_it_reads_get_netneighbor_with_numeric_states_and_skips_unusable_entries():
    entries = parse_get_netneighbor(fixture("get-netneighbor-ps51.json"))
    assert [(e.ip, e.mac, e.interface, e.state) for e in entries] == [
        ("192.168.1.50", "00:1b:a9:03:04:05", "Ethernet", "reachable"),
        ("192.168.1.20", "3c:2a:f4:11:22:33", "Ethernet", "stale"),
        ("192.168.1.1", "00:00:5e:00:01:01", "Ethernet", "reachable"),
    ]


def test_it_reads_a_single_get_netneighbor_object_with_a_named_state():
    entries = parse_get_netneighbor(fixture("get-netneighbor-one-named-state.json"))
    assert [(e.ip, e.mac, e.state) for e in entries] == [("192.168.1.50", "08:00:37:aa:bb:cc", "reachable")]


def test_it_reads_macos_arp_an_restoring_dropped_leading_zeros():
    entries = parse_arp_an(fixture("arp-an-macos.txt"))
    assert [(e.ip, e.mac, e.interface, e.state) for e in entries] == [
        ("192.168.1.1", "00:18:01:8f:23:ed", "en1", None),
        ("192.168.1.2", "00:1b:21:a4:32:bd", "en1", None),
        ("192.168.1.7", "18:20:32:9f:54:75", "en1", None),
        ("192.168.1.100", "00:1b:dd:28:fc:4d", "en1", None),
        ("192.168.1.101", "00:1f:c4:ef:5d:f1", "en1", "permanent"),
    ]


@pytest.mark.parametrize(
    ("text", "mac"),
    [
        ("0:1b:a9:3:4:5", "00:1b:a9:03:04:05"),
        ("00-1B-A9-03-04-05", "00:1b:a9:03:04:05"),
        ("(incomplete)", None),
        ("00:1b:a9:03:04", None),
    ],
)
def test_it_normalises_mac_addresses(text: str, mac: str | None):
    assert normalise_mac(text) == mac


# --- Windows conflict events --------------------------------------------------------------------------


def test_it_reads_tcpip_conflict_events_and_skips_dhcp_probes_and_ipv6():
    events = parse_conflict_events(fixture("winevent-tcpip-ps51.json"))
    assert [(e.event_id, e.ip, e.mac, e.at) for e in events] == [
        (4199, "192.168.1.50", "00:1b:a9:03:04:05", datetime(2024, 11, 12, 9, 30, tzinfo=UTC)),
        (4198, "192.168.1.50", "00:1b:a9:03:04:05", datetime(2024, 11, 12, 9, 20, tzinfo=UTC)),
    ]


def test_it_names_the_pcs_own_mac_beside_the_other_one_in_a_conflict_event():
    ours = [
        LocalInterface("Ethernet", ipaddress.IPv4Interface("192.168.1.50/24"), "3c:2a:f4:99:88:77"),
        LocalInterface("vEthernet (WSL)", ipaddress.IPv4Interface("172.20.0.1/20"), "00:15:5d:01:02:03"),
    ]
    events = parse_conflict_events(fixture("winevent-tcpip-ps51.json"), ours)
    assert [(e.ip, e.mac, e.own_mac) for e in events] == [
        ("192.168.1.50", "00:1b:a9:03:04:05", "3c:2a:f4:99:88:77"),
        ("192.168.1.50", "00:1b:a9:03:04:05", "3c:2a:f4:99:88:77"),
    ]


def test_it_finds_the_own_mac_by_subnet_once_windows_took_the_address_off():
    ours = [LocalInterface("Ethernet", ipaddress.IPv4Interface("192.168.1.23/24"), "3c:2a:f4:99:88:77")]
    assert own_mac("192.168.1.50", ours) == "3c:2a:f4:99:88:77"
    assert own_mac("10.0.0.5", ours) is None


def test_it_reads_a_single_event_printed_by_powershell_7():
    [event] = parse_conflict_events(fixture("winevent-tcpip-ps7-one.json"))
    assert (event.ip, event.mac) == ("192.168.1.53", "00:1b:a9:0a:0b:0c")
    assert event.at == datetime(2024, 11, 12, 9, 30, 0, 123456, tzinfo=UTC)


# --- probe and segment --------------------------------------------------------------------------------


def test_it_probes_only_addresses_on_a_local_segment():
    assert parse_route_get(fixture("ip-j-route-get-onlink.json")).interface == "v0"
    assert parse_route_get(fixture("ip-j-route-get-onlink.json")).source_ip == "192.0.2.10"
    assert "routed via 192.0.2.1" in parse_route_get(fixture("ip-j-route-get-via-gateway.json")).error
    assert "local address" in parse_route_get(fixture("ip-j-route-get-local.json")).error


def test_it_says_why_it_cannot_probe_without_iproute2():
    assert "not installed" in linux_route("192.0.2.50", Recorded({})).error


def test_it_builds_an_arp_request_and_recognises_claims_but_not_rfc5227_probes():
    ours = bytes.fromhex("020000000010")
    request = arp_request(ours, "192.0.2.10", "192.0.2.50")
    assert (
        len(request) == 42 and request[:6] == b"\xff" * 6 and request[12:14] == ETH_P_ARP.to_bytes(2, "big")
    )
    assert parse_arp_claim(request) == ("192.0.2.10", "02:00:00:00:00:10")
    printer = bytes.fromhex("001ba9030405")
    reply = (
        ours
        + printer
        + b"\x08\x06"
        + struct.pack(
            "!HHBBH6s4s6s4s",
            1,
            0x0800,
            6,
            4,
            2,
            printer,
            socket.inet_aton("192.0.2.50"),
            ours,
            socket.inet_aton("192.0.2.10"),
        )
    )
    assert parse_arp_claim(reply) == ("192.0.2.50", "00:1b:a9:03:04:05")
    probe = arp_request(printer, "0.0.0.0", "192.0.2.50")
    assert parse_arp_claim(probe) is None


def test_it_keys_the_segment_by_subnet_gateway_and_gateway_mac():
    networks = [
        LocalInterface("eth0", ipaddress.IPv4Interface("192.0.2.10/24")),
        LocalInterface("virbr0", ipaddress.IPv4Interface("192.168.122.1/24")),
    ]
    neighbours = [NeighbourEntry(ip="192.0.2.1", mac="00:00:5e:00:01:01")]
    key = segment_key("192.0.2.1", networks, neighbours)
    assert (key.subnet, key.gateway_ip, key.gateway_mac, key.interface) == (
        "192.0.2.0/24",
        "192.0.2.1",
        "00:00:5e:00:01:01",
        "eth0",
    )
    assert key.key == "192.0.2.0/24|192.0.2.1|00:00:5e:00:01:01"


def test_it_takes_the_gateway_mac_from_the_probe_when_the_table_has_none():
    at = datetime(2024, 11, 12, 9, 30, tzinfo=UTC)
    probe = Probe(
        ip="192.0.2.1",
        method="arp-raw",
        window_seconds=2,
        answers=[
            ProbeAnswer(mac="02:00:00:00:00:02", first_seen=at.replace(second=1), last_seen=at, replies=1),
            ProbeAnswer(mac="00:00:5e:00:01:01", first_seen=at, last_seen=at, replies=1),
        ],
    )
    key = segment_key("192.0.2.1", [LocalInterface("eth0", ipaddress.IPv4Interface("192.0.2.10/24"))], [], [probe])
    assert key.gateway_mac == "00:00:5e:00:01:01"


# --- the check ----------------------------------------------------------------------------------------


def test_it_reports_queues_and_neighbours_and_what_it_could_not_probe(tmp_path: Path):
    """Linux without iproute2: queues and /proc/net/arp are read, probes say why they could not be made."""
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/arp").write_text(fixture("proc-net-arp.txt"))
    # Only the queues with literal addresses: a host name would be looked up in the real DNS.
    lines = [line for line in fixture("lpstat-v-cups-2.4.2.txt").splitlines() if "192.0.2." in line]
    (tmp_path / "lpstat.txt").write_text("\n".join(lines) + "\n")
    run = Recorded({LPSTAT_ARGV: (str(tmp_path / "lpstat.txt"), 0)})
    check = PrinterIpConflictCheck(CheckContext(run=run, root=tmp_path), platform="linux")
    [signal] = check.collect()
    assert isinstance(signal, PrinterIpConflict)
    assert [q.name for q in signal.queues] == ["Reception", "Secure", "Warehouse_Label", "Web"]
    assert len(signal.neighbours) == 4
    assert {p.ip: p.error for p in signal.probes}["192.0.2.50"] == "ip (iproute2) is not installed"
    assert signal.segment.gateway_ip is None
    PrinterIpConflict.model_validate_json(signal.model_dump_json())


def test_it_names_the_part_it_could_not_read(tmp_path: Path):
    missing_lpstat = Recorded({LPSTAT_ARGV: ("", 127)})  # env(1) found no lpstat to run
    [signal] = PrinterIpConflictCheck(
        CheckContext(run=missing_lpstat, root=tmp_path), platform="linux"
    ).collect()
    assert signal.queues == [] and signal.probes == []
    assert signal.problems == ["printer queues not read: lpstat is not installed or not on PATH"]


# --- Windows: the address resolved afresh several times per check ----------------------------------------------

PHONE = "f0:18:98:12:34:56"  # an Apple phone that took the printer's address


class RecordedWindows:
    """PowerShell scripts and commands answered from recorded outputs, recognised by what they run."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers  # a text the argv contains -> fixture path below tests/fixtures
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv, timeout: float = 60.0) -> CommandResult:
        self.calls.append(tuple(argv))
        for marker, name in self.answers.items():
            if marker in " ".join(argv):
                return CommandResult(tuple(argv), 0, (FIXTURES / name).read_text(), "")
        return CommandResult(tuple(argv), 1, "", f"{argv[0]}: not recorded")


def test_it_reads_every_round_of_the_windows_resolution_and_skips_incomplete_ones():
    rounds = parse_resolve_rounds(fixture("resolve-rounds-ps51.json"))
    assert [(n, e.mac) for n, e in rounds if e.ip == "192.168.1.50"] == [
        (1, "00:1b:a9:03:04:05"),
        (2, PHONE),
        (3, "00:1b:a9:03:04:05"),
        (4, "00:1b:a9:03:04:05"),
    ]
    assert [n for n, e in rounds if e.ip == "192.168.1.60"] == [1, 2, 4]


def test_windows_reports_every_hardware_address_seen_across_the_rounds_on_the_agents_clock():
    clock = Clock()
    run = RecordedWindows({"Remove-NetNeighbor": "printers/resolve-rounds-ps51.json"})
    probes = {p.ip: p for p in windows_probes(["192.168.1.50", "192.168.1.60"], run, 4, 2.0, clock)}
    printer = probes["192.168.1.50"]
    assert (printer.method, printer.interface, printer.window_seconds) == ("neighbour-table", "Ethernet", 8.0)
    assert [(a.mac, a.replies, a.first_seen, a.last_seen) for a in printer.answers] == [
        ("00:1b:a9:03:04:05", 3, clock.now - timedelta(seconds=6), clock.now),
        (PHONE, 1, clock.now - timedelta(seconds=4), clock.now - timedelta(seconds=4)),
    ]
    assert [a.replies for a in probes["192.168.1.60"].answers] == [3]
    [argv] = run.calls
    assert argv[-1] == resolve_script(["192.168.1.50", "192.168.1.60"], 4, 2.0)
    assert "$ips = @('192.168.1.50','192.168.1.60'); $rounds = 4" in argv[-1]
    assert "Start-Sleep -Milliseconds 2000" in argv[-1]


def test_windows_says_why_it_could_not_resolve():
    [probe] = windows_probes(["192.168.1.50"], RecordedWindows({}), clock=Clock())
    assert probe.answers == [] and "not recorded" in probe.error


def test_the_windows_check_probes_wsd_printers_the_gateway_and_tcpip_ports_by_resolving_them(tmp_path: Path):
    run = RecordedWindows(
        {
            WINDOWS_PRINTERS_SCRIPT: "printers/windows-printers-wsd.json",
            GET_NETNEIGHBOR_SCRIPT: "printers/get-netneighbor-ps51.json",
            EVENTS_SCRIPT: "printers/winevent-tcpip-ps51.json",
            "Remove-NetNeighbor": "printers/resolve-rounds-ps51.json",
            "route print -4": "heartbeat/route-print-4-windows.txt",
        }
    )
    clock = Clock()
    context = CheckContext(run=run, root=tmp_path, clock=clock, settings={"probe_window": 0.5})
    [signal] = PrinterIpConflictCheck(context, platform="win32").collect()
    assert signal.collected_at == clock.now and signal.problems == []
    probes = {p.ip: p for p in signal.probes}
    assert list(probes) == ["192.168.1.50", "192.168.1.60", "192.168.1.61", "192.168.1.254"]
    assert [a.mac for a in probes["192.168.1.60"].answers] == ["30:05:5c:77:3b:cf"], "the WSD printer answered"
    assert {a.mac for a in probes["192.168.1.50"].answers} == {"00:1b:a9:03:04:05", PHONE}
    assert probes["192.168.1.61"].answers == []
    [resolve] = [argv[-1] for argv in run.calls if "Remove-NetNeighbor" in argv[-1]]
    assert "$rounds = 4" in resolve and "Start-Sleep -Milliseconds 500" in resolve
