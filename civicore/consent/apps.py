from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsentConfig(AppConfig):
    name = "civicore.consent"
    label = "consent"
    verbose_name = _("Consented sharing")

    def ready(self) -> None:
        from allauth.account import signals as account_signals
        from django.contrib.auth.signals import user_logged_out

        from civicore.consent import services
        from civicore.identity.signals import session_ending

        # Every way a citizen's login session ends tells the applications that took part in it.
        user_logged_out.connect(services.on_user_logged_out, dispatch_uid="consent.logout")
        session_ending.connect(services.on_session_ending, dispatch_uid="consent.session_ending")
        for signal in (
            account_signals.password_changed,
            account_signals.password_set,
            account_signals.password_reset,
        ):
            signal.connect(services.on_password_changed, dispatch_uid="consent.password_changed")
