"""The public page of the transparency log (/transparency/, no login)."""

from django.urls import path

from civicore.transparency import views

app_name = "transparency"
urlpatterns = [
    path("", views.log_page, name="log"),
]
