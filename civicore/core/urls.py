from django.urls import path

from civicore.core.views import metrics

urlpatterns = [
    path("metrics", metrics, name="metrics"),  # Prometheus, for the holder of METRICS_TOKEN
]
