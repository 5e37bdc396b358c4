from django.urls import path

from civicore.identity import views

app_name = "identity"
urlpatterns = [
    path("", views.profile, name="profile"),
    path("<slug:key>/", views.profile_item_update, name="profile_item"),
]
