"""The back-office form with which a supervisor describes one of their agency's systems."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class AgencyApplicationForm(forms.Form):
    slug = forms.SlugField(
        label=_("Identifier"),
        max_length=40,
        help_text=_("Lower-case letters, digits and hyphens; it becomes part of the client ID."),
    )
    name_vi = forms.CharField(label=_("Name in Vietnamese"), max_length=300)
    name_en = forms.CharField(label=_("Name in English"), max_length=300, required=False)
    description_vi = forms.CharField(
        label=_("Description in Vietnamese"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    description_en = forms.CharField(
        label=_("Description in English"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("One per line, exactly as the system sends them. https only."),
    )
    post_logout_redirect_uris = forms.CharField(
        label=_("Addresses after signing out"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text=_("One per line: where the system may send a citizen after Civicore signs them out."),
    )
    require_par = forms.BooleanField(
        label=_("Require pushed authorization requests (PAR)"),
        required=False,
        help_text=_("Recommended: the system sends each login request to Civicore directly first."),
    )
    jwks = forms.CharField(
        label=_("Public keys (JWK Set, JSON)"),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        required=False,
        help_text=_("The system's public keys. Never paste a private key."),
    )
    jwks_url = forms.URLField(
        label=_("Or: URL of the public keys"), required=False, assume_scheme="https", max_length=200
    )
    webhook_url = forms.URLField(
        label=_("Webhook URL for change notifications"), required=False, assume_scheme="https", max_length=200
    )
    payment_events = forms.BooleanField(
        label=_("Tell this system about your agency's payments"),
        required=False,
        help_text=_(
            "When a fee for one of your agency's services is paid, refunded or held for an officer, "
            "a signed message goes to the webhook URL. Payments to other agencies are never sent."
        ),
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["slug"]

    def clean_redirect_uris(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["redirect_uris"].splitlines() if line.strip()]

    def clean_post_logout_redirect_uris(self) -> list[str]:
        text = self.cleaned_data["post_logout_redirect_uris"]
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean_jwks(self) -> dict[str, Any]:
        text = self.cleaned_data["jwks"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(_("This is not valid JSON.")) from exc
        if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
            raise forms.ValidationError(_('A JWK Set is an object with a "keys" list.'))
        private = {"d", "p", "q", "dp", "dq", "qi", "k"}
        if any(isinstance(k, dict) and private & set(k) for k in value["keys"]):
            raise forms.ValidationError(_("This contains a private key. Paste only the public keys."))
        return value
