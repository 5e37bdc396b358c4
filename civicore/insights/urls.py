from django.urls import path

from civicore.insights import views

app_name = "insights"
urlpatterns = [
    path("performance/", views.platform_page, name="platform"),
    path("performance/<slug:code>/", views.service_page, name="service"),
    path("office/performance/", views.office_page, name="office"),
    path("office/performance/offline/", views.office_offline, name="offline"),
]
