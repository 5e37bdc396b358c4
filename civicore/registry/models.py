"""The agency registry: agency applications (systems) allowed to talk to Civicore, and the
message log of what they exchanged.

An AgencyApplication authenticates with its own keys (never a shared secret), may ask only for
`allowed_items` for one of its `purposes`, and is told about changes to `subscribed_items` (and,
with `payment_events`, about its own agency's payments) at its `webhook_url`. Every message with
an agency system is kept in the MessageLogEntry table, signed bodies encrypted, and its digest
sealed into the audit chain (X-Road's message log).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField
from civicore.core.models import BilingualNameMixin


def validate_redirect_uris(value: object) -> None:
    """A list of https URLs (http only on this computer), compared exactly when used."""
    if not isinstance(value, list) or not all(
        isinstance(uri, str)
        and len(uri) <= 2000
        and uri.startswith(("https://", "http://127.0.0.1", "http://localhost"))
        for uri in value
    ):
        raise ValidationError(_("Redirect URIs must be https (or http on this computer)."))


# Algorithms the platform signs with for relying parties (OpenID Connect Discovery requires RS256).
SIGNING_ALGORITHMS = [("RS256", "RS256"), ("ES256", "ES256")]


class AgencyApplication(BilingualNameMixin):
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="applications")
    client_id = models.SlugField(max_length=100, unique=True)
    description_vi = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    redirect_uris = models.JSONField(default=list, blank=True)
    jwks = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("The application's public keys (JWK Set), used unless a URL is given"),
    )
    jwks_url = models.URLField(blank=True)
    webhook_url = models.URLField(blank=True)
    allowed_items = models.JSONField(default=list, blank=True)
    purposes = models.JSONField(
        default=list, blank=True, help_text=_('Stated purposes: [{"code", "name_vi", "name_en"}]')
    )
    subscribed_items = models.JSONField(default=list, blank=True)
    payment_events = models.BooleanField(
        default=False,
        help_text=_(
            "Told at its webhook URL when a payment of its own agency is paid, refunded or held "
            "for an officer (never another agency's payments)"
        ),
    )
    post_logout_redirect_uris = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_redirect_uris],
        help_text=_("Where the application may send a citizen after signing them out (OpenID Connect)"),
    )
    require_par = models.BooleanField(
        default=False, help_text=_("Authorization requests must be pushed first (RFC 9126)")
    )
    # OpenID Connect Dynamic Client Registration 1.0 metadata, set by platform administrators.
    id_token_signed_response_alg = models.CharField(
        max_length=10,
        choices=SIGNING_ALGORITHMS,
        default="ES256",
        help_text=_("How ID tokens for this application are signed"),
    )
    userinfo_signed_response_alg = models.CharField(
        max_length=10,
        choices=SIGNING_ALGORITHMS,
        blank=True,
        help_text=_("Sign userinfo responses (application/jwt) with this algorithm; empty for plain JSON"),
    )
    backchannel_logout_uri = models.URLField(
        blank=True, help_text=_("Where Civicore posts a logout token when a citizen signs out (HTTPS)")
    )
    backchannel_logout_session_required = models.BooleanField(
        default=False, help_text=_("Logout tokens must name the session (sid)")
    )
    frontchannel_logout_uri = models.URLField(
        blank=True, help_text=_("Page loaded in a hidden frame when a citizen signs out")
    )
    frontchannel_logout_session_required = models.BooleanField(
        default=False, help_text=_("Add iss and sid to the front-channel logout URL")
    )
    is_agency_of_record = models.BooleanField(
        default=False, help_text=_("May record verified values for its allowed items")
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["client_id"]

    def purpose(self, code: str) -> dict[str, str] | None:
        return next((p for p in self.purposes if p.get("code") == code), None)


class MessageLogEntry(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in", _("Received from an agency system")
        OUTBOUND = "out", _("Sent to an agency system")

    at = models.DateTimeField(default=timezone.now)
    application = models.ForeignKey(AgencyApplication, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    operation = models.CharField(max_length=60)
    message_id = models.CharField(max_length=200, help_text=_("jti, or the delivery's idempotency key"))
    person = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    items = models.JSONField(default=list, blank=True)
    purpose = models.CharField(max_length=60, blank=True)
    consent_id = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    request_digest = models.CharField(max_length=64)
    response_digest = models.CharField(max_length=64, blank=True)
    request_body = EncryptedTextField(blank=True)
    response_body = EncryptedTextField(blank=True)
    audit_entry = models.OneToOneField(
        "audit.AuditEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "direction", "message_id"],
                condition=models.Q(direction="in"),
                name="registry_message_inbound_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.operation} {self.message_id}"
