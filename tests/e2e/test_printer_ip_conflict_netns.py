"""Address conflicts on a real (namespaced) LAN: two printers on one IP, found by the agent's ARP probe.

Each test builds its own LAN from network namespaces: a bridge in a namespace of its own, and one namespace
per host joined to it by a veth pair. Addresses are TEST-NET-1 (192.0.2.0/24); no traffic leaves them.
The agent's check runs inside the agent namespace with `ip netns exec`, exactly as `collect()` runs in the
service, with a private CUPS scheduler holding the printer queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.rules import SiteReport
from collector.rules.printer_ip_conflict import correlate
from collector.settings import Settings
from shared.printer_ip_conflict import PrinterIpConflict
from tests.cupsd import need_cupsd, private_cupsd
from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="network namespaces need root (CI=true runs them regardless)",
)

REPO = Path(__file__).resolve().parents[2]
PRINTER_IP = "192.0.2.50"
GATEWAY_IP = "192.0.2.1"
AGENT_MAC, BROTHER, FUJI = "02:00:00:00:00:0a", "00:1b:a9:03:04:05", "08:00:37:aa:bb:cc"
VRRP, ROUTER = "00:00:5e:00:01:01", "00:1c:73:10:20:30"
WINDOW = timedelta(minutes=60)  # the rule's default window_minutes
PHONE = "f0:18:98:12:34:56"
CHECK = """
import json, sys
from datetime import datetime
from agent.checks import CheckContext
from agent.checks.printer_ip_conflict import PrinterIpConflictCheck
context = CheckContext(settings=json.loads(sys.argv[1]))
if sys.argv[2:]:  # the test's clock: what the check saw is stamped with the time the test says it is
    now = datetime.fromisoformat(sys.argv[2])
    context = CheckContext(settings=context.settings, clock=lambda: now)
[signal] = PrinterIpConflictCheck(context).collect()
print(signal.model_dump_json())
"""


class Lan:
    """A bridge and hosts in network namespaces whose names are unique to this run."""

    def __init__(self) -> None:
        self.prefix = f"fp{secrets.token_hex(3)}"
        self.bridge = f"{self.prefix}-br"
        self.hosts: list[str] = []
        self.ip("netns", "add", self.bridge)
        self.ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        self.ip("-n", self.bridge, "link", "set", "br0", "up")

    @staticmethod
    def ip(*args: str) -> None:
        """Run `ip` and fail loudly."""
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def add_host(self, name: str, mac: str, address: str, gateway: str | None = None) -> str:
        """A host namespace with one interface, eth0, plugged into the bridge."""
        ns, port = f"{self.prefix}-{name}", f"{self.prefix}p{len(self.hosts)}"
        self.ip("netns", "add", ns)
        self.hosts.append(ns)
        self.ip("-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
        self.ip("-n", ns, "link", "set", "lo", "up")
        self.ip("-n", ns, "link", "set", "eth0", "address", mac, "up")
        self.ip("-n", ns, "addr", "add", address, "dev", "eth0")
        if gateway:
            self.ip("-n", ns, "route", "add", "default", "via", gateway)
        return ns

    def add_port(self, ns: str, name: str, mac: str) -> None:
        """A second interface of host `ns`, plugged into the same bridge (a device with two NICs)."""
        port = f"{self.prefix}q{len(self.hosts)}"
        self.ip("-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name", name, "netns", ns)
        self.ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
        self.ip("-n", ns, "link", "set", name, "address", mac, "up")

    def add_private_network(self, ns: str, name: str, address: str, guest_mac: str, guest_address: str) -> str:
        """A network only host `ns` has (a libvirt bridge with one VM): interface `name` to a guest namespace."""
        guest = f"{self.prefix}-vm{len(self.hosts)}"
        self.ip("netns", "add", guest)
        self.hosts.append(guest)
        self.ip("-n", ns, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", guest)
        self.ip("-n", ns, "addr", "add", address, "dev", name)
        self.ip("-n", ns, "link", "set", name, "up")
        self.ip("-n", guest, "link", "set", "eth0", "address", guest_mac, "up")
        self.ip("-n", guest, "addr", "add", guest_address, "dev", "eth0")
        return guest

    def set_link(self, ns: str, up: bool) -> None:
        """Plug a host in or out (its interface up or down): what a phone coming and going looks like."""
        self.ip("-n", ns, "link", "set", "eth0", "up" if up else "down")

    def remove_host(self, ns: str) -> None:
        """Unplug and delete a host (its veth pair goes with it)."""
        self.ip("netns", "del", ns)
        self.hosts.remove(ns)

    def close(self) -> None:
        """Delete every namespace this LAN made."""
        for ns in [*self.hosts, self.bridge]:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture
def lan() -> Iterator[Lan]:
    """A fresh LAN, always torn down."""
    built = Lan()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def cups_env() -> Iterator[dict[str, str]]:
    """A private CUPS scheduler with one queue printing to the printer's address."""
    need_cupsd()
    with private_cupsd({"Reception": f"ipp://{PRINTER_IP}/ipp/print"}) as env:
        yield env


