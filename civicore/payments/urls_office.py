"""Officers' payment pages, under /office/payments/."""

from django.urls import path

from civicore.payments import office_views, proposal_views, report_views

app_name = "payments_office"
urlpatterns = [
    path("", office_views.payment_list, name="list"),
    path("export.csv", office_views.payment_export, name="export"),
    path("reconciliation/", office_views.reconciliation, name="reconciliation"),
    path(
        "reconciliation/<int:line_id>/resolve/",
        office_views.reconciliation_resolve,
        name="reconciliation_resolve",
    ),
    path("statements/", office_views.statements, name="statements"),
    path("proposals/", proposal_views.proposal_list, name="proposals"),
    path("proposals/<int:refund_id>/decide/", proposal_views.proposal_decide, name="proposal_decide"),
    path("report/", report_views.report_page, name="report"),
    path("report.csv", report_views.report_csv, name="report_csv"),
    path("<uuid:public_id>/", office_views.payment_detail, name="detail"),
    path("<uuid:public_id>/refund/", office_views.payment_refund, name="refund"),
    path(
        "<uuid:public_id>/refunds/<str:reference>/confirm/",
        office_views.refund_confirm,
        name="refund_confirm",
    ),
]
