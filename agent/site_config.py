"""The site document: what the collector tells this site's agents to probe (data, never commands), fetched,
verified against the collector's pinned configuration key, and kept in the state directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp

from agent.identity import CONFIG_PIN_FILE, Identity, write_private_file
from shared.clock import Clock, system_clock
from shared.reachability import (
    MAX_DOCUMENT_BYTES,
    SITE_CONFIG_PATH,
    DocumentRefused,
    SignedDocument,
    SiteConfig,
    verify_document,
)
from shared.signing import sign_headers

log = logging.getLogger(__name__)

DOCUMENT_FILE = "site-config.json"
# Declared devices change rarely; a change reaches the agents within this.
REFRESH_SECONDS = 600.0


def pinned_key(state_dir: Path) -> str | None:
    """The collector's configuration key (base64), pinned at enrolment or at the first document (a document
    signed by any other key is refused, whoever serves it); None before the first."""
    try:
        return (state_dir / CONFIG_PIN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def pin_key(state_dir: Path, key: str) -> None:
    """Pin the collector's configuration key (at enrolment, or at the first document)."""
    write_private_file(state_dir / CONFIG_PIN_FILE, key.encode())


def stored_document(state_dir: Path) -> SiteConfig | None:
    """The kept site document, verified again (it could have been changed on disk); None when there is none."""
    try:
        body = (state_dir / DOCUMENT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    key = pinned_key(state_dir)
    if key is None:
        raise DocumentRefused(f"{state_dir / CONFIG_PIN_FILE} is missing: the kept site document cannot be verified")
    return verify_document(body, key)


def accept(state_dir: Path, body: bytes, identity: Identity) -> SiteConfig:
    """Verify a document the collector sent, pinning its key at first sight, and keep it; DocumentRefused for a
    document of another site, an older version than the one kept, or one not signed by the pinned key."""
    key = pinned_key(state_dir)
    if key is None:
        try:
            key = SignedDocument.model_validate_json(body[:MAX_DOCUMENT_BYTES]).key
        except ValueError as exc:
            raise DocumentRefused("site document names no configuration key") from exc
    config = verify_document(body, key)
    if (config.client, config.site) != (identity.client, identity.site):
        raise DocumentRefused(f"site document is for {config.client}/{config.site}, this agent belongs to "
                              f"{identity.client}/{identity.site}")
    try:
        kept = stored_document(state_dir)
    except DocumentRefused:
        kept = None  # a damaged copy is replaced by the verified new one
    if kept is not None and config.version < kept.version:
        raise DocumentRefused(f"site document version {config.version} is older than the kept {kept.version}")
    if pinned_key(state_dir) is None:
        pin_key(state_dir, key)
    write_private_file(state_dir / DOCUMENT_FILE, body)
    return config


async def fetch(session: aiohttp.ClientSession, identity: Identity, collector_url: str, state_dir: Path,
                clock: Clock = system_clock) -> SiteConfig:
    """Fetch the site document (a signed request), verify it and keep it."""
    headers = sign_headers(identity.key, identity.agent_id, "GET", SITE_CONFIG_PATH, b"", int(clock().timestamp()))
    async with session.get(collector_url.rstrip("/") + SITE_CONFIG_PATH, headers=headers,
                           allow_redirects=False) as response:
        body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        if response.status != 200:
            raise DocumentRefused(f"the collector answered {response.status}: {body[:200].decode(errors='replace')}")
    return accept(state_dir, body, identity)


async def keep_fresh(session: aiohttp.ClientSession, identity: Identity, collector_url: str, state_dir: Path,
                     stop: asyncio.Event, clock: Clock = system_clock, every: float = REFRESH_SECONDS) -> None:
    """Fetch the site document now and then every `every` seconds until `stop`; a failure keeps the last copy."""
    while True:
        try:
            config = await fetch(session, identity, collector_url, state_dir, clock)
            log.debug("site document version %d: %d devices to probe", config.version, len(config.targets))
        except (DocumentRefused, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("site document not updated: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
