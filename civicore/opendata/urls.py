"""The open data portal (/data/) and CKAN's Action API (/api/3/action/, /api/action/)."""

from django.urls import path

from civicore.opendata import views

app_name = "opendata"
urlpatterns = [
    path("data/", views.index, name="index"),
    path("data/catalog.jsonld", views.catalog_jsonld, name="catalog_jsonld"),
    path("data/<slug:name>/", views.dataset_page, name="dataset"),
    path("data/<slug:name>.jsonld", views.dataset_jsonld, name="dataset_jsonld"),
    path("data/<slug:name>/<uuid:resource_id>.<str:fmt>", views.download, name="download"),
    path("api/3", views.api_root, name="api_root"),
    path("api/3/action/<str:name>", views.action, name="action"),
    path("api/action/<str:name>", views.action, name="action_unversioned"),
]
