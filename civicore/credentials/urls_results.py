from django.urls import path

from civicore.credentials import views

app_name = "results"
urlpatterns = [
    path("<uuid:public_id>/", views.result_download, name="download"),
]
