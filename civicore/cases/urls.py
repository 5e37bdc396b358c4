from django.urls import path

from civicore.core.placeholder import not_yet

app_name = "cases"
urlpatterns = [
    path("", not_yet, name="inbox"),
]
