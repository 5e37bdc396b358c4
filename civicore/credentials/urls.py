from django.urls import path

from civicore.credentials import views

app_name = "credentials"
urlpatterns = [
    path("", views.verify, name="verify"),
    path("<uuid:serial>/", views.verify_serial, name="verify_serial"),
]
