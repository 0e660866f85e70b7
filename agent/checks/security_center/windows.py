"""Windows provider: Security Center's antivirus products, Microsoft Defender's status and detections, and the
firewall profiles, read by one PowerShell script whose parts fail on their own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

from agent.checks import CheckContext
from agent.checks.printer_ip_conflict.neighbours import as_list
from agent.checks.printer_ip_conflict.winevents import parse_time
from agent.checks.security_center import TOOL_TIMEOUT
from agent.commands import powershell
from shared.security_center import MAX_DETECTIONS, AntivirusProduct, Detection, Firewall, SecurityCenter

# Each part is its own try: Windows Server has no root/SecurityCenter2, a third-party antivirus may stop the
# Defender cmdlets, and what the others found is still worth sending.
SCRIPT = """
$out = @{}
try { $out.av = @(Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct -ErrorAction Stop |
      Select-Object displayName,productState,timestamp) } catch { $out.av_error = "$_" }
try { $out.mp = Get-MpComputerStatus -ErrorAction Stop | Select-Object AMServiceEnabled,AMRunningMode,
      AntivirusEnabled,RealTimeProtectionEnabled,AntivirusSignatureLastUpdated,AntivirusSignatureVersion,
      QuickScanEndTime,FullScanEndTime } catch { $out.mp_error = "$_" }
try { $out.threats = @(Get-MpThreat -ErrorAction Stop | Select-Object ThreatID,ThreatName)
      $out.detections = @(Get-MpThreatDetection -ErrorAction Stop | Select-Object DetectionID,ThreatID,
      ThreatStatusID,ActionSuccess,DomainUser,InitialDetectionTime,Resources,ProcessName) }
catch { $out.detections_error = "$_"
  # Defender's own log still tells its detections (1116) and the actions taken (1117) when the cmdlets fail.
  try { $out.events = @(Get-WinEvent -ErrorAction Stop -FilterHashtable @{
          LogName='Microsoft-Windows-Windows Defender/Operational'; Id=1116,1117;
          StartTime=(Get-Date).AddDays(-30) } | Select-Object Id,@{n='Xml';e={$_.ToXml()}}) }
  catch { if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') { $out.events = @() }
          else { $out.events_error = "$_" } } }
try { $out.firewall = @(Get-NetFirewallProfile -ErrorAction Stop | Select-Object Name,Enabled) }
catch { $out.firewall_error = "$_" }
ConvertTo-Json -InputObject $out -Depth 4 -Compress
"""
# WSC_SECURITY_PRODUCT_STATE (iwscapi.h): bits 12-15 say on, off, snoozed or expired; bits 4-7 whether the
# signatures are up to date.
STATE_MASK, STATE_ON = 0xF000, 0x1000
SIGNATURE_MASK, SIGNATURE_OUT_OF_DATE = 0x00F0, 0x0010
# MSFT_MpThreatDetection.ThreatStatusID, by Microsoft's documentation of the Defender WMI provider.
THREAT_STATUS = {
    0: "unknown", 1: "detected", 2: "cleaned", 3: "quarantined", 4: "removed", 5: "allowed", 6: "blocked",
    102: "quarantine failed", 103: "remove failed", 104: "allow failed", 105: "abandoned", 107: "block failed",
}
REMEDIATED = frozenset({2, 3, 4, 6})
# Event 1117's "Action Name" for what took the threat out of play (English: the event data is not translated).
EVENT_REMEDIATIONS = frozenset({"quarantine", "remove", "clean", "block"})
EVENT_NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
# Get-NetFirewallProfile's Enabled is a GpoBoolean, which ConvertTo-Json writes as its number.
# (JSON true and false hash as 1 and 0.) 2 is NotConfigured: not known from this store.
GPO_BOOLEAN: dict[object, bool] = {0: False, 1: True, "False": False, "True": True}
DEFENDER = "Microsoft Defender Antivirus"


def decode_product_state(state: int) -> tuple[bool, bool]:
    """(enabled, signatures up to date) from a Security Center productState."""
    return state & STATE_MASK == STATE_ON, state & SIGNATURE_MASK != SIGNATURE_OUT_OF_DATE


def parse_products(records: Any) -> list[AntivirusProduct]:
    """Security Center's registered antivirus products (AntiVirusProduct: displayName, productState)."""
    products = []
    for record in as_list(records):
        enabled, up_to_date = decode_product_state(int(record["productState"]))
        products.append(AntivirusProduct(name=str(record["displayName"]), source="security-center",
                                         enabled=enabled, up_to_date=up_to_date))
    return products


def defender_product(status: Mapping[str, Any]) -> AntivirusProduct:
    """Defender as Get-MpComputerStatus describes it; in passive mode another antivirus protects the device."""
    passive = "passive" in str(status.get("AMRunningMode") or "").lower()
    enabled = bool(status.get("AMServiceEnabled")) and bool(status.get("AntivirusEnabled")) and not passive
    scans = [t for t in (parse_time(status.get("QuickScanEndTime")), parse_time(status.get("FullScanEndTime"))) if t]
    return AntivirusProduct(
        name=DEFENDER, source="defender", enabled=enabled,
        real_time=bool(status.get("RealTimeProtectionEnabled")) if enabled else None,
        signature_version=status.get("AntivirusSignatureVersion") or None,
        signatures_updated_at=parse_time(status.get("AntivirusSignatureLastUpdated")),
        last_scan_at=max(scans) if scans else None,
    )


def merge_defender(products: list[AntivirusProduct], defender: AntivirusProduct) -> list[AntivirusProduct]:
    """Security Center's Defender entry completed by Defender's own status (Windows Server has no Security
    Center: there Defender's status is the product)."""
    merged, found = [], False
    for product in products:
        if "defender" in product.name.lower():
            found = True
            product = defender.model_copy(update={"name": product.name, "source": "security-center+defender",
                                                  "up_to_date": product.up_to_date})
        merged.append(product)
    return merged if found else [*merged, defender]