def run_check(ns: str, env: dict[str, str], at: datetime | None = None, **settings: object) -> PrinterIpConflict:
    """The printer_ip_conflict check's signal, collected inside namespace `ns` (at the test's time `at`)."""
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-c",
            CHECK,
            json.dumps({"probe_window": 1.0, **settings}),
            *([at.isoformat()] if at else []),
        ],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return PrinterIpConflict.model_validate_json(done.stdout)


def answered(signal: PrinterIpConflict, ip: str) -> set[str]:
    """Every MAC the signal's probe of `ip` heard."""
    return {a.mac for p in signal.probes if p.ip == ip for a in p.answers}


def moved_back(signal: PrinterIpConflict, delta: timedelta) -> PrinterIpConflict:
    """The same report as if it had been collected `delta` earlier (the test's control of time)."""
    data = json.loads(signal.model_dump_json())
    data["collected_at"] = (signal.collected_at - delta).isoformat()
    for probe, original in zip(data["probes"], signal.probes, strict=True):
        for answer, old in zip(probe["answers"], original.answers, strict=True):
            answer["first_seen"] = (old.first_seen - delta).isoformat()
            answer["last_seen"] = (old.last_seen - delta).isoformat()
    return PrinterIpConflict.model_validate(data)


def observe(signal: PrinterIpConflict) -> SiteReport:
    """The agent namespace's report as the collector stores it."""
    return SiteReport(
        agent_id="ag_reception_pc", hostname="reception-pc", at=signal.collected_at, signal=signal
    )


def alerts(new: PrinterIpConflict, *recent: PrinterIpConflict, now=None) -> list[tuple[str, str]]:
    """(subject, status) of every evaluation that is not ok."""
    evaluations = correlate(observe(new), [observe(s) for s in recent], now or new.collected_at)
    return [(e.subject, e.status) for e in evaluations if e.status != "ok"]


def test_it_finds_two_printers_on_one_address_and_resolves_when_one_is_gone(
    lan: Lan, cups_env: dict[str, str]
):
    agent = lan.add_host("agent", AGENT_MAC, "192.0.2.10/24")
    lan.add_host("p1", BROTHER, f"{PRINTER_IP}/24")
    second = lan.add_host("p2", FUJI, f"{PRINTER_IP}/24")

    conflict = run_check(agent, cups_env)
    [probe] = [p for p in conflict.probes if p.ip == PRINTER_IP]
    assert (probe.method, probe.interface) == ("arp-raw", "eth0")
    assert answered(conflict, PRINTER_IP) == {BROTHER, FUJI}
    assert [(q.name, q.addresses) for q in conflict.queues] == [("Reception", [PRINTER_IP])]
    assert alerts(conflict) == [(f"ip:{PRINTER_IP}", "critical")]
    [evaluation] = [
        e for e in correlate(observe(conflict), [], conflict.collected_at) if e.status == "critical"
    ]
    assert "Reception on reception-pc" in evaluation.summary and BROTHER in evaluation.summary

    lan.remove_host(second)
    alone = run_check(agent, cups_env)
    assert answered(alone, PRINTER_IP) == {BROTHER}
    assert alerts(alone, conflict) == [(f"ip:{PRINTER_IP}", "critical")]  # still inside the window
    earlier = moved_back(conflict, WINDOW + timedelta(minutes=1))
    assert alerts(alone, earlier) == []


