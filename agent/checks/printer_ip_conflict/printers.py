"""Printer queues and their addresses: Windows Get-Printer/Get-PrinterPort (or WMI), CUPS `lpstat -v`."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from agent.checks.printer_ip_conflict.neighbours import as_list, powershell
from agent.commands import CommandNotFound, Runner
from shared.printer_ip_conflict import PrinterQueue

Resolver = Callable[[str], list[str]]

# LC_ALL=C keeps lpstat's words English whatever the service's locale; env(1) sets it without a shell.
LPSTAT_ARGV = ("env", "LC_ALL=C", "lpstat", "-v")
ENV_NOT_FOUND = 127  # env(1)'s exit status when the program it should run is missing
IPPFIND_TIMEOUT = 3
NETWORK_SCHEMES = {"ipp", "ipps", "socket", "lpd", "http", "https"}
# One JSON object for all sources; Win32 classes stand in where the PrintManagement module is missing and for
# TCP/IP ports whose PrinterHostAddress is empty. WSD ports (WSD-<guid>, how Windows adds printers it found
# itself) hold no address: the device's PnP nodes do (PnP-X IpAddress from its WS-Discovery metadata, the
# location "http://ADDRESS:80/WebServices/Device"), joined to the print queue's node by their device container.
WINDOWS_PRINTERS_SCRIPT = """
try { $printers = @(Get-Printer -ErrorAction Stop | Select-Object Name,PortName)
      $ports = @(Get-PrinterPort -ErrorAction Stop | Select-Object Name,PrinterHostAddress) }
catch { $printers = @(Get-CimInstance Win32_Printer | Select-Object Name,PortName); $ports = @() }
$tcpip = @(Get-CimInstance Win32_TCPIPPrinterPort | Select-Object Name,HostAddress)
$pnp = @()
if (@($printers | Where-Object { "$($_.PortName)" -like 'WSD*' }).Count -gt 0) { try {
  $keys = 'DEVPKEY_Device_ContainerId','DEVPKEY_PNPX_IpAddress','DEVPKEY_Device_LocationInfo',
          'DEVPKEY_PNPX_PresentationUrl'
  $pnp = @(Get-PnpDevice -ErrorAction SilentlyContinue |
    Where-Object { $_.InstanceId -like 'SWD\\PRINTENUM\\*' -or $_.InstanceId -like 'SWD\\DAFWSDProvider\\*' -or
                   $_.InstanceId -like 'WSDPRINT\\*' } |
    ForEach-Object {
      $p = @{}
      Get-PnpDeviceProperty -InstanceId $_.InstanceId -KeyName $keys -ErrorAction SilentlyContinue |
        ForEach-Object { $p[$_.KeyName] = $_.Data }
      [pscustomobject]@{InstanceId=$_.InstanceId; FriendlyName=$_.FriendlyName;
        ContainerId="$($p['DEVPKEY_Device_ContainerId'])"; IpAddress=@($p['DEVPKEY_PNPX_IpAddress']);
        LocationInfo=$p['DEVPKEY_Device_LocationInfo']; PresentationUrl=$p['DEVPKEY_PNPX_PresentationUrl']} })
} catch { $pnp = @() } }  # no PnpDevice module (before Windows 8): the WSD queues say they have no address
@{printers=$printers; ports=$ports; tcpip_ports=$tcpip; pnp=$pnp} | ConvertTo-Json -Compress -Depth 4
""".strip()
QUEUE_NODE = "SWD\\PRINTENUM\\"  # the PnP node of a print queue; the device's own nodes share its container
# Defensive, should LC_ALL=C not take: lpstat's words are translated ("device for", "Gerät für", French
# "matériel pour X : URI" with a blank, often a no-break space, before the colon); a queue name has no blanks
# and a URI no spaces.
LPSTAT_LINE = re.compile(r"(?P<name>[^\s:]+)\s?: (?P<uri>[a-z][a-z0-9+.-]*:\S*)$")


def resolve_host(host: str) -> list[str]:
    """IPv4 addresses of a host name through the system resolver (which knows .local where nss-mdns is)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def queue_for(name: str, uri: str | None, host: str | None, resolve: Resolver) -> PrinterQueue:
    """A queue with its host resolved to IPv4 addresses, or the reason it could not be."""
    if not host:
        return PrinterQueue(name=name, uri=uri, unresolved="the queue's address names no host")
    try:
        return PrinterQueue(name=name, uri=uri, host=host, addresses=[str(ipaddress.IPv4Address(host))])
    except ValueError:
        pass
    addresses = resolve(host)
    reason = None if addresses else f"host name {host} did not resolve to an IPv4 address"
    return PrinterQueue(name=name, uri=uri, host=host, addresses=addresses, unresolved=reason)


def parse_lpstat_v(text: str) -> list[tuple[str, str]]:
    """(queue, device URI) pairs from `lpstat -v`."""
    return [(m["name"], m["uri"]) for line in text.splitlines() if (m := LPSTAT_LINE.search(line.strip()))]


def parse_ippfind(text: str) -> str | None:
    """The host of the first URI `ippfind` printed for a service (one URI per line)."""
    for line in text.splitlines():
        host = urlsplit(line.strip()).hostname
        if host:
            return host
    return None


