"""Platform signing keys and the JWKS that publishes them.

One active key per algorithm signs; retired keys stay published for RETIRED_PUBLISHED so
relying parties holding a signature or a cached JWKS keep verifying through a rotation. Keys are
created on first use and rotated with `civicore keys rotate-signing`. Private keys are sealed with
the field encryption keys and never leave the database in clear.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from joserfc.jwk import ECKey, KeySet, OKPKey

from civicore.core.crypto import decrypt, encrypt
from civicore.core.models import SigningKey

RETIRED_PUBLISHED = timedelta(days=7)
# Web processes pick up a rotation within this many seconds.
CACHE_SECONDS = 60.0
_CONTEXT = "core.signingkey.private_jwk"

_cache: dict[str, tuple[float, Any]] = {}


def reset_cache() -> None:
    _cache.clear()


def _generate(alg: str) -> ECKey | OKPKey:
    if alg == SigningKey.Algorithm.ES256:
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == SigningKey.Algorithm.EDDSA:
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    raise ValueError(f"Unsupported signing algorithm {alg!r}")


@transaction.atomic
def signing_key_rotate(*, alg: str = SigningKey.Algorithm.ES256) -> SigningKey:
    """Create a new active key for `alg` and retire the one it replaces."""
    key = _generate(alg)
    public = {**key.as_dict(private=False), "use": "sig", "alg": alg}
    now = timezone.now()
    SigningKey.objects.filter(alg=alg, retired_at__isnull=True).update(retired_at=now)
    created = SigningKey.objects.create(
        kid=str(key.kid),
        alg=alg,
        private_jwk=encrypt(json.dumps(key.as_dict(private=True)), context=_CONTEXT),
        public_jwk=public,
        created_at=now,
    )
    reset_cache()
    return created


def _load(row: SigningKey) -> ECKey | OKPKey:
    data = json.loads(decrypt(row.private_jwk, context=_CONTEXT))
    if row.alg == SigningKey.Algorithm.EDDSA:
        return OKPKey.import_key(data)
    return ECKey.import_key(data)


def signing_key(alg: str = SigningKey.Algorithm.ES256) -> ECKey | OKPKey:
    """The active private key for `alg` (its `kid` set), created on first use."""
    cached = _cache.get(f"sign:{alg}")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    row = SigningKey.objects.filter(alg=alg, retired_at__isnull=True).first()
    if row is None:
        row = signing_key_rotate(alg=alg)
    key = _load(row)
    _cache[f"sign:{alg}"] = (time.monotonic() + CACHE_SECONDS, key)
    return key


def public_jwks() -> dict[str, Any]:
    """Every key a relying party may meet: the active ones and those retired recently."""
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
