from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VcConfig(AppConfig):
    name = "civicore.vc"
    label = "vc"
    verbose_name = _("Verifiable credentials")
