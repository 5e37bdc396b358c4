from django.urls import path

from civicore.core.placeholder import not_yet

app_name = "audit"
urlpatterns = [
    path("", not_yet, name="my_data"),
]