def test_it_falls_back_to_the_neighbour_table_and_says_so(lan: Lan, cups_env: dict[str, str]):
    agent = lan.add_host("agent", AGENT_MAC, "192.0.2.10/24")
    lan.add_host("p1", BROTHER, f"{PRINTER_IP}/24")
    lan.add_host("p2", FUJI, f"{PRINTER_IP}/24")
    signal = run_check(agent, cups_env, raw_probe=False)
    [probe] = [p for p in signal.probes if p.ip == PRINTER_IP]
    assert probe.method == "neighbour-table"
    assert len(probe.answers) == 1 and probe.answers[0].mac in {BROTHER, FUJI}


def test_it_raises_nothing_for_one_printer_behind_a_vrrp_router_pair(lan: Lan, cups_env: dict[str, str]):
    agent = lan.add_host("agent", AGENT_MAC, "192.0.2.10/24", gateway=GATEWAY_IP)
    lan.add_host("p1", BROTHER, f"{PRINTER_IP}/24")
    lan.add_host("r1", VRRP, f"{GATEWAY_IP}/24")
    lan.add_host("r2", ROUTER, f"{GATEWAY_IP}/24")

    signal = run_check(agent, cups_env)
    assert answered(signal, GATEWAY_IP) == {VRRP, ROUTER}
    assert answered(signal, PRINTER_IP) == {BROTHER}
    assert (signal.segment.subnet, signal.segment.gateway_ip) == ("192.0.2.0/24", GATEWAY_IP)
    assert signal.segment.gateway_mac in {VRRP, ROUTER}
    assert alerts(signal) == []


def age_neighbour_cache(ns: str) -> None:
    """Shorten the agent namespace's neighbour timers (a confirmed answer is trusted for ~0.5 s instead of
    ~30 s, re-checked after 1 s instead of 5 s, probes 0.2 s apart): the kernel's clock for this test, so that
    what a quarter of an hour between two checks does to the cache happens within a second."""
    for key, value in (("base_reachable_time_ms", 500), ("delay_first_probe_time", 1), ("retrans_time_ms", 200)):
        Lan.ip("netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.neigh.eth0.{key}={value}")


