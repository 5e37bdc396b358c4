"""Writes for people, their verified data and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.core.crypto import lookup_hash
from civicore.core.errors import Conflict
from civicore.identity.models import ApiToken, Person, ProfileItem, User

NATIONAL_ID_PURPOSE = "national_id"
TOKEN_PREFIX = "cvc_"  # noqa: S105 - a public marker, not a secret


@transaction.atomic
def person_register(
    *,
    user: User,
    national_id: str,
    full_name: str,
    date_of_birth: date,
    address: str,
    source: str,
    verified_at: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> Person:
    """Link a user to their national identity and record verified profile items."""
    national_id = "".join(national_id.split())
    id_hash = lookup_hash(national_id, purpose=NATIONAL_ID_PURPOSE)
    if Person.objects.filter(national_id_hash=id_hash).exists():
        raise Conflict(_("This national ID number is already registered."), code="national_id_taken")
    person = Person.objects.create(user=user, national_id=national_id, national_id_hash=id_hash)
    verified_at = verified_at or timezone.now()
    values = {
        ProfileItem.Key.FULL_NAME: full_name,
        ProfileItem.Key.DATE_OF_BIRTH: date_of_birth.isoformat(),
        ProfileItem.Key.NATIONAL_ID: national_id,
        ProfileItem.Key.ADDRESS: address,
        ProfileItem.Key.EMAIL: user.email,
        **(extra or {}),
    }
    ProfileItem.objects.bulk_create(
        [
            ProfileItem(person=person, key=key, value=value, source=source, verified_at=verified_at)
            for key, value in values.items()
        ]
    )
    if user.full_name != full_name:
        user.full_name = full_name
        user.save(update_fields=["full_name"])
    return person


def person_find_by_national_id(national_id: str) -> Person | None:
    return Person.objects.filter(
        national_id_hash=lookup_hash("".join(national_id.split()), purpose=NATIONAL_ID_PURPOSE)
    ).first()


def api_token_create(*, user: User, name: str, lifetime: timedelta | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        token_hash=hashlib.sha256(secret.encode()).hexdigest(),
        prefix=secret[:12],
        expires_at=timezone.now() + lifetime if lifetime else None,
    )
    return token, secret


def api_token_authenticate(secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user", "user__person")
        .filter(token_hash=hashlib.sha256(secret.encode()).hexdigest(), revoked=False)
        .first()
    )
    now = timezone.now()
    if token is None or not token.user.is_active or (token.expires_at and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
