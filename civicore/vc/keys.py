"""Agencies' issuer keys and the signed trust list that publishes them.

Each agency signs its credentials and its status list with its own ES256 key. A rotation
publishes the next key at once and lets it sign only after PUBLISH_AHEAD (longer than verifiers
may cache the trust list), so no verifier meets a key it has not been told about. Keys are never
dropped from the trust list: what a retired key signed keeps verifying. A compromised key is
marked with the moment from which its signatures are not to be trusted, and replaced at once.

The trust list is a JWS signed with the platform's ES256 key (published at
/.well-known/jwks.json), so a verifier that holds that key can check it offline.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.core import jose as platform_jose
from civicore.core.errors import Conflict, NotFound, ValidationFailed
from civicore.vc.models import IssuerKey
from civicore.verifier import jose as vjose
from civicore.verifier.trustlist import TrustList, sign_trust_list

# How long verifiers may cache the trust list (its `exp` and the HTTP max-age).
TRUST_LIST_MAX_AGE = dt.timedelta(hours=6)
# A rotated-in key is published this long before it signs.
PUBLISH_AHEAD = dt.timedelta(hours=12)
CACHE_SECONDS = 30.0
TRUST_LIST_TYPE = "trust-list+jwt"

_cache: dict[str, tuple[float, Any]] = {}


def reset_cache() -> None:
    _cache.clear()


def issuer_id(agency: Agency) -> str:
    """The `iss` of an agency's credentials: its page's address on this platform."""
    return f"{settings.SITE_URL}/agencies/{agency.code}"


def private_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def load_pem(text: str) -> ec.EllipticCurvePrivateKey:
    """An EC P-256 private key from the PEM it is kept as (decrypted by its field)."""
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("issuer and holder keys are EC P-256")
    return key


def load_private(row: IssuerKey) -> ec.EllipticCurvePrivateKey:
    return load_pem(row.private_pem)


def _current(agency_id: int, now: dt.datetime) -> IssuerKey | None:
    return (
        IssuerKey.objects.filter(agency_id=agency_id, activates_at__lte=now, compromised_since__isnull=True)
        .exclude(retired_at__lte=now)
        .order_by("-activates_at", "-id")
        .first()
    )


@transaction.atomic
def issuer_key_rotate(*, agency: Agency, immediately: bool = False) -> IssuerKey:
    """Publish a new key for the agency. It signs from PUBLISH_AHEAD on, when the key it
    replaces retires; with no current key, or `immediately`, it signs at once. A key still
    waiting from an earlier rotation has signed nothing and is replaced."""
    now = timezone.now()
    list(IssuerKey.objects.select_for_update().filter(agency=agency).values_list("id"))
    IssuerKey.objects.filter(agency=agency, activates_at__gt=now).delete()
    current = _current(agency.pk, now)
    activates_at = now if immediately or current is None else now + PUBLISH_AHEAD
    IssuerKey.objects.filter(agency=agency).exclude(retired_at__lte=activates_at).update(
        retired_at=activates_at
    )
    private = ec.generate_private_key(ec.SECP256R1())
    public = vjose.public_jwk(private)
    row = IssuerKey.objects.create(
        agency=agency,
        kid=vjose.jwk_thumbprint(public),
        alg="ES256",
        public_jwk={**public, "alg": "ES256", "use": "sig"},
        private_pem=private_pem(private),
        created_at=now,
        activates_at=activates_at,
    )
    transaction.on_commit(reset_cache)
    return row


def issuer_key(agency: Agency) -> IssuerKey:
    """The key that signs for the agency now; created on first use."""
    now = timezone.now()
    row = _current(agency.pk, now)
    if row is None:
        pending = (
            IssuerKey.objects.filter(agency=agency, activates_at__gt=now, compromised_since__isnull=True)
            .order_by("activates_at")
            .first()
        )
        row = pending if pending is not None else issuer_key_rotate(agency=agency, immediately=True)
    return row


@transaction.atomic
def issuer_key_compromised(*, kid: str, since: dt.datetime, reason: str) -> IssuerKey:
    """Mark a key compromised from `since`: credentials it signed from then on fail everywhere
    the trust list reaches. When it was the agency's signing key, a new one signs at once."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the key is compromised.", code="reason_required")
    row = IssuerKey.objects.select_for_update().filter(kid=kid).first()
    if row is None:
        raise NotFound("No such issuer key", code="issuer_key_not_found")
    if row.compromised_since is not None:
        raise Conflict("The key is already marked compromised.", code="issuer_key_compromised")
    now = timezone.now()
    if since > now:
        raise ValidationFailed("A key cannot be compromised in the future.", code="compromise_in_future")
    was_signing = _current(row.agency_id, now) == row
    row.compromised_since = since
    row.compromise_reason = reason[:500]
    if row.retired_at is None or row.retired_at > now:
        row.retired_at = now
    row.save(update_fields=["compromised_since", "compromise_reason", "retired_at"])
    if was_signing:
        issuer_key_rotate(agency=row.agency, immediately=True)
    transaction.on_commit(reset_cache)
    return row


def _epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def trust_list_issuers() -> list[dict[str, Any]]:
    """Every agency that has issuer keys, with every key it ever had."""
    by_agency: dict[int, dict[str, Any]] = {}
    rows = IssuerKey.objects.select_related("agency").order_by("agency__code", "activates_at", "id")
    for row in rows:
        entry = by_agency.get(row.agency_id)
        if entry is None:
            entry = by_agency[row.agency_id] = {
                "iss": issuer_id(row.agency),
                "name": {"vi": row.agency.name_vi, "en": row.agency.name_en or row.agency.name_vi},
                "keys": [],
            }
        entry["keys"].append(
            {
                "kid": row.kid,
                "jwk": row.public_jwk,
                "not_before": _epoch(row.activates_at),
                "not_after": _epoch(row.retired_at),
                "compromised_since": _epoch(row.compromised_since),
            }
        )
    return list(by_agency.values())


def trust_list() -> TrustList:
    """The live trust list, as the platform's own verifier uses it (no signature round trip)."""
    cached = _cache.get("list")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    now = int(time.time())
    value = TrustList.from_dict(
        {
            "issuers": trust_list_issuers(),
            "issued_at": now,
            "expires_at": now + int(TRUST_LIST_MAX_AGE.total_seconds()),
        }
    )
    _cache["list"] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def trust_list_token() -> str:
    """The trust list as published: a JWS signed with the platform's ES256 key."""
    cached = _cache.get("token")
    if cached and cached[0] > time.monotonic():
        return str(cached[1])
    platform = platform_jose.signing_key("ES256")
    now = int(time.time())
    token = sign_trust_list(
        trust_list_issuers(),
        key=platform.private_key,
        kid=str(platform.kid),
        iss=settings.SITE_URL,
        iat=now,
        exp=now + int(TRUST_LIST_MAX_AGE.total_seconds()),
    )
    _cache["token"] = (time.monotonic() + CACHE_SECONDS, token)
    return token


def trust_anchors() -> list[dict[str, Any]]:
    """The platform keys a trust list may be signed with (the ES256 keys of the JWKS)."""
    return [key for key in platform_jose.public_jwks()["keys"] if key.get("kty") == "EC"]


def trust_list_json() -> str:
    return json.dumps(trust_list().to_dict(), ensure_ascii=False)