def wait_until_unconfirmed(ns: str, ip: str) -> None:
    """Wait (about a second) until the kernel no longer takes its cached answer for `ip` as confirmed."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = subprocess.run(["ip", "-n", ns, "-j", "-4", "neigh", "show", ip], capture_output=True, text=True)
        states = [state for entry in json.loads(shown.stdout or "[]") for state in entry.get("state", [])]
        if "REACHABLE" not in states:
            return
        time.sleep(0.1)
    raise AssertionError(f"the neighbour entry for {ip} stayed REACHABLE")


async def test_two_devices_taking_turns_on_one_address_are_a_conflict_within_two_check_intervals(
    lan: Lan, cups_env: dict[str, str], tmp_path: Path
):
    """A printer and a phone take turns on .50; the agent may only read its neighbour table (one MAC at a time).

    Three checks a quarter of an hour apart on the test's clock, each report sent to a real collector running
    on the same clock: the second sees the phone, the third the printer again, and the conflict is raised.
    """
    agent = lan.add_host("agent", AGENT_MAC, "192.0.2.10/24")
    age_neighbour_cache(agent)
    printer = lan.add_host("p1", BROTHER, f"{PRINTER_IP}/24")
    phone = lan.add_host("p2", PHONE, f"{PRINTER_IP}/24")
    clock = Clock()
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret")
    seen, severities = [], []
    async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
        pc = await enrolled(client, "RECEPTION-01")
        pc.clock = clock
        for turn, (comes, goes) in enumerate([(printer, phone), (phone, printer), (printer, phone)]):
            if turn:
                clock.advance(minutes=15)  # one check interval
            lan.set_link(goes, up=False)
            lan.set_link(comes, up=True)
            wait_until_unconfirmed(agent, PRINTER_IP)
            signal = await asyncio.to_thread(run_check, agent, cups_env, clock.now, raw_probe=False)
            [probe] = [p for p in signal.probes if p.ip == PRINTER_IP]
            assert probe.method == "neighbour-table"
            seen.append([a.mac for a in probe.answers])
            body = pc.body(pc.envelope([signal]))
            response = await client.post(REPORTS, data=body, headers=pc.headers(body))
            assert response.status == 200, await response.text()
            alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
            severities.append(
                [a["severity"] for a in alerts if a["rule"].startswith("printer_ip_conflict")
                 and a["subject"] == f"ip:{PRINTER_IP}"]
            )
    assert seen == [[BROTHER], [PHONE], [BROTHER]]
    assert severities[0] == [], "one printer answering is no alert"
    assert severities[2] == ["critical"], f"raised at the third check, two intervals on: {severities}"
    [conflict] = [a for a in alerts if a["subject"] == f"ip:{PRINTER_IP}"]
    assert f"{BROTHER} and {PHONE} took turns answering, seen by RECEPTION-01" in conflict["summary"]


NAS_IP, NAS_1, NAS_2 = "192.0.2.30", "00:11:32:aa:bb:01", "00:11:32:aa:bb:02"


def test_a_nas_with_two_ports_on_the_lan_answers_twice_and_is_a_warning_not_a_conflict(
    lan: Lan, cups_env: dict[str, str]
):
    """Linux answers ARP for its address on every interface (arp_ignore=0): both ports of the NAS reply."""
    agent = lan.add_host("agent", AGENT_MAC, "192.0.2.10/24")
    nas = lan.add_host("nas", NAS_1, f"{NAS_IP}/24")
    lan.add_port(nas, "eth1", NAS_2)
    signal = run_check(agent, cups_env, addresses=[NAS_IP])
    assert answered(signal, NAS_IP) == {NAS_1, NAS_2}
    [nas_verdict] = [e for e in correlate(observe(signal), [], signal.collected_at) if e.subject == f"ip:{NAS_IP}"]
    assert nas_verdict.status == "warning"
    assert "likely one device with two network ports" in nas_verdict.summary


def resolve(ns: str, ip: str) -> None:
    """Make host `ns` resolve `ip` for real (a connection attempt), as traffic to a VM would."""
    knock = f"import socket; s = socket.socket(); s.settimeout(1); s.connect_ex(({ip!r}, 9))"
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", knock], check=True, timeout=30)


def test_each_pcs_own_virtual_network_is_never_compared_with_anothers(lan: Lan, cups_env: dict[str, str]):
    """Two PCs on one LAN, each with a libvirt network 192.168.122.0/24 whose VM at .50 has its own MAC."""
    lan.add_host("router", ROUTER, f"{GATEWAY_IP}/24")
    lan.add_host("p1", BROTHER, f"{PRINTER_IP}/24")
    pcs = []
    vms = [(AGENT_MAC, "52:54:00:00:00:01"), ("02:00:00:00:00:0b", "52:54:00:00:00:02")]
    for n, (pc_mac, vm_mac) in enumerate(vms):
        pc = lan.add_host(f"pc{n}", pc_mac, f"192.0.2.{10 + n}/24", gateway=GATEWAY_IP)
        lan.add_private_network(pc, "virbr0", "192.168.122.1/24", vm_mac, "192.168.122.50/24")
        pcs.append((n, pc, vm_mac))
    reports = []
    for n, pc, vm_mac in [*pcs, pcs[0]]:  # pc0, pc1, pc0 again: each keeps seeing its own VM
        resolve(pc, "192.168.122.50")
        signal = run_check(pc, cups_env)
        assert signal.segment.interface == "eth0"
        assert [(e.interface, e.mac) for e in signal.neighbours if e.ip == "192.168.122.50"] == [("virbr0", vm_mac)]
        reports.append(SiteReport(agent_id=f"ag_pc{n}", hostname=f"pc{n}", at=signal.collected_at, signal=signal))
    evaluations = correlate(reports[-1], reports[:-1], reports[-1].at)
    assert {e.subject: e.status for e in evaluations} == {f"ip:{GATEWAY_IP}": "ok", f"ip:{PRINTER_IP}": "ok"}
