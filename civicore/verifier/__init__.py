"""Civicore's standalone credential verifier: issue, present and verify IETF SD-JWT VCs (RFC 9901,
draft-ietf-oauth-sd-jwt-vc) offline, against a signed trust list of agency keys, with revocation
from an IETF Token Status List (draft-ietf-oauth-status-list).

It is a plain Python package, not a Django app: it imports neither Django nor the rest of
Civicore and depends only on the standard library and `cryptography`, so banks, employers and
agencies can run it as it is. `verify()` never raises and never touches the network: it returns a
`Verdict`, and revocation comes from a `statuses(uri, idx)` callable the caller provides (for
example over status list tokens it fetched and checked with `load_status_list_token`).
"""

from .errors import BadSignature, MalformedError, StatusListError, TrustListError, VerifierError
from .jose import (
    b64url_decode,
    b64url_encode,
    jwk_thumbprint,
    load_public_jwk,
    public_jwk,
    sign_compact,
    verify_compact,
)
from .sdjwt import Disclosure, StatusLookup, Verdict, disclosures, issue, present, verify
from .statuslist import (
    INVALID,
    SUSPENDED,
    VALID,
    StatusList,
    load_status_list_token,
    sign_status_list_token,
)
from .trustlist import Issuer, TrustedKey, TrustList, load_trust_list, sign_trust_list

__all__ = [
    "INVALID",
    "SUSPENDED",
    "VALID",
    "BadSignature",
    "Disclosure",
    "Issuer",
    "MalformedError",
    "StatusList",
    "StatusListError",
    "StatusLookup",
    "TrustList",
    "TrustListError",
    "TrustedKey",
    "Verdict",
    "VerifierError",
    "b64url_decode",
    "b64url_encode",
    "disclosures",
    "issue",
    "jwk_thumbprint",
    "load_public_jwk",
    "load_status_list_token",
    "load_trust_list",
    "present",
    "public_jwk",
    "sign_compact",
    "sign_status_list_token",
    "sign_trust_list",
    "verify",
    "verify_compact",
]
