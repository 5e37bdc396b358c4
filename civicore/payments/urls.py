from django.urls import path

from civicore.payments import receipt_views, views

app_name = "payments"

urlpatterns = [
    path("gateways/<slug:code>/callback/", views.gateway_callback, name="gateway_callback"),
    path("pay/<uuid:application_id>/", views.pay, name="pay"),
    path("<uuid:public_id>/", views.detail, name="detail"),
    path("<uuid:public_id>/return/", views.gateway_return, name="return"),
    path("<uuid:public_id>/receipt.pdf", receipt_views.receipt_download, name="receipt"),
]
