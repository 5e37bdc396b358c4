from django.urls import path

from civicore.payments import receipt_views, views

app_name = "payments"

urlpatterns = [
    path("payments/gateways/<slug:code>/callback/", views.gateway_callback, name="gateway_callback"),
    path("payments/pay/<uuid:application_id>/", views.pay, name="pay"),
    path("payments/<uuid:public_id>/", views.detail, name="detail"),
    path("payments/<uuid:public_id>/return/", views.gateway_return, name="return"),
    path("payments/<uuid:public_id>/receipt.pdf", receipt_views.receipt_download, name="receipt"),
]
