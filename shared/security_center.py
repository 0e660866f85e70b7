"""The `security_center` signal: antivirus products and their state, detections, firewall and OS protections."""

from __future__ import annotations

from typing import Literal

from shared.base import Signal, Timestamp, WireModel, fact

MAX_DETECTIONS = 200
Platform = Literal["windows", "macos", "linux"]


class AntivirusProduct(WireModel):
    """One antivirus product the device has, as the OS or the product itself reports it."""

    name: str = fact("Product name (Microsoft Defender Antivirus, ClamAV, XProtect, a registered third party)")
    source: str = fact("Where the facts come from (security-center, defender, clamav, xprotect)")
    enabled: bool | None = fact("The product is switched on; null when it could not be told", default=None)
    real_time: bool | None = fact(
        "Real-time (on-access) protection is on; null where the product does not say", default=None
    )
    up_to_date: bool | None = fact(
        "The product says its signatures are up to date; null where it does not say", default=None
    )
    signature_version: str | None = fact("Version of the signature database", default=None, max_length=200)
    signatures_updated_at: Timestamp | None = fact(
        "When the signatures were built or last updated; null where not known", "ISO 8601 timestamp", default=None
    )
    last_scan_at: Timestamp | None = fact("When the last scan ended; null where not known", "ISO 8601 timestamp",
                                          default=None)
    error: str | None = fact("Why part of this product's state could not be read", default=None, max_length=2000)


class Detection(WireModel):
    """One threat the antivirus detected, and what it did about it."""

    id: str = fact("Stable identifier of the detection (the product's detection id)", min_length=1, max_length=200)
    threat: str = fact("Threat name as the product names it")
    path: str | None = fact("File, process or resource the threat was found in", default=None)
    action: str = fact("What the product did or what state the threat is in (quarantined, removed, blocked, "
                       "allowed, failed, detected)")
    remediated: bool = fact("The threat was blocked, cleaned, quarantined or removed; false: it may still be active")
    user: str | None = fact("User account the detection happened under", default=None)
    detected_at: Timestamp | None = fact("When it was first detected", "ISO 8601 timestamp", default=None)


class Firewall(WireModel):
    """One firewall (or firewall profile) and whether it is on."""

    name: str = fact("Profile or firewall name (Domain, Private, Public; application firewall; ufw, firewalld, "
                     "nftables)")
    enabled: bool | None = fact("It is on and filtering; null when it could not be told", default=None)
    detail: str | None = fact("What the tool said, for a technician", default=None, max_length=500)


class Protection(WireModel):
    """One OS protection feature (Gatekeeper, System Integrity Protection) and whether it is on."""

    name: str = fact("Feature name (gatekeeper, sip)")
    enabled: bool | None = fact("It is on; null when it could not be told", default=None)
    detail: str | None = fact("What the tool said, for a technician", default=None, max_length=500)


class SecurityCenter(Signal):
    """The device's security state: antivirus products, their detections, firewalls and OS protections."""

    kind: Literal["security_center"] = "security_center"
    platform: Platform = fact("Operating system family the facts come from")
    antivirus: list[AntivirusProduct] = fact("Antivirus products found (empty: none)", default_factory=list)
    detections: list[Detection] = fact(
        f"Threats the antivirus still lists, newest first, at most {MAX_DETECTIONS}",
        default_factory=list, max_length=MAX_DETECTIONS,
    )
    detections_error: str | None = fact("Why detections could not be read (null: they were)", default=None,
                                        max_length=2000)
    firewalls: list[Firewall] = fact("Firewalls or firewall profiles found", default_factory=list)
    protections: list[Protection] = fact("OS protection features", default_factory=list)
