"""Exceptions of the verifier package. Each carries a stable `code` that callers can map to a
message or an HTTP error; `verify()` never raises them, it turns every failure into a Verdict."""

from __future__ import annotations


class VerifierError(Exception):
    """Base class: something about a token, key, trust list or status list is not acceptable."""

    code = "verifier_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = str(message or self.__class__.__doc__ or self.code)
        if code:
            self.code = code


class MalformedError(VerifierError):
    """The input is not well-formed (encoding, JSON, structure or key material)."""

    code = "malformed"


class BadSignature(VerifierError):
    """The signature does not verify, or the algorithm does not fit the key."""

    code = "bad_signature"


class TrustListError(VerifierError):
    """The trust list cannot be used."""

    code = "trust_list"


class StatusListError(VerifierError):
    """The status list or status list token cannot be used."""

    code = "status_list"
