from django.urls import path

from civicore.identity import views

app_name = "identity"
urlpatterns = [
    path("", views.profile, name="profile"),
    # Before the item slug, so no profile item can shadow the sessions pages.
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
    path("sessions/<int:session_id>/end/", views.session_end, name="session_end"),
    path("<slug:key>/", views.profile_item_update, name="profile_item"),
]
