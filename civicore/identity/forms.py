"""The sign-up form: allauth's e-mail and password, plus the citizen's name, national ID number
and an optional phone number. The account's person starts at assurance level 1: the number is
only claimed until an officer or an agency of record confirms it.

Whether a national ID number is already registered is something an attacker could learn by
trying many numbers, so each check counts against the client's IP address
(`SIGNUP_NATIONAL_ID_CHECKS_PER_HOUR`); the refusal never says whose account holds the number.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context
from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicore.core import throttle
from civicore.identity import items as item_registry
from civicore.identity.models import User
from civicore.identity.selectors import person_find
from civicore.identity.services import (
    InvalidItemValues,
    NationalIdTaken,
    national_id_taken_message,
    person_self_register,
)

# Letters (any script, with their diacritics) in words separated by one space, hyphen, apostrophe
# or full stop: "Nguyễn Thị Minh Khai", "H'Hen Niê". Nothing a browser could take for markup.
_NAME = re.compile(r"[^\W\d_]+(?:[ '’.\-][^\W\d_]+)*\.?")
RATE_WINDOW_SECONDS = 60 * 60
NATIONAL_ID_SCOPE = "signup_national_id"


def national_id_check_allowed(request: HttpRequest | None) -> bool:
    """Count one national ID check for the client; False once it is over the hourly limit.

    Counted by the login throttle (atomic on every cache backend, the client address read the
    same way as for sign-in), under a scope whose allowance follows the setting."""
    limit = int(getattr(settings, "SIGNUP_NATIONAL_ID_CHECKS_PER_HOUR", 10))
    throttle.register(
        NATIONAL_ID_SCOPE,
        address=throttle.Limit(free=limit, steps=(RATE_WINDOW_SECONDS,), decay=RATE_WINDOW_SECONDS),
    )
    keys = {"address": throttle.client_address(request) if request is not None else "unknown"}
    if not throttle.check(NATIONAL_ID_SCOPE, keys).allowed:
        return False
    throttle.fail(NATIONAL_ID_SCOPE, keys)
    return True


class SignupForm(AllauthSignupForm):
    full_name = forms.CharField(
        label=gettext_lazy("Full name"),
        max_length=200,
        help_text=gettext_lazy("As written on your citizen identity card."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    national_id = forms.CharField(
        label=gettext_lazy("National ID number"),
        max_length=20,
        help_text=gettext_lazy(
            "The 12 digits on your citizen identity card. Until an officer or the agency that holds "
            "your records confirms it, services that need a verified identity stay closed to you."
        ),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    phone = forms.CharField(
        label=gettext_lazy("Phone number (optional)"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )

    field_order = ["full_name", "national_id", "email", "phone", "password1", "password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        email = self.fields.get("email")
        if email is not None:
            # The profile's e-mail item holds at most 254 characters, as RFC 5321 allows.
            email.max_length = 254
            email.validators.append(MaxLengthValidator(254))
            email.widget.attrs["maxlength"] = "254"
            email.help_text = _("We send a link to this address; your account works once you open it.")

    def clean_full_name(self) -> str:
        name = " ".join(unicodedata.normalize("NFC", self.cleaned_data["full_name"]).split())
        if not _NAME.fullmatch(name):
            raise forms.ValidationError(
                _("Write your name in letters, as on your citizen identity card."), code="invalid_name"
            )
        return name

    def clean_national_id(self) -> str:
        try:
            national_id = item_registry.get("national_id").clean(self.cleaned_data["national_id"])
        except item_registry.ItemValueError as exc:
            raise forms.ValidationError(exc.message(), code="invalid_national_id") from exc
        if not national_id_check_allowed(context.request):
            raise forms.ValidationError(
                _("Too many attempts from your network. Please try again in an hour."),
                code="rate_limited",
            )
        if person_find(key="national_id", value=national_id) is not None:
            raise forms.ValidationError(national_id_taken_message(), code="national_id_taken")
        return national_id

    def clean_phone(self) -> str:
        raw = self.cleaned_data.get("phone", "")
        if not raw:
            return ""
        try:
            return item_registry.get("phone").clean(raw)
        except item_registry.ItemValueError as exc:
            raise forms.ValidationError(exc.message(), code="invalid_phone") from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("password1") or ""
        national_id = cleaned.get("national_id") or ""
        name = "".join((cleaned.get("full_name") or "").casefold().split())
        folded = "".join(password.casefold().split())
        if password and (
            (national_id and national_id in re.sub(r"\D", "", password))
            or (len(name) >= 4 and name in folded)
        ):
            self.add_error(
                "password1",
                forms.ValidationError(
                    _("Your password must not contain your name or your national ID number."),
                    code="password_personal",
                ),
            )
        return cleaned

    def save(self, request: HttpRequest) -> User:
        user: User = super().save(request)
        person_self_register(
            user=user,
            national_id=self.cleaned_data["national_id"],
            full_name=self.cleaned_data["full_name"],
            phone=self.cleaned_data.get("phone", ""),
        )
        return user

    def try_save(self, request: HttpRequest) -> tuple[User | None, HttpResponse | None]:
        """Create the account and its person in one transaction; a national ID number that was
        registered between the check and now is reported on the form like any other error."""
        try:
            with transaction.atomic():
                return super().try_save(request)
        except NationalIdTaken:
            self.add_error("national_id", national_id_taken_message())
        except InvalidItemValues as exc:
            # The fields above check what the profile items do; this is a safety net.
            for key, message in (exc.details or {}).items():
                self.add_error(key if key in self.fields else None, message)
        return None, TemplateResponse(
            request, "account/signup.html", {"form": self, "login_url": reverse("account_login")}
        )
