from django.urls import path

from civicore.routing import views

app_name = "routing"
urlpatterns = [
    path("ai/models/", views.model_list, name="models"),
    path("ai/models/<str:version>/", views.model_card, name="card"),
    path("office/routing/", views.office_list, name="office_list"),
    path("office/routing/<int:model_id>/", views.office_detail, name="office_detail"),
    path("office/routing/<int:model_id>/activate/", views.office_activate, name="office_activate"),
]
