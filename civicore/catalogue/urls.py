from django.urls import path

from civicore.catalogue import views

app_name = "catalogue"
urlpatterns = [
    path("", views.search, name="search"),
    # Before the service slug, so no e-service code can shadow the procedure pages.
    path("procedures/<str:code>/", views.procedure_detail, name="procedure"),
    path("<slug:code>/", views.service_detail, name="service"),
]
