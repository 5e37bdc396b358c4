"""The public environment page: aggregated readings of the city's sensors (anonymous)."""

from django.urls import path

from civicore.sensors import public_views

app_name = "sensors_public"
urlpatterns = [
    path("environment/", public_views.environment, name="environment"),
]
