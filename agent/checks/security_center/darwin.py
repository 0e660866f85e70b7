"""macOS provider: XProtect's version, Gatekeeper (`spctl --status`), SIP (`csrutil status`) and the
application firewall (`socketfilterfw --getglobalstate`)."""

from __future__ import annotations

import plistlib
import re

from agent.checks import CheckContext
from agent.checks.rootfs import below
from agent.checks.security_center import TOOL_TIMEOUT, said
from agent.commands import CommandNotFound, CommandResult
from shared.security_center import AntivirusProduct, Firewall, Protection, SecurityCenter

# macOS 10.15 and later keep XProtect here; older releases under /System.
XPROTECT_PLISTS = (
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
)
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
# Firewall is enabled. (State = 1) / Firewall is disabled. (State = 0) / ... blocking all ... (State = 2)
FIREWALL_STATE = re.compile(r"\(State = (\d)\)")
SIP = re.compile(r"System Integrity Protection status:\s*(enabled|disabled)\.", re.IGNORECASE)
GATEKEEPER = re.compile(r"assessments (enabled|disabled)")


def parse_xprotect(data: bytes) -> AntivirusProduct:
    """XProtect from its bundle's Info.plist: always on; its version is the signature version."""
    info = plistlib.loads(data)
    version = info.get("CFBundleShortVersionString") or info.get("CFBundleVersion")
    return AntivirusProduct(name="XProtect", source="xprotect", enabled=True, signature_version=str(version))


def parse_gatekeeper(result: CommandResult) -> Protection:
    """`spctl --status` (exit 1 when disabled, so its words decide)."""
    found = GATEKEEPER.search(result.stdout + result.stderr)
    return Protection(name="gatekeeper", enabled=found.group(1) == "enabled" if found else None,
                      detail=said(result))


def parse_sip(result: CommandResult) -> Protection:
    """`csrutil status`; a custom configuration (some parts off) is shown as not known to be on."""
    found = SIP.search(result.stdout)
    return Protection(name="sip", enabled=found.group(1).lower() == "enabled" if found else None,
                      detail=said(result))


def parse_firewall(result: CommandResult) -> Firewall:
    """`socketfilterfw --getglobalstate`: state 1 (on) or 2 (blocking all) is on, 0 is off."""
    found = FIREWALL_STATE.search(result.stdout)
    return Firewall(name="application firewall", enabled=int(found.group(1)) > 0 if found else None,
                    detail=said(result))


class DarwinProvider:
    """The security state of a Mac."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def _run(self, argv: list[str]) -> CommandResult:
        """A tool's result; a tool that is missing is a result saying so (its part is then unknown)."""
        try:
            return self.context.run(argv, timeout=TOOL_TIMEOUT)
        except CommandNotFound as exc:
            return CommandResult(tuple(argv), 127, "", str(exc))

    def xprotect(self) -> AntivirusProduct:
        """XProtect, or a product that could not be read."""
        for path in XPROTECT_PLISTS:
            try:
                return parse_xprotect(below(self.context.root, path).read_bytes())
            except FileNotFoundError:
                continue
        return AntivirusProduct(name="XProtect", source="xprotect", error="XProtect.bundle not found")

    def collect(self) -> SecurityCenter:
        """XProtect, Gatekeeper, SIP and the firewall."""
        return SecurityCenter(
            collected_at=self.context.clock(), platform="macos", antivirus=[self.xprotect()],
            firewalls=[parse_firewall(self._run([SOCKETFILTERFW, "--getglobalstate"]))],
            protections=[parse_gatekeeper(self._run(["spctl", "--status"])),
                         parse_sip(self._run(["csrutil", "status"]))],
        )
