"""Open311 writes: API keys for 311 clients, and filing a service request as a problem report.

A key is `o311_` and 43 random URL-safe characters, shown once; only its SHA-256 is stored.
Filing goes through civicore.reports.services.report_file (validation, rate limit per client,
AI routing, audit, notifications) and records in the same transaction which client filed it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.audit import services as audit
from civicore.core.errors import NotFound, ValidationFailed
from civicore.open311.models import KEY_PREFIX, PREFIX_LENGTH, Open311Client, Open311Submission

# Writing last_used_at on every request would make each call a write; once a minute is enough
# to tell an administrator whether a key is still in use.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_KEY_LENGTH = 100


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@transaction.atomic
def open311_client_create(*, name: str, agency: Any = None, actor: Any = None) -> tuple[Open311Client, str]:
    """Create a client and return it with its key, which is shown once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(_("Give the client a name of 1 to 100 characters."), code="invalid_name")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    client = Open311Client(
        name=name, agency=agency, key_hash=key_digest(secret), prefix=secret[:PREFIX_LENGTH]
    )
    client.full_clean()
    client.save()
    audit.record(
        actor=actor,
        action="open311.client.create",
        subject=client,
        agency=agency,
        details={"name": client.name, "prefix": client.prefix},
    )
    return client, secret


@transaction.atomic
def open311_client_revoke(*, prefix: str, actor: Any = None) -> list[Open311Client]:
    """Revoke the active clients whose key starts with `prefix` (at least the stored prefix)."""
    prefix = (prefix or "").strip()
    if len(prefix) < PREFIX_LENGTH:
        raise ValidationFailed(
            _("Give the key's prefix as listed (%(length)s characters).") % {"length": PREFIX_LENGTH},
            code="invalid_prefix",
        )
    clients = list(
        Open311Client.objects.select_for_update().filter(prefix=prefix[:PREFIX_LENGTH], active=True)
    )
    if not clients:
        raise NotFound(_("No active Open311 client has a key with this prefix."), code="client_not_found")
    now = timezone.now()
    for client in clients:
        client.active = False
        client.revoked_at = now
        client.save(update_fields=["active", "revoked_at"])
        audit.record(
            actor=actor,
            action="open311.client.revoke",
            subject=client,
            agency=client.agency,
            details={"name": client.name, "prefix": client.prefix},
        )
    return clients


def open311_client_authenticate(secret: str) -> Open311Client | None:
    """The active client holding this key, or None (unknown, revoked, malformed)."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > MAX_KEY_LENGTH:
        return None
    client = Open311Client.objects.filter(key_hash=key_digest(secret), active=True).first()
    if client is None:
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        Open311Client.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


def open311_request_file(
    *,
    client: Open311Client,
    description: str,
    latitude: float | None,
    longitude: float | None,
    address: str = "",
    service_code: str | None = None,
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    media_url: str = "",
    language: str = "vi",
) -> Any:
    """File a report for an Open311 client; without a service_code the AI model routes it.
    Without lat/long the address is looked up first, outside the transaction (it may take seconds)."""
    from civicore.reports.services import place_address, report_file

    placed_from_address = latitude is None or longitude is None
    if latitude is None or longitude is None:
        latitude, longitude = place_address(address, language=language)
    with transaction.atomic():
        report = report_file(
            reporter=None,
            description=description,
            latitude=latitude,
            longitude=longitude,
            address=address,
            category_code=service_code or None,
            contact_name=contact_name,
            contact_email=contact_email,
            contact_phone=contact_phone,
            language=language,
            source="open311",
            client_key=f"open311:{client.pk}",
            # A 311 app files for many people: its own, higher hourly limit (OPEN311_RATE_PER_HOUR).
            rate_per_hour=settings.OPEN311_RATE_PER_HOUR,
            placed_from_address=placed_from_address,
        )
        submission = Open311Submission(report=report, client=client, media_url=media_url)
        submission.full_clean(exclude=["report", "client"])
        submission.save()
    return report
