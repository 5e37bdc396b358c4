"""Public pages of problem reports: the map, its GeoJSON feed and published photos (anonymous)."""

from django.urls import path

from civicore.reports import public_views

app_name = "reports_public"
urlpatterns = [
    path("reports/map/", public_views.public_map, name="map"),
    path("reports/map.geojson", public_views.map_feed, name="map_feed"),
    path("reports/photos/<uuid:public_id>/", public_views.photo, name="photo"),
]
