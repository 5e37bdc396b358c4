"""Agency applications with real key pairs, and the signed requests their systems send."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

from civicore.agencies.models import Agency
from civicore.registry.models import AgencyApplication
from civicore.registry.services import agency_application_register

_n = iter(range(1, 10**6))


def make_agency(code: str | None = None) -> Agency:
    n = next(_n)
    return Agency.objects.create(code=code or f"agency-{n}", name_vi=f"Cơ quan {n}", name_en=f"Agency {n}")


def make_application(
    *, agency: Agency | None = None, key: ECKey | None = None, **fields: Any
) -> tuple[AgencyApplication, ECKey]:
    """A registered application and its private key (ES256)."""
    key = key or ECKey.generate_key("P-256", auto_kid=True)
    n = next(_n)
    defaults: dict[str, Any] = {
        "client_id": f"app-{n}",
        "agency": agency or make_agency(),
        "name_vi": f"Hệ thống {n}",
        "name_en": f"System {n}",
        "redirect_uris": ["https://agency.example/callback"],
        "jwks": {"keys": [key.as_dict(private=False)]},
        "allowed_items": ["full_name", "date_of_birth", "address"],
        "purposes": [{"code": "benefit", "name_vi": "Xét trợ cấp", "name_en": "Benefit eligibility"}],
    }
    defaults.update(fields)
    return agency_application_register(**defaults), key


def signed_request(
    app: AgencyApplication, key: ECKey, *, audience: str, lifetime: int = 60, **payload: Any
) -> str:
    now = int(time.time())
    claims = {
        "iss": app.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        **payload,
    }
    return jws.serialize_compact({"alg": "ES256", "kid": key.kid}, json.dumps(claims), key)