def dnssd_host(service: str, run: Runner) -> tuple[str | None, str | None]:
    """(host, None) for a DNS-SD service instance resolved through mDNS by ippfind, or (None, why not)."""
    try:
        result = run(["ippfind", "-T", str(IPPFIND_TIMEOUT), service], IPPFIND_TIMEOUT + 10)
    except CommandNotFound:
        return None, f"mDNS service {service!r} not resolved: ippfind is not installed (cups-ipp-utils)"
    except subprocess.TimeoutExpired:
        return None, f"mDNS service {service!r} not resolved: ippfind did not finish"
    host = parse_ippfind(result.stdout)
    return (host, None) if host else (None, f"mDNS service {service!r} not found on the network")


def cups_queue(name: str, uri: str, run: Runner, resolve: Resolver) -> PrinterQueue | None:
    """A CUPS queue's address; None for queues that print to no network address (usb://, file:, ...)."""
    parts = urlsplit(uri)
    if parts.scheme == "dnssd":
        host, reason = dnssd_host(unquote(parts.netloc), run)
        if host is None:
            return PrinterQueue(name=name, uri=uri, unresolved=reason)
        return queue_for(name, uri, host, resolve)
    if parts.scheme not in NETWORK_SCHEMES:
        return None
    return queue_for(name, uri, parts.hostname, resolve)


def read_cups_queues(
    run: Runner, resolve: Resolver = resolve_host, timeout: float = 30.0
) -> list[PrinterQueue]:
    """Network queues of the local CUPS scheduler; no scheduler running means no queues."""
    result = run(LPSTAT_ARGV, timeout)
    if result.returncode == ENV_NOT_FOUND:
        raise CommandNotFound("lpstat is not installed or not on PATH")
    queues = [cups_queue(name, uri, run, resolve) for name, uri in parse_lpstat_v(result.stdout)]
    return [q for q in queues if q is not None]


def _by_name(items: list[dict[str, Any]], field: str) -> dict[str, str]:
    return {str(i.get("Name")): str(i[field]) for i in items if i.get(field)}


def windows_queue(
    printer: dict[str, Any], hosts: dict[str, str], wsd: dict[str, list[str]], resolve: Resolver
) -> PrinterQueue | None:
    """A Windows printer's address from its port; None for local ports (LPT1:, PORTPROMPT:, USB001, ...).

    `wsd` holds the addresses (or host names) of WSD printers by printer name (see `wsd_addresses`).
    """
    name, port = str(printer.get("Name", "")), str(printer.get("PortName") or "")
    if port in hosts:
        return queue_for(name, port, hosts[port], resolve)
    if urlsplit(port).scheme in NETWORK_SCHEMES and urlsplit(port).hostname:
        return queue_for(name, port, urlsplit(port).hostname, resolve)
    if name.startswith("\\\\"):  # a connection to a shared printer: jobs go to the print server
        return queue_for(name, port or None, name[2:].split("\\", 1)[0], resolve)
    if port.upper().startswith("WSD"):
        return wsd_queue(name, port, wsd.get(name, []), resolve)
    return None


def wsd_queue(name: str, port: str, found: list[str], resolve: Resolver) -> PrinterQueue:
    """A WSD printer's queue with the IPv4 addresses its device announced, or why none was found."""
    ipv4 = [a for a in found if _is_ipv4(a)]
    if ipv4:
        return PrinterQueue(name=name, uri=port, host=ipv4[0], addresses=ipv4)
    if found:  # only a host name (or IPv6) in the device's location
        return queue_for(name, port, next((a for a in found if ":" not in a), None), resolve)
    return PrinterQueue(
        name=name,
        uri=port,
        unresolved="WSD port: the device's PnP nodes hold no address (is the printer switched on?)",
    )


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def wsd_addresses(nodes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Printer name -> addresses of its WSD device, joining each queue's PnP node to the device's nodes
    through their common device container: PnP-X IpAddress first, else the host of the location URLs."""
    containers: dict[str, list[str]] = {}
    for node in nodes:
        if not str(node.get("InstanceId", "")).upper().startswith(QUEUE_NODE) and node.get("ContainerId"):
            found = containers.setdefault(str(node["ContainerId"]).lower(), [])
            found += [str(a) for a in node.get("IpAddress") or [] if a]
            for field in ("LocationInfo", "PresentationUrl"):
                host = urlsplit(str(node.get(field) or "")).hostname
                if host:
                    found.append(host)
    by_printer = {}
    for node in nodes:
        container = str(node.get("ContainerId") or "").lower()
        if str(node.get("InstanceId", "")).upper().startswith(QUEUE_NODE) and containers.get(container):
            by_printer[str(node.get("FriendlyName"))] = list(dict.fromkeys(containers[container]))
    return by_printer


def parse_windows_printers(text: str, resolve: Resolver = resolve_host) -> list[PrinterQueue]:
    """Network queues from the JSON of WINDOWS_PRINTERS_SCRIPT (Get-Printer joined with its ports)."""
    data = json.loads(text) if text.strip() else {}
    hosts = _by_name(as_list(data.get("tcpip_ports")), "HostAddress")
    hosts.update(_by_name(as_list(data.get("ports")), "PrinterHostAddress"))
    wsd = wsd_addresses(as_list(data.get("pnp")))
    queues = [windows_queue(p, hosts, wsd, resolve) for p in as_list(data.get("printers"))]
    return [q for q in queues if q is not None]


def read_queues(platform: str, run: Runner, resolve: Resolver = resolve_host) -> list[PrinterQueue]:
    """This device's network print queues, read the way `platform` (a sys.platform value) allows."""
    if platform == "win32":
        return parse_windows_printers(run(powershell(WINDOWS_PRINTERS_SCRIPT), 60).stdout, resolve)
    return read_cups_queues(run, resolve)
