from django.urls import path

from civicore.core.placeholder import not_yet

app_name = "catalogue"
urlpatterns = [
    path("", not_yet, name="search"),
]
