"""Consents a citizen gives an agency application, and the OAuth artefacts that carry them.

A Consent names the items, the purpose and how long; it is checked on every read, so revoking it
or letting it expire stops the agency at once. Pushed requests, authorization codes, access and
refresh tokens are kept only as SHA-256 hashes (a refresh token's successors also encrypted, for
the seconds of the refresh grace window), and each token belongs to exactly one consent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class Consent(models.Model):
    class Ending(models.TextChoices):
        REVOKED = "revoked", _("Withdrawn")
        REPLACED = "replaced", _("Replaced by a newer consent")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="consents")
    application = models.ForeignKey(
        "registry.AgencyApplication", on_delete=models.PROTECT, related_name="consents"
    )
    items = models.JSONField(
        default=list, blank=True, help_text=_("Profile item keys the application may read")
    )
    purpose = models.CharField(max_length=60)
    # The purpose as the citizen read it on the consent screen, kept even if the registry changes.
    purpose_name_vi = models.CharField(max_length=300)
    purpose_name_en = models.CharField(max_length=300, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    ended_because = models.CharField(max_length=20, choices=Ending.choices, blank=True)
    # The citizen allowed the application to keep receiving the items while they are away
    # (the offline_access scope): it may then refresh its tokens until the consent ends.
    offline_access = models.BooleanField(default=False)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["person", "-granted_at"], name="consent_person_granted")]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.application_id}, {self.purpose})"

    @property
    def purpose_name(self) -> str:
        if (get_language() or "vi").startswith("en") and self.purpose_name_en:
            return self.purpose_name_en
        return self.purpose_name_vi

    def is_active(self, at: datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (at or timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return self.ended_because or self.Ending.REVOKED
        return "active" if self.is_active() else "expired"


class AuthorizationCode(models.Model):
    """One authorization code: single use, bound to its client, redirect URI and PKCE challenge."""

    code_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="codes")
    redirect_uri = models.CharField(max_length=2000)
    scope = models.CharField(max_length=1000)
    code_challenge = models.CharField(max_length=128)
    code_challenge_method = models.CharField(max_length=10)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # OpenID Connect: what the ID token will say about the login behind this code.
    nonce = models.CharField(max_length=255, blank=True)
    auth_time = models.DateTimeField(null=True, blank=True)
    acr = models.CharField(max_length=100, blank=True)
    amr = models.JSONField(default=list, blank=True)
    sid = models.CharField(max_length=64, blank=True)
    # The claims the client asked for by name (the `claims` parameter, OpenID Connect Core 5.5),
    # already kept to those of items it may have: {"userinfo": {...}, "id_token": {...}}.
    claims = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["application", "nonce"], name="consent_code_nonce", condition=~models.Q(nonce="")
            )
        ]

    def __str__(self) -> str:
        return f"code for consent {self.consent_id}"

    # What Authlib's AuthorizationCodeMixin asks of a code.
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class AccessToken(models.Model):
    """An opaque bearer token; only its SHA-256 is stored. Valid only while its consent is."""

    token_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="tokens")
    code = models.ForeignKey(
        AuthorizationCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens"
    )
    scope = models.CharField(max_length=1000)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token for consent {self.consent_id}"


class ClientAssertionUse(models.Model):
    """A client assertion's jti, kept until the assertion expires so it cannot be replayed."""

    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=200)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "jti"], name="consent_assertion_jti_once")
        ]

    def __str__(self) -> str:
        return self.jti


class RefreshToken(models.Model):
    """An opaque refresh token (only its SHA-256 is stored), issued when the citizen allowed
    offline access. Each use spends it and issues the next one of its family, the tokens that
    descend from one authorization code; presenting a spent one revokes the whole family."""

    token_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="refresh_tokens")
    code = models.ForeignKey(AuthorizationCode, on_delete=models.CASCADE, related_name="refresh_tokens")
    scope = models.CharField(max_length=1000)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The access and refresh tokens this one was exchanged for, encrypted, kept only until
    # `successor_until` (the refresh grace window) so that the same client retrying the same
    # refresh gets the same pair instead of setting off reuse detection; wiped afterwards.
    successor = EncryptedTextField(blank=True)
    successor_until = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"refresh token for consent {self.consent_id}"

    # What Authlib's refresh token grant asks of a token.
    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client: Any) -> bool:
        return bool(self.application_id == client.application.pk)


class PushedAuthorizationRequest(models.Model):
    """An authorization request an application pushed (RFC 9126), already validated, waiting for
    the citizen's browser to bring its request_uri (hashed here) to the authorization endpoint.

    It must be presented before `expires_at`; the first browser to present it holds it (by a
    secret in that browser's session) until `decide_by`, long enough to log in and decide, and
    the decision spends it."""

    request_uri_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    parameters = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    browser_hash = models.CharField(max_length=64, blank=True)
    decide_by = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"pushed request of {self.application_id}"


class ClientSession(models.Model):
    """An application that was issued an ID token during one of a citizen's login sessions (the
    OpenID Connect `sid`), so that it can be told when that session ends: by a logout token
    posted to its back-channel logout URI, and by its front-channel logout page loaded on the
    sign-out page. `ended_at` is set once, when the session ends."""

    sid = models.CharField(max_length=64)
    application = models.ForeignKey("registry.AgencyApplication", on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey("identity.Person", on_delete=models.CASCADE, related_name="+")
    issued_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sid", "application"], name="consent_client_session_once")
        ]
        indexes = [
            models.Index(
                fields=["person", "sid"],
                name="consent_client_session_open",
                condition=models.Q(ended_at=None),
            )
        ]

    def __str__(self) -> str:
        return f"session {self.sid[:8]} of {self.application_id}"
