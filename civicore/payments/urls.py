from django.urls import path

from civicore.payments import views

app_name = "payments"

urlpatterns = [
    path("payments/gateways/<slug:code>/callback/", views.gateway_callback, name="gateway_callback"),
]
