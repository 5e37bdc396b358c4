"""Open311 GeoReport v2, mounted at /open311/v2/ (config/urls.py). The extension is the format."""

from django.urls import path

from civicore.open311 import views

app_name = "open311"
urlpatterns = [
    path("services.<str:fmt>", views.services, name="services"),
    path("services/<str:code>.<str:fmt>", views.service_definition, name="service_definition"),
    path("requests.<str:fmt>", views.service_requests, name="requests"),
    path("requests/<str:request_id>.<str:fmt>", views.service_request, name="request"),
]
