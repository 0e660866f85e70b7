"""Image files on a share: the newest file matching a pattern, its age and size against the one before."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, free_bytes
from agent.checks.backup_results.jobs import ImageFilesJob
from agent.checks.rootfs import below, mtime


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
    found: Facts = {
        "last_result": "success" if size else "failed",
        "last_run_ended_at": made,
        "last_success_at": made if size else next((mtime(f) for f in files if f.stat().st_size), None),
        "bytes_total": size,
        "previous_bytes_total": files[1].stat().st_size if len(files) > 1 else None,
        "file_count": 1,
        "destination_free_bytes": free,
        "detail": {"file": str(newest.relative_to(folder))},
    }
    if not size:
        found["error"] = f"the newest image {newest.name} is empty"
    return found


def collect(job: ImageFilesJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the image folder (a path below the check's root, so tests use real trees)."""
    return facts(below(context.root, str(job.path)), job.glob)
