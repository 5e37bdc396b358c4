"""Platform signing keys and the JWKS that publishes them.

Every algorithm the platform signs with has a key from the moment the database is migrated (and
`civicore setup` makes sure of it), so the JWKS is never empty. A rotation publishes the next key
at once but lets it sign only after PUBLISH_AHEAD, longer than any relying party may cache the
JWKS; until then the current key keeps signing. Retired keys stay published for
RETIRED_PUBLISHED so signatures made before a rotation keep verifying. A compromised key is
replaced with `immediately=True`. Private keys are sealed with the field encryption keys and never
leave the database in clear.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from civicore.core.crypto import decrypt, encrypt
from civicore.core.models import SigningKey

PLATFORM_ALGORITHMS = (SigningKey.Algorithm.ES256, SigningKey.Algorithm.EDDSA, SigningKey.Algorithm.RS256)
RETIRED_PUBLISHED = timedelta(days=7)
# How long relying parties may cache the JWKS (its Cache-Control max-age).
JWKS_MAX_AGE_SECONDS = 300
# Web processes pick up a rotation within this many seconds.
CACHE_SECONDS = 60.0
# A rotated-in key is published this long before it signs: the JWKS cache lifetime, the
# processes' own cache, and a margin for clocks and slow clients.
PUBLISH_AHEAD = timedelta(seconds=2 * (JWKS_MAX_AGE_SECONDS + CACHE_SECONDS))
_CONTEXT = "core.signingkey.private_jwk"

SigningJWK = ECKey | OKPKey | RSAKey

_cache: dict[str, tuple[float, Any]] = {}


def reset_cache() -> None:
    _cache.clear()


def _generate(alg: str) -> SigningJWK:
    if alg == SigningKey.Algorithm.ES256:
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == SigningKey.Algorithm.EDDSA:
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    if alg == SigningKey.Algorithm.RS256:
        return RSAKey.generate_key(2048, auto_kid=True)
    raise ValueError(f"Unsupported signing algorithm {alg!r}")


def _current(alg: str, now: Any) -> SigningKey | None:
    """The key that signs for `alg` at `now`: activated, not yet retired, the latest to activate."""
    return (
        SigningKey.objects.filter(alg=alg, activates_at__lte=now)
        .exclude(retired_at__lte=now)
        .order_by("-activates_at", "-id")
        .first()
    )


@transaction.atomic
def signing_key_rotate(*, alg: str = SigningKey.Algorithm.ES256, immediately: bool = False) -> SigningKey:
    """Publish a new key for `alg`. It signs from PUBLISH_AHEAD on, when the key it replaces is
    retired; with no current key, or `immediately` (a compromised key), it signs at once. A key
    still waiting from an earlier rotation has signed nothing and is replaced."""
    now = timezone.now()
    list(SigningKey.objects.select_for_update().filter(alg=alg).values_list("id"))  # one rotation at a time
    SigningKey.objects.filter(alg=alg, activates_at__gt=now).delete()
    current = _current(alg, now)
    activates_at = now if immediately or current is None else now + PUBLISH_AHEAD
    SigningKey.objects.filter(alg=alg).exclude(retired_at__lte=activates_at).update(retired_at=activates_at)
    key = _generate(alg)
    created = SigningKey.objects.create(
        kid=str(key.kid),
        alg=alg,
        private_jwk=encrypt(json.dumps(key.as_dict(private=True)), context=_CONTEXT),
        public_jwk={**key.as_dict(private=False), "use": "sig", "alg": alg},
        created_at=now,
        activates_at=activates_at,
    )
    reset_cache()
    return created


def ensure_signing_keys() -> list[SigningKey]:
    """Create a signing key for every platform algorithm that has none; returns those created."""
    now = timezone.now()
    return [
        signing_key_rotate(alg=alg, immediately=True)
        for alg in PLATFORM_ALGORITHMS
        if _current(alg, now) is None
        and not SigningKey.objects.filter(alg=alg, activates_at__gt=now).exists()
    ]


def _load(row: SigningKey) -> SigningJWK:
    data = json.loads(decrypt(row.private_jwk, context=_CONTEXT))
    if row.alg == SigningKey.Algorithm.EDDSA:
        return OKPKey.import_key(data)
    if row.alg == SigningKey.Algorithm.RS256:
        return RSAKey.import_key(data)
    return ECKey.import_key(data)


def signing_key(alg: str = SigningKey.Algorithm.ES256) -> SigningJWK:
    """The private key that signs for `alg` now (its `kid` set); created if there is none."""
    cached = _cache.get(f"sign:{alg}")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    now = timezone.now()
    row = _current(alg, now)
    if row is None:
        pending = SigningKey.objects.filter(alg=alg, activates_at__gt=now).order_by("activates_at").first()
        row = pending if pending is not None else signing_key_rotate(alg=alg, immediately=True)
    key = _load(row)
    lifetime = CACHE_SECONDS
    if row.retired_at is not None:  # a rotation is due: switch to the next key on time
        lifetime = max(0.0, min(lifetime, (row.retired_at - now).total_seconds()))
    _cache[f"sign:{alg}"] = (time.monotonic() + lifetime, key)
    return key


def public_jwks() -> dict[str, Any]:
    """Every key a relying party may meet: the next ones, the active ones and those retired
    recently."""
    cached = _cache.get("jwks")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    cutoff = timezone.now() - RETIRED_PUBLISHED
    rows = SigningKey.objects.exclude(retired_at__lt=cutoff)
    jwks = {"keys": [row.public_jwk for row in rows]}
    _cache["jwks"] = (time.monotonic() + CACHE_SECONDS, jwks)
    return jwks


def verification_keys() -> KeySet:
    """The published keys as a joserfc KeySet, for verifying our own signatures."""
    return KeySet.import_key_set(public_jwks())  # type: ignore[arg-type]
