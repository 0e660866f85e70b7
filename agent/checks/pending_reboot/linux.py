"""Linux pending-reboot provider: Debian's flag file, needs-restarting, needrestart and installed kernels."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from agent.checks import CheckContext
from agent.checks.pending_reboot import RebootFacts, sessions_from, tty_last_input
from agent.checks.rootfs import below, linux_boot_id, linux_boot_time, mtime, read_text
from agent.commands import CommandNotFound, CommandResult, Runner
from shared.pending_reboot import RebootReason

# needrestart's kernel status: 2 = ABI-compatible upgrade pending, 3 = version upgrade pending.
KERNEL_UPGRADE_PENDING = {"2": "ABI-compatible kernel upgrade", "3": "kernel version upgrade"}


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing versions by segment: numbers as numbers, ranked above letters (as rpmvercmp)."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in re.findall(r"\d+|[A-Za-z]+", version)
    )


def kernel_flavour(release: str) -> str:
    """The kernel's flavour without numbers (amd, rt-amd, generic, elx), so only like kernels compare."""
    rest = re.sub(r"^[\d.]+(?:-[\d.]+)?[-.]?", "", release)
    # Digits, dots and underscores vary between builds of one flavour (el9 -> el9_5, fc38 -> fc39).
    return re.sub(r"[\d._]+", "", rest)


def reboot_required_flag(root: Path) -> tuple[RebootReason, datetime | None] | None:
    """Debian/Ubuntu's /run/reboot-required, with the packages that asked for it and when it was set."""
    flag = below(root, "/run/reboot-required")
    if not flag.exists():
        return None
    packages = sorted(set((read_text(root, "/run/reboot-required.pkgs") or "").split()))
    detail = ", ".join(packages) if packages else "/run/reboot-required is present"
    return RebootReason(source="reboot-required-file", confidence="high", detail=detail), mtime(flag)


def parse_needs_restarting(result: CommandResult) -> RebootReason | None:
    """`needs-restarting -r`: exit 1 with its verdict means reboot needed (exit 1 alone may be an error)."""
    packages = re.findall(r"^\s+\*\s+(\S+)", result.stdout, re.MULTILINE)
    if result.returncode != 1 or not (packages or "Reboot is required" in result.stdout):
        return None
    detail = ", ".join(packages) if packages else "core libraries or services updated since boot"
    return RebootReason(source="needs-restarting", confidence="high", detail=detail)


def parse_needrestart(stdout: str) -> RebootReason | None:
    """`needrestart -b`: NEEDRESTART-KSTA 2 or 3 means the running kernel is not the expected one."""
    fields = dict(re.findall(r"^NEEDRESTART-(KSTA|KCUR|KEXP):\s*(.*?)\s*$", stdout, re.MULTILINE))
    what = KERNEL_UPGRADE_PENDING.get(fields.get("KSTA", ""))
    if what is None:
        return None
    detail = f"{what}: running {fields.get('KCUR', '?')}, expected {fields.get('KEXP', '?')}"
    return RebootReason(source="needrestart", confidence="high", detail=detail)


def installed_kernels(root: Path) -> dict[str, Path]:
    """Installed kernel releases and the file that shows each (boot/vmlinuz-*, or a complete modules dir)."""
    kernels: dict[str, Path] = {}
    for image in below(root, "/boot").glob("vmlinuz-*"):
        release = image.name.removeprefix("vmlinuz-")
        if release[:1].isdigit():
            kernels[release] = image
    for modules in ("/lib/modules", "/usr/lib/modules"):
        for directory in below(root, modules).glob("*"):
            # Leftover module dirs of removed kernels lack these files; they must not count as installed.
            marker = next(
                (directory / name for name in ("vmlinuz", "modules.dep") if (directory / name).exists()), None
            )
            if marker and directory.name[:1].isdigit():
                kernels.setdefault(directory.name, marker)
    return kernels


def installed_at(root: Path, release: str, shown_by: Path) -> datetime | None:
    """When a kernel was installed: its file's ctime or its modules.dep's mtime, whichever is earlier.

    Not the image's mtime: packages keep their files' build dates, so a kernel installed minutes ago
    would read as pending for weeks. Unpacking sets the ctime and depmod writes modules.dep at install;
    both only move later (a chmod, a DKMS rebuild), so the earlier is the closer one.
    """
    known = []
    with contextlib.suppress(OSError):
        known.append(datetime.fromtimestamp(shown_by.stat().st_ctime, UTC))
    known += [
        when
        for modules in ("/lib/modules", "/usr/lib/modules")
        if (when := mtime(below(root, f"{modules}/{release}/modules.dep")))
    ]
    return min(known) if known else None


def newer_kernel(root: Path) -> tuple[RebootReason, datetime | None] | None:
    """A reason when an installed kernel of the running flavour is newer than the running one."""
    running = (read_text(root, "/proc/sys/kernel/osrelease") or "").strip()
    if not running:
        return None
    alike = {
        release: path
        for release, path in installed_kernels(root).items()
        if kernel_flavour(release) == kernel_flavour(running)
    }
    if not alike:
        return None
    newest = max(alike, key=version_key)
    if version_key(newest) <= version_key(running):
        return None
    detail = f"running kernel {running}, newest installed {newest}"
    return (
        RebootReason(source="newer-kernel", confidence="high", detail=detail),
        installed_at(root, newest, alike[newest]),
    )


def run_optional(run: Runner, argv: list[str]) -> CommandResult | None:
    """Run a tool that is only present on some distributions; None when it is not installed."""
    try:
        return run(argv, timeout=60.0)
    except CommandNotFound:
        return None


class LinuxProvider:
    """Pending-reboot facts of a Linux host, read below `context.root` and through `context.run`."""

    def __init__(self, context: CheckContext, users: Callable[[], Iterable[Any]] = psutil.users) -> None:
        self.context = context
        self.users = users

    def facts(self, now: datetime) -> RebootFacts:
        """Every reason found, the earliest known time one was set, boot identity and sessions."""
        root = self.context.root
        dated = [found for found in (reboot_required_flag(root), newer_kernel(root)) if found]
        reasons = [reason for reason, _ in dated]
        restarting = run_optional(self.context.run, ["needs-restarting", "-r"])
        needrestart = run_optional(self.context.run, ["needrestart", "-b"])
        reasons += [
            reason
            for reason in (
                parse_needs_restarting(restarting) if restarting else None,
                parse_needrestart(needrestart.stdout) if needrestart else None,
            )
            if reason
        ]
        since = [when for _, when in dated if when]
        return RebootFacts(
            reasons=reasons,
            pending_since=min(since) if since else None,
            boot_time=linux_boot_time(root),
            boot_id=linux_boot_id(root),
            sessions=sessions_from(self.users(), now, lambda tty: tty_last_input(root, tty)),
        )