def _resource(resources: Any) -> str | None:
    """The first resource a detection names, without its kind prefix (file:_C:\\x.exe is C:\\x.exe)."""
    for resource in as_list(resources) if not isinstance(resources, str) else [resources]:
        kind, sep, rest = str(resource).partition(":_")
        return rest if sep and kind.isalpha() else str(resource)
    return None


def parse_detections(detections: Any, threats: Any) -> list[Detection]:
    """Get-MpThreatDetection's records, named by Get-MpThreat's ThreatName, newest first."""
    names = {str(t.get("ThreatID")): str(t.get("ThreatName")) for t in as_list(threats)}
    found = []
    for record in as_list(detections):
        status = int(record.get("ThreatStatusID") or 0)
        threat_id = str(record.get("ThreatID"))
        found.append(Detection(
            id=str(record["DetectionID"]).strip("{}"),
            threat=names.get(threat_id, f"threat {threat_id}"),
            path=_resource(record.get("Resources")) or record.get("ProcessName") or None,
            action=THREAT_STATUS.get(status, f"status {status}"),
            remediated=status in REMEDIATED and record.get("ActionSuccess") is not False,
            user=record.get("DomainUser") or None,
            detected_at=parse_time(record.get("InitialDetectionTime")),
        ))
    early = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda d: d.detected_at or early, reverse=True)[:MAX_DETECTIONS]


def event_data(xml: str) -> dict[str, str]:
    """An event's named EventData values (Detection ID, Threat Name, Path, Action Name...)."""
    root = ElementTree.fromstring(xml)
    return {item.get("Name", ""): (item.text or "").strip() for item in root.iter(f"{EVENT_NS}Data")}


def parse_defender_events(records: Any) -> list[Detection]:
    """Detections from Defender's 1116 (detected) and 1117 (action taken) events, one per detection id: a
    detection whose action succeeded (error code 0) in quarantining, removing, cleaning or blocking is
    remediated, one with only a 1116 or a failed action is not."""
    found: dict[str, Detection] = {}
    for record in sorted(as_list(records), key=lambda r: int(r.get("Id") or 0)):  # 1116 before 1117
        data = event_data(str(record.get("Xml") or ""))
        ident = data.get("Detection ID", "").strip("{}")
        if not ident:
            continue
        action = data.get("Action Name", "") if int(record["Id"]) == 1117 else ""
        succeeded = int(data.get("Error Code") or "0", 16) == 0
        remediated = action.lower() in EVENT_REMEDIATIONS and succeeded
        earlier = found.get(ident)
        found[ident] = Detection(
            id=ident, threat=data.get("Threat Name") or (earlier.threat if earlier else "unknown threat"),
            path=_resource(data.get("Path", "").split(";")[0]) or None,
            action=(action.lower() + ("" if succeeded else " failed")) if action else "detected",
            remediated=remediated, user=data.get("Detection User") or None,
            detected_at=parse_time(data.get("Detection Time")),
        )
    early = datetime.min.replace(tzinfo=UTC)
    return sorted(found.values(), key=lambda d: d.detected_at or early, reverse=True)[:MAX_DETECTIONS]


def parse_firewall(records: Any) -> list[Firewall]:
    """Get-NetFirewallProfile's profiles (Domain, Private, Public) and whether each is on."""
    profiles = []
    for record in as_list(records):
        value = record.get("Enabled")
        enabled = GPO_BOOLEAN.get(value)
        profiles.append(Firewall(name=str(record["Name"]), enabled=enabled,
                                 detail=None if enabled is not None else f"Enabled is {value!r}"))
    return profiles


def parse_script(stdout: str, now: datetime) -> SecurityCenter:
    """The signal from SCRIPT's JSON: each part's failure stays with that part."""
    answer: dict[str, Any] = json.loads(stdout)
    products = parse_products(answer.get("av"))
    if answer.get("mp") is not None:
        products = merge_defender(products, defender_product(answer["mp"]))
    elif answer.get("av_error"):
        # Neither source answered (Windows Server has no Security Center, which alone is no news).
        why = f"Security Center: {answer['av_error']}; Defender: {answer.get('mp_error', 'not read')}"
        products.append(AntivirusProduct(name="Security Center", source="security-center", error=why[:2000]))
    firewalls = parse_firewall(answer.get("firewall"))
    if answer.get("firewall_error"):
        firewalls.append(Firewall(name="Windows Firewall", detail=str(answer["firewall_error"])[:500]))
    error = answer.get("detections_error")
    if not error:
        detections = parse_detections(answer.get("detections"), answer.get("threats"))
    elif "events" in answer:
        detections, error = parse_defender_events(answer["events"]), None
    else:
        detections = []
        error = f"{error}; Defender's event log: {answer.get('events_error', 'not read')}"
    return SecurityCenter(
        collected_at=now, platform="windows", antivirus=products, detections=detections,
        detections_error=str(error)[:2000] if error else None, firewalls=firewalls,
    )


class WindowsProvider:
    """The security state of a Windows device."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def collect(self) -> SecurityCenter:
        """One run of SCRIPT; PowerShell itself failing is the check failing (reported unknown)."""
        result = self.context.run(powershell(SCRIPT), timeout=TOOL_TIMEOUT * 2)
        if result.returncode != 0 or not result.stdout.strip():
            raise RuntimeError(f"PowerShell failed ({result.returncode}): {result.stderr.strip()[:300]}")
        return parse_script(result.stdout, self.context.clock())
