"""Image files on a share: the newest file matching a pattern, its age and size against the one before
of the same kind (a full image against a full one, an incremental against an incremental), so the first
incremental after a full is not a "size dropped 97 %".
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, free_bytes
from agent.checks.backup_results.jobs import ImageFilesJob
from agent.checks.rootfs import below, mtime

ImageKind = Literal["full", "incremental"]
# How imaging tools name what they write on a share. Veeam: .vbk full, .vib/.vrb incremental (forward or
# reverse); ShadowProtect: .spf full, .spi incremental; Macrium Reflect: <16 hex id>-<NN>-<NN>.mrimg,
# 00-00 the full; Acronis: name_full_b1_s1_v1.tib, name_inc_... / name_diff_....
INCREMENTAL_EXTENSIONS = frozenset({".vib", ".vrb", ".spi"})
FULL_EXTENSIONS = frozenset({".vbk", ".spf"})
MACRIUM = re.compile(r"^[0-9A-F]{16}-(\d{2})-(\d{2})\.mrimg$", re.IGNORECASE)
NAMED = re.compile(r"(?:^|[_.\-])(full|inc|incr|incremental|diff|differential)(?:[_.\-]|$)", re.IGNORECASE)


def image_kind(name: str) -> ImageKind:
    """Whether an image file is a full image or an incremental/differential one (full when the name says
    nothing: a tool writing whole images each time)."""
    suffix = Path(name).suffix.lower()
    if suffix in INCREMENTAL_EXTENSIONS:
        return "incremental"
    if suffix in FULL_EXTENSIONS:
        return "full"
    macrium = MACRIUM.search(name)
    if macrium:
        return "full" if macrium.groups() == ("00", "00") else "incremental"
    named = NAMED.search(Path(name).stem)
    if named:
        return "full" if named[1].lower() == "full" else "incremental"
    return "full"


def newest_files(folder: Path, pattern: str) -> list[Path]:
    """Files under `folder` matching `pattern`, newest first."""
    files = [path for path in folder.glob(pattern) if path.is_file()]
    return sorted(files, key=lambda path: path.stat().st_mtime, reverse=True)


def facts(folder: Path, pattern: str) -> Facts:
    """The job's facts from the folder: the newest image is the last backup; an empty one is a failure."""
    if not folder.is_dir():
        return {"last_result": "unknown", "error": f"{folder} is not reachable (share not mounted?)"}
    free = free_bytes(folder)
    files = newest_files(folder, pattern)
    if not files:
        return {
            "last_result": "unknown",
            "error": f"no file matching {pattern} in {folder} yet",
            "destination_free_bytes": free,
        }
    newest = files[0]
    size = newest.stat().st_size
    made = mtime(newest)
    kind = image_kind(newest.name)
    previous = next((f for f in files[1:] if image_kind(f.name) == kind), None)
    found: Facts = {
        "last_result": "success" if size else "failed",
        "last_run_ended_at": made,
        "last_success_at": made if size else next((mtime(f) for f in files if f.stat().st_size), None),
        "bytes_total": size,
        "previous_bytes_total": previous.stat().st_size if previous is not None else None,
        "file_count": 1,
        "destination_free_bytes": free,
        "detail": {"file": str(newest.relative_to(folder)), "kind": kind},
    }
    if not size:
        found["error"] = f"the newest image {newest.name} is empty"
    return found


def collect(job: ImageFilesJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the image folder (a path below the check's root, so tests use real trees)."""
    return facts(below(context.root, str(job.path)), job.glob)
