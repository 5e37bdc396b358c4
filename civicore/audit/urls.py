from django.urls import path

from civicore.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.my_data, name="my_data"),
    path("export.csv", views.export_csv, name="export_csv"),
]
