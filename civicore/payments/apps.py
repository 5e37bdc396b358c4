from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "civicore.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from civicore.credentials import selectors as credentials_selectors
        from civicore.payments import receipts, services

        # A paid fee gets its signed receipt, and /verify knows receipts as it knows results.
        if receipts.receipt_hook not in services.paid_hooks:
            services.paid_hooks.append(receipts.receipt_hook)
        if services.payer_notify_paid not in services.paid_hooks:
            services.paid_hooks.append(services.payer_notify_paid)
        if not any(isinstance(r, receipts.ReceiptRegister) for r in credentials_selectors.registers):
            credentials_selectors.registers.append(receipts.ReceiptRegister())
