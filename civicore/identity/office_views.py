"""Back office: an officer who has checked a citizen's identity card in person raises the
citizen's account to assurance level 2. Only officers holding identity.verify; every change is
audited by `person_assurance_raise`, and a look-up that finds nobody changes nothing."""

from __future__ import annotations

import unicodedata

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from civicore.agencies.permissions import IDENTITY_VERIFY
from civicore.agencies.selectors import officer_for_user
from civicore.core.errors import ApplicationError
from civicore.identity.models import Person
from civicore.identity.services import person_assurance_raise, person_find_by_national_id


class VerifyIdentityForm(forms.Form):
    national_id = forms.CharField(
        label=gettext_lazy("National ID number on the card"), max_length=20, strip=True
    )
    full_name = forms.CharField(label=gettext_lazy("Full name on the card"), max_length=200, strip=True)
    checked_in_person = forms.BooleanField(
        label=gettext_lazy("I have seen the citizen in person and checked their identity card."),
        error_messages={"required": gettext_lazy("Confirm that you checked the card in person.")},
    )

    def clean_national_id(self) -> str:
        value = "".join(self.cleaned_data["national_id"].split())
        if not (value.isascii() and value.isdigit() and len(value) == 12):
            raise forms.ValidationError(_("A national ID number has 12 digits."))
        return value


def _comparable(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


@login_required
@require_http_methods(["GET", "POST"])
def verify_identity(request: HttpRequest) -> HttpResponse:
    officer = officer_for_user(request.user)
    if officer is None or not officer.has_perm(IDENTITY_VERIFY):
        raise DjangoPermissionDenied(_("Only officers who verify identities can use this page."))
    form = VerifyIdentityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        person = person_find_by_national_id(form.cleaned_data["national_id"])
        name_on_account = (person.user.full_name if person is not None else "") or ""
        if person is None or _comparable(name_on_account) != _comparable(form.cleaned_data["full_name"]):
            # The same answer whether the number is unknown or the name differs.
            form.add_error(None, _("No account matches this national ID number and name."))
        elif person.assurance_level >= Person.AssuranceLevel.VERIFIED:
            messages.info(request, _("This citizen's identity is already verified."))
            return redirect("office_verify_identity")
        else:
            try:
                person_assurance_raise(person=person, level=Person.AssuranceLevel.VERIFIED, officer=officer)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The citizen's identity is now verified (level 2)."))
                return redirect("office_verify_identity")
    return render(request, "identity/office_verify.html", {"form": form, "officer": officer})
