from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from civicore.agencies import permissions
from civicore.agencies.models import Agency, Officer, Team


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name_vi", "name_en", "level")
    search_fields = ("code", "name_vi", "name_en")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "agency")
    list_filter = ("agency",)


class OfficerAdminForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        choices=permissions.role_choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Officer
        fields = ("user", "agency", "team", "roles", "active")


@admin.register(Officer)
class OfficerAdmin(admin.ModelAdmin):
    """Platform administrators appoint officers (typically each agency's first admin); the
    change goes through the audited service like an agency admin's."""

    form = OfficerAdminForm
    list_display = ("user", "agency", "team", "roles", "active")
    list_filter = ("agency", "active")
    raw_id_fields = ("user",)

    def save_model(self, request: HttpRequest, obj: Officer, form: Any, change: bool) -> None:
        from civicore.agencies.services import officer_provision

        saved = officer_provision(
            actor=request.user,
            user=obj.user,
            agency=obj.agency,
            roles=list(form.cleaned_data.get("roles") or []),
            team=obj.team,
            active=obj.active,
        )
        obj.pk = saved.pk
