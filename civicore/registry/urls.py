from django.urls import path

from civicore.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.application_list, name="list"),
    path("new/", views.application_create, name="create"),
    path("<slug:client_id>/", views.application_detail, name="detail"),
]
