"""Linux provider: ClamAV's signature age where it is installed, and the firewall (ufw, firewalld or nftables)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from typing import Any

from agent.checks import CheckContext
from agent.checks.security_center import TOOL_TIMEOUT, said
from agent.commands import CommandResult
from shared.security_center import AntivirusProduct, Firewall, SecurityCenter

# ClamAV 1.4.6/27838/Mon Dec  1 09:18:00 2025: engine, daily database version and its build time (ctime format,
# in the zone clamscan runs in: the provider runs it in UTC). Without a database only the engine is printed.
CLAMAV_VERSION = re.compile(r"^ClamAV (?P<engine>[^/\s]+)(?:/(?P<db>\d+)/(?P<built>.+?))?\s*$", re.MULTILINE)
UFW_STATUS = re.compile(r"^Status:\s*(active|inactive)", re.MULTILINE)


def parse_clamscan_version(stdout: str) -> AntivirusProduct:
    """ClamAV from `clamscan --version` run with TZ=UTC."""
    found = CLAMAV_VERSION.search(stdout)
    if not found:
        return AntivirusProduct(name="ClamAV", source="clamav", error=f"unexpected clamscan output: {stdout[:200]}")
    if not found["db"]:
        return AntivirusProduct(name="ClamAV", source="clamav", enabled=True, up_to_date=False,
                                error="no signature database found (has freshclam ever run?)")
    built = datetime.strptime(" ".join(found["built"].split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    return AntivirusProduct(name="ClamAV", source="clamav", enabled=True, signature_version=found["db"],
                            signatures_updated_at=built)


def parse_ufw(result: CommandResult) -> Firewall:
    """`ufw status`: active or inactive; anything else (not root) is not known."""
    found = UFW_STATUS.search(result.stdout)
    return Firewall(name="ufw", enabled=found.group(1) == "active" if found else None, detail=said(result))


def parse_firewalld(result: CommandResult) -> Firewall:
    """`firewall-cmd --state`: running, or not running (exit 252)."""
    state = result.stdout.strip()
    enabled = True if state == "running" else False if state == "not running" else None
    return Firewall(name="firewalld", enabled=enabled, detail=said(result))


def parse_nft(result: CommandResult) -> Firewall:
    """`nft -j list ruleset`: filtering when a chain hooked on input drops by policy or holds rules."""
    if result.returncode != 0:
        return Firewall(name="nftables", detail=said(result))
    items: list[dict[str, Any]] = json.loads(result.stdout or "{}").get("nftables", [])
    inputs = {(c["family"], c["table"], c["name"]): c for item in items if (c := item.get("chain"))
              and c.get("hook") == "input"}
    ruled = {(r["family"], r["table"], r["chain"]) for item in items if (r := item.get("rule"))}
    filtering = [key for key, chain in inputs.items() if chain.get("policy") == "drop" or key in ruled]
    detail = ", ".join(f"{family} {table} {name}" for family, table, name in filtering) or "no input filtering"
    return Firewall(name="nftables", enabled=bool(filtering), detail=detail)


class LinuxProvider:
    """The security state of a Linux device."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def clamav(self) -> list[AntivirusProduct]:
        """ClamAV when clamscan is installed (its database directory from the `clamav_database` setting)."""
        if shutil.which("clamscan") is None:
            return []
        database = self.context.settings.get("clamav_database")
        argv = ["env", "TZ=UTC", "clamscan", "--version", *([f"--database={database}"] if database else [])]
        result = self.context.run(argv, timeout=TOOL_TIMEOUT)
        if result.returncode != 0:
            return [AntivirusProduct(name="ClamAV", source="clamav", error=said(result) or "clamscan failed")]
        return [parse_clamscan_version(result.stdout)]

    def firewall(self) -> Firewall:
        """The firewall manager found first: ufw, firewalld, then nftables itself."""
        if shutil.which("ufw"):
            return parse_ufw(self.context.run(["ufw", "status"], timeout=TOOL_TIMEOUT))
        if shutil.which("firewall-cmd"):
            return parse_firewalld(self.context.run(["firewall-cmd", "--state"], timeout=TOOL_TIMEOUT))
        if shutil.which("nft"):
            return parse_nft(self.context.run(["nft", "-j", "list", "ruleset"], timeout=TOOL_TIMEOUT))
        return Firewall(name="firewall", detail="none of ufw, firewall-cmd or nft is installed")

    def collect(self) -> SecurityCenter:
        """ClamAV and the firewall (unless the `firewall` setting is false: reading the ruleset takes
        CAP_NET_ADMIN, which the shipped unit does not grant)."""
        firewalls = [self.firewall()] if self.context.settings.get("firewall", True) else []
        return SecurityCenter(collected_at=self.context.clock(), platform="linux", antivirus=self.clamav(),
                              firewalls=firewalls)
