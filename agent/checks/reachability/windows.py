"""Echo on Windows without administrator rights: `Test-Connection` (language-independent JSON), and ping.exe's
English output where PowerShell is missing. Both are parsed from recorded outputs in the tests."""

from __future__ import annotations

import asyncio
import json
import re

from agent.checks import CheckContext
from agent.checks.reachability.probes import COUNT, Outcome, mean
from agent.commands import CommandNotFound, command_owner, powershell, working_for

# Test-Connection's objects (Win32_PingStatus): StatusCode 0 is a reply; other codes (11010 timed out, 11003
# destination host unreachable...) are no answer. Windows PowerShell 5.1 writes nothing for a ping that failed.
SCRIPT = ("Test-Connection -ComputerName '{address}' -Count {count} -ErrorAction SilentlyContinue | "
          "Select-Object Address,StatusCode,ResponseTime | ConvertTo-Json")
# A reply line: "Reply from 10.0.0.5: bytes=32 time=1ms TTL=64" or "time<1ms"; "Destination host unreachable"
# replies come from this PC, carry no time, and are no answer from the device.
PING_REPLY = re.compile(r"^Reply from \S+: bytes=\d+ time([=<])(\d+)ms", re.MULTILINE)


def parse_test_connection(text: str, count: int = COUNT) -> Outcome:
    """`Test-Connection | ConvertTo-Json` output as an outcome (one object alone, or an array)."""
    found = json.loads(text) if text.strip() else []
    replies = [found] if isinstance(found, dict) else found
    latencies = [float(r.get("ResponseTime") or 0) for r in replies if r.get("StatusCode") == 0]
    return Outcome("up" if latencies else "down", count, len(latencies), mean(latencies),
                   error=None if latencies else "no echo reply (Test-Connection)", how="icmp (Test-Connection)")


def parse_ping(text: str, count: int = COUNT) -> Outcome:
    """ping.exe's English output as an outcome (a `time<1ms` reply counts as half a millisecond)."""
    latencies = [0.5 if sign == "<" else float(ms) for sign, ms in PING_REPLY.findall(text)]
    return Outcome("up" if latencies else "down", count, len(latencies), mean(latencies),
                   error=None if latencies else "no echo reply (ping.exe)", how="icmp (ping.exe)")


class PingExe:
    """ICMP echo through Windows' own tools, which need no administrator rights."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def _echo(self, address: str, count: int, wait: float) -> Outcome:
        """Test-Connection, or ping.exe where PowerShell is missing (blocking: runs in a helper thread)."""
        try:
            result = self.context.run(powershell(SCRIPT.format(address=address.replace("'", ""), count=count)),
                                      timeout=30)
            if result.returncode == 0:
                return parse_test_connection(result.stdout, count)
        except CommandNotFound:
            pass
        result = self.context.run(["ping.exe", "-n", str(count), "-w", str(int(wait * 1000)), address], timeout=30)
        return parse_ping(result.stdout, count)

    async def echo(self, address: str, count: int, wait: float) -> Outcome:
        """Echo requests, in a helper thread working for the check's collect (its budget kills them)."""
        owner = command_owner()
        return await asyncio.to_thread(working_for(owner, lambda _: self._echo(address, count, wait)), None)
