"""Real mounted filesystems (psutil) with space and, where the OS has them, inodes (os.statvfs)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import psutil

from shared.disk_health import FilesystemFacts

# Pseudo, network and read-only image filesystems: their space is not a disk filling up.
SKIPPED_FSTYPES = frozenset(
    {
        "squashfs",
        "iso9660",
        "udf",
        "erofs",
        "cramfs",
        "romfs",
        "tmpfs",
        "devtmpfs",
        "ramfs",
        "overlay",
        "aufs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "fuse.sshfs",
        "fuse.rclone",
        "afpfs",
        "webdav",
        "davfs",
        "autofs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "nsfs",
        "tracefs",
        "debugfs",
        "securityfs",
        "efivarfs",
    }
)
# psutil's Windows/macOS mount options naming removable images and network shares.
SKIPPED_OPTIONS = frozenset({"cdrom", "remote"})


def is_real(partition: Any) -> bool:
    """A mount worth watching: a local filesystem on storage that can fill up."""
    options = set(partition.opts.split(","))
    return (
        bool(partition.fstype) and partition.fstype not in SKIPPED_FSTYPES and not options & SKIPPED_OPTIONS
    )


def real_partitions(partitions: Iterable[Any]) -> list[Any]:
    """The real mounts among psutil partitions, each mount point once (bind mounts repeat them)."""
    seen: set[str] = set()
    kept = []
    for partition in partitions:
        if is_real(partition) and partition.mountpoint not in seen:
            seen.add(partition.mountpoint)
            kept.append(partition)
    return kept


def _inodes(mount: str) -> tuple[int | None, int | None]:
    if not hasattr(os, "statvfs"):
        return None, None
    stats = os.statvfs(mount)
    # Filesystems without a fixed inode table (btrfs, vfat) report 0 total inodes.
    return (stats.f_files, stats.f_favail) if stats.f_files else (None, None)


def read_filesystems() -> list[FilesystemFacts]:
    """Space (and inodes) of every real mounted filesystem; mounts that vanish meanwhile are skipped."""
    facts = []
    for partition in real_partitions(psutil.disk_partitions(all=False)):
        try:
            usage = psutil.disk_usage(partition.mountpoint)
            inodes_total, inodes_free = _inodes(partition.mountpoint)
        except OSError:
            continue
        facts.append(
            FilesystemFacts(
                mount=partition.mountpoint,
                device=partition.device,
                fstype=partition.fstype,
                total_bytes=usage.total,
                used_bytes=usage.used,
                free_bytes=usage.free,
                inodes_total=inodes_total,
                inodes_free=inodes_free,
            )
        )
    return facts
